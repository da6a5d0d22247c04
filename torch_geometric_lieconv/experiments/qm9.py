r"""``lieconv train qm9`` and ``lieconv evaluate qm9``: the paper's QM9 experiment (Tables 2 and 3).

Settings (:data:`SETTINGS`, see :mod:`~torch_geometric_lieconv.experiments.config`) resolve in this
order, later wins: the paper's (:data:`GROUP_DEFAULTS` by group), ``--preset quick``
(:data:`QUICK_PRESET`), ``--config file.json``, then flags. The resolved settings, the split indices
and the target statistics are saved in the run folder and in every checkpoint, so
``lieconv evaluate qm9 --run DIR`` needs nothing else.

Example::

    lieconv train qm9 --root data/QM9 --target homo --group T3            # the paper's T(3) run
    lieconv train qm9 --root data/QM9 --target homo --group SE3           # the paper's SE(3) run
    lieconv train qm9 --root data/QM9 --target homo --preset quick        # a few minutes on a CPU
    lieconv evaluate qm9 --run runs/qm9-homo-T3
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from ..datasets.qm9 import (PAPER_HOMO_MAE_BY_GROUP, PAPER_MAE, QM9Target, RandomRotation3d, get_target, load_qm9,
                            qm9_splits, save_splits, target_statistics, target_values)
from ..groups import group_from_name, group_spec
from ..runs import default_run_folder, refuse_early, run_folder, write_json
from ..training import (RUNTIME_KEYS, Trainer, cleanup_distributed, init_distributed, is_main_process,
                        load_checkpoint, seed_everything, training_device)
from .common import (add_threads_option, apply_threads, build_model, configure_upgrade, text_table, trained_model,  # noqa: F401
                     upgrade_command)
from .config import (RuntimeSettings, Settings, TaskSettings, add_setting_flags, flag_values, setting,
                     settle_precision, trainer_arguments)

#: per-group reference settings (the reference README's commands) over the fields' defaults (T(3)'s)
GROUP_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "T3": {},
    "Trivial": {},
    "SE3": {"alpha": 0.2, "fill": 0.5, "lift_samples": 4, "mc_samples": 25, "recenter": True},
    "SO3": {"alpha": 0.2, "fill": 0.5, "lift_samples": 4, "mc_samples": 25, "recenter": True},
}
#: ``--preset quick``: a small model on a 5k training subset, about 3 minutes on one CPU core
#: (qm9-real-10k, homo: test MAE 267 meV against 432 meV for the training median)
QUICK_PRESET: Dict[str, Any] = {
    "hidden_channels": 128, "num_layers": 3, "epochs": 10, "batch_size": 32, "train_size": 5000,
    "valid_size": 500, "mc_samples": 32,
}
#: ``--precision auto`` (QM9's default) picks bfloat16 autocast for LieConv models of at least this many
#: channels on devices with native bfloat16 matmuls. ``benchmarks/mixed_precision.py`` (one process per
#: precision, a new batch every step, AVX512-BF16 CPU, one thread): bfloat16 was 0.73x / 0.76x the speed
#: of float32 at 64 / 128 channels (quick network), 1.08x-1.28x at 256, and faster at every wider size
BF16_MIN_CHANNELS = 256
#: ``model`` settings: the paper's LieConv model (:class:`~torch_geometric_lieconv.models.QM9LieConv`)
#: or PyG's SchNet (:class:`~torch_geometric_lieconv.models.QM9SchNet`) as the baseline
MODELS = ("lieconv", "schnet")
#: SchNet's own defaults (PyG's, in any preset): width 128, 6 interactions, cutoff 10 Å; the
#: group, lift and neighbourhood settings do not apply to it
SCHNET_DEFAULTS: Dict[str, Any] = {"hidden_channels": 128, "num_layers": 6}


def canonical_group(name: str) -> str:
    """``"T(3)"``, ``"t3"``, ``"SE(3)"``, ``"trivial3"``... -> a key of :data:`GROUP_DEFAULTS`.

    Args:
        name (str): a group name in any common spelling.
    """
    key = re.sub(r"[\s_()]", "", str(name)).lower()
    table = {"t3": "T3", "se3": "SE3", "so3": "SO3", "trivial": "Trivial", "trivial3": "Trivial"}
    if key not in table:
        raise ValueError(f"unknown group {name!r} for QM9; choose one of {', '.join(GROUP_DEFAULTS)}")
    return table[key]


@dataclass
class QM9ModelSettings:
    """The regressor: LieConv (the paper's) or PyG's SchNet."""

    model: str = setting("lieconv", "lieconv, or schnet (PyG's SchNet, the baseline; its own width and depth)",
                         choices=MODELS)
    group: str = setting("T3", "T3, SE3, SO3 or Trivial")
    alpha: Optional[float] = setting(None, "the group's weight of the orbit distance (default: the group's)")
    hidden_channels: int = setting(1536, "channels k")
    num_layers: int = setting(6, "LieConv blocks (SchNet: interaction blocks)")
    mc_samples: int = setting(100, "Monte Carlo neighbours (nbhd)")
    fill: float = setting(1.0, "fraction of the points whose ball is the neighbourhood")
    lift_samples: int = setting(1, "lifts per atom (stabiliser samples)")
    batch_norm: bool = setting(True, "batch normalisation in the blocks")
    recenter: bool = setting(False, "centre each molecule and scale positions by the training set's spread")
    continuous_kernel: bool = setting(False, "kernels of the matrix v^-1 u instead of its log "
                                             "(no jump at rotation angle pi)")


@dataclass
class QM9DataSettings:
    """The target and the split of the paper's protocol."""

    target: str = setting("homo", "alpha, gap, homo, lumo, mu, Cv, G, H, r2, U, U0, zpve")
    split_seed: int = setting(0, "seed of the train/valid/test split")
    train_size: Optional[int] = setting(None, "training molecules (default: the protocol's)")
    valid_size: Optional[int] = setting(None, "validation molecules (default: the protocol's)")
    test_size: Optional[int] = setting(None, "test molecules (default: the rest)")
    augment: bool = setting(True, "random rotations of the training molecules")


@dataclass
class QM9RuntimeSettings(RuntimeSettings):
    """Where and how a QM9 run executes; may differ between a run and its resume or evaluation."""

    root: Optional[str] = setting(None, "QM9 root folder (PyG's layout: ROOT/raw/...; downloaded there when empty)")
    out: Optional[str] = setting(None, "run folder (default: runs/qm9-TARGET-GROUP[-quick])")


def _presets(preset: str, chosen: Mapping[str, Any]) -> Dict[str, Any]:
    values = {"precision": "auto", **GROUP_DEFAULTS[canonical_group(chosen.get("group", "T3"))]}
    if preset == "quick":
        values.update(QUICK_PRESET)
    if chosen.get("model") == "schnet":
        values.update(SCHNET_DEFAULTS)
    return values


def _finish(settings: Settings) -> None:
    settings.model.group = canonical_group(settings.model.group)
    settings.data.target = get_target(settings.data.target).name


#: QM9's settings (:mod:`..experiments.config`): the paper's by default, ``--preset quick`` for a CPU
SETTINGS = TaskSettings("qm9", QM9ModelSettings, QM9DataSettings, runtime=QM9RuntimeSettings, presets=_presets,
                        finish=_finish)


# ----------------------------------------------------------------------------------------------- model
def model_arguments(settings: Settings) -> Tuple[str, Dict[str, Any]]:
    """The QM9 regressor of ``settings`` as (class name, constructor arguments): ``model(z, pos, batch)
    -> [num_graphs, 1]`` in the dataset's units (PyG's QM9: eV for energies). The training median
    and MAD measured by the run (in the paper's units, e.g. meV), when present, are its
    ``target_mean`` and ``target_std``, with the target's factor between the two units as its
    ``target_scale``.

    Args:
        settings (Settings): the run's settings (with its measured statistics, when trained).
    """
    m, measured = settings.model, settings.measured
    target = {"target_mean": measured.get("target_median", 0.0), "target_std": measured.get("target_mad", 1.0),
              "target_scale": get_target(settings.data.target).scale}
    if m.model == "schnet":
        return "QM9SchNet", dict(hidden_channels=m.hidden_channels, num_interactions=m.num_layers, **target)
    group_name = "Trivial3" if m.group == "Trivial" else m.group
    return "QM9LieConv", dict(
        group=group_spec(group_from_name(group_name, alpha=m.alpha)), hidden_channels=m.hidden_channels,
        num_layers=m.num_layers, mc_samples=m.mc_samples, fill=m.fill, lift_samples=m.lift_samples,
        batch_norm=m.batch_norm, center=True if m.recenter else None, pos_scale=measured.get("pos_scale", 1.0),
        continuous_kernel=m.continuous_kernel, **target)


class QM9Objective:
    """The L1 loss on the normalised target and the MAE in the paper's units.

    The model predicts the target in the dataset's units (its ``mean``/``std`` buffers are the training
    median and MAD in the paper's units, its ``target_scale`` the factor between them); :meth:`predict`
    converts to the paper's units, and the loss is the L1 error divided by the MAD, i.e. on the
    normalised target.

    Args:
        target (QM9Target): the target.
        median (float): the training median in the paper's units.
        mad (float): the training MAD in the paper's units.
        autocast (torch.dtype, optional): run the model under autocast in this dtype. (default: :obj:`None`)
    """

    def __init__(self, target: QM9Target, median: float, mad: float, autocast: Optional[torch.dtype] = None) -> None:
        self.target, self.median, self.mad, self.autocast = target, float(median), float(mad), autocast

    def loss(self, model: nn.Module, batch) -> Tensor:
        """The mean L1 error of ``batch`` on the normalised target.

        Args:
            model (torch.nn.Module): the regressor.
            batch (torch_geometric.data.Batch): molecules with ``z``, ``pos``, ``batch``, ``y``.
        """
        target = target_values(batch.y, self.target).to(batch.pos.dtype)
        return (self.predict(model, batch) - target).abs().mean() / self.mad

    def predict(self, model: nn.Module, batch) -> Tensor:
        """The model's prediction ``[B]`` in the paper's units; under ``autocast`` its matmuls run in
        that dtype (bfloat16), the group math and the output in float32.

        Args:
            model (torch.nn.Module): the regressor.
            batch (torch_geometric.data.Batch): molecules with ``z``, ``pos``, ``batch``, ``y``.
        """
        with torch.autocast(batch.pos.device.type, dtype=self.autocast or torch.bfloat16,
                            enabled=self.autocast is not None):
            out = model(batch.z, batch.pos, batch.batch).squeeze(-1).to(batch.pos.dtype)
        return out * self.target.scale

    @torch.no_grad()
    def mae(self, model: nn.Module, dataset, batch_size: int, device: torch.device,
            dtype: torch.dtype = torch.float32) -> float:
        """Mean absolute error over ``dataset`` in the paper's units.

        Args:
            model (torch.nn.Module): the regressor.
            dataset (Sequence): the molecules.
            batch_size (int): molecules per batch.
            device (torch.device): where to evaluate.
            dtype (torch.dtype, optional): the inputs' dtype. (default: :obj:`torch.float32`)
        """
        from torch_geometric.loader import DataLoader

        from ..training import move_to

        total = torch.zeros((), dtype=torch.float64, device=device)
        count = 0
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            batch = move_to(batch, device, dtype)
            error = self.predict(model, batch) - target_values(batch.y, self.target).to(batch.pos.dtype)
            total += error.abs().sum().to(torch.float64)
            count += batch.num_graphs
        return float(total / max(count, 1))


# ----------------------------------------------------------------------------------------------- data
def prepare_data(settings: Settings, root: str, *, download: bool = True) -> Dict[str, Any]:
    """Load QM9, split it, and compute the train statistics (median, MAD, position scale).

    Args:
        settings (Settings): the run's settings.
        root (str): the QM9 folder.
        download (bool, optional): download QM9 when the folder is empty. (default: :obj:`True`)
    """
    data_settings = settings.data
    dataset = load_qm9(root, download=download)
    splits = qm9_splits(len(dataset), seed=data_settings.split_seed, train_size=data_settings.train_size,
                        valid_size=data_settings.valid_size, test_size=data_settings.test_size)
    target = get_target(data_settings.target)
    train_y = target_values(dataset._data.y[splits["train"]] if _rows_are_molecules(dataset) else
                            torch.cat([dataset[int(i)].y for i in splits["train"]]), target)
    median, mad = target_statistics(train_y)
    pos_scale = 1.0
    if settings.model.recenter:
        pos_scale = 1.0 / _centered_position_std(dataset, splits["train"])
    parts = {name: dataset.index_select(idx) for name, idx in splits.items()}
    if data_settings.augment:
        parts["train"].transform = RandomRotation3d()
    return {"dataset": dataset, "splits": splits, "parts": parts, "target": target, "median": median, "mad": mad,
            "pos_scale": pos_scale}


def _rows_are_molecules(dataset) -> bool:
    data = getattr(dataset, "_data", None)
    return data is not None and data.y is not None and data.y.shape[0] == len(dataset) and dataset._indices is None


def _centered_position_std(dataset, index: Tensor) -> float:
    r"""Root mean square atom coordinate after centring each training molecule at its centroid.

    The reference recentres and divides positions by their standard deviation over the training set;
    here the centring is per molecule (the model centres each molecule), the scale is
    :math:`1/\sqrt{\langle |x - \bar x_{mol}|^2 \rangle / 3}`.
    """
    from torch_scatter import scatter_mean

    slices = getattr(dataset, "slices", None)
    if _rows_are_molecules(dataset) and slices is not None and "pos" in slices:
        ptr = slices["pos"]
        counts = ptr[1:] - ptr[:-1]
        molecule = torch.repeat_interleave(torch.arange(len(counts)), counts)
        pos = dataset._data.pos.to(torch.float64)
        centred = pos - scatter_mean(pos, molecule, dim=0, dim_size=len(counts))[molecule]
        keep = torch.zeros(len(counts), dtype=torch.bool)
        keep[index] = True
        centred = centred[keep[molecule]]
    else:  # generic datasets: one molecule at a time
        parts = [dataset[int(i)].pos.to(torch.float64) for i in index]
        centred = torch.cat([p - p.mean(0, keepdim=True) for p in parts])
    return max(float(centred.pow(2).mean().sqrt()), 1e-6)


def measured(data: Dict[str, Any]) -> Dict[str, Any]:
    """What a run measures on its data and must keep to be rebuilt: data size and statistics.

    Args:
        data (Dict[str, Any]): :func:`prepare_data`'s result.
    """
    return {"num_molecules": len(data["dataset"]), "target_median": data["median"], "target_mad": data["mad"],
            "pos_scale": data["pos_scale"], "split_sizes": {k: len(v) for k, v in data["splits"].items()}}


# ----------------------------------------------------------------------------------------------- train
def configure_train(parser: argparse.ArgumentParser) -> None:
    parser.description = "Train LieConv on one QM9 target (the paper's Table 2 / Table 3 protocol)."
    add_setting_flags(parser, SETTINGS)


def run_train(args: argparse.Namespace) -> int:
    settings = SETTINGS.resolve(config_file=args.config, flags=flag_values(args, SETTINGS))
    runtime = settings.runtime
    apply_threads(runtime.threads)
    if runtime.root is None:
        raise ValueError("pass --root, the QM9 folder (PyG's layout; downloaded there when empty)")
    name = "schnet" if settings.model.model == "schnet" else settings.model.group
    out = runtime.out or default_run_folder(os.path.join(
        "runs", f"qm9-{settings.data.target}-{name}" + ("-quick" if settings.preset == "quick" else "")),
        runtime.resume)
    device = training_device(runtime.device)
    distributed = init_distributed(device)
    rank0 = is_main_process()
    precision = settle_precision(settings, device, BF16_MIN_CHANNELS if settings.model.model == "lieconv" else None,
                                 out)
    if distributed and not rank0:
        torch.distributed.barrier()  # rank 0 processes the dataset first
    data = prepare_data(settings, runtime.root, download=runtime.download)
    if distributed and rank0:
        torch.distributed.barrier()
    settings.measured.update(measured(data))
    runtime.root = os.path.abspath(runtime.root)
    saved = settings.saved()
    trainer_settings = settings.trainer
    with contextlib.ExitStack() as folder:
        if rank0:
            folder.enter_context(run_folder(out))  # refused while another run writes to it
            refuse_early(out, runtime.resume, saved, RUNTIME_KEYS)
            write_json(os.path.join(out, "config.json"), saved)
            save_splits(os.path.join(out, "splits.json"), data["splits"])
            print(f"QM9 {settings.data.target} ({data['target'].unit}), group {settings.model.group}: "
                  f"{', '.join(f'{k} {len(v)}' for k, v in data['splits'].items())} molecules; "
                  f"train median {data['median']:.4g}, MAD {data['mad']:.4g}; precision {precision}; out {out}",
                  flush=True)
        seed_everything(trainer_settings.seed)
        model = build_model(*model_arguments(settings))
        objective = QM9Objective(data["target"], data["median"], data["mad"], trainer_settings.autocast)
        dtype = trainer_settings.dtype
        eval_batch = 2 * trainer_settings.batch_size

        def evaluate(m: nn.Module) -> Dict[str, float]:
            return {"valid_mae": objective.mae(m, data["parts"]["valid"], eval_batch, trainer.device, dtype)}

        trainer = Trainer(model, data["parts"]["train"], **trainer_arguments(trainer_settings), loss_fn=objective.loss,
                          out_dir=out, evaluate_fn=evaluate, monitor="valid_mae", device=device, config=saved,
                          num_workers=runtime.num_workers, progress=runtime.progress)
        start = time.perf_counter()
        history = trainer.fit(resume=runtime.resume, max_epochs=runtime.max_epochs)
        if rank0 and history:
            per_epoch = sum(row["time_s"] for row in history) / len(history)
            cpu_per_epoch = sum(row.get("cpu_s", float("nan")) for row in history) / len(history)
            print(f"trained {len(history)} epochs ({time.perf_counter() - start:.1f} s this call, "
                  f"{per_epoch:.1f} s/epoch, CPU {cpu_per_epoch:.1f} s/epoch); best valid MAE "
                  f"{trainer.best['value']:.4g} {data['target'].unit} at epoch {trainer.best['epoch']}", flush=True)
            if trainer.epoch >= trainer.epochs:
                rows = [evaluate_run(out, root=runtime.root, device=trainer.device, data=data)]
                print(format_results(rows))
    if distributed:
        trainer = None  # free DDP's reducer while the process group lives: gloo's teardown can hang
        gc.collect()
        cleanup_distributed()
    return 0


# ----------------------------------------------------------------------------------------------- evaluate
def configure_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.description = "Test MAE of trained QM9 runs, next to the paper's figures."
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--root", default=None, help="QM9 root folder (default: the run's)")
    parser.add_argument("--no-download", dest="download", action="store_false",
                        help="fail instead of downloading QM9 when ROOT holds no data")
    add_threads_option(parser)
    parser.add_argument("--run", dest="runs", nargs="+", required=True,
                        help="run folder(s) written by 'lieconv train qm9'")
    parser.add_argument("--checkpoint", default="best", choices=["best", "last"])
    parser.add_argument("--split", default="test", choices=["test", "valid", "train", "all"],
                        help="a split of the run's protocol, or all molecules of --root (default: test)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of random lifts / neighbourhood samples (default: the run's)")
    parser.add_argument("--target", default=None, help="refuse runs trained on another target")
    parser.add_argument("--group", default=None, help="refuse runs trained with another group")
    parser.add_argument("--batch-size", type=int, default=None)


def evaluate_run(run: str, *, root: Optional[str] = None, checkpoint: str = "best", split: str = "test",
                 device: Optional[Any] = None, batch_size: Optional[int] = None,
                 expect: Optional[Dict[str, Any]] = None,
                 data: Optional[Dict[str, Any]] = None, download: bool = True,
                 seed: Optional[int] = None) -> Dict[str, Any]:
    """MAE of a run's checkpoint on a split, in the paper's units; also written to ``RUN/results_SPLIT.json``.

    On the run's own ``root`` the splits are the run's (its statistics are checked); on another root,
    or with ``split="all"``, the model is evaluated as trained (its normalisation is part of it) on
    that root's split of the same protocol, or on every molecule (``"all"``). ``expect`` refuses a
    run whose ``target`` or ``group`` differs.

    Args:
        run (str): the run folder.
        root (str, optional): the QM9 folder. (default: the run's)
        checkpoint (str, optional): ``"best"`` or ``"last"``. (default: :obj:`"best"`)
        split (str, optional): ``"test"``, ``"valid"``, ``"train"`` or ``"all"``. (default: :obj:`"test"`)
        device (torch.device or str, optional): where to evaluate. (default: :obj:`None`)
        batch_size (int, optional): molecules per batch. (default: twice the run's)
        expect (Dict[str, Any], optional): settings the run must have been trained with. (default: :obj:`None`)
        data (Dict[str, Any], optional): prepared data to reuse. (default: :obj:`None`)
        download (bool, optional): download QM9 when the folder is empty. (default: :obj:`True`)
        seed (int, optional): seed of random lifts and samples. (default: the run's)
    """
    path = os.path.join(run, f"checkpoint_{checkpoint}.pt")
    state = load_checkpoint(path)
    if state.get("config", {}).get("task") != "qm9":
        raise ValueError(f"{path} is not a QM9 checkpoint (task {state.get('config', {}).get('task')!r})")
    settings = SETTINGS.from_saved(state["config"])
    stats = settings.measured
    for key, value in (expect or {}).items():
        found = settings.flat()[key]
        if value is not None and found != value:
            raise ValueError(f"{path} was trained with {key}={found!r}, not {value!r}")
    own_root = root is None or os.path.abspath(root) == settings.runtime.root
    root = root or settings.runtime.root
    if data is None:
        if root is None:
            raise ValueError(f"pass --root: {path} does not record the QM9 folder")
        if own_root and split != "all":
            data = prepare_data(settings, root, download=download)
            found = measured(data)
            for key in ("num_molecules", "target_median", "target_mad", "pos_scale"):
                if abs(found[key] - stats[key]) > 1e-9 * max(1.0, abs(stats[key])):
                    raise ValueError(f"{root} gives {key}={found[key]:g} but {path} was trained with {key}="
                                     f"{stats[key]:g}; its data changed since (evaluate with --split all)")
        else:
            data = _other_data(settings, root, split, download)
    device = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    dtype = settings.trainer.dtype
    model = trained_model(state, path, SETTINGS, model_arguments).to(device, dtype)
    objective = QM9Objective(get_target(settings.data.target), stats["target_median"], stats["target_mad"],
                             settings.trainer.autocast)
    seed_everything(settings.trainer.seed if seed is None else seed)
    subset = data["dataset"].index_select(data["splits"][split])  # no augmentation
    mae = objective.mae(model, subset, batch_size or 2 * settings.trainer.batch_size, device, dtype)
    baseline = float((target_values(data["dataset"]._data.y[data["splits"][split]], objective.target)
                      - stats["target_median"]).abs().mean()) if _rows_are_molecules(data["dataset"]) else float("nan")
    m = settings.model
    row = {"run": run, "target": settings.data.target, "model": m.model, "group": m.group, "split": split,
           "checkpoint": checkpoint, "epoch": state["epoch"], "mae": mae, "median_baseline_mae": baseline,
           "unit": objective.target.unit, "paper_T3": PAPER_MAE[settings.data.target],
           "paper_group_homo": PAPER_HOMO_MAE_BY_GROUP.get(m.group)
           if settings.data.target == "homo" and m.model == "lieconv" else None,
           "num_molecules": len(subset), "root": os.path.abspath(root)}
    write_json(os.path.join(run, f"results_{split}.json"), row)
    return row


def _other_data(settings: Settings, root: str, split: str, download: bool) -> Dict[str, Any]:
    """QM9 at ``root`` split by the run's protocol (sizes scaled to that root), or ``"all"`` of it."""
    dataset = load_qm9(root, download=download)
    if split == "all":
        splits = {"all": torch.arange(len(dataset))}
    else:
        splits = qm9_splits(len(dataset), seed=settings.data.split_seed)
    return {"dataset": dataset, "splits": splits}


def format_results(rows: List[Dict[str, Any]]) -> str:
    """A table of MAE per run next to the paper's figure (Table 2: T(3); Table 3: HOMO by group).

    Args:
        rows (List[Dict[str, Any]]): rows of :func:`evaluate_run`.
    """
    header = ["target", "model", "split", "n", "epoch", "MAE", "median baseline", "unit", "paper T3 (Tab. 2)",
              "paper group (Tab. 3)"]
    lines = [header]
    for r in rows:
        model = "SchNet" if r.get("model") == "schnet" else f"LieConv {r['group']}"
        lines.append([r["target"], model, r["split"], str(r["num_molecules"]), str(r["epoch"]), f"{r['mae']:.4g}",
                      f"{r['median_baseline_mae']:.4g}", r["unit"], f"{r['paper_T3']:g}",
                      "-" if r["paper_group_homo"] is None else f"{r['paper_group_homo']:g}"])
    return text_table(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    expect = {"target": get_target(args.target).name if args.target else None,
              "group": canonical_group(args.group) if args.group else None}
    apply_threads(args.threads)
    rows = [evaluate_run(run, root=args.root, checkpoint=args.checkpoint, split=args.split, device=args.device,
                         batch_size=args.batch_size, expect=expect, download=args.download, seed=args.seed)
            for run in args.runs]
    print(format_results(rows))
    return 0


#: ``lieconv upgrade qm9`` (``configure_upgrade`` comes from :mod:`.common`)
run_upgrade = upgrade_command(SETTINGS, model_arguments)
