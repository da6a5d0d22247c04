r"""What an application declares; the :mod:`.driver` owns everything else.

A :class:`Task` (QM9, RotMNIST, springs) declares its settings (one dataclass per group, and one per
command besides ``train``), how to prepare its data (a :class:`PreparedData` bundle), which model the
settings build, an :class:`Objective` (loss, validation metrics, the metric that picks the best
checkpoint) and how a trained model is evaluated. The driver owns, for every command and every task:
rank gating under ``torchrun``, the device, threads, the run folder and its lock, checkpoint names,
seeding, precision, and the flags, which it generates from the settings.

This is the split of Lightning's ``LightningDataModule``/``LightningModule`` (what a task declares)
and its ``Trainer`` (what runs it), with the settings typed and saved with every run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

import torch
from torch import Tensor, nn

from .config import EvaluateSettings, Settings, TaskSettings

__all__ = ["Task", "PreparedData", "Objective", "Command"]

#: a command of a task beyond train/evaluate/upgrade: (its settings dataclass, ``run(task, options)``)
Command = Tuple[Type, Callable[["Task", Any], int]]


@dataclass
class PreparedData:
    r"""A task's data for one run.

    Args:
        train (Sequence): the training samples (anything PyG's ``DataLoader`` collates).
        valid (Sequence, optional): the validation samples (``None``: no validation).
        measured (Dict[str, Any]): what the run measured on its data and must keep to be rebuilt or
            resumed (e.g. QM9's target statistics), saved with its settings.
        summary (str): one line on the data for the run's start line.
        files (Dict[str, Any], optional): more JSON files of the run folder, by name.
            (default: :obj:`{}`)
        extra (Any, optional): the task's own objects (reused by its final evaluation).
            (default: :obj:`None`)
    """

    train: Sequence
    valid: Optional[Sequence]
    measured: Dict[str, Any]
    summary: str
    files: Dict[str, Any] = field(default_factory=dict)
    extra: Any = None


class Objective:
    r"""The loss a task trains and the validation metrics it reports.

    Args:
        monitor (str): the validation metric (lower is better) that picks ``checkpoint_best.pt``.
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor

    def loss(self, model: nn.Module, batch: Any) -> Tensor:
        """The mean loss over ``batch`` (already on the device)."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module) -> Dict[str, float]:
        """The validation metrics of ``model`` (eval mode), by name."""
        raise NotImplementedError


class Task:
    r"""One application of the command line: ``lieconv COMMAND NAME``.

    Subclasses set the class attributes and implement the methods that raise
    :class:`NotImplementedError`.

    What a subclass sets:

    * ``name``: the task's name on the command line;
    * ``settings``: its training settings (:class:`~.config.TaskSettings`: four groups, presets);
    * ``evaluate_settings``: the :class:`~.config.EvaluateSettings` (sub)class of ``lieconv evaluate``;
    * ``descriptions``: one line per command for its ``--help``;
    * ``commands``: commands beyond ``train``, ``evaluate`` and ``upgrade``, as (settings dataclass,
      ``run(task, options)``);
    * ``unused_parameters``: whether some parameters may get no gradient in a step (e.g. the constant
      offset of a learned energy, which the dynamics never see); under ``torchrun`` DDP then looks
      for them every step.
    """

    name: str = ""
    settings: TaskSettings
    evaluate_settings: Type[EvaluateSettings] = EvaluateSettings
    descriptions: Dict[str, str] = {}
    commands: Dict[str, Command] = {}
    unused_parameters: bool = False

    # ------------------------------------------------------------------ training
    def run_name(self, settings: Settings) -> str:
        """The default run folder's name under ``runs/`` (``TASK-...[-quick]``)."""
        raise NotImplementedError

    def model_arguments(self, settings: Settings) -> Tuple[str, Dict[str, Any]]:
        """The model of ``settings`` as (registered class name, constructor arguments)."""
        raise NotImplementedError

    def bfloat16_min_channels(self, settings: Settings) -> Optional[int]:
        """The width from which ``--precision auto`` picks bfloat16 (``None``: no bfloat16 path)."""
        return None

    def prepare(self, settings: Settings, *, validate: bool = True) -> PreparedData:
        """The data of a training run (``validate``: with the validation set)."""
        raise NotImplementedError

    def objective(self, settings: Settings, data: PreparedData, device: torch.device) -> Objective:
        """The loss and validation metrics of a run on ``data``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ evaluation
    def evaluation_dtype(self, settings: Settings, options: EvaluateSettings) -> torch.dtype:
        """The dtype a trained model is evaluated in (default: the one it trained in)."""
        return settings.trainer.dtype

    def evaluate(self, run: str, model: nn.Module, settings: Settings, options: EvaluateSettings,
                 device: torch.device, data: Optional[PreparedData] = None) -> Dict[str, Any]:
        """The metrics of the trained ``model`` of ``run`` on ``options.split`` (a row of
        :meth:`format_results`; values that are not plain JSON, e.g. rollout curves, are returned but
        not saved); ``data`` is the training run's own, when it evaluates at its end."""
        raise NotImplementedError

    def format_results(self, rows: List[Dict[str, Any]]) -> str:
        """The rows of :meth:`evaluate` as a table, next to the paper's figures."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
