#!/usr/bin/env python3
"""Plots bench/compare_gpu.py's CSV (one or more files of the same device): time per attention call
against N for trimix and each peer (left, log-log), and throughput on visible pairs (right); the
median where a CSV holds several rounds of one case.

    python3 bench/plot_gpu.py results/gpu_compare*.csv -o results/gpu_compare.png

Needs matplotlib (Debian: python3-matplotlib).
"""
import argparse
import csv
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    rows = []
    for path in args.csv:
        with open(path) as f:
            rows += list(csv.DictReader(f))
    devices = sorted({r["device"] for r in rows})
    commits = sorted({r["commit"] for r in rows})
    series = {}  # (impl, mask) -> N -> [(time, tflops)]: rounds of one N (--trimix-rounds) give its median
    for r in rows:
        series.setdefault((r["impl"], r["mask"]), {}).setdefault(int(r["seq"]), []).append(
            (float(r["time_ms"]), float(r["tflops_visible"])))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for (impl, mask), by_n in sorted(series.items()):
        points = [(n, statistics.median(t for t, _ in runs), statistics.median(f for _, f in runs))
                  for n, runs in sorted(by_n.items())]
        n = [p[0] for p in points]
        style = "-" if mask == "causal" else "--"
        width = 2.5 if impl.startswith("trimix") else 1.2
        label = f"{impl} {mask}"
        left.plot(n, [p[1] for p in points], style, marker="o", linewidth=width, label=label)
        right.plot(n, [p[2] for p in points], style, marker="o", linewidth=width, label=label)
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("N (queries = keys)")
    left.set_ylabel("time per call (ms)")
    right.set_xscale("log", base=2)
    right.set_xlabel("N (queries = keys)")
    right.set_ylabel("TFLOP/s on visible pairs")
    right.legend(fontsize=8)
    fig.suptitle(f"bf16, B 1, Hq 32, Hkv 8, D 128 on {', '.join(devices)} (commit {', '.join(commits)})")
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {os.path.abspath(args.output)}")


if __name__ == "__main__":
    main()
