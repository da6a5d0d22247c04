r"""A run's checkpoints: ``checkpoint_last.pt`` every epoch, ``checkpoint_best.pt`` at the best one.

Each holds the model (with its class and arguments when it is a
:class:`~torch_geometric_lieconv.models.hub.Rebuildable`, so that ``from_checkpoint`` rebuilds it), the
optimiser and schedule, the completed epochs, the RNG states of every rank, the run's config, the
metric history and the best epoch: everything an exact resume needs. Files are replaced atomically
and read weights-only (no code is unpickled).
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import torch
from torch import nn

from ..models.hub import ARGUMENTS_KEY, CLASS_KEY, Rebuildable, checkpoint_file, class_name, read_checkpoint
from ..runs import atomic_write

__all__ = ["CheckpointStore", "load_checkpoint", "model_identity"]

#: load a checkpoint written by :class:`~torch_geometric_lieconv.training.Trainer` (``weights_only``)
load_checkpoint = read_checkpoint


def model_identity(model: nn.Module) -> Dict[str, Any]:
    """The model's class and arguments, so that ``from_checkpoint`` rebuilds it (empty for a model
    that cannot record them, e.g. one built with a user's own group).

    Args:
        model (torch.nn.Module): the trained model.
    """
    if not isinstance(model, Rebuildable):
        return {}
    try:
        return {CLASS_KEY: class_name(type(model)), ARGUMENTS_KEY: model.arguments}
    except ValueError:
        return {}


class CheckpointStore:
    r"""The checkpoint files of the run folder ``out_dir``.

    Args:
        out_dir (str): the run folder.
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    @property
    def last_path(self) -> str:
        """``out_dir/checkpoint_last.pt``."""
        return checkpoint_file(self.out_dir, "last")

    @property
    def best_path(self) -> str:
        """``out_dir/checkpoint_best.pt``."""
        return checkpoint_file(self.out_dir, "best")

    def has_last(self) -> bool:
        """Whether the run has a last checkpoint to resume."""
        return os.path.isfile(self.last_path)

    def save(self, state: Dict[str, Any], best: bool) -> None:
        """Write ``state`` as the last checkpoint, and first as the best one when ``best``: a crash
        between the two never leaves "best" pointing at another epoch than its file.

        Args:
            state (Dict[str, Any]): the checkpoint's content.
            best (bool): whether this epoch is the best so far.
        """
        if best:
            atomic_write(self.best_path, lambda f: torch.save(state, f))
        atomic_write(self.last_path, lambda f: torch.save(state, f))

    def load_last(self, map_location: Optional[Any] = None) -> Dict[str, Any]:
        """The last checkpoint's content (weights-only).

        Args:
            map_location (Any, optional): where tensors go, as for :func:`torch.load`. (default: :obj:`None`)
        """
        return load_checkpoint(self.last_path, map_location=map_location)
