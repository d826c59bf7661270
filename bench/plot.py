#!/usr/bin/env python3
"""Plots bench-results/kernels.json (written by lowbit-bench) to a PNG.

Top: lowbit's speedup over oneDNN fp32 and int8 per layer, W1A2 (layer i: the float first layer),
at each thread count, log scale, 1x marked. Middle: the fraction of the measured popcount peak each
W1A2 layer reaches. Bottom: whole networks, speedup over oneDNN fp32. Bars of layers and networks measured in a
disturbed window (the popcount loop timed in turn with them below the run's quiet threshold) are
hatched.

usage: plot.py KERNELS_JSON OUT_PNG
"""
import json
import os
import sys
import tempfile
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.patches import Patch  # noqa: E402

BITS = "W1A2"


def records_by(doc, bits, threads):
    return {r["layer"]: r for r in doc["records"] if r["bits"] == bits and r["threads"] == threads}


def disturbed(doc, r):
    """Whether record r was measured in a window where the machine ran below its best."""
    threshold = doc.get("windows", {}).get("quiet_threshold")  # absent in files written before 2026-12-04 21:00
    return threshold is not None and r.get("window_fraction", 1.0) < threshold


def hatch_disturbed(bars, flags):
    for b, flag in zip(bars, flags):
        if flag:
            b.set_hatch("///")
            b.set_edgecolor("black")


def legend_with_hatch(ax, doc, entries, **kwargs):
    """A legend of plain colour patches (a series' first bar may be hatched) plus, where any bar
    is, what the hatch means."""
    handles = [Patch(facecolor=color, label=name) for name, color in entries]
    if doc.get("windows", {}).get("disturbed"):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="disturbed window"))
    ax.legend(handles=handles, **kwargs)


