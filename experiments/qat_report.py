#!/usr/bin/python3
"""Writes the QAT section of docs/RESULTS.md from experiments/results/qat.jsonl
(one line per finished `octav train` run, appended by experiments/qat.sh),
and the TSV data of its figure (validation accuracy and clipped fraction of
the weights per epoch) for experiments/plot_qat.gp.
    qat_report.py RESULTS_FILE DOC TSV_DIR
Nothing here is typed in: every number comes from the results file.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from docsection import replace_section  # noqa: E402
from qat_record import summarize  # noqa: E402


def load(path):
    runs = {}
    if not os.path.exists(path):
        return runs
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if "epochs" not in r:   # records of the first script version: epochs from the log
                r["epochs"] = epochs_from_log(os.path.join("results", "qat", r["run"] + ".jsonl"))
            runs[r["run"]] = r
    return runs


def epochs_from_log(log):
    return summarize(log)[1] if os.path.exists(log) else []


def mode_of(r):
    return "retrain" if "--init" in r["command"] else "scratch"


def flag_of(r, flag, default=None):
    """The value of FLAG in the run's command (default when absent)."""
    parts = r["command"].split()
    return parts[parts.index(flag) + 1] if flag in parts else default


def seed_of(r):
    return flag_of(r, "--seed", "1")


def primary_floats(runs):
    """(model, seed) -> the first float run recorded for them: the float
    model of the tables. A later one (MODEL_float_sSEED_rK, qat.sh) is the
    same model trained again because the first one's checkpoint was lost."""
    out = {}
    for r in runs.values():
        if r["final"]["clip"] == "float":
            out.setdefault((r["final"]["model"], seed_of(r)), r)
    return out


def baseline(r, runs, floats_all):
    """The float run a quantized run is measured against: the one whose
    checkpoint it was retrained from (--init), else the first float run of
    its model and seed."""
    init = flag_of(r, "--init")
    if init is not None:
        for x in runs.values():
            if x["final"]["clip"] == "float" and x["final"].get("checkpoint") == init:
                return x
    return floats_all.get((r["final"]["model"], seed_of(r)))


def rerun_note(runs, floats_all, used):
    """A sentence on the float runs trained again (used: their records)."""
    if not used:
        return []
    parts = []
    for x in sorted(used, key=lambda x: x["run"]):
        first = floats_all[(x["final"]["model"], seed_of(x))]
        same = (x["final"].get("test_loss") is not None and x["final"].get("test_loss") == first["final"].get("test_loss")
                and [(e["train_loss"], e["val_accuracy"]) for e in x.get("epochs", [])] ==
                [(e["train_loss"], e["val_accuracy"]) for e in first.get("epochs", [])])
        if same:
            parts.append(f"`{x['run']}` ({fmt_pct(x['final']['test_accuracy'])}%; the test loss and every epoch's "
                         f"training loss and validation accuracy equal those of the first run `{first['run']}` to "
                         f"the last digit: the same binary and thread count on a machine of the same kind "
                         f"reproduced it)")
        else:
            parts.append(f"`{x['run']}` ({fmt_pct(x['final']['test_accuracy'])}%; the first run "
                         f"`{first['run']}` gave {fmt_pct(first['final']['test_accuracy'])}%)")
    return ["† Retrained from a float model trained again (same model, seed and recipe) after the first one's checkpoint "
            "was lost (results/ is not kept between machines; another machine, binary or thread count changes the "
            "float sums, and then it is not the same model bit for bit): " + ", ".join(parts) +
            ". The change is from the float model the run started from.", ""]


# the bit widths of the per-epoch views of the gradient estimators (table and
# training curves; cnn, seed 1), by mode: retrained from float, from scratch
EPOCH_VIEW_BITS = {"retrain": (3, 2), "scratch": (4, 3)}


def fmt_pct(x):
    return f"{100 * x:.2f}"


def clip_matches(clip, m):
    """ "percentile" matches "percentile-99.99" (the clip name carries P)."""
    return clip == m or clip.startswith(m + "-")


def stat(v):
    """Mean, sample standard deviation (NaN for one value), min and max."""
    n = len(v)
    mu = sum(v) / n
    sd = (sum((x - mu) ** 2 for x in v) / (n - 1)) ** 0.5 if n > 1 else float("nan")
    return mu, sd, min(v), max(v)


