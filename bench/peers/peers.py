#!/usr/bin/python3
"""Peer timings for `octav bench`: the paper-style OCTAV recursion written the
obvious way in NumPy and in PyTorch (10 iterations from the mean of the
non-zero |x|, 4-bit full grid), the paper's 100-point MSE sweep in NumPy, and
PyTorch's fake quantization (torch.fake_quantize_per_tensor_affine /
per_channel_affine, forward and autograd backward) on the same sizes as
octav's cases. Laplace(1) data like octav's (the values differ, the
distribution does not). Prints JSON cases like `octav bench --json`.
Usage: peers.py [--quick] [--threads N]"""
import json, sys, time
import numpy as np
import torch

BITS = 4
C = 4.0 ** -BITS / 3.0
QMIN, QMAX, L = -(2 ** (BITS - 1)), 2 ** (BITS - 1) - 1, 2 ** (BITS - 1)


def octav_numpy(x, iters=10):
    a = np.abs(x)
    nz = a[a > 0]
    s = nz.mean(dtype=np.float64)
    for _ in range(iters):
        above = a > s
        n1 = np.count_nonzero(above)
        s = a[above].sum(dtype=np.float64) / (C * (nz.size - n1) + n1)
    return s


def octav_torch(x, iters=10):
    a = x.abs()
    nnz = int((a > 0).sum())
    s = a.sum(dtype=torch.float64) / nnz
    for _ in range(iters):
        above = a > s
        n1 = int(above.sum())
        s = (a * above).sum(dtype=torch.float64) / (C * (nnz - n1) + n1)
    return float(s)


def sweep_numpy(x, points=100):
    mx = np.abs(x).max()
    best, bs = np.inf, mx
    for k in range(1, points + 1):
        s = np.float32(k / points * mx)
        d = s / np.float32(L)
        q = np.clip(np.rint(x / d), QMIN, QMAX) * d
        e = float(np.square(q - x, dtype=np.float64).sum())
        if e < best:
            best, bs = e, s
    return bs


def timeit(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2], ts[0], ts[-1]


def main():
    quick = "--quick" in sys.argv
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0x1234)
    n = 1 << 20 if quick else 1 << 24
    x = rng.laplace(size=n).astype(np.float32)
    xt = torch.from_numpy(x)
    cases = []
    for name, fn, m in (("peer/numpy-octav-10it", lambda: octav_numpy(x), n),
                        ("peer/torch-octav-10it", lambda: octav_torch(xt), n),
                        ("peer/numpy-mse-sweep-100", lambda: sweep_numpy(x[: 1 << 20]), 1 << 20)):
        med, lo, hi = timeit(fn, 3)
        cases.append({"case": name, "n": m, "groups": 1, "threads": threads, "ms": med, "ms_min": lo,
                      "ms_max": hi})
    # fake quantization: 4-bit full grid, scale from the OCTAV recursion
    nf = 1 << 20 if quick else 1 << 24
    xf = torch.from_numpy(x[:nf].copy())
    s = float(octav_torch(xf)) / L
    sc = torch.full((nf // 4096,), s)
    zp = torch.zeros(nf // 4096, dtype=torch.int32)
    xc = xf.view(nf // 4096, 4096)
    dy = torch.randn(nf) * 0.01

    def fwd_t():
        torch.fake_quantize_per_tensor_affine(xf, s, 0, QMIN, QMAX)

    def fwd_c():
        torch.fake_quantize_per_channel_affine(xc, sc, zp, 0, QMIN, QMAX)

    def bwd(per_channel):
        def run():
            xr = (xc if per_channel else xf).detach().requires_grad_(True)
            y = (torch.fake_quantize_per_channel_affine(xr, sc, zp, 0, QMIN, QMAX) if per_channel
                 else torch.fake_quantize_per_tensor_affine(xr, s, 0, QMIN, QMAX))
            y.backward(dy.view_as(y))
        return run

    for name, fn in (("peer/torch-fakequant/forward/per-tensor", fwd_t),
                     ("peer/torch-fakequant/forward/per-channel", fwd_c),
                     ("peer/torch-fakequant/forward+backward/per-tensor", bwd(False)),
                     ("peer/torch-fakequant/forward+backward/per-channel", bwd(True))):
        med, lo, hi = timeit(fn, 5)
        cases.append({"case": name, "n": nf, "groups": 1, "threads": threads, "ms": med, "ms_min": lo, "ms_max": hi})
    print(json.dumps({"numpy": np.__version__, "torch": torch.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
