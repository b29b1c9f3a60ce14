#!/usr/bin/python3
"""Writes the generated section of docs/RESULTS.md (between '<!-- BEGIN
curves -->' and '<!-- END curves -->') from the TSVs of octav_exp_curve.
Every number in it is read from those files; the findings are computed here.
Usage: report.py RESULTS_DIR docs/RESULTS.md"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from docsection import replace_section  # noqa: E402

SRCS = [("gauss", "Gaussian, 1M samples"), ("laplace", "Laplace, 1M samples"),
        ("cnn_conv3_weight", "trained CNN conv3.weight (18432 values)"),
        ("cnn_conv3_input", "trained CNN conv3.input, unsigned grid (12544 values)")]
METHODS = ["octav", "max", "percentile-99.9", "percentile-99.99", "sigma-3", "aciq-laplace", "aciq-gauss",
           "mse-sweep", "entropy"]


def rows(path):
    with open(path) as f:
        return [l.rstrip("\n").split("\t") for l in f if not l.startswith("#")]


def marks(d, src, b):
    return {r[0]: (float(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows(f"{d}/marks_{src}_{b}.tsv")}


def main():
    d, doc = sys.argv[1], sys.argv[2]
    out = ["### Clipping ratios under exact expectations (s / b for Laplace(b), s / sigma for Gaussian)", "",
           "| bits | OCTAV Laplace | ACIQ Laplace | OCTAV Gaussian | ACIQ Gaussian |", "|---:|---:|---:|---:|---:|"]
    for r in rows(f"{d}/ratios.tsv"):
        out.append("| " + " | ".join(r) + " |")
    out += ["", "### True quantization MSE of every method (full grid; unsigned for the activation)", ""]
    for src, title in SRCS:
        out += [f"**{title}**", "", f"![{title}](img/cost_{src}.png)", "",
                "Each cell: s / max|x|, then the true MSE relative to the best method at that width (1.000 = best).",
                "", "| method | 2 bits | 4 bits | 8 bits |", "|---|---|---|---|"]
        ms = {b: marks(d, src, b) for b in (2, 4, 8)}
        best = {b: min(v[2] for v in ms[b].values()) for b in ms}
        for m in METHODS:
            cells = [f"{ms[b][m][1]:.3f}, {ms[b][m][2] / best[b]:.3f}" for b in (2, 4, 8)]
            out.append(f"| {m} | " + " | ".join(cells) + " |")
        out.append("")
    # findings, computed
    f = []
    for src, title in SRCS:
        for b in (2, 4, 8):
            m = marks(d, src, b)
            f.append((src, b, m["octav"][2] / m["mse-sweep"][2], m["max"][2] / m["octav"][2]))
    worst = max(f, key=lambda t: t[2])
    ge4 = [t for t in f if t[1] >= 4]
    out += ["### Findings (computed from the tables above)", "",
            f"- From 4 bits up, OCTAV's true MSE is within {100 * (max(t[2] for t in ge4) - 1):.1f}% of the "
            f"100-point MSE sweep's on every source here (the sweep optimises the true MSE directly; OCTAV "
            f"optimises the additive-noise model without a sweep), and max-scaling's MSE is "
            f"{min(t[3] for t in ge4):.2f}x to {max(t[3] for t in ge4):.2f}x OCTAV's.",
            f"- The largest gap is at {worst[1]} bits on {worst[0]}: OCTAV's MSE is {worst[2]:.3f}x the sweep's. "
            f"The real grids clip below s — the full grid's positive edge is (2^(B-1)-1)/2^(B-1) s, the "
            f"unsigned grid's (2^B-1)/2^B s, s/2 and 3s/4 at 2 bits — while OCTAV's model assumes a clip at s, "
            f"so the model is furthest from the real quantizer at 2 bits."]
    traj = rows(f"{d}/traj_laplace_8.tsv")
    final = float(traj[-1][1])
    s10 = float(traj[10][1])
    conv = next(int(r[0]) for r in traj if float(r[1]) == final)
    same = all(len(set(rows(f"{d}/traj_{src}_{b}.tsv")[-1][1:])) == 1 for src, _ in SRCS for b in (2, 4, 8))
    out.append(f"- Convergence: from the paper's start (the mean of |x|), Laplace at 8 bits reaches its fixed "
               f"point {final:.4f} after {conv} steps; the paper's fixed 10 iterations stop at {s10:.4f} "
               f"({100 * (final - s10) / final:.1f}% short). After 15 steps the four starts (mean, max, "
               f"0.01 max, 5 sigma) " + ("agree on every source and width." if same else
                                         "do not all agree on every source and width."))
    out.append("")
    replace_section(doc, "curves", out)


if __name__ == "__main__":
    main()
