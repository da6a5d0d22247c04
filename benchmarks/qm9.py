"""The QM9 application's benchmark pieces: the paper's models, their step on QM9-sized batches, the
original LieConv's network beside this project's (on real molecules of a QM9 root, or synthetic
QM9-sized ones; eager and under ``torch.compile``), and one learning run on real molecules.

Used by ``python -m benchmarks.benchmark`` (section ``qm9``), ``python -m benchmarks.side_by_side
--sections qm9``, ``python -m benchmarks.mixed_precision``, ``python -m benchmarks.qm9_profile`` and
``python -m benchmarks.qm9_learning_side_by_side``; it has no command of its own.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from torch_geometric.utils import to_dense_batch

from benchmarks.harness import (Clock, Meter, WorkerError, adam_step, autocast, bfloat16_description, fit,
                                import_reference, median, run_worker, seconds, table)
from benchmarks.inputs import qm9_like_batch
from torch_geometric_lieconv import SE3, T, group_from_name
from torch_geometric_lieconv.models import QM9LieConv
from torch_geometric_lieconv.models.qm9 import atom_features
from torch_geometric_lieconv.training.optimisation import adam

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
#: the side-by-side columns: the original, the project eager, the project under ``torch.compile``
COLUMNS = ("original fp32", "project fp32", "project bf16")
COMPILED_COLUMNS = ("project fp32 compiled", "project bf16 compiled")
#: molecules per batch (the paper's QM9 batch size)
BATCH_MOLECULES = 75


def _processed_root(root: str, scratch: Optional[str] = None) -> str:
    """``root`` where it holds PyG's processed QM9 already; otherwise a folder under ``scratch``
    (default: the temporary directory) whose ``raw`` links to ``root``'s raw files, where the project's
    loader processes them once. The given root is never written, even when the mode of its files would
    let this process (root) write there."""
    root = os.path.abspath(os.path.expanduser(root))
    if os.path.exists(os.path.join(root, "processed", "data_v3.pt")):
        return root
    raw = os.path.join(root, "raw")
    if not os.path.isdir(raw):
        raise FileNotFoundError(f"no QM9 data under {root} (expected raw/ or processed/data_v3.pt)")
    names = sorted(os.listdir(raw))
    stats = [(name, os.stat(os.path.join(raw, name)).st_size, os.stat(os.path.join(raw, name)).st_mtime_ns)
             for name in names]
    key = hashlib.sha256(repr((root, stats)).encode()).hexdigest()[:16]
    copy = os.path.join(scratch or tempfile.gettempdir(), f"lieconv-bench-qm9-{key}")
    os.makedirs(os.path.join(copy, "raw"), exist_ok=True)
    for name in names:
        link = os.path.join(copy, "raw", name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(raw, name), link)
    return copy


def real_qm9_batches(root: str, count: int, num_molecules: int = BATCH_MOLECULES, seed: int = 0,
                     scratch: Optional[str] = None) -> List[tuple]:
    """``count`` batches of ``num_molecules`` real molecules from the QM9 root ``root`` (PyG's layout),
    each ``(z, pos, batch, homo)``: consecutive slices of a fixed permutation of the dataset (seed
    ``seed``), so every process that asks gets the same sequence (a longer one starts with a shorter);
    ``homo`` is the HOMO target standardised over the whole dataset. An unprocessed root is processed
    under ``scratch`` (:func:`_processed_root`)."""
    from torch_geometric.data import Batch

    from torch_geometric_lieconv.datasets import get_target, load_qm9
    from torch_geometric_lieconv.datasets.qm9 import target_values

    dataset = load_qm9(_processed_root(root, scratch), download=False)
    needed = count * num_molecules
    if needed > len(dataset):
        raise ValueError(f"{count} batches of {num_molecules} molecules need {needed} molecules; {root} has "
                         f"{len(dataset)}")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:needed]
    parts = [Batch.from_data_list([dataset[int(i)] for i in order[b * num_molecules:(b + 1) * num_molecules]])
             for b in range(count)]
    homo = [target_values(part.y, get_target("homo")).reshape(-1).float() for part in parts]
    data = getattr(dataset, "_data", None)
    rows = data.y if data is not None and data.y is not None and data.y.shape[0] == len(dataset) else None
    every = torch.cat(homo) if rows is None else target_values(rows, get_target("homo")).reshape(-1).float()
    mean, std = every.mean(), every.std().clamp_min(1e-6)
    return [(part.z, part.pos.float(), part.batch, (y - mean) / std) for part, y in zip(parts, homo)]


def batches(count: int, device: torch.device, root: Optional[str] = None) -> List[tuple]:
    """``count`` different batches of 75 molecules -- real ones from the QM9 root ``root``, or synthetic
    QM9-sized ones (:func:`benchmarks.inputs.qm9_like_batch`) without a root -- each as the project's
    ``(z, pos, batch)`` and the original's padded ``(positions, features, mask)``, with a target per
    molecule. Every step takes the next one, as training does: repeating one batch would let oneDNN
    reuse the kernels it set up for its shapes, which flatters bfloat16 (1.3x slower with new batches
    at k=128, faster with one)."""
    if root is not None:
        found = real_qm9_batches(root, count)
    else:
        found = []
        for seed in range(count):
            z, pos, batch = qm9_like_batch(BATCH_MOLECULES, seed=seed)
            found.append((z, pos, batch, torch.randn(BATCH_MOLECULES, generator=torch.Generator().manual_seed(seed))))
    out = []
    for z, pos, batch, target in found:
        z, pos, batch, target = (t.to(device) for t in (z, pos, batch, target))
        dense_pos, mask = to_dense_batch(pos, batch)
        dense_features, _ = to_dense_batch(atom_features(z), batch)
        out.append(((z, pos, batch), (dense_pos, dense_features, mask), target))
    return out


def side_by_side_steps(reference, name: str, columns: List[str], args, device: torch.device,
                       inputs: Optional[List[tuple]] = None) -> Dict[str, Callable]:
    """The training steps of the chosen ``columns`` (:data:`COLUMNS`, :data:`COMPILED_COLUMNS`) for one
    QM9 model; each column walks the same sequence of batches (``inputs``, default :func:`batches` of
    ``args.warmup + args.steps``, from ``args.qm9_root`` when given). A compiled column is
    ``torch.compile(model)`` (inductor, dynamic shapes as torch decides, graph breaks allowed)."""
    k, layers = SIZES[args.size]
    _, lifts, quick_nbhd, paper_nbhd, fill = next(m for m in SIDE_BY_SIDE_MODELS if m[0] == name)
    nbhd = quick_nbhd if args.size == "quick" else paper_nbhd
    if inputs is None:
        inputs = batches(args.warmup + args.steps, device, getattr(args, "qm9_root", None))
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
        call = torch.compile(model) if column.endswith("compiled") else model
        bf16 = "bf16" in column
        order = itertools.count()

        def loss(call=call, forward=forward, bf16=bf16, order=order):
            item = inputs[next(order) % len(inputs)]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = forward(call, item).squeeze(-1).float()
            return (out - item[2]).abs().mean()

        steps[column] = adam_step(model, loss, optimizer=torch.optim.Adam if column.startswith("original") else adam)
    return steps


def _reason(text: str) -> str:
    """Dynamo's graph-break or failure message in one line: its first line and the start of its
    explanation."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    explanation = next((line for line in lines[1:] if line.startswith("Explanation:")), "")
    text = lines[0] if lines else "?"
    if explanation:
        text += f" ({explanation[len('Explanation:'):].strip()[:200]})"
    return re.sub(r"\bs\d+\b", "s*", re.sub(r" at 0x[0-9a-f]+", "", text))  # one line per distinct reason


def _compile_counts() -> Dict[str, object]:
    """Dynamo's counts so far: frames (``frames``, of which ``failed`` fell back to eager), graphs
    compiled, graph breaks, and the distinct reasons of the breaks and failures (first lines)."""
    from torch._dynamo.utils import counters

    frames = counters["frames"]
    reasons = sorted({_reason(reason) for reason in counters["graph_break"]}
                     | {_reason(reason) for reason in counters["unimplemented"]})
    return {"frames": int(frames["total"]), "failed": int(frames["total"] - frames["ok"]),
            "graphs": int(counters["stats"]["unique_graphs"]), "breaks": int(sum(counters["graph_break"].values())),
            "reasons": reasons}


def side_by_side_worker(spec: dict) -> Dict[str, object]:
    """One column of the QM9 side by side in this fresh process (``spec``: ``name``, ``column``,
    ``threads``, ``reference``, ``args``): the CPU seconds of each timed training step after
    ``args.warmup`` warm-up steps, and the warm-up's own times (wall and CPU). Each column gets a process
    of its own: after other columns' steps in the same process, oneDNN's bfloat16 kernels run slower
    than in a training run's.

    A compiled column first takes ``args.compile_warmup`` more warm-up steps on batches of its own
    (other molecules), then the same sequence as the other columns; dynamo may let a frame it cannot
    compile run eagerly (``suppress_errors``), and the result counts those frames, the graphs and the
    graph breaks, and the graphs compiled during the timed steps (a warm-up that was too short)."""
    torch.set_num_threads(spec["threads"])
    args = argparse.Namespace(**spec["args"])
    device = torch.device(args.device)
    column = spec["column"]
    compiled = column.endswith("compiled")
    reference = import_reference(Path(spec["reference"])) if column == "original fp32" else None
    if column == "original fp32" and reference is None:
        raise FileNotFoundError(f"no original LieConv code at {spec['reference']}")
    extra = (args.compile_warmup or 0) if compiled else 0
    shared = args.warmup + args.steps
    inputs = batches(shared + extra, device, args.qm9_root)
    inputs = inputs[shared:] + inputs[:shared]  # the extra warm-up batches first, then the shared sequence
    if compiled:
        from torch._dynamo import config as dynamo_config

        dynamo_config.suppress_errors = True
    step = side_by_side_steps(reference, spec["name"], [column], args, device, inputs)[column]
    clock = Clock(device)
    warmup_cpu, warmup_wall, graphs = [], [], []
    for _ in range(extra + args.warmup):
        wall = time.perf_counter()
        warmup_cpu.append(clock.seconds(step))
        warmup_wall.append(time.perf_counter() - wall)
        if compiled:
            graphs.append(_compile_counts()["graphs"])
        print(f"warm-up step: {warmup_cpu[-1]:.2f} CPU s, {warmup_wall[-1]:.1f} wall s", file=sys.stderr, flush=True)
    times = []
    for _ in range(args.steps):
        times.append(clock.seconds(step))
        if compiled:
            graphs.append(_compile_counts()["graphs"])
    out = {"column": column, "times": times, "warmup_cpu": warmup_cpu, "warmup_wall": warmup_wall}
    if compiled:
        out.update(_compile_counts(), graphs_per_step=graphs,
                   graphs_in_timed_steps=graphs[-1] - (graphs[-args.steps - 1] if len(graphs) > args.steps else 0))
    return out


def _compile_note(result: dict) -> str:
    """A compiled column's warm-up (wall s of each step, compiling included) and dynamo's counts."""
    note = (f"warm-up {', '.join(f'{w:.0f}' for w in result['warmup_wall'])} s wall; {result['graphs']} graphs, "
            f"{result['breaks']} graph breaks, {result['failed']} of {result['frames']} frames failed to compile "
            f"(eager)")
    if result["graphs_in_timed_steps"]:
        note += f"; {result['graphs_in_timed_steps']} graphs compiled during the timed steps"
    return note


def side_by_side_section(reference, args, clock: Clock, device: torch.device) -> str:
    """The QM9 table of ``benchmarks.side_by_side``: every column in a worker of its own (one after
    another), the median step of each, the columns' spread, and the compiled columns' warm-up."""
    k, layers = SIZES[args.size]
    reference_path = Path(getattr(args, "reference", "") or ".").expanduser().resolve()
    columns = (["original fp32"] if reference is not None else []) + list(COLUMNS[1:])
    if getattr(args, "compile", False):
        columns += list(COMPILED_COLUMNS)
    rows, spread_rows, compile_rows, reasons = [], [], [], set()
    for name, lifts, quick_nbhd, paper_nbhd, fill in SIDE_BY_SIDE_MODELS:
        nbhd = quick_nbhd if args.size == "quick" else paper_nbhd
        model = f"{name}, {lifts} lift(s), nbhd {nbhd}, fill {fill:g}"
        med: Dict[str, Optional[float]] = {}
        for column in columns:
            spec = {"name": name, "column": column, "threads": args.threads, "reference": str(reference_path),
                    "args": {key: getattr(args, key, None)
                             for key in ("size", "steps", "warmup", "device", "qm9_root", "compile_warmup")}}
            try:
                result = run_worker(f"{__name__}:side_by_side_worker", spec, args.timeout,
                                    env={"OMP_NUM_THREADS": str(args.threads),
                                         "TORCHINDUCTOR_COMPILE_THREADS": "1"})
            except WorkerError as error:
                print(f"  qm9 {name} {column}: failed: {error.last_line}", file=sys.stderr, flush=True)
                med[column] = None
                spread_rows.append([model, column, "failed", error.last_line[:120], "", ""])
                continue
            times = result["times"]
            med[column] = median(times)
            spread_rows.append([model, column, seconds(med[column]), f"{min(times):.3f} - {max(times):.3f}",
                                f"{(max(times) - min(times)) / med[column]:.0%}",
                                ", ".join(f"{t:.3f}" for t in times)])
            if column.endswith("compiled"):
                eager = med.get(column[:-len(" compiled")])
                compile_rows.append([model, column, seconds(med[column]),
                                     "-" if eager is None else f"{eager / med[column]:.2f}x", _compile_note(result)])
                reasons.update(result["reasons"])
            print(f"  qm9 {name} {column}: median {med[column]:.3f} s of {[round(t, 3) for t in times]}; warm-up "
                  f"wall {[round(t, 1) for t in result['warmup_wall']]} s", file=sys.stderr, flush=True)
        original = med.get("original fp32")

        def cell(column):
            return seconds(med.get(column))

        def speedup(base, column):
            base_s, ours = med.get(base), med.get(column)
            return "-" if base_s is None or ours is None else f"{base_s / ours:.2f}x"

        row = [model, seconds(original), cell("project fp32"), speedup("original fp32", "project fp32"),
               cell("project bf16"), speedup("original fp32", "project bf16"), speedup("project fp32", "project bf16")]
        if "project fp32 compiled" in columns:
            row += [cell("project fp32 compiled"), speedup("original fp32", "project fp32 compiled"),
                    cell("project bf16 compiled"), speedup("original fp32", "project bf16 compiled")]
        rows.append(row)
    header = ["model", "original fp32", "project fp32", "speed-up", "project bf16", "speed-up", "bf16 / fp32"]
    if "project fp32 compiled" in columns:
        header += ["fp32 compiled", "speed-up", "bf16 compiled", "speed-up"]
    source = (f"real QM9 molecules from {args.qm9_root}" if getattr(args, "qm9_root", None)
              else "synthetic QM9-sized molecules (no --qm9-root)")
    text = (f"QM9, k={k}, {layers} blocks, {BATCH_MOLECULES} {source}, a new batch every step (the same sequence "
            f"for every column); every column in a process of its own, {args.threads} thread(s); "
            f"{bfloat16_description()}. "
            f"Training step (forward, backward, Adam), process CPU s, median of {args.steps} steps after "
            f"{args.warmup} warm-up steps; speed-ups against the original fp32:\n\n" + table(header, rows)
            + "\n\nEach column's timed steps (CPU s):\n\n"
            + table(["model", "column", "median", "min - max", "spread (max-min)/median", "steps"], spread_rows))
    if compile_rows:
        text += ("\n\n`torch.compile(model)` (inductor, dynamic shapes as torch decides, graph breaks allowed, "
                 "frames dynamo fails on run eagerly; the loss and Adam eager), against the same column eager; "
                 f"{args.compile_warmup} more warm-up steps on other molecules first; warm-up in wall seconds "
                 "per step (compiling included, one compile thread):\n\n"
                 + table(["model", "column", "median s", "compiled / eager speed-up", "warm-up"], compile_rows)
                 + "\n\nDynamo's graph-break and failure reasons (first lines):\n\n"
                 + "\n".join(f"* {reason}" for reason in sorted(reasons)))
    return text


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

