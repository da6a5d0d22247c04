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

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from ..datasets.qm9 import (PAPER_HOMO_MAE_BY_GROUP, PAPER_MAE, QM9Target, RandomRotation3d, get_target, load_qm9,
                            qm9_splits, target_statistics, target_values)
from ..groups import group_from_name, group_spec
from ..training import move_to
from .common import text_table
from .config import EvaluateSettings, RuntimeSettings, Settings, TaskSettings, setting
from .task import Objective, PreparedData, Task

#: per-group reference settings (the reference README's commands) over the fields' defaults (T(3)'s)
GROUP_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "T3": {},
    "Trivial": {},
    "SE3": {"alpha": 0.2, "fill": 0.5, "lift_samples": 4, "mc_samples": 25, "recenter": True},
    "SO3": {"alpha": 0.2, "fill": 0.5, "lift_samples": 4, "mc_samples": 25, "recenter": True},
}
#: ``--preset quick``: a small model on a 5k training subset, a few minutes on one CPU core
QUICK_PRESET: Dict[str, Any] = {
    "hidden_channels": 128, "num_layers": 3, "epochs": 10, "batch_size": 32, "train_size": 5000,
    "valid_size": 500, "mc_samples": 32,
}
#: ``--precision auto`` (QM9's default) picks bfloat16 autocast for LieConv models of at least this many
#: channels on devices with native bfloat16 matmuls: the smallest width at which the mixed-precision
#: benchmark (docs/guide/performance.md) found bfloat16 faster in every configuration it measured
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


class QM9Objective(Objective):
    """The L1 loss on the normalised target and the MAE in the paper's units.

    The model predicts the target in the dataset's units (its ``mean``/``std`` buffers are the training
    median and MAD in the paper's units, its ``target_scale`` the factor between them); :meth:`predict`
    converts to the paper's units, and the loss is the L1 error divided by the MAD, i.e. on the
    normalised target. Under the trainer's autocast the matmuls run in bfloat16, the group math and
    the output in float32.

    Args:
        target (QM9Target): the target.
        median (float): the training median in the paper's units.
        mad (float): the training MAD in the paper's units.
        valid (Sequence, optional): the validation molecules of :meth:`evaluate`. (default: :obj:`None`)
        batch_size (int, optional): molecules per evaluation batch. (default: :obj:`100`)
        device (torch.device, optional): where to evaluate. (default: the CPU)
        dtype (torch.dtype, optional): the inputs' dtype. (default: :obj:`torch.float32`)
    """

    def __init__(self, target: QM9Target, median: float, mad: float, valid=None, batch_size: int = 100,
                 device: Any = "cpu", dtype: torch.dtype = torch.float32) -> None:
        super().__init__("valid_mae")
        self.target, self.median, self.mad = target, float(median), float(mad)
        self.valid, self.batch_size, self.device, self.dtype = valid, batch_size, torch.device(device), dtype

    def loss(self, model: nn.Module, batch) -> Tensor:
        """The mean L1 error of ``batch`` on the normalised target.

        Args:
            model (torch.nn.Module): the regressor.
            batch (torch_geometric.data.Batch): molecules with ``z``, ``pos``, ``batch``, ``y``.
        """
        target = target_values(batch.y, self.target).to(batch.pos.dtype)
        return (self.predict(model, batch) - target).abs().mean() / self.mad

    def predict(self, model: nn.Module, batch) -> Tensor:
        """The model's prediction ``[B]`` in the paper's units, in the positions' dtype.

        Args:
            model (torch.nn.Module): the regressor.
            batch (torch_geometric.data.Batch): molecules with ``z``, ``pos``, ``batch``, ``y``.
        """
        out = model(batch.z, batch.pos, batch.batch).squeeze(-1).to(batch.pos.dtype)
        return out * self.target.scale

    def evaluate(self, model: nn.Module) -> Dict[str, float]:
        """``{"valid_mae": ...}`` on the validation molecules."""
        return {"valid_mae": self.mae(model, self.valid)}

    @torch.no_grad()
    def mae(self, model: nn.Module, dataset) -> float:
        """Mean absolute error over ``dataset`` in the paper's units.

        Args:
            model (torch.nn.Module): the regressor.
            dataset (Sequence): the molecules.
        """
        from torch_geometric.loader import DataLoader

        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        for batch in DataLoader(dataset, batch_size=self.batch_size, shuffle=False):
            batch = move_to(batch, self.device, self.dtype)
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


# ----------------------------------------------------------------------------------------------- evaluate
@dataclass
class QM9EvaluateSettings(EvaluateSettings):
    """Which trained QM9 runs to evaluate, on which molecules, and where."""

    split: str = setting("test", "a split of the run's protocol, or all molecules of --root",
                         choices=("test", "valid", "train", "all"))
    root: Optional[str] = setting(None, "QM9 root folder (default: the run's)")
    target: Optional[str] = setting(None, "the runs' target: a run trained on another is refused")
    group: Optional[str] = setting(None, "the runs' group: a run trained with another is refused")


def _other_data(settings: Settings, root: str, split: str, download: bool) -> Dict[str, Any]:
    """QM9 at ``root`` split by the run's protocol (sizes scaled to that root), or ``"all"`` of it."""
    dataset = load_qm9(root, download=download)
    if split == "all":
        splits = {"all": torch.arange(len(dataset))}
    else:
        splits = qm9_splits(len(dataset), seed=settings.data.split_seed)
    return {"dataset": dataset, "splits": splits}


