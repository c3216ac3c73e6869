#!/usr/bin/env python3
"""Top SASS instructions of one kernel by warp-stall samples, from an Nsight Compute report.

    ncu --section SourceCounters --section WarpStateStats ... -o report <program>
    python3 bench/ncu_hotspots.py report.ncu-rep [--top 40]

Reads `ncu --import REPORT --page source --csv --print-source sass` and prints the instructions
with the most samples, each with its share of all samples and its stall columns, so that a
profile says which instruction the warps wait at (a barrier, a local-memory load, the MMA).
"""
import argparse
import csv
import io
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--buckets", type=int, default=0,
                    help="also print the share of samples per stretch of this many SASS lines")
    args = ap.parse_args()
    text = subprocess.run(["ncu", "--import", args.report, "--page", "source", "--csv", "--print-source", "sass"],
                          check=True, capture_output=True, text=True).stdout
    rows = list(csv.reader(io.StringIO(text)))
    header_at = next((i for i, r in enumerate(rows) if any("Source" == c.strip() for c in r)), None)
    if header_at is None:
        sys.exit("ncu_hotspots: no source table in the report (profile with --section SourceCounters)")
    header = [c.strip() for c in rows[header_at]]
    body = [r for r in rows[header_at + 1:] if len(r) == len(header)]
    src = header.index("Source")
    samples = next(i for i, c in enumerate(header) if c.startswith("Warp Stall Sampling (All"))
    stall_cols = [i for i, c in enumerate(header) if c.startswith("stall_") or "Stall" in c and i != samples]

    def num(x):
        try:
            return float(x.replace(",", ""))
        except ValueError:
            return 0.0

    total = sum(num(r[samples]) for r in body) or 1.0
    ranked = sorted(range(len(body)), key=lambda i: -num(body[i][samples]))[: args.top]
    print(f"{len(body)} SASS lines, {total:.0f} samples")
    for i in sorted(ranked):
        r = body[i]
        share = 100.0 * num(r[samples]) / total
        stalls = ", ".join(f"{header[c]}={r[c]}" for c in stall_cols if num(r[c]) > 0.05 * num(r[samples]))
        print(f"{i:6d} {share:5.1f}%  {r[src].strip()[:70]:70s} {stalls[:120]}")
    if args.buckets > 0:  # where in the kernel the time goes: prologue, tile loop, epilogue
        print(f"samples per {args.buckets} SASS lines (from line: share, first instruction)")
        for b in range(0, len(body), args.buckets):
            part = sum(num(r[samples]) for r in body[b:b + args.buckets])
            if part >= 0.005 * total:
                print(f"{b:6d} {100.0 * part / total:5.1f}%  {body[b][src].strip()[:60]}")


if __name__ == "__main__":
    main()
