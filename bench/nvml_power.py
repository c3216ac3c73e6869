#!/usr/bin/env python3
"""GPU power while a command runs, from NVML's energy counter (not its instantaneous samples).

    bench/nvml_power.py [--gpu 0] [--every-ms 20] [--window-s 2] [--csv PATH] -- COMMAND [ARGS...]

Runs COMMAND and samples, every --every-ms, NVML's total energy since the driver loaded (mJ), the
reported power, the SM clock and the clock-event reasons (why the clock is below its maximum:
software power cap, hardware slowdown, thermal, ...). Prints one summary line: the mean power over
the command's busiest --window-s (energy difference over time, which no sampling gap can miss), the
mean of the reported power there, the reported SM clock, and every clock-event reason seen, by
name. The GPU's power limit is printed beside it, so that "at the cap" can be read off directly.
The energy counter advances in steps (every ~100 ms on an H100 with driver 580), so a window shorter
than about a second overstates the power (0.5 s read 830-920 W against a 700 W limit), and the
reported power is a ~1 s average: give COMMAND a sustained load of several seconds
(attention_bench --rep-ms 3000) and keep --window-s at 2 or more.
--csv keeps every sample. Exit status: COMMAND's.

Talks to libnvidia-ml.so.1 through ctypes (the driver ships it), so it needs nothing installed.
Why: under sustained load the pair kernel runs at the H100's power limit (sw_power_cap among the
reasons whenever the tensor cores have real operands; bench/results/gpu_h100_operand_vs_bytes_s32.txt),
which nvidia-smi's occasional samples of clock and power did not show.
"""
import argparse
import ctypes
import subprocess
import sys
import threading
import time

REASONS = {  # nvmlClocksEventReason* bits
    0x1: "gpu_idle", 0x2: "applications_clocks", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
    0x10: "sync_boost", 0x20: "sw_thermal", 0x40: "hw_thermal", 0x80: "hw_power_brake",
    0x100: "display_clocks",
}


class Nvml:
    def __init__(self, index):
        self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        self.check(self.lib.nvmlInit_v2(), "nvmlInit_v2")
        self.dev = ctypes.c_void_p()
        self.check(self.lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(self.dev)),
                   "nvmlDeviceGetHandleByIndex_v2")
        reasons = getattr(self.lib, "nvmlDeviceGetCurrentClocksEventReasons", None)
        self.reasons_fn = reasons or self.lib.nvmlDeviceGetCurrentClocksThrottleReasons

    @staticmethod
    def check(rc, what):
        if rc != 0:
            raise RuntimeError(f"nvml_power: {what} failed with NVML status {rc}")

    def uint(self, fn, *args):
        v = ctypes.c_uint()
        return v.value if fn(self.dev, *args, ctypes.byref(v)) == 0 else None

    def ull(self, fn):
        v = ctypes.c_ulonglong()
        return v.value if fn(self.dev, ctypes.byref(v)) == 0 else None

    def name(self):
        buf = ctypes.create_string_buffer(96)
        self.lib.nvmlDeviceGetName(self.dev, buf, ctypes.c_uint(96))
        return buf.value.decode()

    def sample(self):
        return (time.monotonic(), self.ull(self.lib.nvmlDeviceGetTotalEnergyConsumption),
                self.uint(self.lib.nvmlDeviceGetPowerUsage), self.uint(self.lib.nvmlDeviceGetClockInfo, ctypes.c_int(1)),
                self.ull(self.reasons_fn))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpu", type=int, default=0)
    ap.add_argument("--every-ms", type=float, default=20)
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--csv")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("no COMMAND after --")
    try:
        nvml = Nvml(a.gpu)
    except (OSError, RuntimeError, AttributeError) as e:  # no driver library: still run the command
        print(f"nvml_power: no NVML ({e}); running the command unsampled", flush=True)
        return subprocess.call(cmd)
    limit = nvml.uint(nvml.lib.nvmlDeviceGetEnforcedPowerLimit)
    samples, done = [], threading.Event()

    def sampler():
        while not done.is_set():
            samples.append(nvml.sample())
            time.sleep(a.every_ms / 1e3)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    rc = subprocess.call(cmd)
    done.set()
    thread.join()
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("t_s,energy_mj,power_mw,sm_mhz,reasons\n")
            for s in samples:
                f.write(",".join("" if x is None else str(x) for x in s) + "\n")
    energy = [s for s in samples if s[1] is not None]
    best = None  # the busiest window: the highest mean power by the energy counter
    j = 0
    for i in range(len(energy)):
        while j < len(energy) and energy[j][0] - energy[i][0] < a.window_s:
            j += 1
        if j == len(energy):
            break
        watts = (energy[j][1] - energy[i][1]) / 1e3 / (energy[j][0] - energy[i][0])
        if best is None or watts > best[0]:
            best = (watts, i, j)
    seen = 0
    for s in samples:
        seen |= s[4] or 0
    names = [n for bit, n in REASONS.items() if seen & bit] or ["none"]
    if best:
        window = samples[best[1]:best[2] + 1]
        reported = [s[2] for s in window if s[2] is not None]
        clocks = [s[3] for s in window if s[3] is not None]
        print(f"nvml_power: {nvml.name()}: busiest {a.window_s:g} s {best[0]:.0f} W by the energy counter, reported "
              f"{(sum(reported) / len(reported) / 1e3) if reported else float('nan'):.0f} W, SM "
              f"{min(clocks) if clocks else 0}-{max(clocks) if clocks else 0} MHz; power limit "
              f"{(limit or 0) / 1e3:.0f} W; clock-event reasons seen: {' '.join(names)}", flush=True)
    else:
        print(f"nvml_power: {nvml.name()}: less than --window-s sampled (or no energy counter); "
              f"clock-event reasons seen: {' '.join(names)}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
