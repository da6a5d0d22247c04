"""Learning curves of several ``lieconv train`` runs in one figure, and their table.

    python examples/compare_runs.py runs/rotmnist-T2-quick runs/rotmnist-SO2-quick --metric valid_error \\
        --out curves.png
    python examples/compare_runs.py runs/qm9-homo-T3-quick runs/qm9-homo-schnet-quick --metric valid_mae \\
        --labels LieConv SchNet --out qm9.png

Reads each run's ``metrics.csv`` (one row per epoch) and plots the metric against the epoch and
against the cumulative process CPU time of the run (``cpu_s``; runs that predate it appear only
against the epoch); prints a markdown table of the metric per epoch with the CPU seconds per epoch
(the wall time, marked, for runs without ``cpu_s``).
"""
from __future__ import annotations

import argparse
import csv
import os
from typing import Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_history(run: str) -> List[Dict[str, float]]:
    path = os.path.join(run, "metrics.csv")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run} has no metrics.csv; is it a 'lieconv train' run folder?")
    with open(path) as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders")
    parser.add_argument("--metric", required=True, help="a column of metrics.csv, e.g. valid_error, valid_mae")
    parser.add_argument("--labels", nargs="+", default=None, help="one label per run (default: folder names)")
    parser.add_argument("--out", default=None, help="write the figure here (PNG)")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    labels = args.labels or [os.path.basename(os.path.normpath(run)) for run in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"{len(args.runs)} runs but {len(labels)} labels")
    histories = [read_history(run) for run in args.runs]
    for run, history in zip(args.runs, histories):
        if not history or args.metric not in history[0]:
            parser.error(f"{run}: no column {args.metric!r} in metrics.csv")

    epochs = max(len(h) for h in histories)
    print("| run | CPU s/epoch | " + " | ".join(f"epoch {e}" for e in range(1, epochs + 1)) + " |")
    print("|---|---|" + "---|" * epochs)
    for label, history in zip(labels, histories):
        clock = "cpu_s" if "cpu_s" in history[0] else "time_s"
        per_epoch = sum(row[clock] for row in history) / len(history)
        cells = [f"{row[args.metric]:.4g}" for row in history] + [""] * (epochs - len(history))
        note = "" if clock == "cpu_s" else " (wall)"
        print(f"| {label} | {per_epoch:.1f}{note} | " + " | ".join(cells) + " |")

    if args.out:
        timed = [("cpu_s" in h[0]) for h in histories]  # wall times of a shared machine are not comparable
        fig, axes = plt.subplots(1, 2 if any(timed) else 1, figsize=(10 if any(timed) else 5, 3.8), squeeze=False)
        by_epoch = axes[0, 0]
        for label, history, has_cpu in zip(labels, histories, timed):
            values = [row[args.metric] for row in history]
            line = by_epoch.plot([row["epoch"] for row in history], values, marker="o", ms=3, label=label)[0]
            if has_cpu:
                elapsed, total = [], 0.0
                for row in history:
                    total += row["cpu_s"]
                    elapsed.append(total / 60)
                axes[0, 1].plot(elapsed, values, marker="o", ms=3, color=line.get_color(), label=label)
        by_epoch.set(xlabel="epoch", ylabel=args.metric)
        if any(timed):
            axes[0, 1].set(xlabel="CPU minutes (process time)", ylabel=args.metric)
        for ax in axes[0]:
            ax.grid(alpha=0.3)
        by_epoch.legend(fontsize=8)
        if args.title:
            fig.suptitle(args.title, fontsize=10)
        fig.tight_layout()
        fig.savefig(args.out, dpi=130)
        print(f"figure: {args.out}" + ("" if all(timed) else " (runs without cpu_s only against the epoch)"))


if __name__ == "__main__":
    main()
