"""The QM9 application's benchmark pieces: the paper's models, their step on QM9-sized batches, the
original LieConv's network beside this project's, and one learning run on real molecules.

Used by ``python -m benchmarks.benchmark`` (section ``qm9``), ``python -m benchmarks.side_by_side
--sections qm9``, ``python -m benchmarks.mixed_precision`` and ``python -m
benchmarks.qm9_learning_side_by_side``; it has no command of its own.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Callable, Dict, List

import torch
from torch_geometric.utils import to_dense_batch

from benchmarks.harness import (Clock, Meter, adam_step, autocast, fit, import_reference, interleaved, ratio,
                                run_worker, seconds, table)
from benchmarks.inputs import qm9_like_batch
from torch_geometric_lieconv import SE3, T, group_from_name
from torch_geometric_lieconv.models import QM9LieConv
from torch_geometric_lieconv.models.qm9 import atom_features

#: the paper's QM9 networks (``T3``, ``SE3``) and ``--preset quick``'s (``T3-quick``)
CONFIGS = {
    "T3": dict(group="T3", layers=6, nbhd=100, fill=1.0, lift=1),
    "SE3": dict(group="SE3", layers=6, nbhd=25, fill=0.5, lift=4),
    "T3-quick": dict(group="T3", layers=3, nbhd=32, fill=1.0, lift=1),
}


def build_model(spec: dict) -> QM9LieConv:
    """The :class:`QM9LieConv` of ``spec`` (``group``, ``k``, ``layers``, ``nbhd``, ``fill``, ``lift``)."""
    group = T(3) if spec["group"] == "T3" else SE3(alpha=0.2)
    return QM9LieConv(group, hidden_channels=spec["k"], num_layers=spec["layers"], mc_samples=spec["nbhd"],
                      fill=spec["fill"], lift_samples=spec["lift"], aggregation=spec.get("aggregation", "bmm"))


def dense_forward(model: QM9LieConv, z, pos, batch, frames=None):
    """The QM9 model's forward with every LieConv replaced by the dense padded reference."""
    from torch_scatter import scatter_mean

    from torch_geometric_lieconv.testing import dense_model_forward

    if model.center:
        pos = pos - scatter_mean(pos, batch, dim=0)[batch]
    x = model.atom_features(z).to(pos.dtype)
    return dense_model_forward(model.net, x, pos * model.pos_scale, batch, frames).squeeze(-1)


# ----------------------------------------------------------------------------------------------- speed
def speed_worker(spec: dict, meter: Meter, device: torch.device) -> dict:
    """Forward and forward+backward of one implementation (``spec["impl"]``: sparse, dense or schnet)
    on one QM9-sized batch."""
    z, pos, batch = (t.to(device) for t in qm9_like_batch(75, spec["seed"]))
    if spec["impl"] == "schnet":
        from torch_geometric.nn.models import SchNet

        from torch_geometric_lieconv.models import RadiusInteractionGraph

        model = SchNet(interaction_graph=RadiusInteractionGraph()).to(device)
        call = lambda: model(z, pos, batch).squeeze(-1)  # noqa: E731
    else:
        model = build_model(spec).to(device)
        if spec["impl"] == "sparse":
            call = lambda: model(z, pos, batch)  # noqa: E731
        else:
            call = lambda: dense_forward(model, z, pos, batch)  # noqa: E731

    def forward_eval():
        model.eval()
        with torch.no_grad(), autocast(device, spec["dtype"]):
            return call()

    def step_train():
        model.train()
        model.zero_grad(set_to_none=True)
        with autocast(device, spec["dtype"]):
            out = call()
        out.float().square().mean().backward()

    res = meter.measure({"fwd": forward_eval, "fwdbwd": step_train}, spec["reps"])
    return {"fwd": res["fwd"], "fwdbwd": res["fwdbwd"], "atoms": int(z.numel()),
            "max_atoms": int(torch.bincount(batch).max()), "params": sum(p.numel() for p in model.parameters())}


