#!/usr/bin/env python3
"""Compares the pair kernels' SASS of two built binaries, instruction by instruction.

  scripts/gpu/sass_diff.py BASE NEW [--kernel pair_attention_kernel] [--show 20]
                                                        (cuobjdump from $CUOBJDUMP or PATH)

For each kernel whose mangled name contains --kernel and holds wgmmas, prints the counts that
moved timings before (HGMMA, WARPGROUP.DEPBAR, R2UR, STL, LDL) in both binaries and how many lines
differ once addresses and encodings are stripped. Why: a change meant for one mask or for
measuring builds only can still reshape another kernel (thirty-fourth session: a bound's producer
test left in plain builds gave Causal's kernel R2UR 53 -> 214; a binary of that shape timed causal
3.7-4.7% slower). Exit status 1 if any kernel differs, 2 if cuobjdump is missing or fails.
"""
import argparse
import difflib
import re
import subprocess
import sys

from sass import find_cuobjdump, kernel_instructions

COUNTED = {'HGMMA': r'\bHGMMA\b', 'DEPBAR': r'WARPGROUP\.DEPBAR', 'R2UR': r'\bR2UR\b', 'STL': r'\bSTL\b',
           'LDL': r'\bLDL\b'}


def kernels(binary, cuobjdump, pattern):
    """The matching kernels that hold wgmmas (kernel_instructions)."""
    return {k: v for k, v in kernel_instructions(binary, cuobjdump, pattern).items() if any('HGMMA' in i for i in v)}


def counts(instructions):
    text = '\n'.join(instructions)
    return ' '.join(f'{k} {len(re.findall(p, text))}' for k, p in COUNTED.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('base')
    ap.add_argument('new')
    ap.add_argument('--kernel', default='pair_attention_kernel')
    ap.add_argument('--show', type=int, default=0, help='print up to this many differing lines a kernel')
    args = ap.parse_args()
    cuobjdump = find_cuobjdump()
    if not cuobjdump:
        print('sass_diff: cuobjdump not found (set CUOBJDUMP)', file=sys.stderr)
        return 2
    try:
        base, new = kernels(args.base, cuobjdump, args.kernel), kernels(args.new, cuobjdump, args.kernel)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f'sass_diff: {e}', file=sys.stderr)
        return 2
    differs = False
    for name in sorted(set(base) | set(new)):
        b, n = base.get(name), new.get(name)
        short = name if len(name) < 100 else name[:60] + '...' + name[-37:]
        if b is None or n is None:
            print(f'{short}: only in {"new" if b is None else "base"}')
            differs = True
            continue
        diff = [l for l in difflib.unified_diff(b, n, lineterm='', n=0) if l[:1] in '+-' and l[:3] not in ('+++', '---')]
        differs |= bool(diff)
        print(f'{short}: {len(diff)} lines differ\n  base {counts(b)}\n  new  {counts(n)}')
        for line in diff[:args.show]:
            print('   ', line)
    return 1 if differs else 0


if __name__ == '__main__':
    sys.exit(main())
