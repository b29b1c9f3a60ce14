#!/usr/bin/python3
"""Training-step throughput, octav against PyTorch, interleaved so that the
drift of a shared machine cancels.

Every case runs in its own process (so its peak RSS is its own): octav as
`octav bench train --case train/MODEL/MODE`, PyTorch as
bench/peers/train_peer.py --model MODEL --mode MODE, with the same batch,
input shape, warm-up and timed steps. The order, for each thread count and
model, is round by round:
    octav float, torch float, octav max, torch max, octav octav, torch octav
so each octav run has its PyTorch twin and its own float run next to it in
time. Ratios are taken within a round (octav float / torch float of the same
round, ...) and the median over rounds is reported; times are the median
over rounds of each run's median step.

Then the batch-size series: cnn, float and OCTAV-QAT, batch 32, 64, 128, 256
at the largest thread count, octav and PyTorch interleaved the same way.

transformer (--models transformer): octav's `bench train` transformer case
against bench/peers/train_peer_transformer.py (width 128, 4 heads, 4 blocks,
MLP 512, 24 tokens, vocabulary 200, 12 classes, dropout 0.1, AdamW).

mobilenetv2 (width 1.0, batch 128) takes seconds per step and gigabytes of
memory, so it runs fewer steps (--heavy-steps, default 1 warm-up + 3 timed)
and 2 rounds at most; the whole default run takes about half an hour on two
cores. --models cnn,resnet20 leaves it out.

Prints one JSON document (the settings, versions, every run, and the
summaries) on stdout; progress on stderr. scripts/bench_report.py --train
turns it into the "Training throughput" section of docs/BENCHMARKS.md.
Usage: train_compare.py [--octav build/octav] [--threads 1,2]
    [--models cnn,resnet20,mobilenetv2] [--rounds 3] [--warmup 2] [--reps 5]
    [--batch 128] [--scaling 32,64,128,256] [--input fmnist|cifar]
    [--width 1.0] [--heavy-steps 1,3] [--no-torch] [--quick]"""
import argparse, datetime, json, os, platform, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peers", "train_peer.py")
PEER_TF = os.path.join(HERE, "peers", "train_peer_transformer.py")
MODES = ("float", "max", "octav")
HEAVY = ("mobilenetv2",)  # fewer steps and rounds


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else float("nan")


