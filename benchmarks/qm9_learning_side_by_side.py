"""QM9 learning side by side: the original LieConv network in float32 and this project's ``QM9LieConv``
in float32 and under bfloat16 autocast, trained on the same molecules, batches and rotations.

    python -m benchmarks.qm9_learning_side_by_side --root QM9_ROOT [--seeds 0 1 2] [--columns ...]

The quick preset for all (T(3), k=128, 3 blocks, nbhd 32, fill 1; 5,000 training molecules of the
protocol's split, batch 32, 10 epochs, Adam 3e-3 with the per-step cosine schedule and 1% warm-up,
L1 loss on the HOMO normalised by the training median and MAD, a random rotation of every molecule);
the test MAE (meV) over the protocol's test split after the last step, mean and 95% t-interval over
the seeds. Each run is its own process (``--jobs`` at a time, one thread each). The original is
imported at run time from ``--reference``. The runs are ``benchmarks.qm9.learning_run``.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from benchmarks.harness import command, import_reference, interval
from benchmarks.learning_side_by_side import learning_parser, run_all
from benchmarks.qm9 import LEARNING_COLUMNS
from torch_geometric_lieconv.datasets import load_qm9


def main(argv: Optional[List[str]] = None) -> None:
    parser = learning_parser(__spec__.name, __doc__, "a QM9 root (PyG's layout)", epochs=10)
    parser.add_argument("--columns", nargs="+", default=list(LEARNING_COLUMNS), choices=LEARNING_COLUMNS)
    args = parser.parse_args(argv)
    if args.root is None:
        parser.error("--root is required")
    reference = Path(args.reference).expanduser().resolve()
    columns = [c for c in args.columns if c != "original fp32" or import_reference(reference) is not None]
    if len(columns) < len(args.columns):
        print(f"No original LieConv code at {reference}: the project's columns only.\n")
    load_qm9(args.root, download=False)  # process the root once, before the parallel runs
    specs = [{"column": column, "seed": seed, "epochs": args.epochs, "root": args.root, "reference": str(reference)}
             for seed in args.seeds for column in columns]

    results = run_all("benchmarks.qm9:learning_run", specs, args, lambda r: (
        f"{r['column']:14s} seed {r['seed']}: test MAE {r['test_mae']:.1f} meV ({r['train_cpu_s']:.0f} CPU s)"))
    print(f"Command: `{command(__spec__.name, argv)}`  ")
    print(f"{results[0]['steps']} optimizer steps per run; HOMO test MAE (meV) on {results[0]['test_molecules']} "
          f"molecules after the last step, mean [95% t-interval] over seeds {', '.join(map(str, args.seeds))}.\n")
    print("| column | test MAE meV | train CPU s (mean) |\n|---|---|---|")
    for column in columns:
        rows = [r for r in results if r["column"] == column]
        print(f"| {column} | {interval([r['test_mae'] for r in rows])} | "
              f"{sum(r['train_cpu_s'] for r in rows) / len(rows):.0f} |")


if __name__ == "__main__":
    main()
