#!/usr/bin/env python3
"""trimix against the PyTorch peers on one GPU, on identical random inputs, in one call.

For each sequence length N this script draws bf16 Q (B, Hq, N, D) and K, V (B, Hkv, N, D) with
torch, times the peers (SDPA with the flash and the cuDNN backends, dense causal; FlexAttention
with a causal and a Triangle(8, 512, 128) BlockMask built by create_block_mask(..., _compile=True)),
hands the same tensors to trimix's bench/attention_bench (CUDA build) through raw files, reads
trimix's outputs back and reports the relative L2 difference to the peer of the same mask.
attention_bench times each trimix call by the host's clock, from the launch to a fence ("trimix"
rows). With --lib (libtrimix_ctypes.so, bench/trimix_ctypes.cpp) trimix also runs in this process
on the same tensors and is timed by the peers' own triton.testing.do_bench ("trimix_inproc" rows):
CUDA events around each call, the L2 cleared before it, as every peer here is timed.

    python3 bench/compare_gpu.py --bench build/bench/attention_bench --out results/ \
        [--seq 16384,32768,65536,131072] [--q-heads 32 --kv-heads 8 --head-dim 128] \
        [--lib build/libtrimix_ctypes.so]

Writes <out>/gpu_compare.csv (one row per implementation, mask and N) and prints a table.
TFLOP/s count 4 * D FLOPs per visible (query, key) pair per query head.
"""
import argparse
import atexit
import ctypes
import csv
import os
import subprocess
import sys
import tempfile
import warnings

import torch
import torch.nn.functional as F
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

# The fair Flex peer builds its masks with create_block_mask(..., _compile=True); PyTorch 2.11 warns
# on every such call that the flag will go (use torch.compile(create_block_mask) then), which
# buried the table in the log.
warnings.filterwarnings("ignore", message="_compile flag on create_block_mask")


def visible_pairs(mask, n, sink, window, last_rows):
    """Exact count of visible (query, key) pairs of one head (queries = keys = n)."""
    p = torch.arange(n, dtype=torch.int64)
    if mask == "causal":
        return int((p + 1).sum())
    win = torch.minimum(p + 1, torch.tensor(window))
    extra_sink = torch.clamp(torch.minimum(torch.tensor(sink), p - window + 1), min=0)
    rows = torch.where(p >= n - last_rows, p + 1, win + extra_sink)
    return int(rows.sum())


def time_ms(fn, args):
    return triton.testing.do_bench(fn, warmup=args.warmup_ms, rep=args.rep_ms, return_mode="median")