def _evaluation_data(settings: Settings, options: QM9EvaluateSettings) -> Dict[str, Any]:
    """The molecules of ``options.split``: on the run's own root its own splits (statistics checked),
    on another root (or ``"all"``) that root's split of the same protocol."""
    stats = settings.measured
    own_root = options.root is None or os.path.abspath(options.root) == settings.runtime.root
    root = options.root or settings.runtime.root
    if root is None:
        raise ValueError("pass --root: the run does not record its QM9 folder")
    if not own_root or options.split == "all":
        return _other_data(settings, root, options.split, options.download)
    data = prepare_data(settings, root, download=options.download)
    found = measured(data)
    for key in ("num_molecules", "target_median", "target_mad", "pos_scale"):
        if abs(found[key] - stats[key]) > 1e-9 * max(1.0, abs(stats[key])):
            raise ValueError(f"{root} gives {key}={found[key]:g} but the run was trained with {key}={stats[key]:g}; "
                             f"its data changed since (evaluate with --split all)")
    return data


def format_results(rows: List[Dict[str, Any]]) -> str:
    """A table of MAE per run next to the paper's figure (Table 2: T(3); Table 3: HOMO by group).

    Args:
        rows (List[Dict[str, Any]]): rows of ``lieconv evaluate qm9``.
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


# ----------------------------------------------------------------------------------------------- the task
class QM9Task(Task):
    """QM9 regression of one target (the paper's Tables 2 and 3)."""

    name = "qm9"
    settings = SETTINGS
    evaluate_settings = QM9EvaluateSettings
    descriptions = {"train": "Train LieConv on one QM9 target (the paper's Table 2 / Table 3 protocol).",
                    "evaluate": "Test MAE of trained QM9 runs, next to the paper's figures."}

    def run_name(self, settings: Settings) -> str:
        name = "schnet" if settings.model.model == "schnet" else settings.model.group
        return f"qm9-{settings.data.target}-{name}" + ("-quick" if settings.preset == "quick" else "")

    def model_arguments(self, settings: Settings) -> Tuple[str, Dict[str, Any]]:
        return model_arguments(settings)

    def bfloat16_min_channels(self, settings: Settings) -> Optional[int]:
        return BF16_MIN_CHANNELS if settings.model.model == "lieconv" else None

    def prepare(self, settings: Settings, *, validate: bool = True) -> PreparedData:
        if settings.runtime.root is None:
            raise ValueError("pass --root, the QM9 folder (PyG's layout; downloaded there when empty)")
        data = prepare_data(settings, settings.runtime.root, download=settings.runtime.download)
        sizes = ", ".join(f"{k} {len(v)}" for k, v in data["splits"].items())
        summary = (f"{settings.data.target} ({data['target'].unit}), group {settings.model.group}: {sizes} molecules; "
                   f"train median {data['median']:.4g}, MAD {data['mad']:.4g}")
        return PreparedData(train=data["parts"]["train"], valid=data["parts"]["valid"] if validate else None,
                            measured=measured(data), summary=summary, extra=data,
                            files={"splits.json": {k: v.tolist() for k, v in data["splits"].items()}})

    def objective(self, settings: Settings, data: PreparedData, device: torch.device) -> QM9Objective:
        return QM9Objective(data.extra["target"], data.extra["median"], data.extra["mad"], data.valid,
                            2 * settings.trainer.batch_size, device, settings.trainer.dtype)

    def evaluate(self, run: str, model: nn.Module, settings: Settings, options: EvaluateSettings,
                 device: torch.device, data: Optional[PreparedData] = None) -> Dict[str, Any]:
        expect = {"target": get_target(options.target).name if options.target else None,
                  "group": canonical_group(options.group) if options.group else None}
        for key, value in expect.items():
            found = settings.flat()[key]
            if value is not None and found != value:
                raise ValueError(f"the run was trained with {key}={found!r}, not {value!r}")
        molecules = data.extra if data is not None else _evaluation_data(settings, options)
        stats, target = settings.measured, get_target(settings.data.target)
        index = molecules["splits"][options.split]
        if options.limit is not None:
            index = index[: options.limit]
        objective = QM9Objective(target, stats["target_median"], stats["target_mad"],
                                 batch_size=options.batch_size or 2 * settings.trainer.batch_size, device=device,
                                 dtype=settings.trainer.dtype)
        subset = molecules["dataset"].index_select(index)  # no augmentation
        mae = objective.mae(model, subset)
        baseline = (float((target_values(molecules["dataset"]._data.y[index], target) - stats["target_median"])
                          .abs().mean()) if _rows_are_molecules(molecules["dataset"]) else float("nan"))
        m = settings.model
        return {"target": settings.data.target, "model": m.model, "group": m.group, "mae": mae,
                "median_baseline_mae": baseline, "unit": target.unit, "paper_T3": PAPER_MAE[settings.data.target],
                "paper_group_homo": PAPER_HOMO_MAE_BY_GROUP.get(m.group)
                if settings.data.target == "homo" and m.model == "lieconv" else None,
                "num_molecules": len(subset),
                "root": os.path.abspath(options.root or settings.runtime.root or "")}

    def format_results(self, rows: List[Dict[str, Any]]) -> str:
        return format_results(rows)


#: the QM9 task of the command line (``lieconv train|evaluate|upgrade qm9``)
TASK = QM9Task()
