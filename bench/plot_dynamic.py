#!/usr/bin/env python3
"""Plots dynamic (and static) sparse layers from an attention_bench-style CSV with estimate_ms:
speed-up over dense causal at the same N (left, log scale, with the tile bound as a dotted line of
the same colour) and the estimator's share of the layer time (right).

    python3 bench/plot_dynamic.py bench/results/gpu_h200_edd972e.csv [-o out.png] [--inputs structured]

Lines starting with '#' are comments. Needs matplotlib.
"""
import argparse
import csv
import os
from collections import defaultdict


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("-o", "--output")
    ap.add_argument("--inputs", default="structured", help="rows with this inputs column only (if present)")
    args = ap.parse_args()
    with open(args.csv) as f:
        rows = [r for r in csv.DictReader(line for line in f if not line.startswith("#"))]
    rows = [r for r in rows if r.get("inputs", args.inputs) == args.inputs]
    if not rows:
        raise SystemExit(f"plot_dynamic.py: no rows with inputs={args.inputs} in {args.csv}")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speedup, bound, share = defaultdict(dict), defaultdict(dict), defaultdict(dict)
    for r in rows:
        n, mask = int(r["seq"]), r["mask"]
        if mask == "causal":
            continue
        speedup[mask][n] = float(r["speedup_vs_causal"])
        if r.get("tile_bound"):
            bound[mask][n] = float(r["tile_bound"])
        est = float(r.get("estimate_ms") or 0)
        if est > 0:
            share[mask][n] = 100.0 * est / float(r["time_ms"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, mask in enumerate(sorted(speedup)):
        color = f"C{i}"
        ns = sorted(speedup[mask])
        left.plot(ns, [speedup[mask][n] for n in ns], "o-", color=color, label=mask)
        if bound[mask]:
            left.plot(ns, [bound[mask][n] for n in ns], ":", color=color)
    left.axhline(1.0, color="grey", lw=0.8)
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("N (queries = keys)")
    left.set_ylabel("speed-up over dense causal (dotted: tile bound)")
    left.legend(fontsize=8)
    masks = sorted(share)
    ns = sorted({n for m in masks for n in share[m]})
    width = 0.8 / max(1, len(masks))
    for i, mask in enumerate(masks):
        right.bar([k + i * width for k in range(len(ns))], [share[mask].get(n, 0) for n in ns], width,
                  label=mask, color=f"C{sorted(speedup).index(mask)}")
    right.axhline(10.0, color="grey", lw=0.8, ls="--")
    right.set_xticks([k + 0.4 - width / 2 for k in range(len(ns))], [f"{n // 1024}K" for n in ns])
    right.set_ylabel("estimation, % of the layer time (target < 10%)")
    right.legend(fontsize=8)
    device = rows[0].get("device", "")
    commit = rows[0].get("commit", "")
    fig.suptitle(f"trimix sparse layers, {device}, {commit}, {args.inputs} inputs")
    fig.tight_layout()
    out = args.output or os.path.splitext(args.csv)[0] + ".png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
