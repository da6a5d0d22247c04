"""One vocabulary on the command line: a flag means the same thing for every task and every command
(its type, arity and choices), and the flags retired in 0.3 are gone from the help pages."""
from __future__ import annotations

import argparse
from typing import Dict, Tuple

import pytest

from torch_geometric_lieconv.cli import build_parser

#: flags whose allowed values are the task's own (a split each task has, a data folder)
TASK_CHOICES = {"--split"}
#: flags that may differ between ``train`` and the evaluation commands, and why
COMMAND_SPECIFIC = {"--root", "--batch-size"}  # the run's own by default in evaluate; help texts differ


def _flags() -> Dict[Tuple[str, str], Dict[str, argparse.Action]]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    table = {}
    for command, command_parser in commands.choices.items():
        tasks = next(a for a in command_parser._actions if isinstance(a, argparse._SubParsersAction))
        for task, task_parser in tasks.choices.items():
            table[command, task] = {flag: action for action in task_parser._actions for flag in action.option_strings
                                    if action.help != argparse.SUPPRESS and flag not in ("-h", "--help")}
    return table


def _meaning(action: argparse.Action, with_choices: bool = True):
    return (type(action).__name__, action.type, action.nargs, action.dest,
            tuple(action.choices) if with_choices and action.choices else None)


def test_a_flag_means_the_same_for_every_task_and_command():
    table = _flags()
    assert len(table) == 11
    seen: Dict[str, Tuple[str, object]] = {}
    for (command, task), flags in sorted(table.items()):
        for flag, action in flags.items():
            meaning = _meaning(action, flag not in TASK_CHOICES)
            key = flag if flag not in COMMAND_SPECIFIC else f"{command} {flag}"
            if key in seen and command in ("evaluate", "check") == (seen[key][0] in ("evaluate", "check")):
                assert meaning == seen[key][1], f"{flag} of lieconv {command} {task} differs from {seen[key][0]}'s"
            seen.setdefault(key, (command, meaning))


def test_the_evaluation_commands_share_one_option_set():
    table = _flags()
    common = {"--run", "--checkpoint", "--split", "--root", "--limit", "--batch-size", "--seed", "--device",
              "--threads", "--progress", "--download"}
    for (command, task), flags in table.items():
        if command in ("evaluate", "check"):
            assert common <= set(flags), f"lieconv {command} {task} lacks {sorted(common - set(flags))}"
            assert flags["--checkpoint"].choices == ["best", "last"]  # never a file path
            assert flags["--run"].nargs == "+" and flags["--run"].required
        if command == "upgrade":
            assert flags["--run"].nargs == "+"
        for flag in ("--seed", "--device", "--threads"):
            if flag in flags and command != "study":
                assert flags[flag].type in (int, str) and flags[flag].nargs is None


@pytest.mark.parametrize("flag", ["--train-limit", "--valid-limit", "--test-limit", "--traceback", "--eval-batch-size"])
def test_retired_flags_are_not_in_the_help_pages(flag):
    for (command, task), flags in _flags().items():
        assert flag not in flags, f"lieconv {command} {task} still lists {flag}"


def test_evaluation_flags_do_not_reuse_training_names_for_other_ideas():
    flags = _flags()["evaluate", "springs"]
    assert "--precision" not in flags and "--n-test" not in flags  # the rollouts' precision, the first N systems
    assert {"--rollout-precision", "--limit", "--data-seed"} <= set(flags)


def test_a_renamed_flag_still_works_with_a_warning(capsys):
    parser = build_parser()
    with pytest.warns(DeprecationWarning, match="--train-size"):
        args = parser.parse_args(["train", "rotmnist", "--train-limit", "7"])
    assert args.train_size == 7