def check_worker(spec: dict, meter: Meter, device: torch.device) -> dict:
    """Largest |sparse - dense| output difference (eval), sparse in the run's dtype, dense in float32.

    SE(3) is checked with fill 1, nbhd >= molecule size and explicit frames (no randomness), where the
    sparse and dense models compute the same function.
    """
    from torch_geometric_lieconv.groups import random_rotations

    spec = dict(spec)
    if spec["group"] == "SE3":
        spec.update(fill=1.0, nbhd=1000)
    z, pos, batch = (t.to(device) for t in qm9_like_batch(75, spec["seed"]))
    torch.manual_seed(spec["seed"])
    model = build_model(spec).to(device).eval()
    frames = random_rotations((z.numel(), spec["lift"]), 3, device=device) if spec["group"] == "SE3" else None
    with torch.no_grad():
        with autocast(device, spec["dtype"]):
            sparse = model(z, pos, batch, frames).float()
        dense = dense_forward(model, z, pos, batch, frames)
    checked = f"fill {spec['fill']:g}, nbhd {spec['nbhd']}" + (", explicit frames" if frames is not None else "")
    return {"max_abs_diff": float((sparse - dense).abs().max()), "max_abs_out": float(dense.abs().max()),
            "checked": checked}


# ----------------------------------------------------------------------------------------------- side by side
#: the side-by-side QM9 models: (group, lift samples, nbhd at the quick size, nbhd at the paper's, fill)
SIDE_BY_SIDE_MODELS = [("T3", 1, 32, 100, 1.0), ("SE3", 4, 25, 25, 0.5)]
#: (k, blocks) of the QM9 network at each ``--size``
SIZES = {"quick": (128, 3), "paper": (1536, 6)}


def batches(count: int, device: torch.device) -> List[tuple]:
    """``count`` different batches of 75 QM9-sized molecules, each as the project's ``(z, pos, batch)``
    and the original's padded ``(positions, features, mask)``, with a target per molecule. Every step
    takes the next one, as training does: repeating one batch would let oneDNN reuse the kernels it set up
    for its shapes, which flatters bfloat16 (1.3x slower with new batches at k=128, faster with one)."""
    out = []
    for seed in range(count):
        z, pos, batch = (t.to(device) for t in qm9_like_batch(75, seed=seed))
        dense_pos, mask = to_dense_batch(pos, batch)
        dense_features, _ = to_dense_batch(atom_features(z), batch)
        target = torch.randn(75, generator=torch.Generator().manual_seed(seed)).to(device)
        out.append(((z, pos, batch), (dense_pos, dense_features, mask), target))
    return out


def side_by_side_steps(reference, name: str, columns: List[str], args, device: torch.device) -> Dict[str, Callable]:
    """The training steps of the chosen ``columns`` (``"original fp32"``, ``"project fp32"``,
    ``"project bf16"``) for one QM9 model; each column walks the same sequence of batches."""
    k, layers = SIZES[args.size]
    _, lifts, quick_nbhd, paper_nbhd, fill = next(m for m in SIDE_BY_SIDE_MODELS if m[0] == name)
    nbhd = quick_nbhd if args.size == "quick" else paper_nbhd
    inputs = batches(args.warmup + args.steps, device)
    steps = {}
    for column in columns:
        torch.manual_seed(0)
        if column == "original fp32":
            group = reference.groups.T(3) if name == "T3" else reference.groups.SE3(0.2)
            model = reference.layers.LieResNet(chin=inputs[0][1][1].shape[-1], num_outputs=1, k=k, nbhd=nbhd,
                                               num_layers=layers, fill=fill, liftsamples=lifts, group=group, bn=True,
                                               mean=True, ds_frac=1).to(device).train()
            forward = lambda model, item: model(item[1])  # noqa: E731
        else:
            model = QM9LieConv(group_from_name(name, 0.2 if name == "SE3" else None), hidden_channels=k,
                               num_layers=layers, mc_samples=nbhd, fill=fill, lift_samples=lifts).to(device).train()
            forward = lambda model, item: model(*item[0])  # noqa: E731
        bf16 = column.endswith("bf16")
        order = itertools.count()

        def loss(model=model, forward=forward, bf16=bf16, order=order):
            item = inputs[next(order) % len(inputs)]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = forward(model, item).squeeze(-1).float()
            return (out - item[2]).abs().mean()

        steps[column] = adam_step(model, loss)
    return steps


