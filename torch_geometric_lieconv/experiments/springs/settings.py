r"""The settings of the spring-dynamics task, the model they build and the data they load.

Settings (:data:`SETTINGS`, see :mod:`~torch_geometric_lieconv.experiments.config`) resolve as: the
reference settings of the model (:data:`MODEL_DEFAULTS`, the paper's) < ``--preset quick``
(:data:`QUICK_PRESET`) < ``--config file.json`` < flags.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from ...datasets.springs import ParticleDynamics, system_from_name
from ...groups import group_from_name, group_spec
from ..config import RuntimeSettings, Settings, TaskSettings, setting

#: the dynamics models: HLieConv (:class:`~torch_geometric_lieconv.models.HamiltonianLieConv`) and the
#: paper's baselines
MODELS = ("HLieConv", "FC", "HFC", "OGN", "HOGN")
#: the reference's tuned settings (``examples/spring_dynamics_study.py``: best_hypers)
MODEL_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "HLieConv": {"hidden_channels": 384, "num_layers": 4, "lr": 1e-3},
    "FC": {"hidden_channels": 256, "num_layers": 4, "lr": 3e-3},
    "HFC": {"hidden_channels": 256, "num_layers": 4, "lr": 1e-2},
    "OGN": {"hidden_channels": 256, "num_layers": 1, "lr": 1e-2},
    "HOGN": {"hidden_channels": 256, "num_layers": 1, "lr": 1e-2},
}
#: the reference's learning rate for HLieConv by group, where it differs from 1e-3
GROUP_LR = {"SO2": 3e-4}
#: the reference's optimisation, for every model
TRAINER_DEFAULTS: Dict[str, Any] = {"batch_size": 200, "epochs": None, "warmup_frac": 0.0}
#: ``--preset quick``: small models and data, about a minute per run on one CPU core
QUICK_PRESET: Dict[str, Any] = {"n_train": 200, "n_val": 50, "n_test": 50, "batch_size": 50, "epochs": 30}
#: the quick preset's (width, depth) by model
QUICK_WIDTH = {"HLieConv": (64, 2), "FC": (128, 3), "HFC": (128, 3), "OGN": (64, 1), "HOGN": (64, 1)}
#: learning-rate factors of the CPU-scale runs (quick preset and study): with ~10x fewer steps than the
#: reference, HLieConv's reference rate (1e-3) leaves it on its initial plateau; 3x fixes that
SMALL_LR_SCALE = {"HLieConv": 3.0}


def paper_epochs(n_train: int, scale: float = 1e7) -> int:
    r"""The reference study's epoch rule, :math:`\lfloor\sqrt{\text{scale}/n}\rfloor` (``scale = 1e7``).

    Args:
        n_train (int): training systems :math:`n`.
        scale (float, optional): the rule's constant. (default: :obj:`1e7`)
    """
    return max(1, int(math.sqrt(scale / max(n_train, 1))))


def canonical_model(name: str) -> str:
    """A model name as in :data:`MODELS` (``"hlieresnet"``, ``"lieconv"``, ``"fcnode"``... accepted).

    Args:
        name (str): a model name in any common spelling.
    """
    table = {m.lower(): m for m in MODELS}
    table.update({"hlieresnet": "HLieConv", "lieconv": "HLieConv", "fcnode": "FC", "hamiltonianfc": "HFC"})
    key = str(name).replace("-", "").replace("_", "").lower()
    if key not in table:
        raise ValueError(f"unknown dynamics model {name!r}; choose one of {', '.join(MODELS)}")
    return table[key]


@dataclass
class DynamicsModelSettings:
    """The dynamics model: HLieConv or a baseline (FC, HFC, OGN, HOGN)."""

    model: str = setting("HLieConv", f"{', '.join(MODELS)}")
    group: str = setting("T2", "HLieConv's group: T2, SO2, SE2, Trivial2, ...")
    center: bool = setting(True, "HLieConv: centre positions per system (adds translation invariance)")
    hidden_channels: Optional[int] = setting(None, "channels (default: the model's reference width)")
    num_layers: Optional[int] = setting(None, "layers (default: the model's reference depth)")
    mc_samples: int = setting(100, "HLieConv: Monte Carlo neighbours (nbhd)")
    fill: float = setting(1.0, "HLieConv: fraction of the points whose ball is the neighbourhood")
    lift_samples: int = setting(1, "HLieConv: lifts per particle")
    continuous_kernel: bool = setting(False, "HLieConv: kernels of the matrix v^-1 u instead of its log "
                                             "(no jump at angle pi)")


@dataclass
class SystemsSettings:
    """The simulated systems: how many, how long, and how they are cut into training windows."""

    system: str = setting("springs", "springs or gravity", choices=("springs", "gravity"))
    n_train: int = setting(3000, "training systems")
    train_pool: Optional[int] = setting(None, "systems generated for training (default: n_train); the "
                                              "first n_train are used")
    n_val: int = setting(200, "validation systems")
    n_test: int = setting(2000, "test systems")
    chunk_len: int = setting(5, "steps per training window (the rollout of the loss)")
    traj_len: int = setting(500, "steps per trajectory (default: 500, gravity 200)")
    dt: float = setting(0.01, "time between samples")
    substeps: int = setting(4, "RK4 steps per sample of the simulator")
    data_seed: int = setting(0, "seed of the simulated systems")
    integrator: str = setting("rk4", "ODE method of the model's rollouts (torchdiffeq's names)")


@dataclass
class SpringsRuntimeSettings(RuntimeSettings):
    """Where and how a springs run executes; may differ between a run and its resume or evaluation."""

    root: Optional[str] = setting("data/springs", "data cache folder (generated on first use)")
    out: Optional[str] = setting(None, "run folder (default: runs/springs-MODEL[-GROUP][-quick])")


def _presets(preset: str, chosen: Mapping[str, Any]) -> Dict[str, Any]:
    model = canonical_model(chosen.get("model", "HLieConv"))
    values = {**TRAINER_DEFAULTS, **MODEL_DEFAULTS[model]}
    group = str(group_from_name(chosen.get("group", "T2")).name)
    if model == "HLieConv" and group in GROUP_LR:
        values["lr"] = GROUP_LR[group]
    if preset == "quick":
        values.update(QUICK_PRESET)
        values["hidden_channels"], values["num_layers"] = QUICK_WIDTH[model]
        values["lr"] *= SMALL_LR_SCALE.get(model, 1.0)
    if chosen.get("system") == "gravity":
        values["traj_len"] = 200
    return values


def _finish(settings: Settings) -> None:
    model, data, trainer = settings.model, settings.data, settings.trainer
    model.model = canonical_model(model.model)
    group_from_name(model.group)  # a clear error for a bad name
    if trainer.epochs is None:
        trainer.epochs = paper_epochs(data.n_train)
    if data.train_pool is None:
        data.train_pool = data.n_train
    if data.n_train > data.train_pool:
        raise ValueError(f"n_train={data.n_train} exceeds train_pool={data.train_pool}")


#: the springs task's settings: the paper's by default, ``--preset quick`` for a CPU
SETTINGS = TaskSettings("springs", DynamicsModelSettings, SystemsSettings, runtime=SpringsRuntimeSettings,
                        presets=_presets, finish=_finish, trainer_choices={"precision": ("float32", "float64")})


def model_arguments(settings: Settings) -> Tuple[str, Dict[str, Any]]:
    """The dynamics model of ``settings`` (``model(t, z, params, batch) -> dz/dt``) as (class name,
    constructor arguments).

    Args:
        settings (Settings): the run's settings.
    """
    m = settings.model
    system = system_from_name(settings.data.system)
    c, d, n = len(system.param_keys), system.dim, system.num_particles
    width, depth = m.hidden_channels, m.num_layers
    if m.model == "HLieConv":
        group = group_from_name(m.group)
        if group.space_dim != d:
            raise ValueError(f"group {m.group} acts on R^{group.space_dim} but the system is {d}D")
        return "HamiltonianLieConv", dict(
            param_channels=c, group=group_spec(group), hidden_channels=width, num_layers=depth,
            mc_samples=m.mc_samples, fill=m.fill, lift_samples=m.lift_samples, center=m.center,
            continuous_kernel=m.continuous_kernel)
    if m.model in ("FC", "HFC"):
        name = "FCNeuralODE" if m.model == "FC" else "HamiltonianFC"
        return name, dict(num_particles=n, dim=d, param_channels=c, hidden_channels=width, num_layers=depth)
    return m.model, dict(dim=d, param_channels=c, hidden_channels=width, num_layers=depth)


def load_split(settings: Settings, root: str, split: str, chunked: bool) -> ParticleDynamics:
    """The ``train``/``val``/``test`` systems of ``settings`` (``chunked``: one training window per system).

    Args:
        settings (Settings): the run's settings.
        root (str): the data cache folder.
        split (str): ``"train"``, ``"val"`` or ``"test"``.
        chunked (bool): one training window per system (else whole trajectories).
    """
    data = settings.data
    size = {"train": data.train_pool, "val": data.n_val, "test": data.n_test}[split]
    dataset = ParticleDynamics(root, data.system, split, size, traj_len=data.traj_len, dt=data.dt,
                               substeps=data.substeps, seed=data.data_seed,
                               chunk_len=data.chunk_len if chunked else None)
    return dataset[: data.n_train] if split == "train" else dataset
