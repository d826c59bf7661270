#!/usr/bin/env python3
"""Writes demo-output/report.md, summary.json and grid.png from the files scripts/demo.sh left.

Inputs (all in the demo directory): eval.json (lowbit eval --json), verify.json (lowbit verify
--json), predictions.json (lowbit predict --data --json), latency_w1a2.json (lowbit bench --json),
latency_float.json (lowbit torch-bench --json), stage_seconds.tsv, train/metrics.jsonl,
train/curves.png, confusion.png.
"""
import argparse
import gzip
import json
import os
import struct
import sys


def fail(message):
    print(f"demo report: {message}", file=sys.stderr)
    sys.exit(1)


def load_json(directory, name):
    path = os.path.join(directory, name)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")


def read_idx_images(path, count):
    """The first `count` images of a (gzipped) IDX3 file as a list of row-major byte strings."""
    with gzip.open(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 0x00000803:
            fail(f"{path}: not an IDX3 image file")
        count = min(count, n)
        data = f.read(count * rows * cols)
    return [data[i * rows * cols:(i + 1) * rows * cols] for i in range(count)], rows, cols


def plot_grid(images, rows, cols, predictions, class_names, out_path, columns=8, lines=4):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = min(len(images), columns * lines)
    fig, axes = plt.subplots(lines, columns, figsize=(columns * 1.6, lines * 1.9))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= shown:
            continue
        p = predictions[i]
        ax.imshow(np.frombuffer(images[i], dtype=np.uint8).reshape(rows, cols), cmap="gray", vmin=0, vmax=255)
        predicted = class_names[p["predicted"]]
        right = p["predicted"] == p["label"]
        title = predicted if right else f"{predicted}\n(is {class_names[p['label']]})"
        ax.set_title(title, fontsize=7, color="black" if right else "red")
    fig.suptitle("Fashion-MNIST test images, labels predicted by the deployed W1A2 model (red: wrong)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dir")
    parser.add_argument("--dataset", required=True, help="Fashion-MNIST IDX directory")
    parser.add_argument("--total-seconds", type=int, default=0)
    args = parser.parse_args()
    d = args.dir

    evaluation = load_json(d, "eval.json")
    verify = load_json(d, "verify.json")
    predictions = load_json(d, "predictions.json")
    w1a2 = load_json(d, "latency_w1a2.json")
    float_twin = load_json(d, "latency_float.json")
    if "top1" not in predictions:
        fail(f"{os.path.join(d, 'predictions.json')}: no top1 (were labels found next to the images?)")

    summary = {
        "trained_top1": evaluation["top1"],
        "deployed_top1": predictions["top1"],
        "verify_identical_codes": verify["identical_codes"],
        "verify_identical_top1": verify["identical_top1"],
        "verify_images": verify["inputs"],
        "test_images": predictions["images"],
        "latency_w1a2_ms": w1a2["median_ms"],
        "latency_float_ms": float_twin["median_ms"],
        "speedup": float_twin["median_ms"] / w1a2["median_ms"],
        "model_bytes": os.path.getsize(os.path.join(d, "model", "model.lbm")),
        "onnx_bytes": os.path.getsize(os.path.join(d, "model.onnx")),
        "total_seconds": args.total_seconds,
    }
    with open(os.path.join(d, "summary.json.tmp"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(os.path.join(d, "summary.json.tmp"), os.path.join(d, "summary.json"))

    class_names = evaluation["class_names"]
    images, rows, cols = read_idx_images(os.path.join(args.dataset, "t10k-images-idx3-ubyte.gz"), 32)
    plot_grid(images, rows, cols, predictions["predictions"], class_names, os.path.join(d, "grid.png"))

    stages = []
    stage_file = os.path.join(d, "stage_seconds.tsv")
    if os.path.exists(stage_file):
        with open(stage_file) as f:
            stages = [line.rstrip("\n").split("\t") for line in f if line.strip()]

    gap = 100.0 * abs(summary["deployed_top1"] - summary["trained_top1"])
    lines = [
        "# lowbit demo: Fashion-MNIST, W1A2 LmnetV1",
        "",
        "Trained with quantization-aware training (1-bit weights, 2-bit activations), exported to QONNX,",
        "converted to a packed lowbit model and run by the bit-serial runtime on this machine's CPU.",
        "",
        "| | |",
        "|---|---|",
        f"| trained top-1 (LibTorch, 10,000 test images) | {100 * summary['trained_top1']:.2f} % |",
        f"| deployed top-1 (lowbit runtime, {summary['test_images']:,} test images) | {100 * summary['deployed_top1']:.2f} % "
        f"(gap {gap:.2f} points) |",
        f"| identical integer codes, runtime vs reference interpreter ({summary['verify_images']} images) | "
        f"{100 * summary['verify_identical_codes']:.3f} % |",
        f"| identical top-1, runtime vs reference interpreter | {100 * summary['verify_identical_top1']:.2f} % |",
        f"| latency, deployed W1A2 (median, 1 thread, batch 1) | {summary['latency_w1a2_ms']:.3f} ms |",
        f"| latency, float twin in LibTorch (median, 1 thread, batch 1) | {summary['latency_float_ms']:.3f} ms |",
        f"| speedup | {summary['speedup']:.1f}x |",
        f"| model size: lowbit .lbm / QONNX (float weights) | {summary['model_bytes'] / 1024:.1f} KiB / "
        f"{summary['onnx_bytes'] / 1024:.1f} KiB |",
        "",
        "## Training curves",
        "",
        "![training curves](train/curves.png)",
        "",
        "## Confusion matrix (trained model)",
        "",
        "![confusion matrix](confusion.png)",
        "",
        "## Test images with the deployed model's predictions",
        "",
        "![predictions](grid.png)",
        "",
        "## Per-class accuracy (trained model)",
        "",
        "| class | top-1 |",
        "|---|---|",
    ]
    lines += [f"| {name} | {100 * acc:.1f} % |" for name, acc in zip(class_names, evaluation["per_class_top1"])]
    if stages:
        lines += ["", "## Time per stage", "", "| stage | seconds |", "|---|---|"]
        lines += [f"| {name} | {sec} |" for name, sec in stages]
        lines.append(f"| total | {args.total_seconds} |")
    lines += ["", "Files: summary.json, eval.json, verify.json, predictions.json, latency_*.json, model.onnx, "
              "model/ (model.lbm, meta.yaml), train/ (metrics.jsonl, checkpoints).", ""]
    with open(os.path.join(d, "report.md.tmp"), "w") as f:
        f.write("\n".join(lines))
        f.flush()
        os.fsync(f.fileno())
    os.replace(os.path.join(d, "report.md.tmp"), os.path.join(d, "report.md"))

    print()
    print("== lowbit demo summary ==")
    print(f"trained top-1   {100 * summary['trained_top1']:.2f} %")
    print(f"deployed top-1  {100 * summary['deployed_top1']:.2f} %  (gap {gap:.2f} points)")
    print(f"identical codes {100 * summary['verify_identical_codes']:.3f} %")
    print(f"latency         {summary['latency_w1a2_ms']:.3f} ms W1A2 (lowbit) vs {summary['latency_float_ms']:.3f} ms "
          f"float (LibTorch): {summary['speedup']:.1f}x")
    print(f"report          {os.path.join(d, 'report.md')}")


if __name__ == "__main__":
    main()
