r"""Runs written by older versions: every rule that reads an old form lives here.

* Settings: the flat ``config.json`` of runs from before 0.2 (RotMNIST nested its model and
  optimisation settings), and settings renamed in 0.3 (:data:`RENAMED_SETTINGS`), read into today's
  names by :func:`saved_values`; :class:`~.config.TaskSettings` calls it for config files and saved
  settings alike.
* Checkpoints from before 0.2 stored only the run's settings, not the model's class and arguments:
  :func:`with_model_identity` derives them, and :func:`upgrade_checkpoints` (``lieconv upgrade``)
  rewrites a run's checkpoints and ``config.json`` in today's form, so that
  ``Model.from_checkpoint(run)`` loads them and the run resumes.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Mapping, Tuple

import torch

from ..models.hub import ARGUMENTS_KEY, CHECKPOINTS, CLASS_KEY, checkpoint_file, plain_argument, read_checkpoint
from ..runs import atomic_write, write_json

__all__ = ["RENAMED_SETTINGS", "GROUPS", "is_saved_form", "saved_values", "with_model_identity",
           "upgrade_checkpoints"]

#: the four groups of every task's saved settings, in their saved order
GROUPS = ("model", "data", "trainer", "runtime")
#: settings renamed in 0.3, by task: old name -> today's (one name per idea across the tasks)
RENAMED_SETTINGS: Dict[str, Dict[str, str]] = {
    "rotmnist": {"train_limit": "train_size", "valid_limit": "valid_size", "test_limit": "test_size"},
}

#: a task's ``settings -> (model class name, constructor arguments)``
ModelArguments = Callable[[Any], Tuple[str, Dict[str, Any]]]


def is_saved_form(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` is in the grouped saved form (not a flat form from before 0.2).

    Args:
        config (Mapping[str, Any]): settings as saved by a run.
    """
    return all(isinstance(config.get(name), dict) for name in GROUPS)


def renamed(task: str, values: Mapping[str, Any]) -> Dict[str, Any]:
    """``values`` with the settings of ``task`` renamed in 0.3 under today's names.

    Args:
        task (str): the task's name.
        values (Mapping[str, Any]): settings by name.
    """
    names = RENAMED_SETTINGS.get(task, {})
    return {names.get(key, key): value for key, value in values.items()}


def saved_values(task: str, saved: Mapping[str, Any], known: Mapping[str, Any], old_defaults: Mapping[str, Any]
                 ) -> Tuple[str, Dict[str, Any], Dict[str, Any]]:
    """``(preset, values, measured)`` of settings saved by a run of any version: values by today's
    names (those in ``known``), the rest as what the run measured.

    Args:
        task (str): the task's name.
        saved (Mapping[str, Any]): a run's ``config.json`` or a checkpoint's ``config``.
        known (Mapping[str, Any]): today's setting names (any mapping keyed by them).
        old_defaults (Mapping[str, Any]): values a flat form lacks that are not today's defaults.
    """
    if is_saved_form(saved):
        values = renamed(task, {k: v for name in GROUPS for k, v in saved[name].items()})
        return (saved.get("preset", "paper"), {k: v for k, v in values.items() if k in known},
                dict(saved.get("measured") or {}))
    flat: Dict[str, Any] = dict(old_defaults)
    for key, value in saved.items():  # rotmnist nested its model and optimisation settings
        if key in ("model", "settings") and isinstance(value, dict):
            flat.update(value)
        elif key not in ("trainer", "task"):
            flat[key] = value
    # before 0.2 today's names of renamed settings were measured values (RotMNIST's image counts)
    measured = {k: flat.pop(k) for k in RENAMED_SETTINGS.get(task, {}).values() if k in flat}
    flat = renamed(task, flat)
    values = {k: v for k, v in flat.items() if k in known}
    measured.update({k: v for k, v in flat.items() if k not in known and k != "preset"})
    return flat.get("preset", "paper"), values, measured


def with_model_identity(state: Mapping[str, Any], spec: Any, model_arguments: ModelArguments) -> Dict[str, Any]:
    """A checkpoint ``state`` with its model's class and arguments: as stored, or for a checkpoint from
    before 0.2 (which stored only the run's config) derived from its config, read by the task's
    settings ``spec`` (:class:`~.config.TaskSettings`), by ``model_arguments``; the config is
    rewritten in the saved form of today.

    Args:
        state (Mapping[str, Any]): a checkpoint's content.
        spec (TaskSettings): the task's settings (reads old saved forms).
        model_arguments (Callable): the task's ``settings -> (class name, arguments)``.
    """
    if CLASS_KEY in state:
        return dict(state)
    settings = spec.from_saved(state.get("config", {}))
    name, arguments = model_arguments(settings)
    return {**state, "config": settings.saved(), CLASS_KEY: name,
            ARGUMENTS_KEY: plain_argument(arguments, "arguments")}


def upgrade_checkpoints(path_or_run: str, spec: Any, model_arguments: ModelArguments) -> List[Tuple[str, bool]]:
    """Rewrite each checkpoint of a run (or the one file) with its model's class and arguments and its
    settings in today's saved form (and the run's ``config.json`` with them, so that it resumes);
    returns ``(path, upgraded)`` pairs. A checkpoint of another task is refused.

    Args:
        path_or_run (str): a run folder or a checkpoint file.
        spec (TaskSettings): the task's settings (reads old saved forms).
        model_arguments (Callable): the task's ``settings -> (class name, arguments)``.
    """
    from ..models.hub import Rebuildable

    task = spec.task
    if os.path.isdir(path_or_run):
        paths = [p for p in (checkpoint_file(path_or_run, which) for which in CHECKPOINTS) if os.path.isfile(p)]
        if not paths:
            raise ValueError(f"{path_or_run} holds no checkpoint_best.pt or checkpoint_last.pt")
    else:
        paths = [path_or_run]
    done = []
    for path in paths:
        state = read_checkpoint(path)
        found = state.get("config", {}).get("task")
        if found != task:
            raise ValueError(f"{path} is a checkpoint of task {found!r}, not {task!r}")
        today = spec.from_saved(state["config"]).saved()
        if CLASS_KEY in state and today == state["config"]:
            done.append((path, False))
            continue
        upgraded = {**with_model_identity(state, spec, model_arguments), "config": today}
        Rebuildable.from_state(upgraded, path)  # the weights fit the rebuilt model
        atomic_write(path, lambda f: torch.save(upgraded, f))
        done.append((path, True))
        config = os.path.join(os.path.dirname(path), "config.json")
        if os.path.isfile(config):
            write_json(config, today)
    return done
