#!/usr/bin/env python3
"""Where the pair kernel's item cycles go: summarise PairTimeline stamps per item class.

Build attention_bench with -DTRIMIX_CUDA_PAIR_TIMELINE (CUDA, sm_90a), run it with
TRIMIX_TIMELINE_DIR=DIR: after its timed calls it runs one more and writes
DIR/<dtype>_<mask>_<seq>.bin.

    python3 bench/pair_timeline_summary.py DIR/bf16_triangle_16384.bin [...]

Records: int64 [cta 160][item 320][role 3][word 24], the CTA's items in the order it ran them; the
words are listed at PairTimeline in include/trimix/engine_cuda_pair.hpp. clock64 counts SM cycles;
stamps compare within a CTA only, except the global timer's (ns), which also give each CTA's SM
clock (its span in cycles over its span in ns). Classes: shortN (an item of N <= 6 stages, not split: a
triangle's band items are short5), long (more stages), split (a slot of a split item).
"""
import array
import statistics
import sys

CTAS, ITEMS, WORDS = 160, 320, 24


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def summarise(path):
    a = array.array("q")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    assert len(a) == CTAS * ITEMS * 3 * WORDS, f"{path}: not a PairTimeline dump"

    def rec(cta, k, role):
        at = ((cta * ITEMS + k) * 3 + role) * WORDS
        return a[at:at + WORDS]

    rows, spans, clocks, starts, ends = [], [], [], [], []
    for cta in range(CTAS):
        used = [k for k in range(ITEMS) if rec(cta, k, 1)[0]]
        if not used:
            continue
        first, last = rec(cta, used[0], 1), rec(cta, used[-1], 1)
        spans.append((last[5] - first[0], len(used)))
        if first[14] and last[15] > first[14]:  # global timer stamps (ns): the CTA's clock
            clocks.append((last[5] - first[0]) / (last[15] - first[14]))
            starts.append(first[14])
            ends.append(last[15])
        for k in used:
            p = rec(cta, k, 0)
            for c in (1, 2):
                w = rec(cta, k, c)
                nxt = rec(cta, k + 1, c)[0] if k + 1 < ITEMS else 0
                steps = w[6]
                if steps < 1 or w[1] == 0:
                    continue
                cls = "split" if w[13] >= 0 else ("short%d" % steps if steps <= 6 else "long")
                rows.append(dict(
                    cls=cls, item=(nxt - w[0]) if nxt else None, head=w[1] - w[0], first_stage=w[2] - w[1],
                    loop=w[3] - w[2], loop_per_stage=(w[3] - w[2]) / max(steps - 1, 1), loop_stage_wait=w[7],
                    loop_turn_wait=w[8], loop_s_wait=w[9], loop_pv_wait=w[10], loop_mask=w[16], loop_issue=w[17],
                    loop_softmax=w[18], loop_rescale=w[19], loop_pack=w[20], last_pv_issue=w[11] - w[3],
                    take_q=w[12] - w[11], last_pv_wait=w[4] - w[12], o_stores_issued=w[5] - w[4],
                    to_next_item=(nxt - w[5]) if nxt else None, producer_q_wait=p[1] - p[0],
                    producer_empty_wait=p[4], first_issue_before_item=w[0] - p[2]))
    if not spans:
        print(f"== {path}: no pair-kernel stamps (did the pair kernel run?)")
        return
    full = sum(1 for s in spans if s[1] >= ITEMS)
    if full:
        print(f"   warning: {full} CTAs ran {ITEMS} or more items; later items were not stamped")
    print(f"== {path}: {len(spans)} CTAs, {min(s[1] for s in spans)}-{max(s[1] for s in spans)} items each, "
          f"span {min(s[0] for s in spans)}-{max(s[0] for s in spans)} cycles")
    if clocks:
        print(f"   SM clock (span cycles / span ns) min {min(clocks):.3f} median {statistics.median(clocks):.3f} "
              f"max {max(clocks):.3f} GHz; first item start to last o stores {(max(ends) - min(starts)) / 1e3:.1f} us, "
              f"starts spread {(max(starts) - min(starts)) / 1e3:.1f} us")
    for cls in sorted(set(r["cls"] for r in rows)):
        sel = [r for r in rows if r["cls"] == cls]
        print(f"-- {cls}: {len(sel)} consumer items (cycles: median, mean, p10, p90)")
        for key in sel[0]:
            if key == "cls":
                continue
            v = [r[key] for r in sel if r[key] is not None]
            if v:
                print(f"   {key:26s} {statistics.median(v):9.0f} {statistics.fmean(v):9.0f} "
                      f"{pct(v, .1):9.0f} {pct(v, .9):9.0f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        summarise(path)
