#!/usr/bin/env python3
"""trimix (OpenMP build) against PyTorch's CPU scaled_dot_product_attention, same inputs, same run.

For each element type and sequence length N this script draws Q (B, Hq, N, D) and K, V
(B, Hkv, N, D) with torch, times torch's CPU SDPA (dense causal, GQA through enable_gqa, the
median of --repeat runs after one warm-up, torch.set_num_threads(--threads)), hands the same
tensors to trimix's bench/attention_bench (OpenMP build, --threads) through raw files, and reports
both times and the relative L2 difference of the outputs.

    python3 bench/compare_cpu.py --bench build/cpu-release/attention_bench --out results/ \
        [--seq 2048,4096,8192] [--dtypes f32,bf16] [--threads 16]

--rounds R repeats the whole sweep R times (a `round` column; the hosts' timings move by 10-20%
between runs, so a single round decides little). --variant LABEL:VAR=VALUE[,VAR=VALUE] (repeatable)
also times trimix with those environment variables, recorded as impl `trimix[LABEL]`, e.g.
--variant unfused:TRIMIX_HOST_FUSED=0 for an A/B of one binary in the same run as the peer.

Writes <out>/cpu_compare.csv (one row per round, implementation, dtype and N) and prints a table.
TFLOP/s count 4 * D FLOPs per visible (query, key) pair per query head.
"""
import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

DTYPES = {"f32": (torch.float32, torch.int32), "bf16": (torch.bfloat16, torch.int16)}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def all_cpus():
    """Child processes inherit the CPU affinity of this one, and torch's OpenMP runtime pins the
    Python thread to one core once it has run: trimix's 16 threads then shared that core (0.06
    instead of 0.8 TFLOP/s, 2026-11-29). Give the benchmark every CPU back."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, range(os.cpu_count()))


def rel_l2(a, b):
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="trimix attention_bench binary (OpenMP build)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seq", default="2048,4096,8192")
    ap.add_argument("--dtypes", default="f32,bf16")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--q-heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1, help="the whole sweep this many times")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL:VAR=VALUE[,VAR=VALUE]",
                    help="also time trimix with these environment variables, as impl trimix[LABEL]")
    ap.add_argument("--commit", default=os.environ.get("TRIMIX_COMMIT", "unknown"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(args.threads)
    device = f"{cpu_name()} ({args.threads} threads)"
    hq, hkv, d = args.q_heads, args.kv_heads, args.head_dim
    io = tempfile.mkdtemp(prefix="trimix_cpu_io_", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    rows = []
    env = dict(os.environ, OMP_PROC_BIND="spread", OMP_PLACES="threads", OMP_NUM_THREADS=str(args.threads))
    variants = [("trimix", {})]
    for spec in args.variant:
        label, _, assignments = spec.partition(":")
        if not label or not assignments or "=" not in assignments:
            raise SystemExit(f"--variant {spec!r}: expected LABEL:VAR=VALUE[,VAR=VALUE]")
        variants.append((f"trimix[{label}]", dict(a.split("=", 1) for a in assignments.split(","))))

    sweep = [(r, name, int(n)) for r in range(1, args.rounds + 1) for name in args.dtypes.split(",")
             for n in args.seq.split(",")]
    for round_index, name, n in sweep:
        dtype, raw = DTYPES[name]
        gen = torch.Generator().manual_seed(n)
        q = torch.randn(1, hq, n, d, generator=gen).to(dtype)
        k = torch.randn(1, hkv, n, d, generator=gen).to(dtype)
        v = torch.randn(1, hkv, n, d, generator=gen).to(dtype)
        flops = 4.0 * d * hq * n * (n + 1) / 2

        def record(impl, ms, err=float("nan")):
            rows.append(dict(round=round_index, device=device, commit=args.commit, impl=impl, dtype=name,
                             mask="causal", seq=n, q_heads=hq, kv_heads=hkv, head_dim=d, threads=args.threads,
                             time_ms=round(ms, 3), tflops_visible=round(flops / ms / 1e9, 4),
                             rel_l2_vs_torch=err))
            print(f"r{round_index} {name:<4} N={n:>5} {impl:<16} {ms:10.2f} ms {flops / ms / 1e9:7.3f} TFLOP/s"
                  + ("" if err != err else f"  rel L2 vs torch {err:.2e}"), flush=True)

        fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        out = fn()  # warm-up
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        record("torch_sdpa", 1e3 * statistics.median(times))

        for label, t in (("q", q), ("k", k), ("v", v)):
            t.contiguous().view(raw).numpy().tofile(os.path.join(io, f"{label}.bin"))
        csv_path = os.path.join(args.out, "trimix_cpu_bench.csv")
        cmd = [args.bench, "--seq", str(n), "--masks", "causal", "--dtypes", name, "--threads",
               str(args.threads), "--q-heads", str(hq), "--kv-heads", str(hkv), "--head-dim", str(d),
               "--repeat", str(args.repeat), "--budget-s", "60", "--io-dir", io, "--csv", csv_path]
        for impl, extra_env in variants:
            out_path = os.path.join(io, "o_causal.bin")
            if os.path.exists(out_path):
                os.remove(out_path)  # a variant that fails to write its output cannot pass with the last one's
            proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(env, **extra_env),
                                  preexec_fn=all_cpus)
            if proc.returncode != 0:
                print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"attention_bench failed at {name} N={n} ({impl})")
            with open(csv_path) as f:
                row = [r for r in csv.DictReader(f) if int(r["seq"]) == n and r["dtype"] == name][-1]
            got = torch.from_file(out_path, size=q.numel(), dtype=raw)
            record(impl, float(row["time_ms"]), rel_l2(got.view(dtype).view(q.shape), out))

    path = os.path.join(args.out, "cpu_compare.csv")
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
