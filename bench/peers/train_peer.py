#!/usr/bin/python3
"""PyTorch peer of `octav bench train`: one training step (forward, cross-
entropy, backward, SGD momentum 0.9 Nesterov, weight decay 5e-4 on conv/linear
weights, lr 0.01) of octav's built-in models written layer for layer in
PyTorch (src/nn/zoo.c: same layers, shapes, strides, paddings, BN, ReLU/ReLU6,
pools, residual adds, dropout 0.25 for cnn only; PyTorch's default init, not
octav's), on batch 128 of N(0,1) images with uniform labels (fixed seed, same
batch every step), in three modes:

  float  plain training;
  max    4-bit QAT, clipping scalar s = max|x| recomputed every step;
  octav  4-bit QAT, the paper's OCTAV recursion written the obvious way in
         PyTorch (paper-notes.md section 3):
           s <- sum_{|x|>s} |x| / (c * #{0<|x|<=s} + #{|x|>s}),
         c = 4^-B/3 (signed grid) or 4^-B/12 (unsigned grid), 10 iterations
         per quantizer per step as in the paper, started from the previous
         step's scalar (the mean of the non-zero |x| at the first step).

QAT quantizes the weight and the input of every conv/linear like octav's
recipe (src/nn/qat.c): weights on the signed grid [-2^(B-1), 2^(B-1)-1], step
s/2^(B-1), one scale per output channel for conv
(torch.fake_quantize_per_channel_affine) and one per tensor for linear;
inputs one scale per tensor (torch.fake_quantize_per_tensor_affine) on the
unsigned grid [0, 2^B-1], step s/2^B, when the producer is non-negative
(after ReLU/ReLU6, through pools, dropout and adds of non-negative inputs),
signed otherwise; the first conv and the last linear at 8 bits. Gradients
are what torch's fake quantization gives (straight through inside the grid,
zero outside: octav's PWL; octav's default uses MAD for weights). No
gradient flows to the scalars.

Timing: W untimed steps, then R timed steps; the median ms per step and
images/s. Memory: the process's peak RSS (resource.getrusage) and its RSS
before the model was built; run one case per process (as
bench/train_compare.py does) for a per-case peak.
Prints JSON like bench/peers/peers.py: {"numpy", "torch", "cases": [...]}.
Usage: train_peer.py [--model cnn|resnet20|mobilenetv2|all] [--mode float|max|octav|all]
                     [--threads N[,N...]] [--batch B] [--warmup W] [--reps R]
                     [--input fmnist|cifar] [--width X] [--quick]"""
import argparse, json, os, resource, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BITS, FIRST_LAST_BITS, ITERS, CLASSES = 4, 8, 10, 10
MODELS, MODES = ("cnn", "resnet20", "mobilenetv2"), ("float", "max", "octav")


class Quantizer:
    """Fake quantization of one tensor with its clipping scalar(s) chosen
    every step by max-scaling or by the OCTAV recursion."""

    def __init__(self, bits, unsigned, per_channel, method):
        self.unsigned, self.per_channel, self.method = unsigned, per_channel, method
        if unsigned:
            self.qmin, self.qmax, self.levels, self.c = 0, 2 ** bits - 1, 2 ** bits, 4.0 ** -bits / 12
        else:
            self.qmin, self.qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
            self.levels, self.c = 2 ** (bits - 1), 4.0 ** -bits / 3
        self.s = None
        self.zp = None

    @torch.no_grad()
    def clip_scalar(self, x):
        a = x.abs().flatten(1) if self.per_channel else x.abs().reshape(1, -1)
        if self.method == "max":
            return a.amax(1)
        nnz = (a > 0).sum(1)
        s = self.s if self.s is not None else a.sum(1) / nnz.clamp(min=1)
        for _ in range(ITERS):
            above = a > s[:, None]
            n1 = above.sum(1)
            s = (a * above).sum(1) / (self.c * (nnz - n1) + n1).clamp(min=1e-30)  # 0/0 -> 0 if all zero
        self.s = s
        return s

    def __call__(self, x):
        d = (self.clip_scalar(x).clamp(min=1e-8) / self.levels).float()
        if self.per_channel:
            if self.zp is None or self.zp.numel() != d.numel():
                self.zp = torch.zeros(d.numel(), dtype=torch.int32)
            return torch.fake_quantize_per_channel_affine(x, d, self.zp, 0, self.qmin, self.qmax)
        return torch.fake_quantize_per_tensor_affine(x, float(d), 0, self.qmin, self.qmax)


