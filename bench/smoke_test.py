#!/usr/bin/env python3
"""bench_smoke: runs `lowbit-bench --quick` into a scratch directory and checks kernels.json.

Checks the schema `make bench` promises (top-level keys, every record's keys and types, one record
per layer x bits x thread count, networks) and that every benchmarked lowbit layer's output matched
oneDNN. It checks no speed: timings on a shared CI machine are not a test.

usage: smoke_test.py LOWBIT_BENCH OUT_DIR
"""
import json
import math
import os
import shutil
import subprocess
import sys

RECORD_KEYS = ["layer", "bits", "threads", "lowbit_ms", "onednn_f32_ms", "onednn_s8_ms",
               "speedup_vs_f32", "speedup_vs_s8", "peak_fraction", "isa"]
NETWORK_KEYS = ["name", "threads", "lowbit_ms", "onednn_f32_ms", "speedup_vs_f32"]
TOP_KEYS = ["cpu", "isa", "popcount_peak_gbops", "threads_tested", "records", "networks"]


def positive(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def check(doc):
    errors = []
    for k in TOP_KEYS:
        if k not in doc:
            errors.append(f"missing top-level key {k!r}")
    if errors:
        return errors
    if not isinstance(doc["cpu"], str) or not doc["cpu"]:
        errors.append("cpu is not a non-empty string")
    if not isinstance(doc["isa"], str) or not doc["isa"]:
        errors.append("isa is not a non-empty string")
    if not positive(doc["popcount_peak_gbops"]):
        errors.append(f"popcount_peak_gbops {doc['popcount_peak_gbops']!r} is not positive")
    threads = doc["threads_tested"]
    if threads != [1, 2]:
        errors.append(f"threads_tested is {threads!r}, expected [1, 2]")
    seen = set()
    for r in doc["records"]:
        where = f"record {r.get('layer')}/{r.get('bits')}/{r.get('threads')}"
        for k in RECORD_KEYS:
            if k not in r:
                errors.append(f"{where}: missing key {k!r}")
        if any(k not in r for k in RECORD_KEYS):
            continue
        seen.add((r["layer"], r["bits"], r["threads"]))
        for k in ["lowbit_ms", "onednn_f32_ms", "onednn_s8_ms", "speedup_vs_f32", "speedup_vs_s8"]:
            if not positive(r[k]):
                errors.append(f"{where}: {k} = {r[k]!r} is not a positive number")
        if r["bits"] == "F32":
            if r["peak_fraction"] is not None:
                errors.append(f"{where}: a float layer's peak_fraction must be null")
        elif r["bits"] in ("W1A1", "W1A2", "W2A2"):
            if not positive(r["peak_fraction"]):
                errors.append(f"{where}: peak_fraction {r['peak_fraction']!r} is not positive")
        else:
            errors.append(f"{where}: unexpected bits {r['bits']!r}")
        if abs(r["speedup_vs_f32"] - r["onednn_f32_ms"] / r["lowbit_ms"]) > 1e-6 * r["speedup_vs_f32"]:
            errors.append(f"{where}: speedup_vs_f32 is not onednn_f32_ms / lowbit_ms")
        if r.get("output_verified") is not True:
            errors.append(f"{where}: lowbit output did not match the oneDNN reference")
        errors += check_window(doc, r, where)
    layers = sorted({layer for layer, _, _ in seen})
    for layer in layers:
        bits = ["F32"] if any(b == "F32" for l, b, _ in seen if l == layer) else ["W1A1", "W1A2", "W2A2"]
        for b in bits:
            for t in threads:
                if (layer, b, t) not in seen:
                    errors.append(f"no record for layer {layer} {b} at {t} thread(s)")
    if not doc["records"]:
        errors.append("no records")
    if not doc["networks"]:
        errors.append("no networks")
    for n in doc["networks"]:
        for k in NETWORK_KEYS:
            if k not in n:
                errors.append(f"network {n.get('name')}: missing key {k!r}")
            elif k not in ("name", "threads") and not positive(n[k]):
                errors.append(f"network {n.get('name')}: {k} = {n[k]!r} is not positive")
        errors += check_window(doc, n, f"network {n.get('name')} t={n.get('threads')}")
    return errors


def check_window(doc, r, where):
    """A layer or network record's window_fraction is its popcount loop over the peak at its thread
    count, the run's list of disturbed windows names it exactly when that is below the quiet
    threshold, and its window_attempts (how often it was timed) is within bounds and summarised in
    windows."""
    windows = doc.get("windows")
    if not isinstance(windows, dict) or not isinstance(windows.get("disturbed"), list):
        return ["missing windows / windows.disturbed"]
    fraction = r.get("window_fraction")
    if not positive(fraction):
        return [f"{where}: window_fraction {fraction!r} is not positive"]
    peak = doc["popcount_peak_gbops_by_threads"][str(r["threads"])]
    if abs(fraction - r["popcount_loop_gbops_same_window"] / peak) > 1e-9 * fraction:
        return [f"{where}: window_fraction is not popcount_loop_gbops_same_window / the peak at its thread count"]
    attempts = r.get("window_attempts")
    if not isinstance(attempts, int) or not 1 <= attempts <= windows.get("max_attempts", 0):
        return [f"{where}: window_attempts {attempts!r} is not between 1 and windows.max_attempts"]
    what = r["layer"] if "layer" in r else r["name"]
    if (attempts > 1) != (what in windows.get("attempts", {})):
        return [f"{where}: window_attempts {attempts} disagrees with windows.attempts"]
    listed = any(w.startswith(f"{what} {r['threads']} thr ") for w in windows["disturbed"])
    if listed != (fraction < windows["quiet_threshold"]):
        return [f"{where}: window_fraction {fraction:.3f} but {'listed' if listed else 'not listed'} as disturbed"]
    return []


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    bench, out = sys.argv[1], sys.argv[2]
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([bench, "--quick", "--out", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    print(proc.stdout)
    if proc.returncode != 0:
        print(f"FAIL: lowbit-bench exited with {proc.returncode}")
        return 1
    path = os.path.join(out, "kernels.json")
    with open(path) as f:
        doc = json.load(f)
    errors = check(doc)
    for e in errors:
        print(f"FAIL: {path}: {e}")
    if errors:
        return 1
    print(f"OK: {path}: {len(doc['records'])} records, {len(doc['networks'])} networks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
