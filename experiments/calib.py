#!/usr/bin/python3
"""Calibration quality (issue 5, item 3): how well each clipping method
quantizes the weights and activations of models trained by octav.

For each trained float checkpoint given, `octav eval --dump` writes every
conv/linear layer's weight and its float input on the first test batch
(256 images); `octav clip --json --method all` then quantizes each tensor
with every method at 2, 4 and 8 bits: weights per tensor and per output
channel (signed grid), inputs per tensor (unsigned grid where the layer's
input is non-negative, as QAT does). The results go to
experiments/results/calib.jsonl (one line per tensor, bits and granularity,
with the command) and their summary to the "calib" section of
docs/RESULTS.md. Nothing is typed in. A model whose records were made
from a checkpoint with the same SHA-256 is not redone (CALIB_FORCE=1 redoes
every model given).
    calib.py BUILD_DIR DOC MODEL=CHECKPOINT...
"""
import hashlib
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from docsection import replace_section  # noqa: E402

BITS = (2, 4, 8)
DB = "experiments/results/calib.jsonl"


def header(path):
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        h = json.loads(fh.read(n))
    meta = h.pop("__metadata__", {})
    return h, meta


def clip(octav, spec, bits, unsigned, gran):
    cmd = [octav, "clip", "--json", "--method", "all", "--bits", str(bits), "--granularity", gran]
    if unsigned:
        cmd.append("--unsigned")
    cmd.append(spec)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"calib: {' '.join(cmd)} failed: {p.stderr}")
    return cmd, json.loads(p.stdout)["results"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def up_to_date(digests):
    """The models whose records all come from a checkpoint with the digest given for them."""
    if os.environ.get("CALIB_FORCE") == "1" or not os.path.exists(DB):
        return set()
    rows = [json.loads(l) for l in open(DB) if l.strip()]
    return {m for m, d in digests.items()
            if any(r["model"] == m for r in rows) and all(r.get("checkpoint_sha256") == d for r in rows if r["model"] == m)}


def run(build, pairs):
    octav = os.path.join(build, "octav")
    os.makedirs("results/calib", exist_ok=True)
    recs = []
    digests = {model: sha256(ckpt) for model, ckpt in pairs}
    done = up_to_date(digests)
    for m in sorted(done):
        print(f"calib: {m} skipped (its records come from this checkpoint; CALIB_FORCE=1 redoes it)", file=sys.stderr)
    pairs = [(m, c) for m, c in pairs if m not in done]
    if not pairs:
        return
    for model, ckpt in pairs:
        dump = f"results/calib/{model}_dump.safetensors"
        subprocess.run([octav, "eval", "--dump", dump, ckpt], check=True, stdout=subprocess.DEVNULL)
        tensors, meta = header(dump)
        unsigned = set(filter(None, meta.get("octav.unsigned", "").split(",")))
        for name in tensors:
            weight = name.endswith(".weight")
            for bits in BITS:
                for gran in (("tensor", "channel") if weight else ("tensor",)):
                    cmd, res = clip(octav, f"{dump}:{name}", bits, name in unsigned, gran)
                    cmd[0] = "octav"
                    recs.append({"model": model, "checkpoint": ckpt, "checkpoint_sha256": digests[model],
                                 "tensor": name,
                                 "kind": "weight" if weight else "input", "bits": bits, "granularity": gran,
                                 "unsigned": name in unsigned, "numel": _numel(tensors[name]["shape"]),
                                 "command": " ".join(cmd),
                                 "methods": {r["method"]: {"mse": r["mse"], "sqnr_db": r["sqnr_db"],
                                                           "clipped": r["clipped_fraction"]} for r in res}})
            print(f"calib: {model} {name}", file=sys.stderr)
    keep = []
    if os.path.exists(DB):   # other models' records stay
        done = {m for m, _ in pairs}
        keep = [l for l in open(DB) if l.strip() and json.loads(l)["model"] not in done]
    with open(DB, "w") as fh:
        fh.writelines(keep)
        for r in recs:
            fh.write(json.dumps(r, separators=(",", ":")) + "\n")


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def report(doc):
    recs = [json.loads(l) for l in open(DB) if l.strip()]
    models = sorted({r["model"] for r in recs}, key=lambda m: ["cnn", "resnet20", "mobilenetv2"].index(m)
                    if m in ("cnn", "resnet20", "mobilenetv2") else 9)
    methods = list(recs[0]["methods"]) if recs else []
    out = ["Generated by `experiments/calib.py` (run by `make results`) from `experiments/results/calib.jsonl`: "
           "every conv/linear weight and float input (first 256 test samples) of octav-trained float models, "
           "quantized by every method of `octav clip --method all`. Per group of tensors: the mean SQNR (dB) of "
           "each method, and in brackets on how many tensors it had the lowest MSE of all methods (ties count "
           "for each). Checkpoints: " + ", ".join(sorted({f"{r['model']} `{r['checkpoint']}`" for r in recs}))
           + ".", ""]
    short = {"percentile-99.9": "p99.9", "percentile-99.99": "p99.99", "percentile-99.999": "p99.999",
             "aciq-laplace": "aciq-L", "aciq-gauss": "aciq-G", "mse-sweep": "sweep"}
    out += ["| model | tensors | bits | n | " + " | ".join(short.get(m, m) for m in methods) + " |",
            "|---|---|---:|---:|" + "---:|" * len(methods)]
    gaps = []
    for model in models:
        for kind, gran in (("weight", "tensor"), ("weight", "channel"), ("input", "tensor")):
            for bits in BITS:
                rs = [r for r in recs if r["model"] == model and r["kind"] == kind and r["granularity"] == gran
                      and r["bits"] == bits]
                if not rs:
                    continue
                cells = []
                for m in methods:
                    mean = sum(r["methods"][m]["sqnr_db"] for r in rs) / len(rs)
                    best = sum(1 for r in rs if r["methods"][m]["mse"] <= min(v["mse"] for v in r["methods"].values()))
                    cells.append(f"{mean:.2f} ({best})")
                for r in rs:
                    o = r["methods"]["octav"]["sqnr_db"]
                    b = max(v["sqnr_db"] for v in r["methods"].values())
                    gaps.append((b - o, model, r["tensor"], bits, gran))
                label = f"{kind}s per {gran}" if kind == "weight" else "inputs per tensor"
                out.append(f"| {model} | {label} | {bits} | {len(rs)} | " + " | ".join(cells) + " |")
    if gaps:
        gaps.sort()
        within = sum(1 for g in gaps if g[0] <= 0.1)
        worst = gaps[-1]
        out += ["", f"OCTAV's SQNR is within 0.1 dB of the best method on {within} of {len(gaps)} tensor/bit/"
                f"granularity cases; its largest gap is {worst[0]:.2f} dB ({worst[1]} {worst[2]}, {worst[3]} bits, "
                f"per {worst[4]})."]
    replace_section(doc, "calib", out)


def main():
    build, doc = sys.argv[1], sys.argv[2]
    pairs = [a.split("=", 1) for a in sys.argv[3:]]
    pairs = [(m, c) for m, c in pairs if os.path.exists(c)]
    if pairs:
        run(build, pairs)
    if os.path.exists(DB):
        report(doc)


if __name__ == "__main__":
    main()
