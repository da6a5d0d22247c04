"""Helpers every task shares: threads, ``--config`` files, text tables, building a model by name."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence

import torch
from torch import nn

from ..models.hub import model_class


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