def label_bars(ax, bars, fmt):
    for b in bars:
        h = b.get_height()
        if h > 0:
            ax.annotate(fmt(h), (b.get_x() + b.get_width() / 2, h), ha="center", va="bottom", fontsize=6,
                        xytext=(0, 1), textcoords="offset points")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        doc = json.load(f)
    threads = doc["threads_tested"]
    quantized = sorted({r["layer"] for r in doc["records"] if r["bits"] == BITS})
    floats = sorted({r["layer"] for r in doc["records"] if r["bits"] == "F32"})
    layers = quantized + floats

    def record(layer, t):
        bits = "F32" if layer in floats else BITS
        return records_by(doc, bits, t).get(layer)

    scaling = len(threads) >= 2
    rows = [3, 2, 1.4] + ([2] if scaling else [])
    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 13 + (3 if scaling else 0)), gridspec_kw={"height_ratios": rows})
    fig.suptitle(f"lowbit vs oneDNN {doc.get('onednn', {}).get('version', '')} on {doc['cpu']}\n"
                 f"lowbit kernels: {doc['isa']}; popcount peak {doc['popcount_peak_gbops']:.0f} Gbop/s per thread "
                 f"({doc.get('popcount_peak_isa', '?')})" + busy_note(doc) + window_note(doc), fontsize=11)

    # 1. Speedups.
    ax = axes[0]
    series = []
    for t in threads:
        series.append((f"vs oneDNN fp32, {t} thr", "speedup_vs_f32", t))
    for t in threads:
        series.append((f"vs oneDNN int8, {t} thr", "speedup_vs_s8", t))
    colors = ["#1f77b4", "#6baed6", "#d62728", "#fc9272", "#2ca02c", "#98df8a"]
    width = 0.8 / len(series)
    highest = 1.0
    for i, (name, key, t) in enumerate(series):
        xs, ys, flags = [], [], []
        for j, layer in enumerate(layers):
            r = record(layer, t)
            if r:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(r[key])
                flags.append(disturbed(doc, r))
        bars = ax.bar(xs, ys, width, color=colors[i % len(colors)])
        hatch_disturbed(bars, flags)
        label_bars(ax, bars, lambda v: f"{v:.1f}" if v >= 1 else f"{v:.2f}")
        highest = max([highest] + ys)
    ax.set_yscale("log")
    ax.set_ylim(top=highest * 3)  # room for the bar labels and the legend above the tallest bar
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([layer_label(doc, l, "F32" if l in floats else BITS) for l in layers], fontsize=8)
    ax.set_ylabel("speedup (oneDNN ms / lowbit ms), log")
    ax.set_title(f"{BITS} layers (i: float first layer), speedup over oneDNN; above 1 = lowbit faster", fontsize=10)
    legend_with_hatch(ax, doc, [(name, colors[i % len(colors)]) for i, (name, _, _) in enumerate(series)],
                      fontsize=8, ncol=2)
    ax.grid(axis="y", which="both", alpha=0.3)

    # 2. Peak fraction.
    ax = axes[1]
    width = 0.8 / len(threads)
    for i, t in enumerate(threads):
        recs = records_by(doc, BITS, t)
        xs = [j - 0.4 + width * (i + 0.5) for j, l in enumerate(quantized) if l in recs]
        ys = [100.0 * recs[l]["peak_fraction"] for l in quantized if l in recs]
        bars = ax.bar(xs, ys, width, color=colors[(4 + i) % len(colors)])
        hatch_disturbed(bars, [disturbed(doc, recs[l]) for l in quantized if l in recs])
        label_bars(ax, bars, lambda v: f"{v:.0f}%")
    ax.set_xticks(range(len(quantized)))
    ax.set_xticklabels([layer_label(doc, l, BITS) for l in quantized], fontsize=8)
    ax.set_ylabel("% of popcount peak")
    ax.set_title(f"{BITS}: achieved binary MAC rate (MACs x wbits x abits / s) / measured popcount peak "
                 f"at the same thread count", fontsize=10)
    legend_with_hatch(ax, doc, [(f"{t} thread(s)", colors[(4 + i) % len(colors)]) for i, t in enumerate(threads)],
                      fontsize=8)
    ax.grid(axis="y", alpha=0.3)

    # 3. Networks.
    ax = axes[2]
    nets = sorted({n["name"] for n in doc["networks"]})
    width = 0.8 / max(1, len(threads))
    for i, t in enumerate(threads):
        by = {n["name"]: n for n in doc["networks"] if n["threads"] == t}
        xs = [j - 0.4 + width * (i + 0.5) for j, n in enumerate(nets) if n in by]
        ys = [by[n]["speedup_vs_f32"] for n in nets if n in by]
        bars = ax.bar(xs, ys, width, label=f"{t} thread(s)", color=colors[i % len(colors)])
        hatch_disturbed(bars, [disturbed(doc, by[n]) for n in nets if n in by])
        for b, n in zip(bars, [n for n in nets if n in by]):
            ax.annotate(f"{b.get_height():.2f}x\n{by[n]['lowbit_ms']:.2f} vs {by[n]['onednn_f32_ms']:.2f} ms",
                        (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(nets)))
    ax.set_xticklabels(nets, fontsize=8)
    ax.set_ylabel("speedup vs fp32")
    ax.set_title("whole networks (random weights): lowbit W1A2 vs the same architecture in oneDNN fp32", fontsize=10)
    legend_with_hatch(ax, doc, [(f"{t} thread(s)", colors[i % len(colors)]) for i, t in enumerate(threads)], fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.35)

    # 4. Thread scaling, with what the machine's threads delivered in the same windows.
    if scaling:
        ax = axes[3]
        lo, hi = threads[0], threads[-1]
        loop = "popcount_loop_gbops_same_window"  # absent in files written before 2026-12-04
        series = [("lowbit", lambda a, b: a["lowbit_ms"] / b["lowbit_ms"], "#2ca02c"),
                  ("oneDNN fp32", lambda a, b: a["onednn_f32_ms"] / b["onednn_f32_ms"], "#1f77b4"),
                  ("oneDNN int8", lambda a, b: a["onednn_s8_ms"] / b["onednn_s8_ms"], "#d62728"),
                  ("popcount loop, same window", lambda a, b: b[loop] / a[loop] if loop in a and loop in b else None,
                   "#7f7f7f")]
        width = 0.8 / len(series)
        top = hi / lo
        for i, (name, ratio, color) in enumerate(series):
            xs, ys = [], []
            for j, layer in enumerate(layers):
                a, b = record(layer, lo), record(layer, hi)
                value = ratio(a, b) if a and b else None
                if value is not None:
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(value)
            if not ys:
                continue
            top = max(top, max(ys))
            bars = ax.bar(xs, ys, width, label=name, color=color)
            label_bars(ax, bars, lambda v: f"{v:.2f}")
        ax.axhline(hi / lo, color="black", linewidth=0.8)
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels([layer_label(doc, l, "F32" if l in floats else BITS) for l in layers], fontsize=8)
        ax.set_ylabel(f"speedup {lo} -> {hi} threads")
        ax.set_ylim(0, top * 1.15)
        ax.set_title(f"{BITS}: {lo} -> {hi} threads (medians); the popcount loop, timed in turn with each layer, "
                     f"shows what the machine's threads delivered meanwhile", fontsize=10)
        ax.legend(fontsize=8, ncol=4, loc="lower right")
        ax.grid(axis="y", alpha=0.3)

    fig.tight_layout(rect=(0, 0, 1, 0.97))  # room for the suptitle
    # Atomic write: temporary file in the same directory, then rename.
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=directory)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a plot is for everyone to read
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"wrote {out}")
    return 0


def busy_note(doc):
    other = doc.get("other_processes_cpu", 0.0)
    if other > 0.05:
        return f"\nWARNING: other processes used {100 * other:.0f}% of the CPU during the run; timings unreliable"
    return ""


def window_note(doc):
    windows = doc.get("windows", {})
    if not windows.get("disturbed"):
        return ""
    note = (f"hatched: measured while the popcount loop ran below {100 * windows['quiet_threshold']:.0f}% of the peak: "
            + ", ".join(windows["disturbed"]))
    return "\n" + "\n".join(textwrap.wrap(note, 130))  # a long list would run off the figure


def layer_label(doc, layer, bits):
    for r in doc["records"]:
        if r["layer"] == layer and r["bits"] == bits:
            return f"{layer}\n{r['h']}x{r['w']}\n{r['cin']}->{r['cout']}\nk{r['k']} s{r['stride']}"
    return layer


if __name__ == "__main__":
    sys.exit(main())
