#!/usr/bin/env python3
"""Order of the waits, exps, mbarrier operations and MMAs in one kernel's SASS.

    cuobjdump -sass BIN | python3 scripts/gpu/sass_order.py MANGLED_NAME_SUBSTRING

Prints the kernel's instruction number and text of each such instruction; runs of exps, MMAs and
global stores fold into one line with a count (x N). The PTX order can differ: ptxas moves waits
(bench/NOTES.md, eighteenth session: the P V wait scheduled above the softmax).
"""
import re
import sys

KINDS = ("DEPBAR", "MUFU.EX2", "SYNCS.ARRIVE", "SYNCS.PHASECHK", "HGMMA", "WARPGROUP.ARRIVE", "STG", "VOTE",
         "BRA", "EXIT")
FOLDED = ("MUFU.EX2", "HGMMA", "STG")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    want = sys.argv[1]
    inside, count, lines = False, 0, []  # lines: [kind, text, run length]
    for line in sys.stdin:
        if "Function :" in line:
            inside = want in line
            count = 0  # instruction numbers count from each kernel's start
            if inside:
                lines.append([None, line.strip(), 1])
            continue
        instruction = re.search(r"/\*[0-9a-f]{4,}\*/\s+(.*?);", line) if inside else None
        if not instruction:
            continue
        count += 1
        text = instruction.group(1)
        kind = next((k for k in KINDS if k in text), None)
        if kind is None:
            continue
        if kind in FOLDED and lines and lines[-1][0] == kind:
            lines[-1][2] += 1
        else:
            lines.append([kind, f"{count:5d} {text[:90]}", 1])
    for kind, text, run in lines:
        print(text + (f"  x{run}" if run > 1 else ""))


if __name__ == "__main__":
    main()
