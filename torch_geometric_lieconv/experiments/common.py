"""Command-line options and output helpers every task shares."""
from __future__ import annotations

import argparse
import json
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from ..models.hub import ARGUMENTS_KEY, CLASS_KEY, Rebuildable, model_class, plain_argument, read_checkpoint
from ..runs import atomic_write, write_json

#: a task's ``settings -> (model class name, constructor arguments)``
ModelArguments = Callable[[Any], Tuple[str, Dict[str, Any]]]


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` (default 1): the models here are small, and on a busy CPU more intra-op threads
    than free cores make them many times slower.

    Args:
        parser (argparse.ArgumentParser): the command's parser.
    """
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: fastest for small models, above all on a busy machine)")


def apply_threads(threads: Optional[int]) -> None:
    """Use ``threads`` torch CPU threads (``None``: leave the setting alone).

    Args:
        threads (int, optional): the number of threads.
    """
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(int(threads))


def read_config_file(path: Optional[str]) -> Dict[str, Any]:
    """The settings of a ``--config`` JSON file (``{}`` for ``None``), with one-line errors for a
    missing file, invalid JSON or anything but a JSON object.

    Args:
        path (str, optional): the JSON file.
    """
    if path is None:
        return {}
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} not found")
    try:
        with open(path) as f:
            values = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f"config file {path} is not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a JSON object of settings")
    return values


def text_table(lines: Sequence[Sequence[str]]) -> str:
    """Rows of cells (the first row the header) as left-aligned columns separated by two spaces.

    Args:
        lines (Sequence[Sequence[str]]): rows of cells, the header first.
    """
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def build_model(name: str, arguments: Mapping[str, Any]) -> nn.Module:
    """The model class ``name`` of this package built with ``arguments`` (a task's ``model_arguments``).

    Args:
        name (str): a registered model class name.
        arguments (Mapping[str, Any]): its constructor arguments.
    """
    return model_class(name, "the config")(**arguments)


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


def trained_model(state: Mapping[str, Any], where: str, spec: Any, model_arguments: ModelArguments) -> nn.Module:
    """The model of a run's checkpoint ``state`` (old or new), in eval mode.

    Args:
        state (Mapping[str, Any]): a checkpoint's content.
        where (str): the checkpoint's path, for errors.
        spec (TaskSettings): the task's settings (reads old saved forms).
        model_arguments (Callable): the task's ``settings -> (class name, arguments)``.
    """
    return Rebuildable.from_state(with_model_identity(state, spec, model_arguments), where)


def configure_upgrade(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Add the model's class and arguments to checkpoints written before 0.2, so that "
                          "Model.from_checkpoint(run) loads them, and store their settings in today's form, so "
                          "that the run resumes (weights and everything else unchanged).")
    parser.add_argument("--run", dest="checkpoints", required=True,
                        help="a run folder (both checkpoints) or one checkpoint file")


def upgrade_command(spec: Any, model_arguments: ModelArguments) -> Callable[[argparse.Namespace], int]:
    """``run_upgrade`` of a task: :func:`upgrade_checkpoints` of ``--run``.

    Args:
        spec (TaskSettings): the task's settings (reads old saved forms).
        model_arguments (Callable): the task's ``settings -> (class name, arguments)``.
    """

    def run_upgrade(args: argparse.Namespace) -> int:
        for path, done in upgrade_checkpoints(args.checkpoints, spec, model_arguments):
            print(f"{path}: {'upgraded' if done else 'already stores its model'}")
        return 0

    return run_upgrade


def upgrade_checkpoints(path_or_run: str, spec: Any, model_arguments: ModelArguments) -> List[Tuple[str, bool]]:
    """Rewrite each checkpoint of a run (or the one file) with its model's class and arguments and its
    settings in today's saved form (and the run's ``config.json`` with them, so that it resumes);
    returns ``(path, upgraded)`` pairs. A checkpoint of another task is refused.

    Args:
        path_or_run (str): a run folder or a checkpoint file.
        spec (TaskSettings): the task's settings (reads old saved forms).
        model_arguments (Callable): the task's ``settings -> (class name, arguments)``.
    """
    task = spec.task
    if os.path.isdir(path_or_run):
        paths = [os.path.join(path_or_run, f"checkpoint_{kind}.pt") for kind in ("best", "last")]
        paths = [p for p in paths if os.path.isfile(p)]
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
        if CLASS_KEY in state:
            done.append((path, False))
            continue
        upgraded = with_model_identity(state, spec, model_arguments)
        trained_model(upgraded, path, spec, model_arguments)  # the weights fit the rebuilt model
        atomic_write(path, lambda f: torch.save(upgraded, f))
        done.append((path, True))
        config = os.path.join(os.path.dirname(path), "config.json")
        if os.path.isfile(config):
            write_json(config, upgraded["config"])
    return done