class QConv2d(nn.Conv2d):
    def setup(self, qat, bits, unsigned_input):
        self.qw = Quantizer(bits, False, True, qat) if qat else None
        self.qa = Quantizer(bits, unsigned_input, False, qat) if qat else None

    def forward(self, x):
        if self.qw is None:
            return super().forward(x)
        return F.conv2d(self.qa(x), self.qw(self.weight), self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class QLinear(nn.Linear):
    def setup(self, qat, bits, unsigned_input):
        self.qw = Quantizer(bits, False, False, qat) if qat else None
        self.qa = Quantizer(bits, unsigned_input, False, qat) if qat else None

    def forward(self, x):
        if self.qw is None:
            return super().forward(x)
        return F.linear(self.qa(x), self.qw(self.weight), self.bias)


class Builder:
    """Makes conv/linear layers with octav's quantization flags: which input
    is non-negative is tracked by the caller (octav's `nonneg`); the first
    conv/linear and the last linear get 8 bits (marked by finish())."""

    def __init__(self, qat):
        self.qat, self.layers = qat, []

    def conv(self, cin, cout, k, stride, groups, unsigned_input):
        m = QConv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.layers.append((m, unsigned_input))
        return m

    def linear(self, cin, cout, bias, unsigned_input):
        m = QLinear(cin, cout, bias=bias)
        self.layers.append((m, unsigned_input))
        return m

    def finish(self):
        n = len(self.layers)
        for i, (m, uns) in enumerate(self.layers):
            last = i == n - 1 and isinstance(m, QLinear)
            m.setup(self.qat, FIRST_LAST_BITS if i == 0 or last else BITS, uns)


class ConvBN(nn.Module):
    """conv + BN (+ ReLU / ReLU6 when act is 1 / 6), octav's conv_bn."""

    def __init__(self, b, cin, cout, k, stride, groups, act, unsigned_input):
        super().__init__()
        self.conv = b.conv(cin, cout, k, stride, groups, unsigned_input)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.act == 1 else F.relu6(x) if self.act == 6 else x


class CNN(nn.Module):
    def __init__(self, b, c, h, w, dropout=0.25):
        super().__init__()
        self.features = nn.Sequential(ConvBN(b, c, 32, 3, 1, 1, 1, False), ConvBN(b, 32, 32, 3, 1, 1, 1, True),
                                      nn.MaxPool2d(2, 2), ConvBN(b, 32, 64, 3, 1, 1, 1, True),
                                      ConvBN(b, 64, 64, 3, 1, 1, 1, True), nn.MaxPool2d(2, 2))
        self.fc1 = b.linear(64 * (h // 4) * (w // 4), 256, False, True)
        self.bn1 = nn.BatchNorm1d(256)
        self.drop = nn.Dropout(dropout)
        self.fc2 = b.linear(256, CLASSES, True, True)

    def forward(self, x):
        x = torch.flatten(self.features(x), 1)
        return self.fc2(self.drop(F.relu(self.bn1(self.fc1(x)))))


class BasicBlock(nn.Module):
    def __init__(self, b, cin, c, stride):
        super().__init__()
        self.c1 = ConvBN(b, cin, c, 3, stride, 1, 1, True)
        self.c2 = ConvBN(b, c, c, 3, 1, 1, 0, True)
        self.shortcut = ConvBN(b, cin, c, 1, stride, 1, 0, True) if stride != 1 or cin != c else None

    def forward(self, x):
        y = self.c2(self.c1(x))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet20(nn.Module):
    def __init__(self, b, c):
        super().__init__()
        self.stem = ConvBN(b, c, 16, 3, 1, 1, 1, False)
        blocks, cin = [], 16
        for stage in range(3):
            for i in range(3):
                blocks.append(BasicBlock(b, cin, 16 << stage, 2 if stage > 0 and i == 0 else 1))
                cin = 16 << stage
        self.blocks = nn.Sequential(*blocks)
        self.fc = b.linear(64, CLASSES, True, True)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def make_divisible(v, d=8):
    r = max(d, int(v + d / 2) // d * d)
    return r + d if r < 0.9 * v else r


class InvertedResidual(nn.Module):
    def __init__(self, b, cin, cout, t, stride, in_nonneg):
        super().__init__()
        hid = cin * t
        self.expand = ConvBN(b, cin, hid, 1, 1, 1, 6, in_nonneg) if t != 1 else None
        self.dw = ConvBN(b, hid, hid, 3, stride, hid, 6, True if t != 1 else in_nonneg)
        self.project = ConvBN(b, hid, cout, 1, 1, 1, 0, True)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.dw(self.expand(x) if self.expand is not None else x))
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """Sandler et al.'s inverted residuals with the CIFAR stem (stride 1)."""
    CFG = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
           (6, 320, 1, 1))

    def __init__(self, b, c, width=1.0):
        super().__init__()
        cin = make_divisible(32 * width)
        self.stem = ConvBN(b, c, cin, 3, 1, 1, 6, False)
        blocks, nonneg = [], True  # the stem ends in ReLU6
        for t, ch, n, s in self.CFG:
            cout = make_divisible(ch * width)
            for r in range(n):
                blk = InvertedResidual(b, cin, cout, t, s if r == 0 else 1, nonneg)
                blocks.append(blk)
                nonneg = False  # a projection (BN, no activation), or an add with one
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        clast = make_divisible(1280 * width) if width > 1.0 else 1280
        self.head = ConvBN(b, cin, clast, 1, 1, 1, 6, nonneg)
        self.classifier = b.linear(clast, CLASSES, True, True)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build(name, mode, c, h, w, width):
    b = Builder(None if mode == "float" else mode)
    if name == "cnn":
        m = CNN(b, c, h, w)
    elif name == "resnet20":
        m = ResNet20(b, c)
    else:
        m = MobileNetV2(b, c, width)
    b.finish()
    return m


def rss_now():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def run_case(name, mode, threads, x, y, warmup, reps, width):
    torch.set_num_threads(threads)
    base = rss_now()
    torch.manual_seed(1)
    model = build(name, mode, x.shape[1], x.shape[2], x.shape[3], width).train()
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    other = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": other, "weight_decay": 0.0}],
                          lr=0.01, momentum=0.9, nesterov=True)
    ts, loss = [], float("nan")
    for i in range(warmup + reps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = F.cross_entropy(model(x), y)
        out.backward()
        opt.step()
        t1 = time.perf_counter()
        loss = float(out)
        if i >= warmup:
            ts.append((t1 - t0) * 1e3)
    med = sorted(ts)[len(ts) // 2]  # octav's median (the upper one for an even count)
    nparams = sum(p.numel() for p in model.parameters())
    return {"case": f"peer/torch-train/{name}/{mode}", "n": x.shape[0], "batch": x.shape[0],
            "input": "x".join(str(d) for d in x.shape[1:]), "threads": threads, "ms": med, "ms_min": min(ts),
            "ms_max": max(ts), "images_per_second": x.shape[0] * 1e3 / med, "model": name, "mode": mode,
            "bits": 32 if mode == "float" else BITS, "params": nparams, "warmup": warmup, "steps": reps,
            "loss": loss, "rss_base_bytes": base, "rss_peak_bytes": rss_peak()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="all", choices=MODELS + ("all",))
    ap.add_argument("--mode", default="all", choices=MODES + ("all",))
    ap.add_argument("--threads", default="2", help="comma-separated thread counts (default 2)")
    ap.add_argument("--batch", type=int, default=None, help="images per step (default 128; --quick 16)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps (default 3; --quick 1)")
    ap.add_argument("--reps", type=int, default=7, help="timed steps (default 7)")
    ap.add_argument("--input", default="fmnist", choices=("fmnist", "cifar"))
    ap.add_argument("--width", type=float, default=1.0, help="mobilenetv2 width multiplier")
    ap.add_argument("--quick", action="store_true", help="cnn only, batch 16, 1 warm-up step")
    a = ap.parse_args()
    batch = a.batch or (16 if a.quick else 128)
    warmup = a.warmup if a.warmup is not None else (1 if a.quick else 3)
    c, h, w = (3, 32, 32) if a.input == "cifar" else (1, 28, 28)
    g = torch.Generator().manual_seed(0x5EED)
    x = torch.randn(batch, c, h, w, generator=g)
    y = torch.randint(0, CLASSES, (batch,), generator=g)
    models = ("cnn",) if a.quick else MODELS if a.model == "all" else (a.model,)
    modes = MODES if a.mode == "all" else (a.mode,)
    cases = []
    for threads in (int(t) for t in a.threads.split(",")):
        for name in models:
            for mode in modes:
                cases.append(run_case(name, mode, threads, x, y, warmup, a.reps, a.width))
    print(json.dumps({"numpy": np.__version__, "torch": torch.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
