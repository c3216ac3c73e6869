#!/usr/bin/env python3
"""Names the kernels of built binaries whose wgmmas ptxas serialized, from their SASS.

  scripts/gpu/wgmma_serialized.py BINARY [BINARY ...]   (cuobjdump from $CUOBJDUMP or PATH)

ptxas reports a serialization (C7511 / C7515) only in a verbose build log; the binary shows it as
a `WARPGROUP.DEPBAR` after every wgmma group: 44 in a serialized pair kernel against 6 or fewer in
a pipelined one (the ws kernel 4, attention_kernel 2). A serialized kernel is 10-25% slower, so a
timing of such a build measures the serialization, not the change (twenty-ninth session: two bound
experiments, bench/NOTES.md). Prints one line per binary and one per serialized kernel; exit status
3 if any kernel is serialized, 2 if cuobjdump is missing or fails.
"""
import subprocess
import sys

from sass import find_cuobjdump, kernel_instructions

# Pipelined kernels wait a handful of times; a serialized one waits once per wgmma group (>= 16).
SERIALIZED_WAITS = 16


def depbar_counts(binary, cuobjdump):
    """{mangled kernel name: WARPGROUP.DEPBAR count} of the binary's sm_90a code."""
    return {k: sum('WARPGROUP.DEPBAR' in i for i in code) for k, code in kernel_instructions(binary, cuobjdump).items()}


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ('-h', '--help'):
        print(__doc__.strip())
        return 0 if len(sys.argv) >= 2 else 2
    cuobjdump = find_cuobjdump()
    if not cuobjdump:
        print('wgmma_serialized.py: no cuobjdump (set CUOBJDUMP or PATH)', file=sys.stderr)
        return 2
    status = 0
    for binary in sys.argv[1:]:
        try:
            counts = depbar_counts(binary, cuobjdump)
        except (OSError, subprocess.CalledProcessError) as error:
            print(f'{binary}: cuobjdump failed: {error}', file=sys.stderr)
            return 2
        waiting = {k: c for k, c in counts.items() if c > 0}
        serialized = {k: c for k, c in waiting.items() if c >= SERIALIZED_WAITS}
        print(f'{binary}: {len(waiting)} wgmma kernels, {len(serialized)} serialized')
        for kernel, count in sorted(serialized.items()):
            print(f'  SERIALIZED ({count} WARPGROUP.DEPBAR): {kernel}')
        if serialized:
            status = 3
    return status


if __name__ == '__main__':
    sys.exit(main())
