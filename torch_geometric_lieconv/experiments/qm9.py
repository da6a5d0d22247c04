r"""``lieconv train qm9`` and ``lieconv evaluate qm9``: the paper's QM9 experiment (Tables 2 and 3).

Settings are resolved in this order (later wins): the reference settings of the group
(:data:`GROUP_DEFAULTS`, the paper's), ``--preset quick`` (:data:`QUICK_PRESET`), ``--config file.json``,
then explicit flags. The resolved settings, the split indices and the target statistics are saved
in the run folder and in every checkpoint, so ``lieconv evaluate qm9 --run DIR`` needs nothing else.

Example::

    lieconv train qm9 --root data/QM9 --target homo --group T3            # the paper's T(3) run
    lieconv train qm9 --root data/QM9 --target homo --group SE3           # the paper's SE(3) run
    lieconv train qm9 --root data/QM9 --target homo --preset quick        # a few minutes on a CPU
    lieconv evaluate qm9 --run runs/qm9-homo-T3
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import os
import re
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from ..datasets.qm9 import (PAPER_HOMO_MAE_BY_GROUP, PAPER_MAE, QM9Target, RandomRotation3d, get_target, load_qm9,
                            qm9_splits, save_splits, target_statistics, target_values)
from ..groups import group_from_name, group_spec
from .common import (add_threads_option, apply_threads, build_model, configure_upgrade, read_config_file,
                     text_table, trained_model, upgrade_command)
from ..runs import default_run_folder, refuse_early, run_folder, write_json
from ..training import (RUNTIME_KEYS, Trainer, cleanup_distributed, init_distributed, is_main_process,
                        load_checkpoint, seed_everything)

#: the reference settings shared by every group (the paper's)
BASE_CONFIG: Dict[str, Any] = {
    "task": "qm9", "target": "homo", "group": "T3", "alpha": None, "model": "lieconv",
    "hidden_channels": 1536, "num_layers": 6, "mc_samples": 100, "fill": 1.0, "lift_samples": 1,
    "batch_norm": True, "recenter": False, "augment": True, "continuous_kernel": False,
    "lr": 3e-3, "batch_size": 75, "epochs": 500, "warmup_frac": 0.01, "weight_decay": 0.0, "grad_clip": None,
    "seed": 0, "split_seed": 0, "train_size": None, "valid_size": None, "test_size": None,
    "precision": "float32", "preset": "paper",
}
#: per-group reference settings (the reference README's commands)
GROUP_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "T3": {"group": "T3"},
    "Trivial": {"group": "Trivial"},
    "SE3": {"group": "SE3", "alpha": 0.2, "fill": 0.5, "lift_samples": 4, "mc_samples": 25, "recenter": True},
    "SO3": {"group": "SO3", "alpha": 0.2, "fill": 0.5, "lift_samples": 4, "mc_samples": 25, "recenter": True},
}
#: ``--preset quick``: a small model on a 5k training subset, about 3 minutes on one CPU core
#: (qm9-real-10k, homo: test MAE 267 meV against 432 meV for the training median)
QUICK_PRESET: Dict[str, Any] = {
    "preset": "quick", "hidden_channels": 128, "num_layers": 3, "epochs": 10, "batch_size": 32, "train_size": 5000,
    "valid_size": 500, "mc_samples": 32,
}
#: settings that do not change the result (may differ on resume / evaluate)
RUNTIME = ("device", "out", "root", "num_workers", "progress", "resume", "config", "download")


def canonical_group(name: str) -> str:
    """``"T(3)"``, ``"t3"``, ``"SE(3)"``, ``"trivial3"``... -> a key of :data:`GROUP_DEFAULTS`."""
    key = re.sub(r"[\s_()]", "", str(name)).lower()
    table = {"t3": "T3", "se3": "SE3", "so3": "SO3", "trivial": "Trivial", "trivial3": "Trivial"}
    if key not in table:
        raise ValueError(f"unknown group {name!r} for QM9; choose one of {', '.join(GROUP_DEFAULTS)}")
    return table[key]


def resolve_config(group: Optional[str] = None, preset: Optional[str] = None, config_file: Optional[str] = None,
                   overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The run's settings: group defaults < preset < config file < ``overrides`` (``None`` values ignored)."""
    from_file = read_config_file(config_file)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    group = canonical_group(overrides.get("group", group or from_file.get("group", "T3")))
    preset = overrides.get("preset", preset or from_file.get("preset", "paper"))
    if preset not in ("paper", "quick"):
        raise ValueError(f"unknown preset {preset!r}; choose 'paper' or 'quick'")
    config = copy.deepcopy(BASE_CONFIG)
    config.update(GROUP_DEFAULTS[group])
    if preset == "quick":
        config.update(QUICK_PRESET)
    model = overrides.get("model", from_file.get("model", "lieconv"))
    if model not in MODELS:
        raise ValueError(f"unknown QM9 model {model!r}; choose one of {', '.join(MODELS)}")
    if model == "schnet":
        config.update(SCHNET_DEFAULTS)
    unknown = sorted(set(from_file) - set(config))
    if unknown:
        raise ValueError(f"unknown settings {unknown} in {config_file}; known: {', '.join(sorted(config))}")
    config.update(from_file)
    config.update(overrides)
    config["group"] = group
    config["target"] = get_target(config["target"]).name
    if config["precision"] not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {config['precision']!r}")
    return config


