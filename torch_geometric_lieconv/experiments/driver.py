r"""The one driver of every task's commands: ``lieconv train|evaluate|upgrade|... TASK``.

A :class:`~.task.Task` declares settings, data, model and objective; this module owns the rest, once
for all tasks:

* **flags**, generated from the settings of every command (:func:`~.config.add_setting_flags` for
  ``train``, :func:`~.config.add_fields` for the others), so one flag means one thing everywhere;
* **processes**: under ``torchrun`` every rank trains, rank 0 alone takes the run folder's lock,
  writes files, evaluates and prints; a refusal on rank 0 (a busy folder, a resume with other
  settings) is raised on every rank instead of leaving the others waiting;
* **device** (:func:`~torch_geometric_lieconv.training.training_device`), **threads**,
  **precision** (``auto`` decided once, autocast applied by the trainer), **seeding**;
* the **run folder**: its default name, lock, ``config.json``, checkpoint names
  (:func:`~torch_geometric_lieconv.models.hub.checkpoint_file`) and ``results_SPLIT.json``.

Example::

    from torch_geometric_lieconv.experiments import driver, qm9
    settings = qm9.TASK.settings.resolve(preset="quick", flags={"root": "data/QM9", "epochs": 1})
    driver.train(qm9.TASK, settings)
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..models.hub import Rebuildable, checkpoint_file
from ..runs import RUNTIME_KEYS, default_run_folder, refuse_early, run_folder, write_json
from ..training import Trainer, load_checkpoint, seed_everything, training_device
from ..training.distributed import Processes, cleanup_distributed
from ..training.precision import autocast
from .common import apply_threads, build_model
from .config import (EvaluateSettings, Settings, add_fields, add_setting_flags, command_settings, flag_values,
                     setting, settle_precision, trainer_arguments)
from .migration import upgrade_checkpoints, with_model_identity
from .task import PreparedData, Task

__all__ = ["train", "evaluate_run", "load_trained", "trained_model", "command_parsers", "UpgradeSettings"]


# ----------------------------------------------------------------------------------------------- train
def train(task: Task, settings: Settings, *, validate: bool = True) -> Dict[str, Any]:
    r"""Train one run of ``task`` with ``settings`` (resolved by ``task.settings``), in one process or
    as one rank of a ``torchrun`` job; at the end of the schedule rank 0 evaluates the best checkpoint
    on the test split (unless ``settings.runtime.test`` is off). Returns ``{"out", "history", "best",
    "epoch", "epochs"}`` (the same on every rank).

    Args:
        task (Task): the application.
        settings (Settings): the run's settings.
        validate (bool, optional): evaluate the validation metrics after every epoch (else the best
            checkpoint is the one of the lowest training loss). (default: :obj:`True`)
    """
    runtime = settings.runtime
    apply_threads(runtime.threads)
    ranks = Processes(runtime.device)
    device = ranks.device
    trainer: Optional[Trainer] = None
    try:
        out = ranks.on_main(lambda: runtime.out or default_run_folder(
            os.path.join("runs", task.run_name(settings)), runtime.resume))
        precision = settle_precision(settings, device, task.bfloat16_min_channels(settings), out)
        if runtime.root is not None:
            runtime.root = os.path.abspath(runtime.root)
        data = ranks.main_first(lambda: task.prepare(settings, validate=validate))
        settings.measured.update(data.measured)
        saved = settings.saved()
        with contextlib.ExitStack() as folder:
            def start() -> None:
                folder.enter_context(run_folder(out))  # refused while another run writes to it
                refuse_early(out, runtime.resume, saved, RUNTIME_KEYS)
                write_json(os.path.join(out, "config.json"), saved)
                for name, content in data.files.items():
                    write_json(os.path.join(out, name), content)
                print(f"{task.name}: {data.summary}; precision {precision}; out {out}", flush=True)

            ranks.on_main(start)
            seed_everything(settings.trainer.seed)  # the initial weights
            model = build_model(*task.model_arguments(settings))
            objective = task.objective(settings, data, device)
            validating = validate and data.valid is not None
            trainer = Trainer(model, data.train, **trainer_arguments(settings.trainer), loss_fn=objective.loss,
                              out_dir=out, evaluate_fn=objective.evaluate if validating else None,
                              monitor=objective.monitor if validating else "train_loss", device=device,
                              config=saved, num_workers=runtime.num_workers, progress=runtime.progress,
                              find_unused_parameters=task.unused_parameters)
            began = time.perf_counter()
            history = trainer.fit(resume=runtime.resume, max_epochs=runtime.max_epochs)
            result = {"out": out, "history": history, "best": trainer.best, "epoch": trainer.epoch,
                      "epochs": trainer.epochs}
            if ranks.main:
                _report_training(trainer, time.perf_counter() - began)
                if runtime.test and trainer.epoch >= trainer.epochs:
                    options = task.evaluate_settings(run=[out], root=runtime.root, device=str(trainer.device),
                                                     progress=runtime.progress, threads=runtime.threads)
                    print(task.format_results([evaluate_run(task, out, options, data=data)]), flush=True)
            ranks.barrier()
        return result
    finally:
        if ranks.distributed:
            trainer = None  # free DDP's reducer while the process group lives: gloo's teardown can hang
            gc.collect()
            cleanup_distributed()


def _report_training(trainer: Trainer, seconds: float) -> None:
    history = trainer.history
    if not history or trainer.best is None:
        return
    cpu = sum(row.get("cpu_s", float("nan")) for row in history) / len(history)
    print(f"trained to epoch {trainer.epoch}/{trainer.epochs} ({seconds:.1f} s this call, CPU {cpu:.1f} s/epoch); "
          f"best {trainer.best['metric']} {trainer.best['value']:.4g} at epoch {trainer.best['epoch']}", flush=True)


# ----------------------------------------------------------------------------------------------- evaluate
def trained_model(state: Dict[str, Any], where: str, task: Task) -> nn.Module:
    """The model of a checkpoint ``state`` of ``task`` (of any version), in eval mode.

    Args:
        state (Dict[str, Any]): a checkpoint's content.
        where (str): the checkpoint's path, for errors.
        task (Task): the application that trained it.
    """
    return Rebuildable.from_state(with_model_identity(state, task.settings, task.model_arguments), where)


def load_trained(task: Task, run: str, options: EvaluateSettings) -> Tuple[nn.Module, Settings, Dict[str, Any],
                                                                        torch.device]:
    """``(model, settings, checkpoint, device)`` of ``options.checkpoint`` of ``run``: the model on the
    device of ``options`` in its evaluation dtype, seeded by ``options.seed`` (default: the run's).

    Args:
        task (Task): the application that trained the run.
        run (str): the run folder.
        options (EvaluateSettings): the evaluation's settings.
    """
    path = checkpoint_file(run, options.checkpoint)
    state = load_checkpoint(path)
    found = state.get("config", {}).get("task")
    if found != task.name:
        raise ValueError(f"{path} is not a {task.name} checkpoint (task {found!r})")
    settings = task.settings.from_saved(state["config"])
    device = training_device(options.device)
    model = trained_model(state, path, task).to(device, task.evaluation_dtype(settings, options))
    seed_everything(settings.trainer.seed if options.seed is None else options.seed)
    return model, settings, state, device


def evaluate_run(task: Task, run: str, options: EvaluateSettings, *, data: Optional[PreparedData] = None
                 ) -> Dict[str, Any]:
    """The metrics of a trained run on ``options.split`` (a row of ``task.format_results``), also
    written to ``RUN/results_SPLIT.json``.

    Args:
        task (Task): the application that trained the run.
        run (str): the run folder.
        options (EvaluateSettings): the evaluation's settings.
        data (PreparedData, optional): the training run's own data, reused at its end. (default: :obj:`None`)
    """
    model, settings, state, device = load_trained(task, run, options)
    dtype = task.evaluation_dtype(settings, options)
    with torch.no_grad(), autocast(device, settings.trainer.autocast if dtype != torch.float64 else None):
        metrics = task.evaluate(run, model, settings, options, device, data)
    row = {"run": run, "checkpoint": options.checkpoint, "epoch": state["epoch"], "split": options.split, **metrics}
    write_json(os.path.join(run, f"results_{options.split}.json"), {k: v for k, v in row.items() if _plain(v)})
    return row


def _plain(value: Any) -> bool:
    """Whether ``value`` is plain JSON data (what a results file keeps of a row)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and _plain(v) for k, v in value.items())