def seeds_table(runs, methods, tsv, doc, model="cnn"):
    """A model's 4-, 3- and 2-bit cells over seeds (a bit width once two
    seeds have it): each seed retrains from its own float model; mean, sample
    standard deviation and range of the test accuracy, and of the change from
    that seed's float model. Also writes TSV_DIR/seeds_MODEL.tsv (the
    methods that have runs), seeds_MODEL_float.txt and seeds_MODEL_bits.txt
    for experiments/plot_seeds.gp."""
    floats_all = primary_floats(runs)
    fl = {seed: r["final"]["test_accuracy"] for (m, seed), r in floats_all.items() if m == model}
    sel = [r for r in runs.values() if r["final"]["model"] == model and mode_of(r) == "retrain"
           and r["final"]["grad"] == "mad-pwl" and r["final"]["bits"] in (4, 3, 2) and "_traj" not in r["run"]
           and seed_of(r) in fl]
    seeds = sorted({seed_of(r) for r in sel})
    if len(seeds) < 2:
        return []
    # a bit width is shown once at least two seeds have runs at it
    bitw = [b for b in (4, 3, 2) if len({seed_of(r) for r in sel if r["final"]["bits"] == b}) > 1]

    fv = [fl[s] for s in seeds]
    fmu, fsd, _, _ = stat(fv)
    bnames = ", ".join(str(b) for b in bitw[:-1]) + f" and {bitw[-1]}" if len(bitw) > 1 else str(bitw[0])
    ep = sorted({r["final"]["epochs"] for r in sel})
    ep_s = "/".join(str(e) for e in ep) + (" epoch" if ep == [1] else " epochs")
    out = [f"### Clipping methods over seeds: {model} at {bnames} bits", "",
           f"Each seed ({', '.join(seeds)}) trains its own float model and retrains every method from it "
           f"({ep_s}, MAD weight / PWL input gradients). Float over these seeds: {100 * fmu:.2f} ± "
           f"{100 * fsd:.2f}% ({', '.join(fmt_pct(x) for x in fv)}). Cells: mean ± sample standard deviation of "
           "the test accuracy over the seeds that have the run (n), then the mean change from each seed's own "
           "float model and the range of that change, in points.", "",
           "| clipping | " + " | ".join(f"{b} bits: acc % | n | change (range)" for b in bitw) + " |",
           "|---|" + "---:|---:|---:|" * len(bitw)]
    rows, reruns = [], set()
    for m in methods:
        cells, row = [], [m]
        for b in bitw:
            rr = [r for r in sel if r["final"]["bits"] == b and clip_matches(r["final"]["clip"], m)]
            if not rr:
                cells += ["", "", ""]
                row += ["NaN"] * 3
                continue
            acc = [r["final"]["test_accuracy"] for r in rr]
            base = [baseline(r, runs, floats_all) for r in rr]
            dif = [100 * (r["final"]["test_accuracy"] - x["final"]["test_accuracy"]) for r, x in zip(rr, base)]
            again = [x for x in base if x is not floats_all[model, seed_of(x)]]
            reruns.update(x["run"] for x in again)
            mu, sd, _, _ = stat(acc)
            dmu, _, dlo, dhi = stat(dif)
            sd_s = f" ± {100 * sd:.2f}" if len(acc) > 1 else ""
            cells += [f"{100 * mu:.2f}{sd_s}", str(len(acc)), f"{dmu:+.2f} ({dlo:+.2f}..{dhi:+.2f}){'†' if again else ''}"]
            row += [f"{100 * mu:.4f}", f"{100 * sd:.4f}" if len(acc) > 1 else "0", str(len(acc))]
        if any(cells):
            rows.append(row)
            lines_m = f"| {m} | " + " | ".join(cells) + " |"
            out.append(lines_m)
    out.append("")
    out += rerun_note(runs, floats_all, [runs[n] for n in reruns])
    with open(os.path.join(tsv, f"seeds_{model}.tsv"), "w") as fh:
        fh.write("# method\t" + "\t".join(f"mean{b}\tsd{b}\tn{b}" for b in bitw) + f"\t(float mean {100 * fmu:.4f})\n")
        for r in rows:
            fh.write("\t".join(r) + "\n")
    with open(os.path.join(tsv, f"seeds_{model}_float.txt"), "w") as fh:
        fh.write(f"{100 * fmu:.4f}\n")
    with open(os.path.join(tsv, f"seeds_{model}_bits.txt"), "w") as fh:
        fh.write(" ".join(str(b) for b in bitw) + "\n")
    return out