#: ``precision`` settings: the weights' dtype, or float32 weights under bfloat16 autocast
PRECISIONS = ("float32", "float64", "bfloat16")
#: ``model`` settings: the paper's LieConv model (:class:`~torch_geometric_lieconv.models.QM9LieConv`)
#: or PyG's SchNet (:class:`~torch_geometric_lieconv.models.QM9SchNet`) as the baseline
MODELS = ("lieconv", "schnet")
#: SchNet's own defaults (PyG's, in any preset): width 128, 6 interactions, cutoff 10 Å; the
#: group, lift and neighbourhood settings do not apply to it
SCHNET_DEFAULTS: Dict[str, Any] = {"hidden_channels": 128, "num_layers": 6}


# ----------------------------------------------------------------------------------------------- model
def model_arguments(config: Mapping[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """The QM9 regressor of ``config`` as (class name, constructor arguments): ``model(z, pos, batch)
    -> [num_graphs, 1]`` in the dataset's units (PyG's QM9: eV for energies). The training median
    and MAD of ``config`` (in the paper's units, e.g. meV), when present, are its ``target_mean`` and
    ``target_std``, with the target's factor between the two units as its ``target_scale``."""
    target = {"target_mean": config.get("target_median", 0.0), "target_std": config.get("target_mad", 1.0),
              "target_scale": get_target(config["target"]).scale}
    if config["model"] == "schnet":
        return "QM9SchNet", dict(hidden_channels=config["hidden_channels"],
                                 num_interactions=config["num_layers"], **target)
    if config["model"] != "lieconv":
        raise ValueError(f"unknown QM9 model {config['model']!r}; choose one of {', '.join(MODELS)}")
    group_name = "Trivial3" if config["group"] == "Trivial" else config["group"]
    return "QM9LieConv", dict(
        group=group_spec(group_from_name(group_name, alpha=config["alpha"])),
        hidden_channels=config["hidden_channels"], num_layers=config["num_layers"],
        mc_samples=config["mc_samples"], fill=config["fill"], lift_samples=config["lift_samples"],
        batch_norm=config["batch_norm"], center=True if config["recenter"] else None,
        pos_scale=config.get("pos_scale", 1.0), continuous_kernel=config.get("continuous_kernel", False), **target)


def _dtype(config: Dict[str, Any]) -> torch.dtype:
    """The dtype of the weights and inputs (``bfloat16`` keeps float32 weights and autocasts)."""
    return torch.float64 if config["precision"] == "float64" else torch.float32


def _autocast(config: Dict[str, Any]) -> Optional[torch.dtype]:
    return torch.bfloat16 if config["precision"] == "bfloat16" else None


class QM9Objective:
    """The L1 loss on the normalised target and the MAE in the paper's units.

    The model predicts the target in the dataset's units (its ``mean``/``std`` buffers are the training
    median and MAD in the paper's units, its ``target_scale`` the factor between them); :meth:`predict`
    converts to the paper's units, and the loss is the L1 error divided by the MAD, i.e. on the
    normalised target.
    """

    def __init__(self, target: QM9Target, median: float, mad: float, autocast: Optional[torch.dtype] = None) -> None:
        self.target, self.median, self.mad, self.autocast = target, float(median), float(mad), autocast

    def loss(self, model: nn.Module, batch) -> Tensor:
        target = target_values(batch.y, self.target).to(batch.pos.dtype)
        return (self.predict(model, batch) - target).abs().mean() / self.mad

    def predict(self, model: nn.Module, batch) -> Tensor:
        """The model's prediction ``[B]`` in the paper's units; under ``autocast`` its matmuls run in
        that dtype (bfloat16), the group math and the output in float32."""
        with torch.autocast(batch.pos.device.type, dtype=self.autocast or torch.bfloat16,
                            enabled=self.autocast is not None):
            out = model(batch.z, batch.pos, batch.batch).squeeze(-1).to(batch.pos.dtype)
        return out * self.target.scale

    @torch.no_grad()
    def mae(self, model: nn.Module, dataset, batch_size: int, device: torch.device,
            dtype: torch.dtype = torch.float32) -> float:
        """Mean absolute error over ``dataset`` in the paper's units."""
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
def prepare_data(config: Dict[str, Any], root: str, *, download: bool = True) -> Dict[str, Any]:
    """Load QM9, split it, and compute the train statistics (median, MAD, position scale)."""
    dataset = load_qm9(root, download=download)
    splits = qm9_splits(len(dataset), seed=config["split_seed"], train_size=config["train_size"],
                        valid_size=config["valid_size"], test_size=config["test_size"])
    target = get_target(config["target"])
    train_y = target_values(dataset._data.y[splits["train"]] if _rows_are_molecules(dataset) else
                            torch.cat([dataset[int(i)].y for i in splits["train"]]), target)
    median, mad = target_statistics(train_y)
    pos_scale = 1.0
    if config["recenter"]:
        pos_scale = 1.0 / _centered_position_std(dataset, splits["train"])
    parts = {name: dataset.index_select(idx) for name, idx in splits.items()}
    if config["augment"]:
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


def _stats_config(config: Dict[str, Any], data: Dict[str, Any]) -> Dict[str, Any]:
    """Everything the checkpoint must hold to rebuild the run: settings, data size and statistics."""
    full = dict(config)
    full.update({"num_molecules": len(data["dataset"]), "target_median": data["median"], "target_mad": data["mad"],
                 "pos_scale": data["pos_scale"], "split_sizes": {k: len(v) for k, v in data["splits"].items()}})
    return full


# ----------------------------------------------------------------------------------------------- train
def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--root", default=None, help="QM9 root folder (PyG layout: ROOT/raw/...)")
    parser.add_argument("--no-download", dest="download", action="store_false",
                        help="fail instead of downloading QM9 when ROOT holds no data")


def configure_train(parser: argparse.ArgumentParser) -> None:
    parser.description = "Train LieConv on one QM9 target (the paper's Table 2 / Table 3 protocol)."
    _add_common(parser)
    add_threads_option(parser)
    parser.add_argument("--target", default=None, help="alpha, gap, homo, lumo, mu, Cv, G, H, r2, U, U0, zpve")
    parser.add_argument("--group", default=None, help="T3 (default), SE3, SO3 or Trivial")
    parser.add_argument("--model", default=None, choices=list(MODELS),
                        help="lieconv (default) or schnet (PyG's SchNet, the baseline; its own width and depth)")
    parser.add_argument("--preset", default=None, choices=["paper", "quick"],
                        help="paper: the reference settings (default); quick: a small run for a CPU")
    parser.add_argument("--config", default=None, help="JSON file of settings (overrides the preset)")
    parser.add_argument("--out", default=None, help="run folder (default: runs/qm9-TARGET-GROUP[-quick])")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None, help="training seed (model init, data order, sampling)")
    parser.add_argument("--split-seed", type=int, default=None, help="seed of the train/valid/test split")
    parser.add_argument("--train-size", type=int, default=None, help="training molecules (default: the protocol's)")
    parser.add_argument("--precision", default=None, choices=list(PRECISIONS),
                        help="float32 (default), float64, or bfloat16: float32 weights with the matmuls under "
                             "bfloat16 autocast (fast on CPUs with AVX-512-BF16/AMX and on GPUs)")
    parser.add_argument("--hidden-channels", type=int, default=None)
    parser.add_argument("--num-layers", type=int, default=None)
    parser.add_argument("--mc-samples", type=int, default=None)
    parser.add_argument("--fill", type=float, default=None)
    parser.add_argument("--lift-samples", type=int, default=None)
    parser.add_argument("--continuous-kernel", action="store_true", default=None,
                        help="kernels of the matrix v^-1 u instead of its log (no jump at rotation angle pi)")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="stop after this many epochs in this call (resume later with --resume)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


_FLAG_KEYS = ("target", "group", "model", "preset", "epochs", "batch_size", "lr", "seed", "split_seed", "train_size",
              "precision", "hidden_channels", "num_layers", "mc_samples", "fill", "lift_samples", "continuous_kernel")


def run_train(args: argparse.Namespace) -> int:
    apply_threads(args)
    overrides = {k: getattr(args, k, None) for k in _FLAG_KEYS}
    config = resolve_config(config_file=args.config, overrides=overrides)
    if args.root is None:
        raise ValueError("pass --root, the QM9 folder (PyG's layout; downloaded there when empty)")
    name = "schnet" if config["model"] == "schnet" else config["group"]
    out = args.out or default_run_folder(os.path.join("runs", f"qm9-{config['target']}-{name}"
                                                      + ("-quick" if config["preset"] == "quick" else "")), args.resume)
    device = torch.device(args.device) if args.device else None
    distributed = init_distributed(device)
    rank0 = is_main_process()
    if distributed and not rank0:
        torch.distributed.barrier()  # rank 0 processes the dataset first
    data = prepare_data(config, args.root, download=args.download)
    if distributed and rank0:
        torch.distributed.barrier()
    full_config = _stats_config(config, data)
    full_config["root"] = os.path.abspath(args.root)
    with contextlib.ExitStack() as folder:
        if rank0:
            folder.enter_context(run_folder(out))  # refused while another run writes to it
            refuse_early(out, args.resume, full_config, RUNTIME_KEYS | set(RUNTIME))
            write_json(os.path.join(out, "config.json"), full_config)
            save_splits(os.path.join(out, "splits.json"), data["splits"])
            print(f"QM9 {config['target']} ({data['target'].unit}), group {config['group']}: "
                  f"{', '.join(f'{k} {len(v)}' for k, v in data['splits'].items())} molecules; "
                  f"train median {data['median']:.4g}, MAD {data['mad']:.4g}; out {out}", flush=True)
        seed_everything(config["seed"])
        model = build_model(*model_arguments(full_config))
        objective = QM9Objective(data["target"], data["median"], data["mad"], _autocast(config))
        dtype = _dtype(config)
        eval_batch = 2 * config["batch_size"]

        def evaluate(m: nn.Module) -> Dict[str, float]:
            return {"valid_mae": objective.mae(m, data["parts"]["valid"], eval_batch, trainer.device, dtype)}

        trainer = Trainer(model, data["parts"]["train"], batch_size=config["batch_size"], loss_fn=objective.loss,
                          out_dir=out, epochs=config["epochs"], lr=config["lr"], weight_decay=config["weight_decay"],
                          warmup_frac=config["warmup_frac"], evaluate_fn=evaluate, monitor="valid_mae", device=device,
                          dtype=dtype, grad_clip=config["grad_clip"], seed=config["seed"], config=full_config,
                          runtime_keys=RUNTIME, num_workers=args.num_workers, progress=args.progress)
        start = time.perf_counter()
        history = trainer.fit(resume=args.resume, max_epochs=args.max_epochs)
        if rank0 and history:
            per_epoch = sum(row["time_s"] for row in history) / len(history)
            cpu_per_epoch = sum(row.get("cpu_s", float("nan")) for row in history) / len(history)
            print(f"trained {len(history)} epochs ({time.perf_counter() - start:.1f} s this call, "
                  f"{per_epoch:.1f} s/epoch, CPU {cpu_per_epoch:.1f} s/epoch); best valid MAE {trainer.best['value']:.4g} {data['target'].unit} "
                  f"at epoch {trainer.best['epoch']}", flush=True)
            if trainer.epoch >= trainer.epochs:
                rows = [evaluate_run(out, root=args.root, device=trainer.device, data=data)]
                print(format_results(rows))
    if distributed:
        cleanup_distributed()
    return 0


# ----------------------------------------------------------------------------------------------- evaluate
def configure_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.description = "Test MAE of trained QM9 runs, next to the paper's figures."
    _add_common(parser)
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
    that root's split of the same protocol, or on every molecule (``"all"``).
    """
    path = os.path.join(run, f"checkpoint_{checkpoint}.pt")
    state = load_checkpoint(path)
    config = state.get("config", {})
    if config.get("task") != "qm9":
        raise ValueError(f"{path} is not a QM9 checkpoint (task {config.get('task')!r})")
    for key, value in (expect or {}).items():
        if value is not None and config.get(key) != value:
            raise ValueError(f"{path} was trained with {key}={config.get(key)!r}, not {value!r}")
    own_root = root is None or os.path.abspath(root) == config.get("root")
    root = root or config.get("root")
    if data is None:
        if root is None:
            raise ValueError(f"pass --root: {path} does not record the QM9 folder")
        if own_root and split != "all":
            data = prepare_data(config, root, download=download)
            found = _stats_config(config, data)
            for key in ("num_molecules", "target_median", "target_mad", "pos_scale"):
                if abs(found[key] - config[key]) > 1e-9 * max(1.0, abs(config[key])):
                    raise ValueError(f"{root} gives {key}={found[key]:g} but {path} was trained with {key}="
                                     f"{config[key]:g}; its data changed since (evaluate with --split all)")
        else:
            data = _other_data(config, root, split, download)
    device = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    dtype = _dtype(config)
    model = trained_model(state, path, model_arguments).to(device, dtype)
    objective = QM9Objective(get_target(config["target"]), config["target_median"], config["target_mad"],
                             _autocast(config))
    seed_everything(config["seed"] if seed is None else seed)
    subset = data["dataset"].index_select(data["splits"][split])  # no augmentation
    mae = objective.mae(model, subset, batch_size or 2 * config["batch_size"], device, dtype)
    baseline = float((target_values(data["dataset"]._data.y[data["splits"][split]], objective.target)
                      - config["target_median"]).abs().mean()) if _rows_are_molecules(data["dataset"]) else float("nan")
    row = {"run": run, "target": config["target"], "model": config.get("model", "lieconv"), "group": config["group"],
           "split": split,
           "checkpoint": checkpoint, "epoch": state["epoch"], "mae": mae, "median_baseline_mae": baseline,
           "unit": objective.target.unit, "paper_T3": PAPER_MAE[config["target"]],
           "paper_group_homo": PAPER_HOMO_MAE_BY_GROUP.get(config["group"])
           if config["target"] == "homo" and config.get("model", "lieconv") == "lieconv" else None,
           "num_molecules": len(subset), "root": os.path.abspath(root)}
    write_json(os.path.join(run, f"results_{split}.json"), row)
    return row


def _other_data(config: Dict[str, Any], root: str, split: str, download: bool) -> Dict[str, Any]:
    """QM9 at ``root`` split by the run's protocol (sizes scaled to that root), or ``"all"`` of it."""
    dataset = load_qm9(root, download=download)
    if split == "all":
        splits = {"all": torch.arange(len(dataset))}
    else:
        splits = qm9_splits(len(dataset), seed=config["split_seed"])
    return {"dataset": dataset, "splits": splits}


def format_results(rows: List[Dict[str, Any]]) -> str:
    """A table of MAE per run next to the paper's figure (Table 2: T(3); Table 3: HOMO by group)."""
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
    apply_threads(args)
    rows = [evaluate_run(run, root=args.root, checkpoint=args.checkpoint, split=args.split, device=args.device,
                         batch_size=args.batch_size, expect=expect, download=args.download, seed=args.seed)
            for run in args.runs]
    print(format_results(rows))
    return 0


#: ``lieconv upgrade qm9`` (``configure_upgrade`` comes from :mod:`.common`)
run_upgrade = upgrade_command("qm9", model_arguments)
