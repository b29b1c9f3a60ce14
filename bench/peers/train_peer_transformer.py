#!/usr/bin/python3
"""PyTorch peer of `octav bench train` for the encoder-only transformer
classifier (src/nn/zoo.c "transformer"): one training step (forward,
cross-entropy, backward, gradient clipping to global norm 1.0, AdamW lr 1e-3,
betas (0.9, 0.999), eps 1e-8, weight decay 0.01 on the weights of the linear
layers only: qkv, proj, fc1, fc2, head; not on the embeddings, LayerNorms or
biases), written op for op like tests/fixtures/gen_nn_transformer.py:

  x = embed.token[id] + embed.position[t], dropout
  N pre-LayerNorm blocks: x += dropout(proj(attention(qkv(ln1 x))))
                          x += dropout(fc2(gelu(fc1(ln2 x))))
  (heads split as columns j*dh.. of Q, K, V; keys with id 0 (PAD) masked to
  -inf before the softmax), ln_f, head on position 0 ([CLS]).

LayerNorm eps 1e-5, exact (erf) GELU, dropout --dropout (default 0.1, the
zoo's default, after the embeddings and on each residual branch). PyTorch's
default init, not octav's. Input: --batch sequences of --max-len ids, each
CLS (1), a uniform 1..L-1 run of ids in [4, vocab), then PAD (0); uniform
labels in [0, classes) (fixed seed, same batch every step).

Modes:
  float  plain training;
  max    4-bit QAT, clipping scalar s = max|x| recomputed every step;
  octav  4-bit QAT, 10 OCTAV iterations per quantizer per step, warm-started
         (the Quantizer of bench/peers/train_peer.py).
QAT as in the paper's BERT experiment and octav's recipe (src/nn/qat.c): the
weight (per tensor, or per output feature with --weight-granularity channel)
and the input (per tensor) of every linear, and both operands of each
batched matmul of attention (Q, K, V on the signed grid, the softmax
probabilities on the unsigned grid), per tensor; the first linear
(block0.qkv) and the last (head) at 8 bits. Linear inputs are signed
(LayerNorm, attention and GELU outputs). Gradients are torch's fake
quantization (straight through inside the grid, zero outside); none flows
to the scalars.

Timing, memory and output as bench/peers/train_peer.py: W untimed steps,
then R timed steps; the median ms per step, sequences/s (also under the key
images_per_second, which the harness reads), peak RSS. Prints one JSON
document {"numpy", "torch", "cases": [...]}, case names
peer/torch-train/transformer/MODE, input "1x1xL" (octav's token input shape).
Usage: train_peer_transformer.py [--mode float|max|octav|all] [--threads N[,N...]]
    [--vocab 200] [--max-len 24] [--width 128] [--heads 4] [--layers 4]
    [--mlp 512] [--classes 12] [--batch 128] [--dropout 0.1]
    [--warmup 3] [--steps 7] [--weight-granularity tensor|channel] [--quick]"""
import argparse, json, math, os, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_peer import Quantizer, rss_now, rss_peak  # noqa: E402

BITS, FIRST_LAST_BITS = 4, 8
PAD, CLS, FIRST_ID = 0, 1, 4
EPS = 1e-5
MODES = ("float", "max", "octav")


class QLinear(nn.Linear):
    """nn.Linear with optional fake quantization of its weight and input."""

    def setup(self, qat, bits, per_channel):
        self.qw = Quantizer(bits, False, per_channel, qat) if qat else None
        self.qa = Quantizer(bits, False, False, qat) if qat else None

    def forward(self, x):
        if self.qw is None:
            return super().forward(x)
        return F.linear(self.qa(x), self.qw(self.weight), self.bias)


class Block(nn.Module):
    def __init__(self, d, heads, mlp, dropout):
        super().__init__()
        self.heads, self.p = heads, dropout
        self.ln1 = nn.LayerNorm(d, eps=EPS)
        self.qkv = QLinear(d, 3 * d)
        self.proj = QLinear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=EPS)
        self.fc1 = QLinear(d, mlp)
        self.fc2 = QLinear(mlp, d)
        self.qq = self.qk = self.qp = self.qv = None

    def setup_attention(self, qat, bits):
        if qat:
            self.qq, self.qk, self.qv = (Quantizer(bits, False, False, qat) for _ in range(3))
            self.qp = Quantizer(bits, True, False, qat)

    def attention(self, h, keymask):
        B, L, d = h.shape
        H = self.heads
        dh = d // H
        q, k, v = (t.reshape(B, L, H, dh).transpose(1, 2) for t in self.qkv(h).split(d, dim=-1))
        if self.qq is not None:
            q, k, v = self.qq(q), self.qk(k), self.qv(v)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(dh))
        pr = torch.softmax(s.masked_fill(keymask, float("-inf")), dim=-1)
        if self.qp is not None:
            pr = self.qp(pr)
        return (pr @ v).transpose(1, 2).reshape(B, L, d)

    def forward(self, x, keymask):
        x = x + F.dropout(self.proj(self.attention(self.ln1(x), keymask)), self.p, self.training)
        return x + F.dropout(self.fc2(F.gelu(self.fc1(self.ln2(x)))), self.p, self.training)


class Embedding(nn.Module):
    def __init__(self, vocab, max_len, d):
        super().__init__()
        self.token = nn.Parameter(torch.randn(vocab, d))       # nn.Embedding's default init
        self.position = nn.Parameter(torch.randn(max_len, d))

    def forward(self, ids):
        return F.embedding(ids, self.token) + self.position[:ids.shape[1]]