def estimators_table(runs):
    """The gradient estimators over seeds (cnn, dynamic OCTAV, retrained
    from float): per bit width and estimator, the mean and sample standard
    deviation of the test accuracy, and the mean change from each run's own
    float model with its range (a bit width once some estimator has two
    seeds)."""
    floats_all = primary_floats(runs)
    sel = [r for r in runs.values() if r["final"]["model"] == "cnn" and mode_of(r) == "retrain"
           and r["final"]["clip"] == "octav" and "_traj" not in r["run"]]
    grads = ("ste", "pwl", "mad", "mad-pwl")
    cells, reruns = {}, set()
    for r in sel:
        cells.setdefault((r["final"]["bits"], r["final"]["grad"]), []).append(r)
    bitw = [b for b in (4, 3, 2) if any(len(cells.get((b, g), [])) > 1 for g in grads)]
    if not bitw:
        return []
    out = ["### Gradient estimators over seeds (cnn, dynamic OCTAV, retrained from float)", "",
           "STE passes every weight's gradient through the clipper, PWL zeroes it for clipped weights, MAD scales "
           "it by the clipping scalar over the weight's magnitude; MAD/PWL uses MAD for weights and PWL for "
           "inputs (the paper's recipe), the others use their rule for both. Cells: mean ± sample standard "
           "deviation of the test accuracy over the seeds that have the run (n), then the mean change from each "
           "run's own float model and its range, in points.", "",
           "| gradients | " + " | ".join(f"{b} bits: acc % | n | change (range)" for b in bitw) + " |",
           "|---|" + "---:|---:|---:|" * len(bitw)]
    for g in grads:
        row = []
        for b in bitw:
            rr = sorted(cells.get((b, g), []), key=seed_of)
            if not rr:
                row += ["", "", ""]
                continue
            acc = [r["final"]["test_accuracy"] for r in rr]
            base = [baseline(r, runs, floats_all) for r in rr]
            dif = [100 * (a - x["final"]["test_accuracy"]) for a, x in zip(acc, base)]
            again = [x for x in base if x is not floats_all["cnn", seed_of(x)]]
            reruns.update(x["run"] for x in again)
            n = len(acc)
            mu, sd, _, _ = stat(acc)
            row += [f"{100 * mu:.2f}" + (f" ± {100 * sd:.2f}" if n > 1 else ""), str(n),
                    f"{sum(dif) / n:+.2f}" + (f" ({min(dif):+.2f}..{max(dif):+.2f})" if n > 1 else "") +
                    ("†" if again else "")]
        out.append(f"| {g} | " + " | ".join(row) + " |")
    out.append("")
    out += rerun_note(runs, floats_all, [runs[n] for n in reruns])
    return out