def _run_evaluate(task: Task, options: EvaluateSettings) -> int:
    apply_threads(options.threads)
    rows = [evaluate_run(task, run, options) for run in options.run]
    print(task.format_results(rows))
    return 0


# ----------------------------------------------------------------------------------------------- upgrade
@dataclass
class UpgradeSettings:
    """Which runs to upgrade (``lieconv upgrade TASK``)."""

    run: List[str] = setting([], "run folder(s) written by 'lieconv train TASK' (both checkpoints)", required=True)


def _run_upgrade(task: Task, options: UpgradeSettings) -> int:
    for run in options.run:
        if not os.path.isdir(run):
            raise ValueError(f"--run {run} is not a run folder")
        for path, done in upgrade_checkpoints(run, task.settings, task.model_arguments):
            print(f"{path}: {'upgraded' if done else 'already in the form of today'}")
    return 0


# ----------------------------------------------------------------------------------------------- commands
#: what each command does, for ``lieconv COMMAND --help``
COMMANDS = {
    "train": "train a model",
    "evaluate": "evaluate trained runs",
    "study": "run a study (springs: momentum conservation and data efficiency figures)",
    "check": "equivariance check of trained runs (rotmnist)",
    "upgrade": "rewrite runs of older versions in today's form (for from_checkpoint and --resume)",
}
_UPGRADE_TEXT = ("Add the model's class and arguments to checkpoints written before 0.2, and store the settings "
                 "of older runs in today's form (renamed settings under their new names), so that "
                 "Model.from_checkpoint(run) loads them and the run resumes (weights unchanged).")


