"""The ``lieconv`` command line: ``lieconv train|evaluate|study|check|upgrade <task> [options]``.

Each task lives in ``torch_geometric_lieconv.experiments.<task>`` as a
:class:`~torch_geometric_lieconv.experiments.task.Task` (``TASK``); the one driver
(:mod:`torch_geometric_lieconv.experiments.driver`) makes its commands and their flags.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from ._memory import keep_freed_memory

TASKS = {"qm9": "QM9 regression", "springs": "Hamiltonian spring dynamics", "rotmnist": "rotated MNIST"}


def _task_module(task: str):
    return importlib.import_module(f"torch_geometric_lieconv.experiments.{task}")


def _broken_task(task: str, error: ImportError):
    """A stand-in command for a task whose module does not import: it says why, instead of vanishing."""

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.description = f"unavailable: {error}"
        parser.add_argument("rest", nargs="*")

    def run(args: argparse.Namespace) -> int:
        raise RuntimeError(f"the {task} task cannot be loaded ({type(error).__name__}: {error}); "
                           f"install the extras: pip install 'torch-geometric-lieconv[experiments]'")

    return configure, run


def build_parser() -> argparse.ArgumentParser:
    from .experiments.driver import COMMANDS, command_parsers

    parser = argparse.ArgumentParser(prog="lieconv", description="LieConv experiments for PyTorch Geometric")
    commands = parser.add_subparsers(dest="command", required=True)
    available = {}
    for task in TASKS:
        try:
            available[task] = command_parsers(_task_module(task).TASK)
        except ImportError as error:  # listed anyway: running it explains what is missing
            available[task] = error
    for command, help_text in COMMANDS.items():
        command_parser = commands.add_parser(command, help=help_text)
        tasks = command_parser.add_subparsers(dest="task", required=True)
        for task, task_help in TASKS.items():
            if isinstance(available[task], ImportError):
                error = available[task]
                configure, run = _broken_task(task, error)
                task_parser = tasks.add_parser(task, help=f"{task_help} (unavailable: {error})", prefix_chars="+",
                                               add_help=False)  # any options: running it says what is wrong
                configure(task_parser)
                task_parser.set_defaults(handler=run)
                continue
            if command not in available[task]:
                continue
            configure, run = available[task][command]
            task_parser = tasks.add_parser(task, help=task_help)
            configure(task_parser)
            task_parser.set_defaults(handler=run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None:  # a `lieconv` process of its own: keep freed memory (see _memory.keep_freed_memory)
        keep_freed_memory()
    try:
        result = args.handler(args)
    except (ValueError, OSError, RuntimeError, ImportError) as error:  # OSError: folders, downloads
        print(f"lieconv {args.command} {args.task}: error: {error}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
