#!/usr/bin/env python3
"""Plots an attention_bench CSV: throughput per mask and element type, and the speed-up of each
sparse mask over dense causal next to its upper bounds.

    python3 bench/plot.py results.csv [-o results.png] [--peak peak.csv] [--threads N]

Left: TFLOP/s on visible pairs against the sequence length N, one line per (mask, dtype), with
the machine's fp32 FMA peak from peak_probe's CSV as a ceiling when --peak is given.
Right: speed-up over causal at the same N and dtype, with two bounds at equal efficiency (an engine
with tiles smaller than 128 can beat the tile bound, never the pair bound):
  - the tile bound (DESIGN.md section 5): kv-tiles causal visits / kv-tiles the mask visits, with
    128 x 128 tiles, for Triangle(sink, window, last_rows) and Streaming(sink, window);
  - the pair bound: visible pairs of causal / visible pairs of the mask (from the CSV).
Needs python3 and matplotlib (Debian: python3-matplotlib).
"""

import argparse
import csv
import math
import os
import sys
from collections import defaultdict


def tiles_visited(n, tile, sink, window, last_rows):
    """kv-tiles visited by causal and by Triangle / Streaming on an n x n problem (queries = keys),
    per (batch, head), with square tiles of `tile` positions. Mirrors the masks of DESIGN.md
    section 3: visible(p, j) = j <= p and (j < sink or p - j < window [or p >= n - last_rows])."""
    tiles = math.ceil(n / tile)
    sink_tiles = math.ceil(sink / tile) if sink > 0 else 0  # tiles 0 .. sink_tiles - 1
    causal = triangle = streaming = 0
    for qt in range(tiles):
        first = qt * tile
        last = min(n, first + tile) - 1
        diagonal = qt + 1  # tiles 0..qt hold keys j <= last
        causal += diagonal
        # Window: keys first - window + 1 .. last (tile of the lowest key to the diagonal tile).
        if window > 0:
            low = max(0, first - window + 1) // tile
            window_tiles = set(range(low, qt + 1))
        else:
            window_tiles = set()
        a_shape = window_tiles | set(range(min(sink_tiles, diagonal)))
        streaming += len(a_shape)
        triangle += diagonal if last >= n - last_rows else len(a_shape)
    return causal, triangle, streaming


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"plot.py: no rows in {path}")
    for r in rows:
        for key in ("threads", "batch", "q_heads", "kv_heads", "head_dim", "seq", "visible_pairs"):
            r[key] = int(r[key])
        for key in ("plan_ms", "time_ms", "tflops_visible"):
            r[key] = float(r[key])
        r["speedup_vs_causal"] = float(r["speedup_vs_causal"]) if r["speedup_vs_causal"] else None
    return rows