def command_parsers(task: Task) -> Dict[str, Tuple[Callable[[argparse.ArgumentParser], None],
                                                   Callable[[argparse.Namespace], int]]]:
    """``{command: (configure(parser), run(args))}`` of ``task``: ``train``, ``evaluate``, ``upgrade``
    and the task's own commands, every flag generated from the command's settings.

    Args:
        task (Task): the application.
    """

    def configure_train(parser: argparse.ArgumentParser) -> None:
        parser.description = task.descriptions.get("train")
        add_setting_flags(parser, task.settings)

    def run_train(args: argparse.Namespace) -> int:
        train(task, task.settings.resolve(config_file=args.config, flags=flag_values(args, task.settings)))
        return 0

    def with_settings(cls: type, description: Optional[str], run: Callable[[Task, Any], int]):
        def configure(parser: argparse.ArgumentParser) -> None:
            parser.description = description
            add_fields(parser, cls)
            for action in parser._actions:  # "lieconv train TASK" in the help texts names this task
                action.help = action.help.replace("TASK", task.name) if action.help else action.help

        return configure, lambda args: run(task, command_settings(args, cls))

    parsers = {"train": (configure_train, run_train),
               "evaluate": with_settings(task.evaluate_settings, task.descriptions.get("evaluate"), _run_evaluate),
               "upgrade": with_settings(UpgradeSettings, _UPGRADE_TEXT, _run_upgrade)}
    for command, (cls, run) in task.commands.items():
        parsers[command] = with_settings(cls, task.descriptions.get(command), run)
    return parsers
