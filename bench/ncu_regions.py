#!/usr/bin/env python3
"""Share of one kernel's warp-stall samples per region of its SASS, from Nsight Compute source counters.

    ncu --section SourceCounters --section WarpStateStats ... -o report <program>
    python3 bench/ncu_regions.py report.ncu-rep --cuts 1798,2763 --names head,loop,tail

SOURCE: an .ncu-rep (read through `ncu --import`), the CSV of `ncu --import R --page source --csv
--print-source sass`, or a TSV whose first columns are the SASS line, the instruction and the address
followed by ncu's sample columns (what .gpu scripts of the twenty-sixth session kept). --cuts are
SASS line numbers (0-based, as ncu_hotspots.py prints them) where a region starts; --names names
the len(cuts) + 1 regions. Each line: samples, share of all, and the top stall reasons, so that the
per-item code of a kernel (first stage, last P V, epilogue) can be weighed against its step loop.
Pick the cuts from the HGMMA, WARPGROUP.DEPBAR and backward-branch lines of ncu_hotspots.py's dump.
"""
import argparse
import csv
import io
import subprocess


def load(source):
    if source.endswith(".ncu-rep"):
        text = subprocess.run(["ncu", "--import", source, "--page", "source", "--csv", "--print-source", "sass"],
                              check=True, capture_output=True, text=True).stdout
        rows = list(csv.reader(io.StringIO(text)))
    else:
        with open(source) as f:
            first = f.readline()
            f.seek(0)
            rows = list(csv.reader(f, delimiter="\t" if "\t" in first else ","))
    at = next(i for i, r in enumerate(rows) if any(c.strip() in ("Source", "sass") for c in r))
    header = [c.strip() for c in rows[at]]
    body = [r for r in rows[at + 1:] if len(r) == len(header)]
    samples = next(i for i, c in enumerate(header) if c.startswith("Warp Stall Sampling (All"))
    stalls = [i for i, c in enumerate(header) if c.startswith("stall_") and "Not Issued" not in c]
    return header, body, samples, stalls


def number(x):
    try:
        return int(float(x.replace(",", "")))
    except ValueError:
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("--cuts", required=True, help="comma-separated SASS line numbers where regions start")
    ap.add_argument("--names", required=True, help="comma-separated names of the len(cuts) + 1 regions")
    args = ap.parse_args()
    cuts = [int(x) for x in args.cuts.split(",")]
    names = args.names.split(",")
    if len(names) != len(cuts) + 1:
        raise SystemExit("ncu_regions: --names needs one more name than --cuts has lines")
    header, body, samples, stalls = load(args.source)
    total = [0] * len(names)
    reasons = [dict() for _ in names]
    for line, row in enumerate(body):
        region = sum(1 for c in cuts if line >= c)
        total[region] += number(row[samples])
        for i in stalls:
            reasons[region][header[i]] = reasons[region].get(header[i], 0) + number(row[i])
    everything = max(sum(total), 1)
    for name, count, why in zip(names, total, reasons):
        top = ", ".join(f"{k[6:]}={v}" for k, v in sorted(why.items(), key=lambda kv: -kv[1])[:4])
        print(f"{name:>20} {count:8d} {100 * count / everything:5.1f}%  {top}")


if __name__ == "__main__":
    main()
