r"""``lieconv study springs``: Figures 6-8 of the paper at a CPU scale (``--full``: the paper's scale).

* Figure 7: momentum conservation by symmetry group (Trivial, T(2), SO(2), SE(2), with and without the
  continuous kernel input), over seeds;
* Figure 8: test MSE against training set size for FC, HFC, OGN, HOGN and HLieConv, bands over seeds;
* Figure 6: predicted against true particle paths of one test system.

Every run is a run folder of its own under ``--out`` (reused when the study is called again); the rows
go to ``OUT/results.json`` (the parts not run this time keep theirs) and the figures next to it.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import Tensor

from ...datasets.safe_load import safe_torch_load
from ...datasets.springs import system_from_name
from ...models.hub import checkpoint_file
from ...training import training_device
from ..common import apply_threads, text_table
from ..config import Settings, setting
from ..driver import load_trained, train
from ..task import Task
from .plots import plot_conservation, plot_data_efficiency, plot_trajectories
from .rollouts import RolloutObjective, long_rollouts, summarise
from .settings import MODELS, SETTINGS, SMALL_LR_SCALE, canonical_model, load_split, paper_epochs
from .statistics import geometric_interval


#: Figure 7's learning rate by group at CPU scale (non-centred models, 20 epochs of 200 systems): at
#: 3x the reference rate SO(2) and SE(2) stay on the initial plateau (measured, seed 0: SO(2) test MSE
#: 0.125 against 0.043 at 1e-2; SE(2) validation MSE 0.040 against 0.0052)
MOMENTUM_LR = {"SO2": 1e-2, "SE2": 1e-2}
#: the study at CPU scale (default) and at the paper's scale (``--full``)
STUDY_SCALES: Dict[str, Dict[str, Any]] = {
    "small": {"sizes": [25, 100, 400], "seeds": [0, 1, 2, 3, 4], "n_val": 50, "n_test": 100, "epoch_scale": 4e5,
              "batch_size": 50, "momentum_n_train": 200, "momentum_epochs": 20, "momentum_n_test": 20,
              "widths": {"HLieConv": (64, 2), "FC": (128, 3), "HFC": (128, 3), "OGN": (64, 1), "HOGN": (64, 1)},
              "lr_scale": SMALL_LR_SCALE, "trajectory_steps": 150, "momentum_lr": MOMENTUM_LR},
    "full": {"sizes": [10, 25, 50, 100, 400, 1000, 3000, 10000], "seeds": [0, 1, 2], "n_val": 200, "n_test": 2000,
             "epoch_scale": 1e7, "batch_size": 200, "momentum_n_train": 3000, "momentum_epochs": None,
             "momentum_n_test": 100, "widths": None, "lr_scale": {}, "trajectory_steps": 500, "momentum_lr": {}},
}
PARTS = ("momentum", "data", "trajectories")
#: Figure 7's models: (group, continuous kernel input, label); all HLieConv, not centred
MOMENTUM_MODELS = (("Trivial2", False, "Trivial"), ("T2", False, "T(2)"), ("SO2", False, "SO(2)"),
                   ("SO2", True, "SO(2) cont."), ("SE2", False, "SE(2)"), ("SE2", True, "SE(2) cont."))
#: RK4 steps per sample in Figure 7's rollouts (as for the ground truth), so that the integrator's
#: O(h^4) error on angular momentum sits well below the drift of models without rotation symmetry
MOMENTUM_SUBSTEPS = 4


@dataclass
class StudySettings:
    """The study's scale, parts and folders (``lieconv study springs``)."""

    out: str = setting("runs/springs-study", "study folder (runs, results, figures)")
    figures: Optional[str] = setting(None, "also copy the figures (springs_*.png) to this folder")
    full: bool = setting(False, "the paper's scale (hours on a GPU) instead of the CPU scale")
    parts: List[str] = setting(list(PARTS), "the parts to run", choices=PARTS)
    sizes: List[int] = setting([], "training set sizes of Figure 8 (default: the scale's)")
    seeds: List[int] = setting([], "training seeds per size (default: the scale's)")
    models: List[str] = setting([], f"models of Figure 8 (default: {' '.join(MODELS)})")
    root: str = setting("data/springs", "data cache folder (generated on first use)")
    device: Optional[str] = setting(None, "cpu, cuda or cuda:N (default: cuda when available)")
    threads: int = setting(1, "torch CPU threads (1 is fastest for small models, above all on a busy machine)")


