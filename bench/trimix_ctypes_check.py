#!/usr/bin/env python3
"""Checks libtrimix_ctypes.so (bench/trimix_ctypes.cpp) against an exact reference, with the standard
library only: so that compare_gpu.py --lib is known to call trimix right before it times it.

    python3 bench/trimix_ctypes_check.py build/libtrimix_ctypes.so

Random bf16-exact inputs (B 1, Hq 4, Hkv 2 (GQA), N 80, D 64), outputs poisoned with NaN, every
element of causal and Triangle(2, 16, 8) checked against a double-precision softmax: |o - ref| <=
1e-2 * max(1, |ref|) (bf16 output), NaN fails. Then two bad calls must fail with a message. Host
builds only (the tensors live in this process's memory; stream null = Kokkos' default instance).
"""
import ctypes
import math
import random
import struct
import sys


def bf16_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0] >> 16  # exact: inputs are multiples of 1/8


def from_bf16(bits):
    return struct.unpack("<f", struct.pack("<I", bits << 16))[0]


def main():
    lib = ctypes.CDLL(sys.argv[1])
    lib.trimix_ctypes_attention_bf16.argtypes = ([ctypes.c_char_p] + [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 8
                                                 + [ctypes.c_void_p])
    lib.trimix_ctypes_fence.argtypes = [ctypes.c_void_p]
    lib.trimix_ctypes_error.restype = ctypes.c_char_p
    if lib.trimix_ctypes_init() != 0:
        raise SystemExit(f"init: {lib.trimix_ctypes_error().decode()}")
    b, hq, hkv, n, d = 1, 4, 2, 80, 64
    sink, window, last = 2, 16, 8
    rng = random.Random(2025)

    def tensor(heads):
        values = [rng.randint(-16, 16) / 8 for _ in range(b * heads * n * d)]
        return values, (ctypes.c_uint16 * len(values))(*map(bf16_bits, values))

    (q, qb), (k, kb), (v, vb) = tensor(hq), tensor(hkv), tensor(hkv)
    ob = (ctypes.c_uint16 * (b * hq * n * d))()
    masks = {"causal": lambda p, j: j <= p,
             "triangle": lambda p, j: j <= p and (j < sink or p - j < window or p >= n - last)}

    def call(mask, heads=hq):
        return lib.trimix_ctypes_attention_bf16(mask.encode(), ctypes.addressof(qb), ctypes.addressof(kb),
                                                ctypes.addressof(vb), ctypes.addressof(ob), b, heads, hkv, n, d,
                                                sink, window, last, None)

    failures = 0
    for mask, visible in masks.items():
        ctypes.memset(ob, 0xFF, ctypes.sizeof(ob))  # 0xFFFF: a NaN in bf16
        if call(mask) != 0 or lib.trimix_ctypes_fence(None) != 0:
            raise SystemExit(f"{mask}: {lib.trimix_ctypes_error().decode()}")
        worst = 0.0
        for h in range(hq):
            g = h // (hq // hkv)
            for p in range(n):
                s = [sum(q[(h * n + p) * d + e] * k[(g * n + j) * d + e] for e in range(d)) / math.sqrt(d)
                     if visible(p, j) else -math.inf for j in range(n)]
                top = max(s)
                w = [math.exp(x - top) for x in s]
                total = sum(w)
                for e in range(d):
                    ref = sum(w[j] * v[(g * n + j) * d + e] for j in range(n)) / total
                    got = from_bf16(ob[(h * n + p) * d + e])
                    err = abs(got - ref) / max(1.0, abs(ref))
                    if not err <= 1e-2:  # NaN fails too
                        failures += 1
                    worst = max(worst, err) if err == err else math.inf
        print(f"{mask}: {b * hq * n * d} elements, worst error {worst:.2e}")
    for what, bad in (("unknown mask", lambda: call("window")),
                      ("q heads not a multiple of kv heads", lambda: call("causal", 3))):
        rc = bad()
        message = lib.trimix_ctypes_error().decode()
        print(f"{what}: rc {rc}, {message}")
        failures += rc != -1 or not message
    lib.trimix_ctypes_finalize()
    if failures:
        raise SystemExit(f"FAILED: {failures}")
    print("ok")


if __name__ == "__main__":
    main()
