"""Command-line options and output helpers every task shares."""
from __future__ import annotations

import argparse
import json
import os
from typing import Any, Dict, List, Optional, Sequence

import torch


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` (default 1): the models here are small, and on a busy CPU more intra-op threads
    than free cores make them many times slower."""
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: fastest for small models, above all on a busy machine)")


def apply_threads(args: argparse.Namespace) -> None:
    threads = getattr(args, "threads", None)
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(int(threads))


def read_config_file(path: Optional[str]) -> Dict[str, Any]:
    """The settings of a ``--config`` JSON file (``{}`` for ``None``), with one-line errors for a
    missing file, invalid JSON or anything but a JSON object."""
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
    """Rows of cells (the first row the header) as left-aligned columns separated by two spaces."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