def static_table(runs):
    """Static against dynamic OCTAV where both runs of a pair (same model,
    bits, seed and start) kept their last epoch's quantizers: the SQNR each
    run's scalars give on the tensors they quantize when training ends (the
    B-bit quantizers only; the first and last layers are at 8 bits) and the
    ratio of the static scalar to the dynamic one, tensor by tensor. Static
    scalars were solved on 10 float batches before the first step; if the
    weights and activations move away from them during retraining, the
    static run's SQNR falls behind."""
    pairs = []
    for r in runs.values():
        if r["final"]["clip"] != "static-octav" or "_static-octav_" not in r["run"]:
            continue
        d = runs.get(r["run"].replace("_static-octav_", "_octav_"))
        if (d is None or d["final"]["clip"] != "octav" or flag_of(d, "--init") != flag_of(r, "--init")
                or not r["epochs"] or not d["epochs"]
                or "quantizers" not in r["epochs"][-1] or "quantizers" not in d["epochs"][-1]):
            continue
        pairs.append((d, r))
    if not pairs:
        return []
    out = ["### Static against dynamic OCTAV when training ends", "",
           "Pairs of runs that differ only in the clipping mode: dynamic OCTAV re-solves every scalar at every "
           "step, static OCTAV solves them once on 10 float batches before the first step. Per pair, over the "
           "B-bit quantizers (the first and last layers are at 8 bits): the mean SQNR each run's scalars give "
           "on the tensor they quantized last in the final epoch (weights; inputs: the last batch), the worst "
           "tensor's SQNR difference (static minus dynamic), and the median and range of the ratio of the "
           "static scalar to the dynamic one (one number per tensor: the mean over its channels). From the "
           "quantizers of each run's last epoch line.", "",
           "| model | bits | mode | seed | epochs | test acc % dynamic / static | weights: SQNR dB dynamic / static "
           "(worst) | inputs: SQNR dB dynamic / static (worst) | scalar ratio static / dynamic: median (range) |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for d, r in sorted(pairs, key=lambda p: (p[0]["final"]["model"], -p[0]["final"]["bits"], mode_of(p[0]),
                                             seed_of(p[0]))):
        b = d["final"]["bits"]
        qd = {q["q"]: q for q in d["epochs"][-1]["quantizers"] if q.get("bits") == b}
        qs = {q["q"]: q for q in r["epochs"][-1]["quantizers"] if q.get("bits") == b}
        names = [n for n in qd if n in qs]
        cells = []
        for kind in ("weight", "input"):
            k = [n for n in names if n.endswith("." + kind) and "sqnr_db" in qd[n] and "sqnr_db" in qs[n]]
            if not k:
                cells.append("")
                continue
            sd_ = [qd[n]["sqnr_db"] for n in k]
            ss_ = [qs[n]["sqnr_db"] for n in k]
            worst = min(k, key=lambda n: qs[n]["sqnr_db"] - qd[n]["sqnr_db"])
            cells.append(f"{sum(sd_) / len(k):.2f} / {sum(ss_) / len(k):.2f} "
                         f"({qs[worst]['sqnr_db'] - qd[worst]['sqnr_db']:+.2f}, `{worst}`)")
        ratio = sorted(qs[n]["scale"] / qd[n]["scale"] for n in names if qd[n].get("scale"))
        med = (ratio[len(ratio) // 2] + ratio[(len(ratio) - 1) // 2]) / 2 if ratio else float("nan")
        out.append(f"| {d['final']['model']} | {b} | {mode_of(d)} | {seed_of(d)} | {d['final']['epochs']} | "
                   f"{fmt_pct(d['final']['test_accuracy'])} / {fmt_pct(r['final']['test_accuracy'])} | "
                   + " | ".join(cells) +
                   (f" | {med:.3f} ({ratio[0]:.3f}..{ratio[-1]:.3f}) |" if ratio else " | |"))
    out.append("")
    return out


def glance_table(runs, methods):
    """OCTAV against float and max-scaling for every model and bit width
    that has both: retrained from float over the seeds that have both runs
    (mean change from each seed's own float model; OCTAV over max, its
    range and how many seeds OCTAV is ahead in; the best method by mean
    over the same seeds, among those run for all of them), then from
    scratch."""
    floats_all = primary_floats(runs)
    rows = []
    for model in ("cnn", "resnet20", "mobilenetv2"):
        sel = [r for r in runs.values() if r["final"]["model"] == model and mode_of(r) == "retrain"
               and r["final"]["grad"] == "mad-pwl" and "_traj" not in r["run"] and r["final"]["clip"] != "float"]
        for b in (8, 6, 4, 3, 2):
            by = {}   # (method, seed) -> run
            for r in sel:
                if r["final"]["bits"] == b:
                    for m in methods:
                        if clip_matches(r["final"]["clip"], m):
                            by.setdefault((m, seed_of(r)), r)
            seeds = sorted(s_ for (m, s_) in by if m == "octav" and ("max", s_) in by)
            if not seeds:
                continue

            def change(m):
                v = [100 * (by[m, s_]["final"]["test_accuracy"] - baseline(by[m, s_], runs, floats_all)["final"]["test_accuracy"])
                     for s_ in seeds]
                return sum(v) / len(v)

            def acc(m):
                return 100 * (sum(by[m, s_]["final"]["test_accuracy"] for s_ in seeds) / len(seeds))
            gap = [100 * (by["octav", s_]["final"]["test_accuracy"] - by["max", s_]["final"]["test_accuracy"])
                   for s_ in seeds]
            full = [m for m in methods if all((m, s_) in by for s_ in seeds)]
            best = max(full, key=acc)
            rng = f" ({min(gap):+.2f}..{max(gap):+.2f})" if len(seeds) > 1 else ""
            rows.append(f"| {model} | {b} | retrain | {', '.join(seeds)} | {acc('octav'):.2f} ({change('octav'):+.2f}) | "
                        f"{acc('max'):.2f} ({change('max'):+.2f}) | {sum(gap) / len(gap):+.2f}{rng} | "
                        f"{sum(g > 0 for g in gap)}/{len(gap)} | {best} ({acc(best):.2f}; of {len(full)}) |")
        sc = {}
        for r in runs.values():
            f = r["final"]
            if (f["model"] == model and mode_of(r) == "scratch" and f["grad"] == "mad-pwl" and seed_of(r) == "1"
                    and f["clip"] in ("octav", "max")):
                sc[f["bits"], f["clip"]] = r
        fl = floats_all.get((model, "1"))
        for b in (8, 6, 4, 3, 2):
            if (b, "octav") in sc and (b, "max") in sc and fl is not None:
                fa = 100 * fl["final"]["test_accuracy"]
                o, m = (100 * sc[b, c]["final"]["test_accuracy"] for c in ("octav", "max"))
                rows.append(f"| {model} | {b} | scratch | 1 | {o:.2f} ({o - fa:+.2f}) | {m:.2f} ({m - fa:+.2f}) | "
                            f"{o - m:+.2f} | {int(o > m)}/1 | |")
    if not rows:
        return []
    return ["### At a glance: OCTAV against float and max-scaling", "",
            "Every model and bit width with both a dynamic-OCTAV and a max-scaling run (MAD weight / PWL input "
            "gradients). Accuracy: mean test accuracy % over the seeds listed, with the mean change from each "
            "seed's float model in points. OCTAV over max: mean difference in points (range over the seeds) and "
            "the seeds where OCTAV is ahead. Best: the method with the highest mean over the same seeds, among "
            "the methods run for all of them (how many). The tables below have every run.", "",
            "| model | bits | mode | seeds | OCTAV % (vs float) | max % (vs float) | OCTAV over max | OCTAV ahead | best |",
            "|---|---:|---|---|---:|---:|---:|---:|---|"] + rows + [""]


def scratch_table(runs, methods):
    """QAT from scratch (no float model), per model and bit width: each clipping method's accuracy and its
    change from the float model of the same seed, trained for as many epochs."""
    out = []
    for model in ("cnn", "resnet20", "mobilenetv2"):
        sel = [r for r in runs.values() if r["final"]["model"] == model and mode_of(r) == "scratch"
               and r["final"]["clip"] != "float" and r["final"]["grad"] == "mad-pwl" and seed_of(r) == "1"]
        fl = [x for (m, seed), x in primary_floats(runs).items() if m == model and seed == "1"]
        if not sel or not fl:
            continue
        fa = fl[0]["final"]["test_accuracy"]
        bits = sorted({r["final"]["bits"] for r in sel}, reverse=True)
        present = [m for m in methods if any(clip_matches(r["final"]["clip"], m) for r in sel)]
        both = "octav" in present and "max" in present
        out += [f"### From scratch: {model} (seed 1; float {fmt_pct(fa)}% in {fl[0]['final']['epochs']} epochs)", "",
                "Quantized training from random weights for as many epochs as the float model, MAD weight / PWL "
                "input gradients: test accuracy %, change from float in points.", "",
                "| bits | " + " | ".join(present) + (" | OCTAV over max |" if both else " |"),
                "|---:|" + "---:|" * (len(present) + both)]
        for b in bits:
            acc = {}
            for m in present:
                rr = [r for r in sel if r["final"]["bits"] == b and clip_matches(r["final"]["clip"], m)]
                if rr:
                    acc[m] = rr[0]["final"]["test_accuracy"]
            cells = [f"{fmt_pct(acc[m])} ({100 * (acc[m] - fa):+.2f})" if m in acc else "" for m in present]
            if both:
                cells.append(f"{100 * (acc['octav'] - acc['max']):+.2f}" if "octav" in acc and "max" in acc else "")
            out.append(f"| {b} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def superseded_pact(path, floats_all):
    """The runs of octav's first PACT, which also learned the weights'
    clipping scalars (kept apart from the results file; superseded)."""
    old = load(path)
    if not old:
        return []
    out = ["### Superseded: PACT with learned weight scalars", "",
           f"Before commit 41c3d98, `--clip pact` also learned every weight quantizer's clipping scalar with PACT's "
           f"unscaled gradient; now PACT learns the activations' scalars only and max-scales the weights "
           f"(docs/TRAINING.md). The runs of the old definition, kept in "
           f"`experiments/results/{os.path.basename(path)}` and left out of every other table here:", "",
           "| run | mode | bits | test acc % | vs float (points) | clipped weights % (last epoch) | commit |",
           "|---|---|---:|---:|---:|---:|---|"]
    for r in sorted(old.values(), key=lambda r: (mode_of(r), -r["final"]["bits"], seed_of(r))):
        f = r["final"]
        fl = floats_all.get((f["model"], seed_of(r)))
        delta = "" if fl is None else f"{100 * (f['test_accuracy'] - fl['final']['test_accuracy']):+.2f}"
        wc = r["epochs"][-1].get("weight_clipped_fraction") if r.get("epochs") else None
        out.append(f"| `{r['run']}` | {mode_of(r)} | {f['bits']} | {fmt_pct(f['test_accuracy'])} | {delta} | "
                   f"{'' if wc is None else f'{100 * wc:.2f}'} | {r['commit']} |")
    out.append("")
    return out


def main():
    db, doc, tsv = sys.argv[1:4]
    runs = load(db)
    os.makedirs(tsv, exist_ok=True)
    floats_all = primary_floats(runs)
    floats = {seed: r for (model, seed), r in floats_all.items() if model == "cnn"}   # the targets are cnn's
    lines = []
    if not runs:
        lines.append("No QAT run has finished yet (`experiments/qat.sh`).")
        replace_section(doc, "qat", lines)
        return
    methods = ("octav", "static-octav", "max", "percentile", "mse-sweep", "pact", "lsq")
    lines += glance_table(runs, methods)
    lines += ["### Every run (Fashion-MNIST test set, 10,000 images)", "",
              "| run | mode | bits | clipping | gradients | epochs | test acc % | vs float (points) | train img/s | wall s | machine | commit |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    # runs recorded before qat_record.py stored the machine are A; the
    # others are named by their CPU, B, C, ... in sorted order
    early = "the machines of earlier sessions (2 cores with AVX-512; model not recorded)"
    machine_of = lambda r: r.get("machine", early)
    machines = {early: "A"} if any("machine" not in r for r in runs.values()) else {}
    for i, m in enumerate(sorted({r["machine"] for r in runs.values() if "machine" in r})):
        machines[m] = chr(ord("B") + i)
    order = sorted(runs.values(), key=lambda r: (r["final"]["model"], -r["final"]["bits"], mode_of(r), r["run"]))
    for r in order:
        f = r["final"]
        fl = floats_all.get((f["model"], seed_of(r))) if f["clip"] == "float" else baseline(r, runs, floats_all)
        delta = "" if fl is None or fl is r else f"{100 * (f['test_accuracy'] - fl['final']['test_accuracy']):+.2f}"
        bits = "float" if f["bits"] >= 32 else str(f["bits"])
        lines.append(f"| `{r['run']}` | {mode_of(r) if f['clip'] != 'float' else 'scratch'} | {bits} | {f['clip']} | "
                     f"{f['grad']} | {f['epochs']} | {fmt_pct(f['test_accuracy'])} | {delta} | "
                     f"{f['images_per_second']:.0f} | {f['wall_seconds']:.0f}{'‡' if f.get('resumed_after_epochs') else ''} | "
                     f"{machines[machine_of(r)]} | {r['commit']} |")
    lines += ["", "A run retrained from float is measured against the float run it started from (its `--init`), "
              "the others against their seed's first float run; a float run named `_rK` is that float model "
              "trained again (same model, seed and recipe) after the first one's checkpoint was lost, measured against the first.",
              "", "Commands (each run: `octav train ARGS --out results/qat/NAME.safetensors --log results/qat/NAME.jsonl --quiet`):", ""]
    for r in order:
        res = r["final"].get("resumed_after_epochs")
        lines.append(f"- `{r['run']}`: `{r['command']}`" +
                     (f" (stopped part-way and continued with `--resume` after epoch {', '.join(map(str, res))})"
                      if res else ""))
    lines.append("")
    if any(r["final"].get("resumed_after_epochs") for r in order):
        lines += ["‡ Continued with `--resume` from the checkpoint of its last finished epoch, with the thread "
                  "count it started with: the wall time is that of the epochs kept plus the last invocation's.", ""]
    lines.append("Throughput and wall time were measured while other jobs shared the 2 cores; see "
                 "docs/BENCHMARKS.md for the controlled comparison. They compare only between runs "
                 "of the same machine:")
    lines.append("")
    for m, k in sorted(machines.items(), key=lambda mk: mk[1]):
        lines.append(f"- {k}: {m}")
    lines.append("")

    # the targets, checked against the runs
    checks = []
    for seed, fl in sorted(floats.items()):
        fa = fl["final"]["test_accuracy"]
        checks.append(f"- float `cnn` (seed {seed}): {fmt_pct(fa)}% after {fl['final']['epochs']} epochs "
                      f"({'meets' if fa >= 0.92 else 'misses'} the >= 92% target).")
        for r in runs.values():
            f = r["final"]
            if (seed_of(r) != seed or f["model"] != "cnn" or f["bits"] != 4 or f["clip"] != "octav"
                    or f["grad"] != "mad-pwl" or "_traj" in r["run"]):
                continue
            d = 100 * (f["test_accuracy"] - baseline(r, runs, floats_all)["final"]["test_accuracy"])
            tgt = 0.3 if mode_of(r) == "retrain" else 0.5
            checks.append(f"- 4-bit OCTAV, MAD/PWL, {mode_of(r)} ({f['epochs']} epochs): {fmt_pct(f['test_accuracy'])}% "
                          f"({d:+.2f} points; target within {tgt}: {'met' if d >= -tgt else 'missed'}).")
    for b in (3, 2):
        for seed in sorted(floats):
            sel = [r for r in runs.values() if r["final"]["bits"] == b and seed_of(r) == seed and mode_of(r) == "retrain"
                   and r["final"]["model"] == "cnn"]
            oc = [r for r in sel if r["final"]["clip"] == "octav" and r["final"]["grad"] == "mad-pwl"]
            mx = [r for r in sel if r["final"]["clip"] == "max" and r["final"]["grad"] == "mad-pwl"]
            if oc and mx:
                a, m = oc[0]["final"]["test_accuracy"], mx[0]["final"]["test_accuracy"]
                checks.append(f"- {b}-bit, retraining, seed {seed}: OCTAV {fmt_pct(a)}% vs max-scaling {fmt_pct(m)}% "
                              f"({100 * (a - m):+.2f} points for OCTAV).")
            g = {r["final"]["grad"]: r["final"]["test_accuracy"] for r in sel if r["final"]["clip"] == "octav"}
            if len(g) > 1:
                checks.append(f"- {b}-bit OCTAV, gradient estimators, seed {seed}: " +
                              ", ".join(f"{k} {fmt_pct(v)}%" for k, v in sorted(g.items(), key=lambda kv: -kv[1])) + ".")
    lines += ["### Against the targets", ""] + checks + [""]

    # the clipping grid: retraining from the seed-1 float model, per model
    grid_models, grid_reruns = [], set()
    for model in ("cnn", "resnet20", "mobilenetv2"):
        fl = [floats_all[model, "1"]] if (model, "1") in floats_all else []
        sel = [r for r in runs.values() if r["final"]["model"] == model and mode_of(r) == "retrain"
               and seed_of(r) == "1" and r["final"]["grad"] == "mad-pwl" and "_traj" not in r["run"]]
        if not fl or not sel:
            continue
        fa = fl[0]["final"]["test_accuracy"]
        bits = sorted({r["final"]["bits"] for r in sel}, reverse=True)
        lines += [f"### Clipping methods: {model}, retrained from float (seed 1, {fmt_pct(fa)}%)", "",
                  "Test accuracy %, change from float in points; MAD weight / PWL input gradients, "
                  f"{sel[0]['final']['epochs']} epoch{'s' if sel[0]['final']['epochs'] != 1 else ''} of retraining.", "",
                  "| clipping | " + " | ".join(f"{b} bits" for b in bits) + " |", "|---|" + "---:|" * len(bits)]
        change = {}   # (method, bits) -> change from float, points
        reruns = set()
        for m in methods:
            cells, label = [], m
            for b in bits:
                rr = [r for r in sel if r["final"]["bits"] == b and clip_matches(r["final"]["clip"], m)]
                if not rr:
                    cells.append("")
                    continue
                a_ = rr[0]["final"]["test_accuracy"]
                base = baseline(rr[0], runs, floats_all)
                mark = "" if base is fl[0] else "†"
                if mark:
                    reruns.add(base["run"])
                cells.append(f"{fmt_pct(a_)} ({100 * (a_ - base['final']['test_accuracy']):+.2f}){mark}")
                label = rr[0]["final"]["clip"]
                change[m, b] = 100 * (a_ - base["final"]["test_accuracy"])
            if any(cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += rerun_note(runs, floats_all, [runs[n] for n in reruns])
        # TSV for experiments/plot_grid.gp: one row per bit width, one column per method
        with open(os.path.join(tsv, f"grid_{model}.tsv"), "w") as fh:
            fh.write("bits\t" + "\t".join(methods) + "\n")
            for b in bits:
                fh.write(f"{b}\t" + "\t".join(f"{change[m, b]:.4f}" if (m, b) in change else "NaN"
                                                for m in methods) + "\n")
        grid_models.append(model)
        grid_reruns |= reruns
    with open(os.path.join(tsv, "grid_models.txt"), "w") as fh:
        fh.write(" ".join(grid_models) + "\n")
    if grid_models and os.path.exists(os.path.join(os.path.dirname(doc), "img", "qat_grid.png")):
        lines += ["![change from float by bit width and clipping method](img/qat_grid.png)", "",
                  "The tables above as a figure: change of test accuracy from each model's float model (seed 1), "
                  "in points, against the bit width" +
                  (" (the cells marked † are changes from the float model they were retrained from)" if grid_reruns
                   else "") + ".", ""]

    lines += scratch_table(runs, methods)
    lines += superseded_pact(os.path.join(os.path.dirname(db), "qat_pact_learned_weights.jsonl"), floats_all)
    seeded = []
    for model in ("cnn", "resnet20", "mobilenetv2"):
        t = seeds_table(runs, methods, tsv, doc, model)
        seeded += [model] if t else []
        lines += t
    # the models with seeds, for experiments/plot_seeds.gp (one row each);
    # no file when none has them (run.sh then skips the figure)
    mfile = os.path.join(tsv, "seeds_models.txt")
    if seeded:
        with open(mfile, "w") as fh:
            fh.write(" ".join(seeded) + "\n")
    elif os.path.exists(mfile):
        os.remove(mfile)
    if seeded and os.path.exists(os.path.join(os.path.dirname(doc), "img", "qat_seeds.png")):
        lines += ["![test accuracy over seeds by model and bit width](img/qat_seeds.png)", "",
                  "The tables above as a figure: mean and sample standard deviation over the seeds (error bars) "
                  "of each clipping method's test accuracy, one row per model; the dashed line is the mean of "
                  "that model's float models.", ""]

    # gradient estimators: over seeds, then accuracy and the gradient norm (STE's growth)
    lines += estimators_table(runs)
    est = [r for r in runs.values() if r["final"]["clip"] == "octav" and seed_of(r) == "1"
           and r["final"]["model"] == "cnn" and r["final"]["bits"] in EPOCH_VIEW_BITS[mode_of(r)] and "_traj" not in r["run"]
           and r.get("epochs") and all(e.get("grad_norm_mean") is not None for e in r["epochs"])]
    if est:
        lines += ["### Gradient estimators: accuracy, clipped weights and gradient norm (cnn, OCTAV, seed 1)", "",
                  "Mean global gradient norm over each epoch's steps (before clipping; from the run logs), and the "
                  "fraction of weights in the clipped region at the end of the last epoch. Retrained: 2 epochs "
                  "from the float model; from scratch: 10 epochs, as the float model.", "",
                  "| from | bits | gradients | test acc % | change from float | grad norm epoch 1 | "
                  "grad norm last epoch | max grad norm | clipped weights % |",
                  "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        for r in sorted(est, key=lambda r: (mode_of(r), -r["final"]["bits"], r["final"]["grad"])):
            e = r["epochs"]
            wc = e[-1]["weight_clipped_fraction"]
            base = baseline(r, runs, floats_all)
            lines.append(f"| {mode_of(r)} | {r['final']['bits']} | {r['final']['grad']} | "
                         f"{fmt_pct(r['final']['test_accuracy'])} | "
                         f"{100 * (r['final']['test_accuracy'] - base['final']['test_accuracy']):+.2f} | "
                         f"{e[0]['grad_norm_mean']:.3f} | {e[-1]['grad_norm_mean']:.3f} | "
                         f"{max(x['grad_norm_max'] for x in e):.3f} | " +
                         (f"{100 * wc:.3f} |" if wc is not None else " |"))
        lines.append("")

    lines += static_table(runs)

    # scalar trajectories (--log-quant-every)
    traj = [r for r in runs.values() if r.get("trajectory")]
    tracked = ("features.0.conv.input", "features.2.conv.weight", "features.3.conv.input", "classifier.0.input")
    if traj:
        with open(os.path.join(tsv, "traj_index.txt"), "w") as fh:
            fh.write("\n".join(r["run"] for r in traj) + "\n")
        for r in traj:
            with open(os.path.join(tsv, r["run"] + "_traj.tsv"), "w") as fh:
                fh.write("# step\t" + "\t".join(tracked) + "\n")
                for p_ in r["trajectory"]:
                    fh.write(f"{p_['step']}\t" + "\t".join(str(p_["scales"].get(t, "NaN")) for t in tracked) + "\n")
        if os.path.exists(os.path.join(os.path.dirname(doc), "img", "qat_trajectories.png")):
            lines += ["### Scalar trajectories", "",
                      "![clipping scalars during 4-bit retraining](img/qat_trajectories.png)", "",
                      "The clipping scalar of four quantizers every 20 steps of 4-bit retraining (cnn, seed 1): "
                      "dynamic OCTAV re-solved at every step against static OCTAV calibrated once on 10 float "
                      "batches. Runs: " + ", ".join(f"`{r['run']}` (`{r['command']}`)" for r in traj) + ".", ""]
            for r in traj:
                first, last = r["trajectory"][0]["scales"], r["trajectory"][-1]["scales"]
                moves = ", ".join(f"{t} {first[t]:.4g} -> {last[t]:.4g}" for t in tracked if t in first and t in last)
                lines.append(f"- `{r['run']}`: {moves}.")
            lines.append("")

    # figure data: per-epoch curves of cnn, seed 1 (experiments/plot_qat.gp), one row of panels for
    # retraining (3 and 2 bits) and one for training from scratch (4 and 3 bits): the float run, OCTAV
    # with each gradient estimator and max-scaling; colour by clipping/estimator, dash by bit width
    colour = {("float", "float"): "#000000", ("max", "mad-pwl"): "#7b3294", ("octav", "ste"): "#d7191c",
              ("octav", "pwl"): "#f08c00", ("octav", "mad"): "#2c7bb6", ("octav", "mad-pwl"): "#1a9641"}
    dash = {32: 1, 8: 1, 6: 1, 4: 1, 3: 2, 2: 3}
    plotted = {k: [] for k in EPOCH_VIEW_BITS}
    for r in order:
        f = r["final"]
        if not r.get("epochs") or f["model"] != "cnn" or seed_of(r) != "1" or "_traj" in r["run"]:
            continue
        if (f["clip"], f["grad"]) not in colour:
            continue
        if f["clip"] == "float":   # the float run (10 epochs) goes with the from-scratch curves
            if r is floats_all[f["model"], "1"]:
                plotted["scratch"].append(r)
        elif f["bits"] in EPOCH_VIEW_BITS[mode_of(r)]:
            plotted[mode_of(r)].append(r)
    for k, rr in plotted.items():
        for r in rr:
            with open(os.path.join(tsv, r["run"] + ".tsv"), "w") as fh:
                fh.write("# epoch\tval_accuracy\tweight_clipped_fraction\tgrad_norm_mean\n")
                for e in r["epochs"]:
                    wc, gn = e["weight_clipped_fraction"], e.get("grad_norm_mean")
                    fh.write(f"{e['epoch']}\t{e['val_accuracy']}\t{wc if wc is not None else 'NaN'}\t"
                             f"{gn if gn is not None else 'NaN'}\n")
        with open(os.path.join(tsv, f"curves_{k}.txt"), "w") as fh:
            fh.write("".join(f"{r['run']} {colour[r['final']['clip'], r['final']['grad']]} {dash[r['final']['bits']]}\n"
                             for r in rr))
    # the float model the retraining starts from: its last epoch's validation accuracy, a level line
    with open(os.path.join(tsv, "curves_float_val.txt"), "w") as fh:
        fl = floats_all.get(("cnn", "1"))
        fh.write(f"{fl['epochs'][-1]['val_accuracy'] if fl and fl.get('epochs') else 'NaN'}\n")
    if os.path.exists(os.path.join(os.path.dirname(doc), "img", "qat_curves.png")):
        lines += ["### Training curves", "",
                  "![validation accuracy, clipped weights and gradient norm per epoch](img/qat_curves.png)", "",
                  "cnn, seed 1. Top row: retraining from the float model at 3 bits (dashed) and 2 bits (dotted), "
                  "with the float model's last validation accuracy as a black level line; bottom row: training from scratch at 4 bits (solid) and 3 bits (dashed); the float run in "
                  "black. Dynamic OCTAV with each gradient estimator (STE red, PWL orange, MAD blue, "
                  "MAD/PWL green) and max-scaling with MAD/PWL (purple). Left: validation accuracy (5,000 images "
                  "held out of the training set) per epoch. Middle: the mean fraction of weights in the clipped "
                  "region of their quantizer at the end of each epoch (what PWL freezes: the paper's stuck "
                  "weights). Right: the mean global gradient norm over the epoch's steps (the paper's argument "
                  "is that STE's grows).", ""]
    replace_section(doc, "qat", lines)


if __name__ == "__main__":
    main()