def read_peak(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[-1] if rows else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="CSV written by attention_bench --csv")
    parser.add_argument("-o", "--output", help="PNG to write (default: the CSV's name with .png)")
    parser.add_argument("--peak", help="CSV written by peak_probe --csv (draws the fp32 peak)")
    parser.add_argument("--threads", type=int,
                        help="thread count to plot (default: the largest in the CSV)")
    parser.add_argument("--sink", type=int, default=8, help="Triangle/Streaming sink [8]")
    parser.add_argument("--window", type=int, default=512, help="Triangle/Streaming window [512]")
    parser.add_argument("--last-rows", type=int, default=128, help="Triangle last rows [128]")
    parser.add_argument("--tile", type=int, default=128, help="tile size of the tile bound [128]")
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    rows = read_rows(args.csv)
    threads = args.threads if args.threads else max(r["threads"] for r in rows)
    rows = [r for r in rows if r["threads"] == threads]
    if not rows:
        sys.exit(f"plot.py: no rows with {threads} threads in {args.csv}")
    output = args.output or os.path.splitext(args.csv)[0] + ".png"

    series = defaultdict(list)  # (mask, dtype) -> rows
    for r in rows:
        series[(r["mask"], r["dtype"])].append(r)
    for key in series:
        series[key].sort(key=lambda r: r["seq"])
    masks = sorted({m for m, _ in series}, key=lambda m: (m != "causal", m))
    dtypes = sorted({d for _, d in series})
    colors = {m: c for m, c in zip(masks, ["tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red"])}
    styles = {d: s for d, s in zip(dtypes, ["-", "--", ":"])}
    markers = {d: s for d, s in zip(dtypes, ["o", "s", "^"])}

    fig, (ax_tp, ax_su) = plt.subplots(1, 2, figsize=(13, 5.2))

    for (mask, dtype), rs in sorted(series.items()):
        ax_tp.plot([r["seq"] for r in rs], [r["tflops_visible"] for r in rs], styles[dtype],
                   marker=markers[dtype], color=colors[mask], label=f"{mask} {dtype}")
    if args.peak and os.path.exists(args.peak):
        peak = read_peak(args.peak)
        if peak:
            total = float(peak["gflops_total"]) * 1e-3
            ax_tp.axhline(total, color="black", linewidth=1)
            ax_tp.annotate(f"fp32 FMA peak, {peak['threads']} threads: {total:.2f}",
                           xy=(0.02, total), xycoords=("axes fraction", "data"),
                           va="bottom", fontsize=8)
    ax_tp.set_xscale("log", base=2)
    ax_tp.set_yscale("log")
    ax_tp.set_xlabel("sequence length N")
    ax_tp.set_ylabel("TFLOP/s on visible pairs")
    ax_tp.set_title("Throughput")
    ax_tp.grid(True, which="both", alpha=0.3)
    ax_tp.legend(fontsize=8)

    seqs = sorted({r["seq"] for r in rows})
    dense_n = [2 ** k for k in range(int(math.log2(min(seqs))), int(math.log2(max(seqs))) + 1)]
    dense_n = sorted(set(dense_n) | set(seqs))
    bounds = [tiles_visited(n, args.tile, args.sink, args.window, args.last_rows) for n in dense_n]
    if "triangle" in masks:
        ax_su.plot(dense_n, [c / t for c, t, _ in bounds], "-", color=colors["triangle"], alpha=0.35,
                   linewidth=6, label=f"triangle tile bound ({args.tile}-wide tiles)")
    if "streaming" in masks:
        ax_su.plot(dense_n, [c / s for c, _, s in bounds], "-", color=colors["streaming"], alpha=0.35,
                   linewidth=6, label=f"streaming tile bound ({args.tile}-wide tiles)")
    causal_pairs = {(r["seq"], r["dtype"]): r["visible_pairs"] for r in rows if r["mask"] == "causal"}
    for (mask, dtype), rs in sorted(series.items()):
        if mask == "causal":
            continue
        measured = [r for r in rs if r["speedup_vs_causal"] is not None]
        if measured:
            ax_su.plot([r["seq"] for r in measured], [r["speedup_vs_causal"] for r in measured],
                       styles[dtype], marker=markers[dtype], color=colors[mask],
                       label=f"{mask} {dtype} measured")
        if dtype == dtypes[0]:
            pair = [(r["seq"], causal_pairs[(r["seq"], dtype)] / r["visible_pairs"]) for r in rs
                    if (r["seq"], dtype) in causal_pairs]
            if pair:
                ax_su.plot([p[0] for p in pair], [p[1] for p in pair], ":", color=colors[mask],
                           linewidth=1, label=f"{mask} pair bound")
    ax_su.axhline(1.0, color=colors.get("causal", "gray"), linewidth=1)
    ax_su.set_xscale("log", base=2)
    ax_su.set_yscale("log")
    ax_su.set_xlabel("sequence length N")
    ax_su.set_ylabel("speed-up over dense causal (same N, dtype)")
    ax_su.set_title("Speed-up vs causal and its bounds")
    ax_su.grid(True, which="both", alpha=0.3)
    ax_su.legend(fontsize=8)

    def seq_label(n, _pos=None):
        return f"{n // 1024}K" if n >= 1024 and n % 1024 == 0 else f"{n:g}"

    for ax in (ax_tp, ax_su):
        ax.set_xticks(seqs)
        ax.xaxis.set_major_formatter(FuncFormatter(seq_label))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax_su.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}x"))
    ax_su.yaxis.set_minor_formatter(FuncFormatter(lambda y, _pos: f"{y:g}x" if y < 10 else ""))
    ax_tp.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}"))

    first = rows[0]
    fig.suptitle(f"trimix attention_bench: {first['device']}, {first['kokkos_backend']} x {threads} "
                 f"threads, commit {first['commit']}; B={first['batch']} Hq={first['q_heads']} "
                 f"Hkv={first['kv_heads']} D={first['head_dim']}; triangle({args.sink},{args.window},"
                 f"{args.last_rows})", fontsize=10)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    print(f"plot.py: wrote {output}")


if __name__ == "__main__":
    main()
