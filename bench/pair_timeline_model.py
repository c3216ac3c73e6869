#!/usr/bin/env python3
"""A discrete-event model of the CUDA pair kernel's schedule (engine_cuda_pair.hpp), in cycles:
two consumers that take turns at one tensor pipe, for comparing orders of work before building
them. Not a measurement: its costs are rough fits (below), and it knows nothing of registers,
shared-memory latency or the producer (every stage is assumed landed).

Each consumer runs the same items as a list of operations: issue wgmma groups (the pipe runs them
first come, first served, each for its tensor cycles), wait for its own groups, or compute
(cycles of its own instruction stream); a step waits for its P V after the softmax, as exp/pvw2
orders it (at head ptxas hoists that wait above the softmax, which the model does not reproduce). A turn is FA3's ping-pong as the kernel does it with named
barriers: a consumer's k-th turn waits for the other's k-th pass, so the turns alternate strictly;
`--lag N` gives consumer 1 N empty turns first (it runs N steps behind on the same stages, which the
kernel could hold with K and V freed apart: 3 K and 3 V buffers of 32 KB), `--free fs,lpv` lets the
first stage's S or the last P V issue without a turn, `--slack N` lets a consumer run N turns ahead
of the other (turns counted in shared memory instead of named barriers).

Costs (--set NAME=CYCLES): S and PV, one consumer's m64n128k128 at the dense peak (64 x 128 x 128
x 2 FLOP / 4096 FLOP a cycle and SM); sig, a full stage's mask selects + softmax + pack after S
lands; rho, the rescale after P V lands; mask, the mask bits; sig1, the lone first stage's softmax;
E, the epilogue and the next item's set-up; takeq, take_q. The defaults put the causal step at
~63% of the pipe (as measured: ~615 of ~980 TFLOP/s) and a band item (a lone tile + 4 stages) at
~5.5 causal steps (measured 5.8, twenty-fifth session); bench/NOTES.md (twenty-eighth session)
says what it predicted.

  bench/pair_timeline_model.py [--lag N] [--free fs,lpv] [--slack N] [--set E=1300 ...]
"""
import argparse

COSTS = dict(S=512, PV=512, issue=40, bar=60, sig=2200, sig1=1500, rho=400, mask=300, free_q=30,
             fin=150, takeq=470, E=2600)


def item_ops(steps, lone_first, P):
    """One item's operations: ('issue', [cycles...], kind), ('wait', k) (all but the newest k of
    the consumer's groups done) or ('cpu', cycles)."""
    ops = [('issue', [P['S'] / 2 if lone_first else P['S']], 'fs'), ('cpu', P['free_q']), ('wait', 0),
           ('cpu', P['sig1'] if lone_first else P['sig'])]
    for _ in range(steps if lone_first else steps - 1):
        # S of this stage and P V of the last (a lone stage's P V takes all 8 k-steps, P 0 in half)
        ops += [('issue', [P['S'], P['PV']], 'step'), ('cpu', P['mask']), ('wait', 1), ('cpu', P['sig']),
                ('wait', 0), ('cpu', P['rho'])]
    ops += [('issue', [P['PV']], 'lpv'), ('cpu', P['fin'] + P['takeq']), ('wait', 0), ('cpu', P['E'])]
    return ops


def simulate(items, P, lag=0, free=(), slack=0):
    """Cycles to run `items` ((full stages, lone first tile) each) on one SM, and the pipe's busy share.
    `slack`: a consumer's k-th turn waits for the other's (k - slack)-th pass (0: the kernel's turns)."""
    work = sum((item_ops(*it, P) for it in items), [])
    progs = [work + [('empty',)] * lag, [('empty',)] * lag + work]  # consumer 1 starts `lag` turns behind
    pc, t, groups = [0, 0], [0.0, 0.0], [[], []]
    passes = [[], [0.0]]  # consumer 1 passes the first turn
    waited = [0, 0]
    pipe_free = busy = 0.0

    def takes_turn(op):
        return op[0] == 'empty' or (op[0] == 'issue' and op[2] not in free)

    def blocked(c):
        op = progs[c][pc[c]]
        return takes_turn(op) and len(passes[1 - c]) <= waited[c] - slack

    while any(pc[c] < len(progs[c]) for c in range(2)):
        ready = [c for c in range(2) if pc[c] < len(progs[c]) and not blocked(c)]
        if not ready:
            raise RuntimeError('deadlock: both consumers wait for a turn')
        c = min(ready, key=lambda i: t[i])  # the pipe serves issues in time order
        op = progs[c][pc[c]]
        if takes_turn(op):
            if waited[c] >= slack:
                t[c] = max(t[c], passes[1 - c][waited[c] - slack])
            t[c] += P['bar']
            waited[c] += 1
        if op[0] == 'issue':
            for cycles in op[1]:
                pipe_free = max(pipe_free, t[c] + P['issue']) + cycles
                busy += cycles
                groups[c].append(pipe_free)
            t[c] += P['issue'] * len(op[1])
        elif op[0] == 'wait' and len(groups[c]) > op[1]:
            t[c] = max(t[c], groups[c][-1 - op[1]])
        elif op[0] == 'cpu':
            t[c] += op[1]
        if takes_turn(op):
            passes[c].append(t[c])
        pc[c] += 1
    return max(t), busy / max(t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--lag', type=int, default=0)
    ap.add_argument('--slack', type=int, default=0, help='turns a consumer may run ahead of the other')
    ap.add_argument('--free', default='', help='comma-separated: fs, lpv')
    ap.add_argument('--set', nargs='*', default=[], metavar='NAME=CYCLES')
    args = ap.parse_args()
    P = dict(COSTS)
    for kv in args.set:
        name, value = kv.split('=')
        P[name] = float(value)
    free = tuple(f for f in args.free.split(',') if f)
    step, pipe = simulate([(64, False)] * 4, P)
    step /= 256
    print(f"causal-like (4 items of 64 stages): {step:.0f} cycles a stage, pipe {pipe:.0%}")
    base, pipe = simulate([(4, True)] * 32, P)
    print(f"band items (lone tile + 4 stages), turns as at head: {base / 32:.0f} cycles an item "
          f"({base / 32 / step:.2f} causal stages), pipe {pipe:.0%}")
    if args.lag or free or args.slack:
        T, pipe = simulate([(4, True)] * 32, P, args.lag, free, args.slack)
        print(f"  lag {args.lag}, free {free or '-'}, slack {args.slack}: {T / 32:.0f} cycles an item ({T / base - 1:+.1%}), pipe {pipe:.0%}")


if __name__ == '__main__':
    main()
