#!/usr/bin/python3
"""Appends one finished QAT run to the committed results file: its name,
commit and command, the final line of its JSONL log, and per epoch the
validation accuracy, training loss and the mean clipped fraction of the
weight quantizers (what the paper's stuck-weights argument is about), and
for the last epoch every quantizer's scalar, SQNR and clipped fraction.
    qat_record.py RESULTS_FILE NAME COMMIT COMMAND LOG
    qat_record.py --refresh RESULTS_FILE LOG_DIR   (re-summarise from logs kept)
"""
import json
import os
import sys


def machine():
    """The CPU the run used (model name, widest vector ISA, cores), so that
    wall times from different machines are not compared as one."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, val = line.partition(":")
                if key.strip() == "model name":
                    model = val.strip()
                elif key.strip() == "flags":
                    flags = set(val.split())
    except OSError:
        pass
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "no avx2"
    return f"{model} ({isa}, {os.cpu_count()} cores)"


def summarize(log_path, start=None, traj=None):
    """The final line and per-epoch summary of one run's log. A run
    continued with --resume (qat.sh, after a sitting ended part-way) has
    its log appended to: what the first invocation logged after its last
    checkpoint (epoch start_epoch) is dropped, and the final line's
    wall_seconds becomes the time of the epochs kept plus the last
    invocation's wall time, with resumed_after_epochs listing where it
    continued."""
    final, epochs = None, []
    gn = []   # grad norms of the current epoch's steps
    traj_at_epoch = {0: 0}   # len(traj) when each epoch ended
    secs, resumed, earlier_seconds = [], [], 0.0   # secs: each epoch's seconds
    with open(log_path) as fh:
        for line in fh:
            o = json.loads(line)
            if o.get("event") == "resume":
                k = int(o.get("start_epoch", 0))
                epochs, secs = epochs[:k], secs[:k]
                earlier_seconds = sum(secs)
                gn = []
                if traj is not None:
                    del traj[traj_at_epoch.get(k, len(traj)):]
                resumed.append(k)
                continue
            if o.get("event") == "step":
                gn.append(o.get("grad_norm", 0.0))
                if traj is not None and "quantizers" in o:   # --log-quant-every
                    traj.append({"step": o["step"], "scales": {f"{q['layer']}.{q['tensor']}": q["scale"]
                                                               for q in o["quantizers"]}})
            if o.get("event") == "start" and start is not None:
                start.update({k: o[k] for k in ("corpus", "vocab", "parameters", "train_images") if k in o})
            if o.get("event") == "epoch":
                w = [q["clipped_fraction"] for q in o.get("quantizers", [])
                     if q.get("tensor") == "weight" and "clipped_fraction" in q]
                epochs.append({"epoch": o["epoch"], "val_accuracy": o.get("val_accuracy"),
                               "train_loss": o["train_loss"],
                               "weight_clipped_fraction": sum(w) / len(w) if w else None,
                               "grad_norm_mean": sum(gn) / len(gn) if gn else None,
                               "grad_norm_max": max(gn) if gn else None,
                               "quantizers": [{"q": f"{q['layer']}.{q['tensor']}",
                                               **{k: q[k] for k in ("bits", "scale", "sqnr_db", "clipped_fraction")
                                                  if k in q}} for q in o.get("quantizers", [])]})
                secs.append(o.get("seconds", 0.0))
                gn = []
                if traj is not None:
                    traj_at_epoch[o["epoch"]] = len(traj)
            elif o.get("event") == "final":
                final = o
    for e in epochs[:-1]:   # the last epoch's quantizers only (the state the run ended in)
        del e["quantizers"]
    if epochs and not epochs[-1]["quantizers"]:
        del epochs[-1]["quantizers"]
    if final is not None and resumed:
        final["wall_seconds"] = earlier_seconds + final["wall_seconds"]
        final["resumed_after_epochs"] = resumed
    return final, epochs


def refresh(db, logdir):
    """Re-summarises every recorded run whose log is still in logdir (the
    per-epoch fields added since it was recorded); name, commit, command and
    final line stay as recorded."""
    out = []
    for line in open(db):
        if not line.strip():
            continue
        rec = json.loads(line)
        log = os.path.join(logdir, rec["run"] + ".jsonl")
        if os.path.exists(log):
            start, traj = {}, []
            final, epochs = summarize(log, start, traj)
            if final is not None and final == rec["final"]:
                rec["epochs"] = epochs
                if start:
                    rec["start"] = start
                if traj:
                    rec["trajectory"] = traj
        out.append(json.dumps(rec, separators=(",", ":")) + "\n")
    with open(db + ".tmp", "w") as fh:
        fh.writelines(out)
    os.replace(db + ".tmp", db)


def main():
    if sys.argv[1] == "--refresh":
        refresh(sys.argv[2], sys.argv[3])
        return
    db, name, commit, command, log = sys.argv[1:6]
    start, traj = {}, []
    final, epochs = summarize(log, start, traj)
    if final is None:
        sys.exit(f"{log}: no final line (the run did not finish)")
    rec = {"run": name, "commit": commit, "command": command, "machine": machine(), "final": final,
           "epochs": epochs}
    if start:
        rec["start"] = start
    if traj:
        rec["trajectory"] = traj
    with open(db, "a") as fh:
        fh.write(json.dumps(rec, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