def run_json(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"train_compare: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout)


class Runner:
    def __init__(self, a):
        self.a, self.runs, self.versions = a, [], {}

    def steps(self, model):
        """(warm-up steps, timed steps, rounds) for model."""
        a = self.a
        if model in HEAVY:
            w, r = (int(v) for v in a.heavy_steps.split(","))
            return w, r, min(a.rounds, 2)
        return a.warmup, a.reps, a.rounds

    def one(self, impl, model, mode, threads, batch, rnd):
        a = self.a
        warmup, reps, _ = self.steps(model)
        common = ["--threads", str(threads), "--reps", str(reps), "--warmup", str(warmup), "--batch", str(batch),
                  "--input", a.input, "--width", str(a.width)]
        if impl == "octav":
            doc = run_json([a.octav, "bench", "train", "--json", "--case", f"train/{model}/{mode}"] + common)
        elif model == "transformer":   # token batches: the peer has its own model options
            doc = run_json([sys.executable, PEER_TF, "--mode", mode, "--threads", str(threads), "--reps", str(reps),
                            "--warmup", str(warmup), "--batch", str(batch)])
            self.versions = {"torch": doc["torch"], "numpy": doc["numpy"]}
        else:
            doc = run_json([sys.executable, PEER, "--model", model, "--mode", mode] + common)
            self.versions = {"torch": doc["torch"], "numpy": doc["numpy"]}
        if len(doc["cases"]) != 1:
            sys.exit(f"train_compare: {impl} {model}/{mode}: expected one case, got {len(doc['cases'])}")
        c = dict(doc["cases"][0], impl=impl, round=rnd)
        self.runs.append(c)
        print(f"  round {rnd} {impl:5s} {model}/{mode:5s} {threads}t b{batch}: {c['ms']:9.1f} ms/step "
              f"{c['images_per_second']:8.1f} img/s  peak RSS {c['rss_peak_bytes'] / 2**20:7.1f} MB", file=sys.stderr)
        return c

    def series(self, model, modes, threads, batch, impls):
        """Runs the rounds of one (model, threads, batch) and returns the
        per-round results {round: {(impl, mode): case}}."""
        rounds = {}
        for r in range(self.steps(model)[2]):
            rounds[r] = {}
            for mode in modes:
                for impl in impls:
                    rounds[r][(impl, mode)] = self.one(impl, model, mode, threads, batch, r)
        return rounds


def summarize(rounds, model, threads, batch, modes, impls, steps):
    """Medians over rounds, and ratios paired within each round."""
    s = {"model": model, "threads": threads, "batch": batch, "warmup": steps[0], "reps": steps[1],
         "rounds": steps[2]}
    for impl in impls:
        for mode in modes:
            cs = [rounds[r][(impl, mode)] for r in rounds]
            ms = median([c["ms"] for c in cs])
            s[f"{impl}_{mode}_ms"] = ms
            s[f"{impl}_{mode}_ms_rounds"] = [c["ms"] for c in cs]
            s[f"{impl}_{mode}_images_per_second"] = batch * 1e3 / ms
            s[f"{impl}_{mode}_rss_peak_bytes"] = max(c["rss_peak_bytes"] for c in cs)
            s[f"{impl}_{mode}_rss_base_bytes"] = min(c["rss_base_bytes"] for c in cs)
            if impl == "octav":
                s[f"octav_{mode}_model_bytes"] = cs[0]["model_bytes"]

    def paired(num, den):  # median over rounds of time(num) / time(den)
        return median([rounds[r][num]["ms"] / rounds[r][den]["ms"] for r in rounds])

    for impl in impls:
        for mode in modes:
            if mode != "float" and "float" in modes:
                s[f"{impl}_{mode}_over_float"] = paired((impl, mode), (impl, "float"))
    if "torch" in impls:
        for mode in modes:  # > 1: octav is faster
            s[f"octav_speedup_{mode}"] = paired(("torch", mode), ("octav", mode))
    return s


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description="octav vs PyTorch training-step throughput, interleaved")
    ap.add_argument("--octav", default="build/octav")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", help="default cnn,resnet20,mobilenetv2")
    ap.add_argument("--rounds", type=int, help="default 3")
    ap.add_argument("--warmup", type=int, help="untimed steps per run (default 2)")
    ap.add_argument("--reps", type=int, help="timed steps per run (default 5)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--scaling", help="batch sizes of the cnn series (default 32,64,128,256; '' for none)")
    ap.add_argument("--input", default="fmnist", choices=("fmnist", "cifar"))
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--heavy-steps", default="1,3", help="warm-up,timed steps for mobilenetv2 (default 1,3)")
    ap.add_argument("--no-torch", action="store_true", help="octav only")
    ap.add_argument("--quick", action="store_true",
                    help="check the harness: defaults cnn only, 1 round, 1 warm-up and 2 timed steps, batches 32,64")
    a = ap.parse_args()
    defaults = (("models", "cnn", "cnn,resnet20,mobilenetv2"), ("rounds", 1, 3), ("warmup", 1, 2), ("reps", 2, 5),
                ("scaling", "32,64", "32,64,128,256"))
    for name, quick, full in defaults:  # options given win over --quick
        if getattr(a, name) is None:
            setattr(a, name, quick if a.quick else full)
    threads = [int(t) for t in a.threads.split(",") if t]
    models = [m for m in a.models.split(",") if m]
    scaling = [int(b) for b in a.scaling.split(",") if b]
    impls = ("octav",) if a.no_torch else ("octav", "torch")
    rn = Runner(a)
    t0 = time.time()
    summary, scal = [], []
    for th in threads:
        for model in models:
            print(f"{model}, {th} thread(s), batch {a.batch}", file=sys.stderr)
            rounds = rn.series(model, MODES, th, a.batch, impls)
            summary.append(summarize(rounds, model, th, a.batch, MODES, impls, rn.steps(model)))
    if scaling:
        th = max(threads)
        for b in scaling:
            print(f"cnn scaling, {th} thread(s), batch {b}", file=sys.stderr)
            rounds = rn.series("cnn", ("float", "octav"), th, b, impls)
            scal.append(summarize(rounds, "cnn", th, b, ("float", "octav"), impls, rn.steps("cnn")))
    print(f"train_compare: {time.time() - t0:.0f} s", file=sys.stderr)
    c, h, w = (3, 32, 32) if a.input == "cifar" else (1, 28, 28)
    doc = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_name(),
           "cores": os.cpu_count(), "torch": rn.versions.get("torch"), "numpy": rn.versions.get("numpy"),
           "settings": {"threads": threads, "models": models, "rounds": a.rounds, "warmup": a.warmup,
                        "reps": a.reps, "batch": a.batch, "scaling": scaling, "input": f"{c}x{h}x{w}",
                        "width": a.width, "heavy_steps": a.heavy_steps, "quick": a.quick, "bits": 4,
                        "first_last_bits": 8},
           "summary": summary, "scaling": scal, "runs": rn.runs}
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
