"""The plain PyG workflow: ``QM9(root, transform=LiftGraph(...))``, a ``DataLoader`` and a LieConv model.

    python examples/qm9_pyg_workflow.py --root data/QM9 --molecules 2000 --epochs 2

Each molecule is lifted to T(3) by the dataset transform (``LiftGraph``: lifted nodes, their
candidate pairs as ``edge_index`` and the pair embeddings abq as ``edge_attr``, ``z`` repeated per
lifted node); the ``DataLoader`` batches the lifted graphs like any PyG graphs, and
``QM9LieConv.forward_lifted`` runs on the batch. The target is HOMO (eV, PyG's column 2); the model
predicts it in eV, normalised inside by the training median and MAD (its ``mean`` and ``std``). ``--root`` is any QM9 root: PyG downloads the data set there when it
is missing.
"""
from __future__ import annotations

import argparse
from typing import List, Optional

import torch
from torch_geometric_lieconv.datasets.qm9 import SafeQM9 as QM9  # PyG's QM9, read with weights_only
from torch_geometric.loader import DataLoader

from torch_geometric_lieconv import QM9LieConv
from torch_geometric_lieconv.transforms import LiftGraph

HOMO = 2  # PyG's QM9 target column (eV)


def main(argv: Optional[List[str]] = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="QM9 root folder (downloaded there when missing)")
    parser.add_argument("--molecules", type=int, default=2000, help="molecules used (train 80%%, test 20%%)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=75)
    parser.add_argument("--hidden", type=int, default=64, help="channels k of the LieResNet")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (1 is fastest for small models)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    dataset = QM9(args.root, transform=LiftGraph("T3"))[: args.molecules]
    num_train = int(0.8 * len(dataset))
    train, test = dataset[:num_train], dataset[num_train:]
    targets = torch.stack([train.get(i).y[0, HOMO] for i in range(len(train))])  # no transform needed here
    median = targets.median()
    mad = (targets - median).abs().mean()

    model = QM9LieConv("T3", hidden_channels=args.hidden, num_layers=3, mc_samples=32, fill=1.0,
                       target_mean=float(median), target_std=float(mad))  # eV, as data.y
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    print(f"{len(train)} training and {len(test)} test molecules; model {model}")
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for data in DataLoader(train, batch_size=args.batch_size, shuffle=True):
            loss = (model.forward_lifted(data) - data.y[:, HOMO:HOMO + 1]).abs().mean() / mad
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * data.num_graphs
        print(f"epoch {epoch}: train L1 (normalised) {total / len(train):.4f}")

    model.eval()
    errors = []
    with torch.no_grad():
        for data in DataLoader(test, batch_size=args.batch_size):
            errors.append((model.forward_lifted(data) - data.y[:, HOMO:HOMO + 1]).abs())
    mae_mev = 1000 * float(torch.cat(errors).mean())
    baseline_mev = 1000 * float(torch.stack([test.get(i).y[0, HOMO] for i in range(len(test))]).sub(median).abs().mean())
    print(f"test MAE {mae_mev:.1f} meV (predicting the training median: {baseline_mev:.1f} meV)")
    return mae_mev


if __name__ == "__main__":
    main()