class Transformer(nn.Module):
    """Tensor names as octav's: embed.token, block<i>.qkv.weight, ln_f, head."""

    def __init__(self, vocab, max_len, d, heads, layers, mlp, classes, dropout):
        super().__init__()
        self.layers, self.p = layers, dropout
        self.embed = Embedding(vocab, max_len, d)
        for i in range(layers):
            setattr(self, f"block{i}", Block(d, heads, mlp, dropout))
        self.ln_f = nn.LayerNorm(d, eps=EPS)
        self.head = QLinear(d, classes)

    def blocks(self):
        return [getattr(self, f"block{i}") for i in range(self.layers)]

    def setup(self, qat, bits, first_last_bits, per_channel):
        linears = [m for b in self.blocks() for m in (b.qkv, b.proj, b.fc1, b.fc2)] + [self.head]
        for i, m in enumerate(linears):
            m.setup(qat, first_last_bits if i in (0, len(linears) - 1) else bits, per_channel)
        for b in self.blocks():
            b.setup_attention(qat, bits)

    def forward(self, ids):
        keymask = (ids == PAD)[:, None, None, :]
        x = F.dropout(self.embed(ids), self.p, self.training)
        for b in self.blocks():
            x = b(x, keymask)
        return self.head(self.ln_f(x)[:, 0])


def make_batch(batch, max_len, vocab, classes, seed=0x5EED):
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(1, max_len, (batch,), generator=g)
    ids = torch.randint(FIRST_ID, vocab, (batch, max_len), generator=g)
    ids[torch.arange(max_len)[None, :] > lens[:, None]] = PAD
    ids[:, 0] = CLS
    y = torch.randint(0, classes, (batch,), generator=g)
    return ids, y


def run_case(a, mode, threads, ids, y):
    torch.set_num_threads(threads)
    base = rss_now()
    torch.manual_seed(1)
    model = Transformer(a.vocab, a.max_len, a.width, a.heads, a.layers, a.mlp, a.classes, a.dropout)
    model.setup(None if mode == "float" else mode, BITS, FIRST_LAST_BITS, a.weight_granularity == "channel")
    model.train()
    params = list(model.named_parameters())
    decay = [p for n, p in params if n.endswith(("qkv.weight", "proj.weight", "fc1.weight", "fc2.weight"))
             or n == "head.weight"]
    ids_decay = {id(p) for p in decay}
    other = [p for _, p in params if id(p) not in ids_decay]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": other, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    allp = [p for _, p in params]
    ts, loss = [], float("nan")
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = F.cross_entropy(model(ids), y)
        out.backward()
        torch.nn.utils.clip_grad_norm_(allp, 1.0)
        opt.step()
        t1 = time.perf_counter()
        loss = float(out)
        if i >= a.warmup:
            ts.append((t1 - t0) * 1e3)
    med = sorted(ts)[len(ts) // 2]  # octav's median (the upper one for an even count)
    batch, L = ids.shape
    sps = batch * 1e3 / med
    return {"case": f"peer/torch-train/transformer/{mode}", "n": batch, "batch": batch, "input": f"1x1x{L}",
            "threads": threads, "ms": med, "ms_min": min(ts), "ms_max": max(ts), "images_per_second": sps,
            "sequences_per_second": sps, "model": "transformer", "mode": mode,
            "bits": 32 if mode == "float" else BITS, "params": sum(p.numel() for p in allp),
            "warmup": a.warmup, "steps": a.steps, "loss": loss, "rss_base_bytes": base,
            "rss_peak_bytes": rss_peak(), "vocab": a.vocab, "max_len": L, "width": a.width, "heads": a.heads,
            "layers": a.layers, "mlp": a.mlp, "classes": a.classes, "dropout": a.dropout,
            "pad_fraction": float((ids == PAD).float().mean()),
            "weight_granularity": a.weight_granularity}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", default="all", choices=MODES + ("all",))
    ap.add_argument("--threads", default="2", help="comma-separated thread counts (default 2)")
    ap.add_argument("--vocab", type=int, default=200)
    ap.add_argument("--max-len", type=int, default=24)
    ap.add_argument("--width", type=int, default=128, help="model width d")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=None, help="blocks (default 4; --quick 2)")
    ap.add_argument("--mlp", type=int, default=512, help="MLP hidden units")
    ap.add_argument("--classes", type=int, default=12)
    ap.add_argument("--batch", type=int, default=None, help="sequences per step (default 128; --quick 16)")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps (default 3; --quick 1)")
    ap.add_argument("--steps", "--reps", dest="steps", type=int, default=7, help="timed steps (default 7)")
    ap.add_argument("--weight-granularity", default="tensor", choices=("tensor", "channel"),
                    help="QAT linear weight scales (default tensor, octav's default)")
    ap.add_argument("--quick", action="store_true", help="batch 16, 2 layers, 1 warm-up step")
    a = ap.parse_args()
    a.batch = a.batch or (16 if a.quick else 128)
    a.layers = a.layers or (2 if a.quick else 4)
    a.warmup = a.warmup if a.warmup is not None else (1 if a.quick else 3)
    if a.width % a.heads or a.vocab <= FIRST_ID or a.max_len < 2 or a.steps < 1:
        ap.error("need heads dividing width, vocab > 4, max-len >= 2, steps >= 1")
    ids, y = make_batch(a.batch, a.max_len, a.vocab, a.classes)
    modes = MODES if a.mode == "all" else (a.mode,)
    cases = [run_case(a, mode, int(t), ids, y) for t in a.threads.split(",") for mode in modes]
    print(json.dumps({"numpy": np.__version__, "torch": torch.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
