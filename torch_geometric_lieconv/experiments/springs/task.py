r"""The springs task of the command line: ``lieconv train|evaluate|study|upgrade springs``.

One dynamics model trains on rollout windows (the loss of Eq. 11, the validation MSE picking the best
checkpoint) and is evaluated on long rollouts from the start of every test trajectory: the rollout
MSE by horizon, the error of the true energy and the drift of linear and angular momentum.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ...datasets.springs import system_from_name
from ..common import text_table
from ..config import EvaluateSettings, Settings, setting
from ..task import Objective, PreparedData, Task
from .plots import plot_trajectories
from .rollouts import RolloutObjective, long_rollouts, summarise
from .settings import SETTINGS, load_split, model_arguments


@dataclass
class DynamicsEvaluateSettings(EvaluateSettings):
    """Which trained spring-dynamics runs to evaluate, on which test systems, and where."""

    root: Optional[str] = setting(None, "data cache folder (default: the run's)")
    data_seed: Optional[int] = setting(None, "seed of the test systems (default: the run's; another draws new "
                                             "systems)")
    horizons: List[int] = setting([], "rollout lengths of the MSE (default: the training window, 100, 500)")
    rollout_precision: str = setting("float64", "precision of the evaluation rollouts (float64 shows exact "
                                                "conservation)", choices=("float32", "float64"))
    substeps: int = setting(1, "RK4 steps per sample in the rollouts (training uses 1; more shrink the "
                               "integrator's angular momentum and energy error as h^4)")
    plot: bool = setting(False, "also write RUN/trajectories.png (Figure 6)")


class WindowObjective(Objective):
    """The rollout MSE over the training windows (Eq. 11); the validation MSE picks the best checkpoint.

    Args:
        settings (Settings): the run's settings.
        valid (Sequence, optional): the validation windows. (default: :obj:`None`)
        device (torch.device, optional): where to evaluate. (default: the CPU)
    """

    def __init__(self, settings: Settings, valid=None, device: Any = "cpu") -> None:
        super().__init__("val_mse")
        system = system_from_name(settings.data.system)
        self.rollouts = RolloutObjective(system.param_keys, settings.data.integrator)
        self.valid, self.device, self.dtype = valid, device, settings.trainer.dtype
        self.batch_size = 2 * settings.trainer.batch_size

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        return self.rollouts.loss(model, batch)

    def evaluate(self, model: nn.Module) -> Dict[str, float]:
        return {"val_mse": self.rollouts.mse(model, self.valid, self.batch_size, self.device, self.dtype)}


def format_results(rows: List[Dict[str, Any]]) -> str:
    """A table of the evaluation rows (rollout MSE by horizon, energy error, momentum drifts).

    Args:
        rows (List[Dict[str, Any]]): rows of ``lieconv evaluate springs``.
    """
    mse_keys = sorted({k for r in rows for k in r if k.startswith("mse_")}, key=lambda k: int(k[4:]))
    header = ["model", "group", "n_train", "test MSE (window)"] + [f"MSE@{k[4:]}" for k in mse_keys] + [
        "energy err", "lin. mom. drift", "ang. mom. drift"]
    lines = [header]
    for r in rows:
        lines.append([r["model"], str(r["group"]), str(r["n_train"]), f"{r['test_mse']:.3g}"]
                     + [f"{r[k]:.3g}" for k in mse_keys]
                     + [f"{r['energy_drift']:.2g}", f"{r['linear_momentum_drift']:.2g}",
                        f"{r['angular_momentum_drift']:.2g}"])
    if rows:
        r = rows[0]
        lines.append(["(data)", "-", "-", "-"] + ["-"] * len(mse_keys) + [
            f"{r['data_energy_drift']:.2g}", f"{r['data_linear_momentum_drift']:.2g}",
            f"{r['data_angular_momentum_drift']:.2g}"])
    return text_table(lines)


class SpringsTask(Task):
    """Learning Hamiltonian dynamics of spring (or gravity) systems (the paper's §6)."""

    name = "springs"
    settings = SETTINGS
    evaluate_settings = DynamicsEvaluateSettings
    unused_parameters = True  # a learned energy's constant offset never reaches the dynamics
    descriptions = {
        "train": "Train a dynamics model on spring systems (the paper's §6 protocol).",
        "evaluate": "Rollout MSE, energy error and momentum drift of trained spring-dynamics runs.",
        "study": "Figures 6-8 of the paper: momentum conservation by group (Trivial, T(2), SO(2), SE(2)), test MSE "
                 "against training set size (FC, HFC, OGN, HOGN, HLieConv), and rollout paths.",
    }

    @property
    def commands(self) -> Dict[str, Any]:  # the study imports the plots: only when asked for
        from .study import StudySettings, run_study

        return {"study": (StudySettings, run_study)}

    def run_name(self, settings: Settings) -> str:
        model = settings.model
        group = f"-{model.group}" if model.model == "HLieConv" else ""
        return f"springs-{model.model}{group}" + ("-quick" if settings.preset == "quick" else "")

    def model_arguments(self, settings: Settings) -> Tuple[str, Dict[str, Any]]:
        return model_arguments(settings)

    def prepare(self, settings: Settings, *, validate: bool = True) -> PreparedData:
        root = settings.runtime.root
        train = load_split(settings, root, "train", chunked=True)
        valid = load_split(settings, root, "val", chunked=True) if validate else None
        if settings.trainer.batch_size > len(train):  # a batch cannot exceed the systems
            settings.trainer.batch_size = len(train)
        model = settings.model
        about = f"{model.model}" + (f" ({model.group}, center={model.center})" if model.model == "HLieConv" else "")
        return PreparedData(train=train, valid=valid, measured={},
                            summary=f"{about}, {len(train)} training systems, {settings.trainer.epochs} epochs")

    def objective(self, settings: Settings, data: PreparedData, device: torch.device) -> WindowObjective:
        return WindowObjective(settings, data.valid, device)

    def evaluation_dtype(self, settings: Settings, options: EvaluateSettings) -> torch.dtype:
        precision = getattr(options, "rollout_precision", "float64")
        return torch.float64 if precision == "float64" else torch.float32

    def evaluate(self, run: str, model: nn.Module, settings: Settings, options: EvaluateSettings,
                 device: torch.device, data: Optional[PreparedData] = None) -> Dict[str, Any]:
        if options.data_seed is not None:
            settings = settings.replace(data_seed=int(options.data_seed))
        root = options.root or settings.runtime.root
        if root is None:
            raise ValueError("pass --root: the run does not record its data folder")
        test, chunked = (load_split(settings, root, "test", chunked=c) for c in (False, True))
        if options.limit is not None:
            test, chunked = test[: options.limit], chunked[: options.limit]
        horizons = list(options.horizons or (settings.data.chunk_len, 100, 500))
        dtype = self.evaluation_dtype(settings, options)
        system = system_from_name(settings.data.system)
        objective = RolloutObjective(system.param_keys, settings.data.integrator, substeps=options.substeps)
        batch_size = options.batch_size or 2 * settings.trainer.batch_size
        start = time.perf_counter()
        test_mse = objective.mse(model, chunked, batch_size, device, dtype)
        print(f"rolling out {len(test)} test systems over {max(horizons)} steps ({options.substeps} RK4 step(s) per "
              f"sample)", flush=True)
        curves = long_rollouts(model, test, objective, batch_size, device, dtype, max(horizons), options.progress)
        m = settings.model
        row = {"model": m.model, "group": m.group if m.model == "HLieConv" else "-", "center": m.center,
               "n_train": settings.data.n_train, "n_test": len(test), "substeps": options.substeps,
               "test_mse": test_mse, **summarise(curves, horizons), "eval_seconds": time.perf_counter() - start,
               "data_seed": settings.data.data_seed, "curves": curves}
        if options.plot:
            plot_trajectories({m.model: curves}, os.path.join(run, "trajectories.png"))
        return row

    def format_results(self, rows: List[Dict[str, Any]]) -> str:
        return format_results(rows)


#: the springs task of the command line (``lieconv train|evaluate|study|upgrade springs``)
TASK = SpringsTask()