def load_trimix(path):
    """libtrimix_ctypes.so with its argument types set, Kokkos initialised."""
    lib = ctypes.CDLL(path)
    lib.trimix_ctypes_init.argtypes = []
    lib.trimix_ctypes_attention_bf16.argtypes = ([ctypes.c_char_p] + [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 8
                                                 + [ctypes.c_void_p])
    lib.trimix_ctypes_fence.argtypes = [ctypes.c_void_p]
    lib.trimix_ctypes_error.restype = ctypes.c_char_p
    lib.trimix_ctypes_finalize.argtypes = []
    for f in (lib.trimix_ctypes_init, lib.trimix_ctypes_attention_bf16, lib.trimix_ctypes_fence,
              lib.trimix_ctypes_finalize):
        f.restype = ctypes.c_int
    if lib.trimix_ctypes_init() != 0:
        raise SystemExit(f"trimix_ctypes_init: {lib.trimix_ctypes_error().decode()}")
    atexit.register(lib.trimix_ctypes_finalize)  # plans and Kokkos go before the CUDA runtime, on any exit
    return lib


def rel_l2(a, b):
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="trimix attention_bench binary (CUDA build)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seq", default="16384,32768,65536,131072")
    ap.add_argument("--q-heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--sink", type=int, default=8)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--last-rows", type=int, default=128)
    ap.add_argument("--warmup-ms", type=int, default=100)
    ap.add_argument("--rep-ms", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=10,
                    help="timed trimix runs (median), at least; trimix also warms up and times for "
                         "--warmup-ms / --rep-ms, as do_bench does for the peers (sustained clocks)")
    ap.add_argument("--commit", default=os.environ.get("TRIMIX_COMMIT", "unknown"))
    ap.add_argument("--skip-peers", default="", help="comma list of peers to skip (flash,cudnn,flex)")
    ap.add_argument("--trimix-rounds", type=int, default=1,
                    help="trimix's timings per N, in-process and attention_bench in turns, each first in "
                         "every other round (one row each)")
    ap.add_argument("--lib", default="", help="libtrimix_ctypes.so: trimix also in this process, timed by "
                                              "do_bench on the same tensors ('trimix_inproc' rows)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    compare_csv = os.path.join(args.out, "gpu_compare.csv")
    if os.path.exists(compare_csv):  # rows are appended as they come: start this run's file empty
        os.remove(compare_csv)
    device = torch.cuda.get_device_name()
    skip = set(filter(None, args.skip_peers.split(",")))
    hq, hkv, d = args.q_heads, args.kv_heads, args.head_dim
    flex = torch.compile(flex_attention, dynamic=False)
    rows = []
    lib = load_trimix(args.lib) if args.lib else None
    side = torch.cuda.Stream() if lib is not None else None  # trimix's instance wraps this stream (not the legacy one)
    io = tempfile.mkdtemp(prefix="trimix_io_", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)

    for n in [int(x) for x in args.seq.split(",")]:
        gen = torch.Generator(device="cuda").manual_seed(n)
        q = torch.randn(1, hq, n, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        k = torch.randn(1, hkv, n, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        v = torch.randn(1, hkv, n, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        pairs = {m: visible_pairs(m, n, args.sink, args.window, args.last_rows) for m in ("causal", "triangle")}
        flops = {m: 4.0 * d * hq * pairs[m] for m in pairs}
        reference = {}

        def record(impl, mask, ms, err=float("nan")):
            row = dict(device=device, commit=args.commit, impl=impl, mask=mask, seq=n, q_heads=hq,
                       kv_heads=hkv, head_dim=d, time_ms=round(ms, 4),
                       tflops_visible=round(flops[mask] / ms / 1e9, 1), rel_l2_vs_peer=err)
            rows.append(row)
            new = not os.path.exists(compare_csv)
            with open(compare_csv, "a", newline="") as f:  # row by row: a cut run keeps its rows
                writer = csv.DictWriter(f, fieldnames=list(row.keys()))
                if new:
                    writer.writeheader()
                writer.writerow(row)
            print(f"N={n:>6} {impl:<12} {mask:<9} {ms:9.3f} ms {flops[mask] / ms / 1e9:7.1f} TFLOP/s"
                  + ("" if err != err else f"  rel L2 {err:.2e}"), flush=True)

        for name, backend in (("sdpa_flash", SDPBackend.FLASH_ATTENTION), ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION)):
            if name.split("_")[1] in skip:
                continue
            try:
                with sdpa_kernel(backend):
                    fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                    out = fn()
                    ms = time_ms(fn, args)
                reference.setdefault("causal", out)
                record(name, "causal", ms)
            except RuntimeError as e:
                print(f"N={n}: {name} unavailable: {e}", flush=True)

        if "flex" not in skip:
            s, w, r = args.sink, args.window, args.last_rows

            def causal_mod(b, h, qi, ki):
                return ki <= qi

            def triangle_mod(b, h, qi, ki):
                return (ki <= qi) & ((ki < s) | (qi - ki < w) | (qi >= n - r))

            for mask, mod in (("causal", causal_mod), ("triangle", triangle_mod)):
                try:
                    bm = create_block_mask(mod, 1, 1, n, n, device="cuda", _compile=True)
                    fn = lambda: flex(q, k, v, block_mask=bm, enable_gqa=True)
                    out = fn()
                    ms = time_ms(fn, args)
                    record("flex", mask, ms, rel_l2(out, reference[mask]) if mask in reference else float("nan"))
                    reference.setdefault(mask, out)
                    del bm
                except Exception as e:  # noqa: BLE001 - report and go on (out of memory, compile)
                    print(f"N={n}: flex {mask} failed: {type(e).__name__}: {e}"[:300], flush=True)
                torch.cuda.empty_cache()

        def trimix_inproc():  # in this process, on q, k, v themselves, timed as the peers
            s, w, r = args.sink, args.window, args.last_rows
            o = torch.empty_like(q)
            torch.cuda.synchronize()
            with torch.cuda.stream(side):
                for mask in ("causal", "triangle"):
                    def fn(mask=mask):
                        if lib.trimix_ctypes_attention_bf16(mask.encode(), q.data_ptr(), k.data_ptr(), v.data_ptr(),
                                                            o.data_ptr(), 1, hq, hkv, n, d, s, w, r,
                                                            side.cuda_stream) != 0:
                            raise RuntimeError(f"trimix {mask}: {lib.trimix_ctypes_error().decode()}")
                    o.fill_(float("nan"))  # poisoned: a row the call leaves unwritten shows
                    fn()  # plans (once per mask and shape) and runs
                    torch.cuda.synchronize()
                    if not bool(torch.isfinite(o).all()):
                        raise SystemExit(f"N={n}: trimix_inproc {mask} left non-finite outputs")
                    err = rel_l2(o, reference[mask]) if mask in reference else float("nan")
                    record("trimix_inproc", mask, time_ms(fn, args), err)
            torch.cuda.synchronize()

        # attention_bench on the same inputs, through raw bf16 files.
        for name, t in (("q", q), ("k", k), ("v", v)):
            t.contiguous().view(torch.int16).cpu().numpy().tofile(os.path.join(io, f"{name}.bin"))

        def trimix_bench():
            csv_path = os.path.join(args.out, "trimix_bench.csv")
            cmd = [args.bench, "--seq", str(n), "--masks", "causal,triangle", "--dtypes", "bf16",
                   "--q-heads", str(hq), "--kv-heads", str(hkv), "--head-dim", str(d),
                   "--sink", str(args.sink), "--window", str(args.window), "--last-rows", str(args.last_rows),
                   "--repeat", str(args.repeat), "--warmup-ms", str(args.warmup_ms), "--rep-ms", str(args.rep_ms),
                   "--io-dir", io, "--csv", csv_path]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"attention_bench failed at N={n}")
            with open(csv_path) as f:
                bench_rows = [row for row in csv.DictReader(f) if int(row["seq"]) == n]
            for mask in ("causal", "triangle"):
                row = [r_ for r_ in bench_rows if r_["mask"] == mask][-1]
                raw = torch.from_file(os.path.join(io, f"o_{mask}.bin"), size=q.numel(), dtype=torch.int16)
                out = raw.view(torch.bfloat16).view(q.shape).cuda()
                err = rel_l2(out, reference[mask]) if mask in reference else float("nan")
                record("trimix", mask, float(row["time_ms"]), err)

        for turn in range(args.trimix_rounds):  # in turns, each way first in every other round
            ways = [trimix_inproc, trimix_bench] if lib is not None else [trimix_bench]
            for way in ways if turn % 2 == 0 else ways[::-1]:
                way()
        del q, k, v, reference
        torch.cuda.empty_cache()

    print(f"wrote {compare_csv}")


if __name__ == "__main__":
    main()
