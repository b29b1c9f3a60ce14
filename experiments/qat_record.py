#!/usr/bin/python3
"""Appends one finished QAT run to the committed results file: its name,
commit and command, the final line of its JSONL log, and per epoch the
validation accuracy, training loss and the mean clipped fraction of the
weight quantizers (what the paper's stuck-weights argument is about).
    qat_record.py RESULTS_FILE NAME COMMIT COMMAND LOG
"""
import json
import sys


def summarize(log_path, start=None):
    final, epochs = None, []
    with open(log_path) as fh:
        for line in fh:
            o = json.loads(line)
            if o.get("event") == "start" and start is not None:
                start.update({k: o[k] for k in ("corpus", "vocab", "parameters", "train_images") if k in o})
            if o.get("event") == "epoch":
                w = [q["clipped_fraction"] for q in o.get("quantizers", [])
                     if q.get("tensor") == "weight" and "clipped_fraction" in q]
                epochs.append({"epoch": o["epoch"], "val_accuracy": o.get("val_accuracy"),
                               "train_loss": o["train_loss"],
                               "weight_clipped_fraction": sum(w) / len(w) if w else None})
            elif o.get("event") == "final":
                final = o
    return final, epochs


def main():
    db, name, commit, command, log = sys.argv[1:6]
    start = {}
    final, epochs = summarize(log, start)
    if final is None:
        sys.exit(f"{log}: no final line (the run did not finish)")
    rec = {"run": name, "commit": commit, "command": command, "final": final, "epochs": epochs}
    if start:
        rec["start"] = start
    with open(db, "a") as fh:
        fh.write(json.dumps(rec, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
