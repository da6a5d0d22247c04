"""QM9 learning side by side: the original LieConv network in float32 and this project's ``QM9LieConv``
in float32 and under bfloat16 autocast, trained on the same molecules, batches and rotations.

    python benchmarks/qm9_learning_side_by_side.py --root QM9_ROOT [--seeds 0 1 2] [--columns ...]

The quick preset for all (T(3), k=128, 3 blocks, nbhd 32, fill 1; 5,000 training molecules of the
protocol's split, batch 32, 10 epochs, Adam 3e-3 with the per-step cosine schedule and 1% warm-up,
L1 loss on the HOMO normalised by the training median and MAD, a random rotation of every molecule);
the test MAE (meV) over the protocol's test split after the last step, mean and 95% t-interval over
the seeds. Each run is its own process (``--jobs`` at a time, one thread each). The original is
imported at run time from ``--reference``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

from learning_side_by_side import interval, run_in_processes  # same folder
from side_by_side import DEFAULT_REFERENCE, import_reference

from torch_geometric_lieconv.datasets.qm9 import (get_target, load_qm9, qm9_splits, target_statistics,
                                                  target_values)
from torch_geometric_lieconv.groups import random_rotations
from torch_geometric_lieconv.models import QM9LieConv
from torch_geometric_lieconv.models.qm9 import atom_features
from torch_geometric_lieconv.training import cosine_warmup_lambda

COLUMNS = ("original fp32", "project fp32", "project bf16")
K, LAYERS, NBHD, BATCH, TRAIN_SIZE, VALID_SIZE = 128, 3, 32, 32, 5000, 500


def train_one(spec: Dict) -> Dict:
    """One run in this process; its test MAE in meV."""
    from torch_geometric.data import Batch
    from torch_geometric.utils import to_dense_batch

    torch.set_num_threads(1)
    dataset = load_qm9(spec["root"], download=False)
    splits = qm9_splits(len(dataset), seed=0, train_size=TRAIN_SIZE, valid_size=VALID_SIZE)
    target = get_target("homo")
    all_y = target_values(dataset._data.y, target)  # meV, one row per molecule
    median, mad = target_statistics(all_y[splits["train"]])
    torch.manual_seed(spec["seed"])
    if spec["column"] == "original fp32":
        reference = import_reference(Path(spec["reference"]))
        model = reference.layers.LieResNet(chin=15, num_outputs=1, k=K, nbhd=NBHD, num_layers=LAYERS, fill=1.0,
                                           liftsamples=1, group=reference.groups.T(3), bn=True, mean=True, ds_frac=1)

        def predict(batch) -> torch.Tensor:
            pos, mask = to_dense_batch(batch.pos, batch.batch)
            features, _ = to_dense_batch(atom_features(batch.z), batch.batch)
            return model((pos, features, mask)).squeeze(-1)
    else:
        model = QM9LieConv("T3", hidden_channels=K, num_layers=LAYERS, mc_samples=NBHD, fill=1.0)
        autocast = spec["column"] == "project bf16"

        def predict(batch) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                return model(batch.z, batch.pos, batch.batch).squeeze(-1).float()

    train = splits["train"]
    steps_per_epoch = -(-len(train) // BATCH)
    total = spec["epochs"] * steps_per_epoch
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_warmup_lambda(total, 0.01))
    data_order = torch.Generator().manual_seed(1000 + spec["seed"])  # the same for every column
    start = time.process_time()
    model.train()
    for _ in range(spec["epochs"]):
        perm = train[torch.randperm(len(train), generator=data_order)]
        for step in range(steps_per_epoch):
            index = perm[step * BATCH:(step + 1) * BATCH]
            batch = Batch.from_data_list([dataset[int(i)] for i in index])
            rotations = random_rotations((len(index),), 3, generator=data_order)
            batch.pos = (batch.pos.unsqueeze(1) @ rotations[batch.batch].transpose(1, 2)).squeeze(1)
            y = (all_y[index] - median) / mad
            loss = (predict(batch) - y).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    train_s = time.process_time() - start
    model.eval()
    test = splits["test"]
    errors = []
    with torch.no_grad():
        for first in range(0, len(test), 100):
            index = test[first:first + 100]
            batch = Batch.from_data_list([dataset[int(i)] for i in index])
            errors.append((predict(batch) * mad + median - all_y[index]).abs())
    return {**spec, "test_mae": float(torch.cat(errors).mean()), "test_molecules": len(test),
            "train_cpu_s": train_s, "steps": total}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="a QM9 root (PyG's layout)")
    parser.add_argument("--reference", default=str(DEFAULT_REFERENCE))
    parser.add_argument("--columns", nargs="+", default=list(COLUMNS), choices=COLUMNS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the quick preset")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--out", default=None, help="also write the runs as JSON here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(train_one(json.loads(args.worker))))
        return
    if args.root is None:
        parser.error("--root is required")
    reference = Path(args.reference).expanduser().resolve()
    columns = [c for c in args.columns if c != "original fp32" or import_reference(reference) is not None]
    if len(columns) < len(args.columns):
        print(f"No original LieConv code at {reference}: the project's columns only.\n")
    load_qm9(args.root, download=False)  # process the root once, before the parallel runs
    specs = [{"column": column, "seed": seed, "epochs": args.epochs, "root": args.root, "reference": str(reference)}
             for seed in args.seeds for column in columns]

    results = run_in_processes(__file__, specs, args.jobs, lambda r: (
        f"{r['column']:14s} seed {r['seed']}: test MAE {r['test_mae']:.1f} meV ({r['train_cpu_s']:.0f} CPU s)"))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"Command: `python benchmarks/qm9_learning_side_by_side.py {' '.join(sys.argv[1:] if argv is None else argv)}`  ")
    print(f"{results[0]['steps']} optimizer steps per run; HOMO test MAE (meV) on {results[0]['test_molecules']} "
          f"molecules after the last step, mean [95% t-interval] over seeds {', '.join(map(str, args.seeds))}.\n")
    print("| column | test MAE meV | train CPU s (mean) |\n|---|---|---|")
    for column in columns:
        rows = [r for r in results if r["column"] == column]
        print(f"| {column} | {interval([r['test_mae'] for r in rows])} | "
              f"{sum(r['train_cpu_s'] for r in rows) / len(rows):.0f} |")


if __name__ == "__main__":
    main()
