#!/usr/bin/python3
"""PyTorch's side of bench/conv_timing.c: ms per call of conv2d
forward, backward-data (dx) and backward-weights (dw + db) on the same
shapes, through aten::convolution / aten::convolution_backward (what
autograd calls; oneDNN for float32 on CPU at these sizes).

    /usr/bin/python3 bench/conv_timing_torch.py [threads=2] [batch=128] [filter]
"""
import os
import sys
import time

import torch

SHAPES = [  # name, c_in, hw, c_out, k, stride, pad, groups
    ("cnn1 1->32 3x3 28", 1, 28, 32, 3, 1, 1, 1),
    ("cnn2 32->32 3x3 28", 32, 28, 32, 3, 1, 1, 1),
    ("cnn3 32->64 3x3 14", 32, 14, 64, 3, 1, 1, 1),
    ("cnn4 64->64 3x3 14", 64, 14, 64, 3, 1, 1, 1),
    ("rn 3->16 3x3 32", 3, 32, 16, 3, 1, 1, 1),
    ("rn 16->16 3x3 32", 16, 32, 16, 3, 1, 1, 1),
    ("rn 32->32 3x3 16", 32, 16, 32, 3, 1, 1, 1),
    ("rn 64->64 3x3 8", 64, 8, 64, 3, 1, 1, 1),
    ("rn 16->32 3x3 s2 32", 16, 32, 32, 3, 2, 1, 1),
    ("rn 32->64 3x3 s2 16", 32, 16, 64, 3, 2, 1, 1),
    ("rn 16->32 1x1 s2 32", 16, 32, 32, 1, 2, 0, 1),
    ("rn 32->64 1x1 s2 16", 32, 16, 64, 1, 2, 0, 1),
    ("mb 16->96 1x1 16", 16, 16, 96, 1, 1, 0, 1),
    ("mb dw96 3x3 16", 96, 16, 96, 3, 1, 1, 96),
    ("mb dw96 3x3 s2 16", 96, 16, 96, 3, 2, 1, 96),
    ("mb 96->24 1x1 16", 96, 16, 24, 1, 1, 0, 1),
    ("mb 96->24 1x1 8", 96, 8, 24, 1, 1, 0, 1),
]


SECONDS = float(os.environ.get("OCTAV_BENCH_SECONDS", "0.5"))
MEDIAN = os.environ.get("OCTAV_BENCH_MEDIAN", "0") not in ("", "0")
# OCTAV_BENCH_CPUTIME=1: process CPU time instead of wall time, as the C side.
CLOCK = (time.process_time if os.environ.get("OCTAV_BENCH_CPUTIME", "0") not in ("", "0")
         else time.perf_counter)


def time_ms(fn):
    """Minimum (or, with OCTAV_BENCH_MEDIAN=1, median) ms over at least 5
    calls and about SECONDS, after 2 warm-up calls, as bench/conv_timing.c."""
    for _ in range(2):
        fn()
    t = []
    start = CLOCK()
    while len(t) < 200 and (len(t) < 5 or CLOCK() - start < SECONDS):
        t0 = CLOCK()
        fn()
        t.append((CLOCK() - t0) * 1e3)
    t.sort()
    return t[len(t) // 2] if MEDIAN else t[0]


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    filt = sys.argv[3] if len(sys.argv) > 3 else None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {threads}, batch {batch}; ms per call "
          f"({'median' if MEDIAN else 'minimum'})")
    print(f"{'shape':22s} | forward | bwd-data | bwd-w | fwd+bwd (autograd)")
    conv_bwd = torch.ops.aten.convolution_backward
    for name, ci, hw, co, k, s, p, g in SHAPES:
        if filt and filt not in name:
            continue
        x = torch.randn(batch, ci, hw, hw)
        w = torch.randn(co, ci // g, k, k)
        b = torch.randn(co)
        y = torch.nn.functional.conv2d(x, w, b, s, p, 1, g)
        dy = torch.randn_like(y)
        args = ([co], [s, s], [p, p], [1, 1], False, [0, 0], g)
        with torch.no_grad():
            f = time_ms(lambda: torch.nn.functional.conv2d(x, w, b, s, p, 1, g))
            bd = time_ms(lambda: conv_bwd(dy, x, w, *args, [True, False, False]))
            bw = time_ms(lambda: conv_bwd(dy, x, w, *args, [False, True, True]))
        xg = x.clone().requires_grad_()
        wg = w.clone().requires_grad_()
        bg = b.clone().requires_grad_()

        def step():  # a training step's share: forward, backward to x, w, b
            xg.grad = wg.grad = bg.grad = None
            out = torch.nn.functional.conv2d(xg, wg, bg, s, p, 1, g)
            out.backward(dy)
        fb = time_ms(step)
        print(f"{name:22s} | {f:7.2f} | {bd:8.2f} | {bw:5.2f} | {fb:7.2f}", flush=True)


if __name__ == "__main__":
    main()