def _study_settings(scale: Dict[str, Any], args: StudySettings, device: torch.device, model: str,
                    **flags: Any) -> Settings:
    """The settings of one study run: the paper's for ``model``, with the scale's data sizes, widths and
    learning-rate factor, and ``flags``; it runs on ``device`` from ``--root``, resumed when interrupted."""
    given = {"model": model, "batch_size": scale["batch_size"], "n_val": scale["n_val"], "n_test": scale["n_test"],
             "traj_len": scale.get("traj_len"), **flags}
    settings = SETTINGS.resolve(flags=given)
    if scale["widths"] is not None:
        settings.model.hidden_channels, settings.model.num_layers = scale["widths"][settings.model.model]
    settings.trainer.lr *= scale["lr_scale"].get(settings.model.model, 1.0)
    runtime = settings.runtime
    runtime.root, runtime.device, runtime.resume, runtime.progress = args.root, str(device), True, False
    runtime.out, runtime.test = None, False
    return settings


def _run_quietly(run_dir: str, fn, *args, **kwargs):
    """Run ``fn`` with its output going to ``run_dir/train.log`` (the study prints one line per run)."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "train.log"), "a") as log, contextlib.redirect_stdout(log):
        return fn(*args, **kwargs)


def _study_run(task: Task, settings: Settings, run_dir: str, *, curves: bool = False,
               n_test: Optional[int] = None, horizons: Sequence[int] = (5,), substeps: int = 1) -> Dict[str, Any]:
    """Train (or reuse) one study run and evaluate its last checkpoint; cached in ``run_dir/results_test.json``
    (and the rollout curves in ``run_dir/curves.pt``)."""
    result_path, curves_path = os.path.join(run_dir, "results_test.json"), os.path.join(run_dir, "curves.pt")
    done = os.path.isfile(result_path) and os.path.isfile(checkpoint_file(run_dir, "last"))
    if done and curves and os.path.isfile(curves_path):
        with open(result_path) as f:
            row = json.load(f)
        if row.get("substeps") == substeps and row.get("n_curves") == n_test:
            cached = safe_torch_load(curves_path)
            return {**row, **summarise(cached, horizons), "curves": cached}
    start = time.perf_counter()
    if not done:
        settings.runtime.out = run_dir
        _run_quietly(run_dir, train, task, settings, validate=False)
    train_s = time.perf_counter() - start
    if done and not curves:
        with open(result_path) as f:
            return json.load(f)
    device, root, data = torch.device(settings.runtime.device), settings.runtime.root, settings.data
    batch_size = 2 * settings.trainer.batch_size
    options = task.evaluate_settings(run=[run_dir], checkpoint="last", device=str(device), progress=False)
    model, _, _, _ = load_trained(task, run_dir, options)
    system = system_from_name(data.system)
    objective = RolloutObjective(system.param_keys, data.integrator)
    chunked = load_split(settings, root, "test", chunked=True)
    test_mse = objective.mse(model, chunked, batch_size, device, torch.float64)
    row: Dict[str, Any] = {"run": run_dir, "model": settings.model.model, "group": settings.model.group,
                           "center": settings.model.center, "n_train": data.n_train, "seed": settings.trainer.seed,
                           "epochs": settings.trainer.epochs, "test_mse": test_mse, "train_seconds": train_s}
    out_curves = None
    if curves:
        test = load_split(settings, root, "test", chunked=False)
        test = test[: n_test] if n_test is not None else test
        fine = RolloutObjective(system.param_keys, data.integrator, substeps=substeps)
        out_curves = long_rollouts(model, test, fine, batch_size, device, torch.float64)
        row["substeps"], row["n_curves"] = substeps, n_test
        row.update(summarise(out_curves, horizons))
        torch.save(out_curves, curves_path)
    if done:
        with open(result_path) as f:
            row["train_seconds"] = json.load(f).get("train_seconds", train_s)
    with open(result_path, "w") as f:
        json.dump(row, f, indent=2)
    return {**row, "curves": out_curves} if curves else row


def run_study(task: Task, args: StudySettings) -> int:
    """``lieconv study springs``: the parts of ``args`` at its scale; rows and figures under ``args.out``.

    Args:
        task (Task): the springs task.
        args (StudySettings): the study's settings.
    """
    apply_threads(args.threads)
    device = training_device(args.device)
    scale = copy.deepcopy(STUDY_SCALES["full" if args.full else "small"])
    if args.sizes:
        scale["sizes"] = sorted(args.sizes)
    if args.seeds:
        scale["seeds"] = list(args.seeds)
    models = [canonical_model(m) for m in (args.models or MODELS)]
    os.makedirs(args.out, exist_ok=True)
    figures: List[str] = []
    start = time.perf_counter()
    rows: List[Dict[str, Any]] = []
    trajectory_models: Dict[str, Dict[str, Tensor]] = {}

    if "momentum" in args.parts:  # Figure 7
        curves_by_label: Dict[str, List[Dict[str, Tensor]]] = {}
        momentum_rows: List[Dict[str, Any]] = []
        for group, continuous, label in MOMENTUM_MODELS:
            for seed in scale["seeds"]:
                settings = _study_settings(scale, args, device, "HLieConv", group=group, center=False, seed=seed,
                                           continuous_kernel=continuous, n_train=scale["momentum_n_train"],
                                           epochs=scale["momentum_epochs"])
                settings.trainer.lr = scale["momentum_lr"].get(group, settings.trainer.lr)
                name = f"HLieConv-{group}" + ("-continuous" if continuous else "") + f"-seed{seed}"
                row = _study_run(task, settings, os.path.join(args.out, "momentum", name), curves=True,
                                 n_test=scale["momentum_n_test"], substeps=MOMENTUM_SUBSTEPS,
                                 horizons=(settings.data.chunk_len, 100, settings.data.traj_len))
                dt = settings.data.dt
                curves_by_label.setdefault(label, []).append(row.pop("curves"))
                momentum_rows.append({**row, "part": "momentum", "label": label})
                print(f"[momentum] {label:12s} seed={seed}  linear drift {row['linear_momentum_drift']:.2e}  "
                      f"angular drift {row['angular_momentum_drift']:.2e}  energy err {row['energy_drift']:.2e}  "
                      f"test MSE {row['test_mse']:.3g}  ({row['train_seconds']:.0f} s)", flush=True)
        rows += momentum_rows
        path = os.path.join(args.out, "springs_momentum.png")
        plot_conservation({label: concat_curves(runs) for label, runs in curves_by_label.items()},
                          dt, path, MOMENTUM_SUBSTEPS)
        figures.append(path)
        print(format_momentum_table(momentum_rows))

    data_rows: List[Dict[str, Any]] = []
    if "data" in args.parts:  # Figure 8
        pool = max(scale["sizes"])
        for model in models:
            for n in scale["sizes"]:
                for seed in scale["seeds"]:
                    settings = _study_settings(scale, args, device, model, n_train=n, train_pool=pool, seed=seed,
                                               epochs=paper_epochs(n, scale["epoch_scale"]))
                    row = _study_run(task, settings, os.path.join(args.out, "data", f"{model}-n{n}-seed{seed}"))
                    data_rows.append({**row, "part": "data"})
                    print(f"[data] {model:8s} n={n:<6d} seed={seed}  test MSE {row['test_mse']:.4g}  "
                          f"({row['train_seconds']:.0f} s)", flush=True)
        rows += data_rows
        path = os.path.join(args.out, "springs_data_efficiency.png")
        plot_data_efficiency(data_rows, path)
        figures.append(path)
        print(format_study_table(data_rows))

    if "trajectories" in args.parts:  # Figure 6, from the largest-size seed-0 runs of the data study
        pool, n = max(scale["sizes"]), max(scale["sizes"])
        for model in [m for m in ("FC", "HOGN", "HLieConv") if m in models]:
            settings = _study_settings(scale, args, device, model, n_train=n, train_pool=pool, seed=scale["seeds"][0],
                                       epochs=paper_epochs(n, scale["epoch_scale"]))
            run_dir = os.path.join(args.out, "data", f"{model}-n{n}-seed{scale['seeds'][0]}")
            row = _study_run(task, settings, run_dir, curves=True, n_test=1,
                             horizons=(settings.data.chunk_len, 100, settings.data.traj_len))
            trajectory_models[model if model != "HLieConv" else "HLieConv (T(2))"] = row.pop("curves")
        if trajectory_models:
            path = os.path.join(args.out, "springs_trajectories.png")
            plot_trajectories(trajectory_models, path, steps=scale["trajectory_steps"])
            figures.append(path)

    # the parts not run this time keep their rows
    results_path = os.path.join(args.out, "results.json")
    if os.path.isfile(results_path):
        with open(results_path) as f:
            rows = [r for r in json.load(f) if r.get("part") not in args.parts] + rows
    with open(results_path, "w") as f:
        json.dump(rows, f, indent=2)
    if args.figures:
        import shutil

        os.makedirs(args.figures, exist_ok=True)
        for path in figures:
            shutil.copy(path, os.path.join(args.figures, os.path.basename(path)))
    print(f"study done in {time.perf_counter() - start:.0f} s; figures: {', '.join(figures)}", flush=True)
    return 0


def concat_curves(runs: Sequence[Dict[str, Tensor]]) -> Dict[str, Tensor]:
    """The rollout curves of several runs as one set (rows of all runs' test systems).

    Args:
        runs (Sequence[Dict[str, torch.Tensor]]): rollout curves of several runs.
    """
    return {key: torch.cat([curves[key] for curves in runs]) for key in runs[0] if key != "batch"}


def format_momentum_table(rows: List[Dict[str, Any]]) -> str:
    """Figure 7 as a table: per model, geometric mean [95% interval] over seeds of the test MSE and of the
    momentum drifts and energy error at the end of the rollouts (each run's median over its systems).

    Args:
        rows (List[Dict[str, Any]]): the momentum part's rows.
    """
    keys = (("test_mse", "test MSE"), ("linear_momentum_drift_median", "linear drift"),
            ("angular_momentum_drift_median", "angular drift"), ("energy_drift_median", "energy error"))
    lines = [["model", "seeds"] + [title for _, title in keys]]
    for label in dict.fromkeys(r["label"] for r in rows):
        runs = [r for r in rows if r["label"] == label]
        cells = []
        for key, _ in keys:
            mean, lo, hi = geometric_interval([r[key] for r in runs])
            cells.append(f"{mean:.2g} [{lo:.2g}, {hi:.2g}]")
        lines.append([label, str(len(runs))] + cells)
    return text_table(lines)


def format_study_table(rows: List[Dict[str, Any]]) -> str:
    """Test MSE per model and training size: geometric mean over seeds, its 95% interval and the
    number of seeds.

    Args:
        rows (List[Dict[str, Any]]): the data part's rows.
    """
    models = [m for m in MODELS[1:] + MODELS[:1] if any(r["model"] == m for r in rows)]
    sizes = sorted({r["n_train"] for r in rows})
    lines = [["model"] + [f"N={n}" for n in sizes]]
    for model in models:
        line = [model]
        for n in sizes:
            values = [r["test_mse"] for r in rows if r["model"] == model and r["n_train"] == n]
            mean, lo, hi = geometric_interval(values)
            line.append(f"{mean:.2g} [{lo:.2g}, {hi:.2g}] ({len(values)})")
        lines.append(line)
    return text_table(lines)
