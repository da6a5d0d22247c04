r"""One config system for the three tasks: typed settings in four groups, one resolution, one saved form.

A task describes its settings as four dataclasses, one per group:

* ``model``: what the network is (group, width, depth, neighbourhood sampling, ...);
* ``data``: which data and how it is split, augmented, generated;
* ``trainer``: the optimisation (:class:`TrainerSettings`: epochs, batch size, learning rate, seed,
  precision, ...);
* ``runtime``: where and how it runs (:class:`RuntimeSettings`: device, threads, folders, progress
  bar); these may change between a run and its resume and are never compared.

Values resolve in one order, later wins: the fields' defaults < the task's preset (``paper`` or
``quick``, which may depend on the chosen group or model) < a ``--config`` JSON file < command-line
flags. Every field is a flag of ``lieconv train TASK`` (:func:`add_setting_flags`); its help text is
the field's. A run saves :meth:`Settings.saved`, ``{"task", "preset", "model", "data", "trainer",
"runtime", "measured"}``, in its ``config.json`` and in every checkpoint; :meth:`TaskSettings.from_saved`
reads it back, and also the flat forms written before 0.2.

Example::

    settings = QM9_SETTINGS.resolve(preset="quick", flags={"group": "SE3", "epochs": 3})
    settings.model.group, settings.trainer.epochs       # 'SE3', 3
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type

import torch

from ..training.precision import choose_precision
from ..training.settings import TrainerSettings, setting
from .common import read_config_file
from .migration import GROUPS, is_saved_form, renamed, saved_values

__all__ = ["setting", "TrainerSettings", "RuntimeSettings", "EvaluateSettings", "Settings", "TaskSettings",
           "add_setting_flags", "add_fields", "command_settings", "flag_values", "trainer_arguments", "is_saved_form", "settle_precision", "GROUPS"]



@dataclass
class RuntimeSettings:
    """Where and how a run executes; may differ between a run and its resume or evaluation."""

    root: Optional[str] = setting(None, "data folder")
    out: Optional[str] = setting(None, "run folder (default: runs/TASK-...)")
    resume: bool = setting(False, "continue the run in --out")
    max_epochs: Optional[int] = setting(None, "stop after this many epochs in this call (finish with --resume)")
    device: Optional[str] = setting(None, "cpu, cuda or cuda:N (default: cuda when available)")
    threads: int = setting(1, "torch CPU threads (1 is fastest for small models, above all on a busy machine)")
    num_workers: int = setting(0, "DataLoader workers")
    progress: bool = setting(True, "show progress bars")
    download: bool = setting(True, "download the data when the folder holds none (--no-download: fail instead)")
    test: bool = setting(True, "evaluate the best checkpoint on the test split at the end (--no-test: skip)")


@dataclass
class EvaluateSettings:
    """Which trained runs to evaluate, on which data, and where (``lieconv evaluate|check TASK``).

    Tasks subclass it for their own options (and narrower ``split`` choices); every flag means what it
    means for ``lieconv train``: ``--seed`` is the seed of the random lifts and neighbourhood samples,
    ``--device``/``--threads``/``--root``/``--batch-size`` as in training.
    """

    run: List[str] = setting([], "run folder(s) written by 'lieconv train TASK'", required=True)
    checkpoint: str = setting("best", "which checkpoint of each run", choices=("best", "last"))
    split: str = setting("test", "the split to evaluate", choices=("test",))
    root: Optional[str] = setting(None, "data folder (default: the run's)")
    limit: Optional[int] = setting(None, "use only the first N samples of the split")
    batch_size: Optional[int] = setting(None, "batch size (default: twice the run's)")
    seed: Optional[int] = setting(None, "seed of the random lifts and neighbourhood samples "
                                        "(default: the run's training seed)")
    device: Optional[str] = setting(None, "cpu, cuda or cuda:N (default: cuda when available)")
    threads: int = setting(1, "torch CPU threads (1 is fastest for small models, above all on a busy machine)")
    progress: bool = setting(True, "show progress bars")
    download: bool = setting(True, "download the data when the folder holds none (--no-download: fail instead)")


@dataclass
class Settings:
    """A task's resolved settings: the four groups, the preset they came from, and what was measured
    on the data (e.g. QM9's target statistics), which is saved with them."""

    task: str
    preset: str
    model: Any
    data: Any
    trainer: TrainerSettings
    runtime: RuntimeSettings
    measured: Dict[str, Any] = field(default_factory=dict)

    def saved(self) -> Dict[str, Any]:
        """The one saved form (plain JSON types), as in ``config.json`` and the checkpoints."""
        out: Dict[str, Any] = {"task": self.task, "preset": self.preset}
        for name in GROUPS:
            out[name] = dataclasses.asdict(getattr(self, name))
        out["measured"] = copy.deepcopy(self.measured)
        return out

    def flat(self) -> Dict[str, Any]:
        """Every setting by its (unique) name, the four groups merged."""
        out: Dict[str, Any] = {}
        for name in GROUPS:
            out.update(dataclasses.asdict(getattr(self, name)))
        return out

    def replace(self, **values: Any) -> "Settings":
        """A copy with some settings changed, given by name (any group)."""
        copied = copy.deepcopy(self)
        for key, value in values.items():
            setattr(copied._owner(key), key, value)
        return copied

    def _owner(self, key: str) -> Any:
        for name in GROUPS:
            group = getattr(self, name)
            if key in {f.name for f in dataclasses.fields(group)}:
                return group
        raise KeyError(f"no setting {key!r} in the {self.task} settings")


#: a task's preset values for a preset name and the values chosen so far (file and flags)
PresetValues = Callable[[str, Mapping[str, Any]], Dict[str, Any]]


class TaskSettings:
    r"""The settings of one task: its four group classes, presets and checks.

    Args:
        task (str): the task's name (``"qm9"``, ``"springs"``, ``"rotmnist"``).
        model (type): the dataclass of the model group.
        data (type): the dataclass of the data group.
        runtime (type, optional): the runtime dataclass (a :class:`RuntimeSettings` subclass with the
            task's defaults). (default: :class:`RuntimeSettings`)
        presets (Callable): ``presets(name, chosen) -> values``: the values of preset ``name``
            (``"paper"`` or ``"quick"``) given the values ``chosen`` in the file and the flags
            (defaults that depend on the group or the model are decided here).
        finish (Callable, optional): ``finish(settings)`` checks the resolved settings and fills the
            derived ones (raise :class:`ValueError` naming the problem). (default: :obj:`None`)
        trainer_choices (dict, optional): narrower choices of trainer fields for this task, e.g.
            ``{"precision": ("float32", "float64")}``. (default: :obj:`None`)
        old_defaults (dict, optional): values of settings that a flat form from before 0.2 lacks
            when they are not the fields' defaults (e.g. an option added later whose old behaviour
            is not today's default). (default: :obj:`None`)
    """

    def __init__(self, task: str, model: Type, data: Type, *, presets: PresetValues,
                 runtime: Type = RuntimeSettings, finish: Optional[Callable[[Settings], None]] = None,
                 trainer_choices: Optional[Dict[str, Tuple[Any, ...]]] = None,
                 old_defaults: Optional[Dict[str, Any]] = None) -> None:
        self.task = task
        self.classes: Dict[str, Type] = {"model": model, "data": data, "trainer": TrainerSettings,
                                         "runtime": runtime}
        self.presets, self._finish = presets, finish
        self.trainer_choices = dict(trainer_choices or {})
        self.old_defaults = dict(old_defaults or {})
        self.group_of: Dict[str, str] = {}
        for group, cls in self.classes.items():
            for f in dataclasses.fields(cls):
                if f.name in self.group_of:
                    raise TypeError(f"setting {f.name!r} of {task} is in both {self.group_of[f.name]} and {group}")
                self.group_of[f.name] = group

    # ------------------------------------------------------------------ resolution
    def resolve(self, preset: Optional[str] = None, config_file: Optional[str] = None,
                flags: Optional[Mapping[str, Any]] = None) -> Settings:
        """The settings of a run: defaults < ``preset`` < ``config_file`` < ``flags`` (``None`` flags
        are not given). The preset comes from the flags, else the file, else ``preset``, else paper.

        Args:
            preset (str, optional): ``"paper"`` or ``"quick"`` when neither the flags nor the file choose.
                (default: :obj:`None`)
            config_file (str, optional): a JSON file of settings. (default: :obj:`None`)
            flags (Mapping[str, Any], optional): settings given on the command line. (default: :obj:`None`)
        """
        from_file = self.file_values(config_file)
        given = {k: v for k, v in (flags or {}).items() if v is not None}
        chosen = {**from_file, **given}
        preset = chosen.pop("preset", None) or preset or "paper"
        if preset not in ("paper", "quick"):
            raise ValueError(f"unknown preset {preset!r}; choose 'paper' or 'quick'")
        values = self.presets(preset, chosen)
        unknown = sorted(set(values) - set(self.group_of))
        if unknown:  # a task's preset naming no field is a bug of the task, not of the user
            raise TypeError(f"the {self.task} preset sets unknown settings {unknown}")
        return self.build(preset, {**values, **chosen})

    def file_values(self, path: Optional[str]) -> Dict[str, Any]:
        """The settings of a ``--config`` JSON file: flat (``{"lr": 1e-3}``), grouped as saved
        (``{"trainer": {"lr": 1e-3}}``), or a run's ``config.json`` (its ``measured`` part is
        ignored); unknown names are refused.

        Args:
            path (str, optional): the JSON file (``None``: no settings).
        """
        raw = read_config_file(path)
        if raw.get("task", self.task) != self.task:
            raise ValueError(f"{path} holds settings of task {raw['task']!r}, not {self.task!r}")
        values: Dict[str, Any] = {}
        for key, value in raw.items():
            if key in GROUPS and isinstance(value, dict):
                values.update(value)
            elif key not in ("task", "measured"):
                values[key] = value
        values = renamed(self.task, values)
        unknown = sorted(set(values) - set(self.group_of) - {"preset"})
        if unknown:
            raise ValueError(f"unknown settings {unknown} in {path}; known: {', '.join(sorted(self.group_of))}")
        return values

    def build(self, preset: str, values: Mapping[str, Any], measured: Optional[Mapping[str, Any]] = None
              ) -> Settings:
        """:class:`Settings` of ``values`` by name (missing ones take the fields' defaults), checked.

        Args:
            preset (str): the preset the values came from.
            values (Mapping[str, Any]): settings by name.
            measured (Mapping[str, Any], optional): what the run measured on its data. (default: :obj:`None`)
        """
        grouped: Dict[str, Dict[str, Any]] = {name: {} for name in GROUPS}
        for key, value in values.items():
            grouped[self.group_of[key]][key] = value
        settings = Settings(self.task, preset, *(self.classes[name](**grouped[name]) for name in GROUPS),
                            measured=dict(measured or {}))
        self._check_choices(settings)
        if self._finish is not None:
            self._finish(settings)
        return settings

    def _check_choices(self, settings: Settings) -> None:
        for name in GROUPS:
            for f in dataclasses.fields(self.classes[name]):
                choices = self.trainer_choices.get(f.name) if name == "trainer" else None
                choices = choices or f.metadata.get("choices")
                value = getattr(getattr(settings, name), f.name)
                if choices and value not in choices:
                    raise ValueError(f"{f.name} must be one of {', '.join(map(str, choices))}, got {value!r}")

    # ------------------------------------------------------------------ saved forms
    def from_saved(self, saved: Mapping[str, Any]) -> Settings:
        """The settings stored by a run (``config.json`` or a checkpoint's ``config``), in the saved
        form of any version (:func:`~.migration.saved_values`; a flat form's unknown keys are kept as
        ``measured``).

        Args:
            saved (Mapping[str, Any]): a run's ``config.json`` or a checkpoint's ``config``.
        """
        if saved.get("task", self.task) != self.task:
            raise ValueError(f"these are settings of task {saved.get('task')!r}, not {self.task!r}")
        preset, values, measured = saved_values(self.task, saved, self.group_of, self.old_defaults)
        return self.build(preset, values, measured)


def settle_precision(settings: Settings, device: torch.device, min_channels: Optional[int],
                     run_dir: Optional[str] = None) -> str:
    r"""Decide ``settings.trainer.precision`` when it is ``"auto"`` (in place) and say why.

    A fresh run asks :func:`~torch_geometric_lieconv.training.precision.choose_precision`; a run that
    resumes in ``run_dir`` keeps the precision it started with (its ``config.json``), so that it
    continues as it began on any machine. The reason is kept in
    ``settings.measured["precision_choice"]``, saved with the run's config.

    Args:
        settings (Settings): the run's settings.
        device (torch.device): where the run trains.
        min_channels (int, optional): the width from which the task's benchmark showed bfloat16
            faster (``None``: the model has no bfloat16 path).
        run_dir (str, optional): the run folder, read when ``settings.runtime.resume``. (default: :obj:`None`)
    """
    trainer = settings.trainer
    previous = _started_precision(run_dir) if run_dir is not None and settings.runtime.resume else None
    if previous is not None and trainer.precision in ("auto", previous[0]):
        trainer.precision, reason = previous[0], previous[1] or f"{previous[0]} (as the run started)"
    else:
        channels = int(getattr(settings.model, "hidden_channels", 0))
        choice = choose_precision(trainer.precision, device, channels, min_channels)
        trainer.precision, reason = choice.precision, choice.reason
    settings.measured["precision_choice"] = reason
    return reason


def _started_precision(run_dir: str) -> Optional[Tuple[str, Optional[str]]]:
    """The precision (and its reason) of the run in ``run_dir``, from its ``config.json``."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None  # refuse_early names the unreadable file
    if is_saved_form(saved):
        return saved["trainer"].get("precision", "float32"), saved.get("measured", {}).get("precision_choice")
    return saved.get("precision", "float32"), None


# ----------------------------------------------------------------------------------------------- flags
class _DeprecatedFlag(argparse.Action):
    """A flag renamed in 0.3: still read, with a warning naming the new one."""

    def __init__(self, *args: Any, new_flag: str, kind: Any, **kwargs: Any) -> None:
        self.new_flag, self.kind = new_flag, kind
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        warnings.warn(f"{option_string} is deprecated and will be removed; use {self.new_flag}",
                      DeprecationWarning, stacklevel=2)
        print(f"warning: {option_string} is deprecated; use {self.new_flag}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _flag_kind(cls: Type, name: str) -> Tuple[Any, bool]:
    """``(scalar type, is a list)`` of field ``name`` of ``cls``; a ``TypeError`` for any other type."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Union and len(args) == 1:
        hint = args[0]
    if typing.get_origin(hint) in (list, List) and len(typing.get_args(hint)) == 1:
        hint, many = typing.get_args(hint)[0], True
    else:
        many = False
    if hint not in (bool, int, float, str) or (many and hint is bool):
        raise TypeError(f"setting {cls.__name__}.{name} has type {hint!r}; a flag needs bool, int, float, str "
                        f"or a list of int, float or str")
    return hint, many


def add_fields(parser: Any, cls: Type, choices: Optional[Mapping[str, Tuple[Any, ...]]] = None) -> None:
    """One flag per field of the dataclass ``cls`` (``--name-with-dashes``; booleans as ``--X/--no-X``,
    lists as ``--X A B ...``), each defaulting to ``None`` (not given) unless the field is required.

    Args:
        parser (argparse.ArgumentParser or argument group): where the flags go.
        cls (type): a dataclass whose fields are made with :func:`setting`.
        choices (Mapping, optional): narrower choices of some fields. (default: :obj:`None`)
    """
    for f in dataclasses.fields(cls):
        kind, many = _flag_kind(cls, f.name)
        flag = "--" + (f.metadata.get("flag") or f.name.replace("_", "-"))
        if f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        text = f.metadata.get("help", "")
        if "default" not in text and not f.metadata.get("required"):
            text += f" (default: {' '.join(map(str, default)) if isinstance(default, list) else default})"
        allowed = (choices or {}).get(f.name) or f.metadata.get("choices")
        options: Dict[str, Any] = {"dest": f.name, "default": None, "help": text}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options.update(type=kind, choices=list(allowed) if allowed else None, nargs="+" if many else None)
        if f.metadata.get("required"):
            options["required"] = True
        parser.add_argument(flag, **options)
        old = f.metadata.get("old_flag")
        if old:
            parser.add_argument(old, dest=f.name, default=None, help=argparse.SUPPRESS, new_flag=flag,
                                action=_DeprecatedFlag, kind=kind, type=None if kind is bool else kind,
                                nargs="+" if many else None)


def add_setting_flags(parser: argparse.ArgumentParser, spec: TaskSettings) -> None:
    """One flag per setting of ``spec`` (:func:`add_fields`), grouped as the settings are, plus
    ``--preset`` and ``--config``.

    Args:
        parser (argparse.ArgumentParser): the command's parser.
        spec (TaskSettings): the task's settings.
    """
    parser.add_argument("--preset", default=None, choices=["paper", "quick"],
                        help="paper: the reference settings (default); quick: a small run for a CPU")
    parser.add_argument("--config", default=None, help="JSON file of settings (flat or grouped as a run's "
                                                       "config.json); over the preset, under the flags")
    for name in GROUPS:
        cls = spec.classes[name]
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        if name != "runtime":
            summary += " Defaults: the preset's where it sets one, else the value shown."
        section = parser.add_argument_group(f"{name} settings", summary)
        add_fields(section, cls, spec.trainer_choices if name == "trainer" else None)


def command_settings(args: argparse.Namespace, cls: Type) -> Any:
    """The dataclass ``cls`` of a command's flags (:func:`add_fields`): the flags given, else the
    fields' defaults.

    Args:
        args (argparse.Namespace): the parsed command line.
        cls (type): the command's settings dataclass.
    """
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None}
    return cls(**given)


def trainer_arguments(trainer: TrainerSettings) -> Dict[str, Any]:
    """The :class:`~torch_geometric_lieconv.training.Trainer` arguments of the trainer settings.

    Args:
        trainer (TrainerSettings): the trainer settings.
    """
    return dict(batch_size=trainer.batch_size, epochs=trainer.epochs, lr=trainer.lr, weight_decay=trainer.weight_decay,
                warmup_frac=trainer.warmup_frac, grad_clip=trainer.grad_clip, seed=trainer.seed, dtype=trainer.dtype,
                autocast=trainer.autocast)


def flag_values(args: argparse.Namespace, spec: TaskSettings) -> Dict[str, Any]:
    """The settings given on the command line, and ``preset`` (``None``: not given).

    Args:
        args (argparse.Namespace): the parsed command line.
        spec (TaskSettings): the task's settings.
    """
    return {name: getattr(args, name, None) for name in ["preset", *spec.group_of]}
