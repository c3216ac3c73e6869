#!/usr/bin/env python3
"""Top SASS instructions of one kernel by warp-stall samples, from an Nsight Compute report.

    ncu --section SourceCounters --section WarpStateStats ... -o report <program>
    python3 bench/ncu_hotspots.py report.ncu-rep [--top 40] [--buckets 100]
                                  [--cuts 1798,2763 --names head,loop,tail]

Reads `ncu --import REPORT --page source --csv --print-source sass` (or a file holding that table,
comma- or tab-separated, whose instruction column is "Source" or "sass") and prints the
instructions with the most samples, each with its share of all samples and its stall columns, so
that a profile says which instruction the warps wait at (a barrier, a local-memory load, the MMA).
Line numbers are 0-based rows of the table. --buckets: the share per stretch of that many lines.
--cuts / --names: the share and top stall reasons of named regions, each starting at a cut line
(len(names) = len(cuts) + 1), so that a kernel's per-item code (first stage, last P V, epilogue)
can be weighed against its step loop; pick the cuts from the HGMMA, WARPGROUP.DEPBAR and
backward-branch lines of the listing.
"""
import argparse
import csv
import io
import subprocess
import sys


def load(source):
    """(header, body rows, instruction column, samples column) of the report's source table."""
    if source.endswith(".ncu-rep"):
        text = subprocess.run(["ncu", "--import", source, "--page", "source", "--csv", "--print-source", "sass"],
                              check=True, capture_output=True, text=True).stdout
    else:
        with open(source) as f:
            text = f.read()
    rows = list(csv.reader(io.StringIO(text), delimiter="\t" if "\t" in text.split("\n", 1)[0] else ","))
    header_at = next((i for i, r in enumerate(rows) if any(c.strip() in ("Source", "sass") for c in r)), None)
    if header_at is None:
        sys.exit("ncu_hotspots: no source table in the report (profile with --section SourceCounters)")
    header = [c.strip() for c in rows[header_at]]
    body = [r for r in rows[header_at + 1:] if len(r) == len(header)]
    src = header.index("Source") if "Source" in header else header.index("sass")
    samples = next(i for i, c in enumerate(header) if c.startswith("Warp Stall Sampling (All"))
    return header, body, src, samples


def num(x):
    try:
        return float(x.replace(",", ""))
    except ValueError:
        return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--buckets", type=int, default=0,
                    help="also print the share of samples per stretch of this many SASS lines")
    ap.add_argument("--cuts", default="", help="comma-separated SASS lines where named regions start")
    ap.add_argument("--names", default="", help="comma-separated names of the len(cuts) + 1 regions")
    args = ap.parse_args()
    cuts = [int(x) for x in args.cuts.split(",")] if args.cuts else []
    names = args.names.split(",") if args.names else []
    if (cuts or names) and len(names) != len(cuts) + 1:
        sys.exit("ncu_hotspots: --names needs one more name than --cuts has lines")
    header, body, src, samples = load(args.report)
    stall_cols = [i for i, c in enumerate(header) if c.startswith("stall_") or "Stall" in c and i != samples]

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
    if names:
        reasons = [i for i, c in enumerate(header) if c.startswith("stall_") and "Not Issued" not in c]
        count = [0.0] * len(names)
        why = [dict() for _ in names]
        for line, r in enumerate(body):
            region = sum(1 for c in cuts if line >= c)
            count[region] += num(r[samples])
            for c in reasons:
                why[region][header[c]] = why[region].get(header[c], 0.0) + num(r[c])
        print("samples per region (from line: share of all samples, top stall reasons)")
        for name, first, n, w in zip(names, [0] + cuts, count, why):
            top = ", ".join(f"{k[6:]}={v:.0f}" for k, v in sorted(w.items(), key=lambda kv: -kv[1])[:4])
            print(f"{name:>20} {first:6d} {n:8.0f} {100.0 * n / total:5.1f}%  {top}")


if __name__ == "__main__":
    main()