def side_by_side_worker(spec: dict) -> Dict[str, float]:
    """The bfloat16 column in its own process (after float32 steps in the same process, oneDNN's
    bfloat16 kernels run slower than in a process of their own: the process a run would be)."""
    torch.set_num_threads(spec["threads"])
    args = argparse.Namespace(**spec["args"])
    device = torch.device(args.device)
    steps = side_by_side_steps(None, spec["name"], ["project bf16"], args, device)
    return interleaved(steps, args.steps, args.warmup, Clock(device))


def side_by_side_section(reference, args, clock: Clock, device: torch.device) -> str:
    """The QM9 table of ``benchmarks.side_by_side``."""
    k, layers = SIZES[args.size]
    rows = []
    for name, lifts, quick_nbhd, paper_nbhd, fill in SIDE_BY_SIDE_MODELS:
        nbhd = quick_nbhd if args.size == "quick" else paper_nbhd
        columns = (["original fp32"] if reference is not None else []) + ["project fp32"]
        best = interleaved(side_by_side_steps(reference, name, columns, args, device), args.steps, args.warmup, clock)
        spec = {"name": name, "threads": args.threads,
                "args": {key: getattr(args, key) for key in ("size", "steps", "warmup", "device")}}
        best.update(run_worker(f"{__name__}:side_by_side_worker", spec, args.timeout))
        original = best.get("original fp32")
        rows.append([f"{name}, {lifts} lift(s), nbhd {nbhd}, fill {fill:g}", seconds(original),
                     seconds(best["project fp32"]), ratio(original, best["project fp32"]),
                     seconds(best["project bf16"]), ratio(original, best["project bf16"]),
                     ratio(best["project fp32"], best["project bf16"])])
        print(f"  qm9 {name}: {best}", file=sys.stderr, flush=True)
    return (f"QM9, k={k}, {layers} blocks, 75 QM9-sized molecules (a new batch every step, the same sequence "
            f"for every column; bf16 in a process of its own), training step (s):\n\n"
            + table(["model", "original fp32", "project fp32", "speed-up", "project bf16", "speed-up",
                     "bf16 / fp32"], rows))


# ----------------------------------------------------------------------------------------------- learning
LEARNING_COLUMNS = ("original fp32", "project fp32", "project bf16")
#: the quick preset of the learning comparison
K, LAYERS, NBHD, BATCH, TRAIN_SIZE, VALID_SIZE = 128, 3, 32, 32, 5000, 500


def learning_run(spec: Dict) -> Dict:
    """One run of ``benchmarks.qm9_learning_side_by_side`` in this process; its test MAE in meV."""
    from torch_geometric.data import Batch

    from torch_geometric_lieconv.datasets import get_target, load_qm9, qm9_splits
    from torch_geometric_lieconv.datasets.qm9 import target_statistics, target_values
    from torch_geometric_lieconv.groups import random_rotations

    torch.set_num_threads(1)
    dataset = load_qm9(spec["root"], download=False)
    splits = qm9_splits(len(dataset), seed=0, train_size=TRAIN_SIZE, valid_size=VALID_SIZE)
    all_y = target_values(dataset.y, get_target("homo"))  # meV, one row per molecule
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
        bf16 = spec["column"] == "project bf16"

        def predict(batch) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return model(batch.z, batch.pos, batch.batch).squeeze(-1).float()

    def loss_of(index: torch.Tensor, data_order: torch.Generator) -> torch.Tensor:
        batch = Batch.from_data_list([dataset[int(i)] for i in index])
        rotations = random_rotations((len(index),), 3, generator=data_order)
        batch.pos = (batch.pos.unsqueeze(1) @ rotations[batch.batch].transpose(1, 2)).squeeze(1)
        return (predict(batch) - (all_y[index] - median) / mad).abs().mean()

    steps_per_epoch = -(-len(splits["train"]) // BATCH)
    train_s = fit(model, loss_of, splits["train"], BATCH, steps_per_epoch, spec["epochs"], spec["seed"])
    model.eval()
    test = splits["test"]
    errors = []
    with torch.no_grad():
        for first in range(0, len(test), 100):
            index = test[first:first + 100]
            batch = Batch.from_data_list([dataset[int(i)] for i in index])
            errors.append((predict(batch) * mad + median - all_y[index]).abs())
    return {**spec, "test_mae": float(torch.cat(errors).mean()), "test_molecules": len(test),
            "train_cpu_s": train_s, "steps": spec["epochs"] * steps_per_epoch}

