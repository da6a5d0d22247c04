r"""Loading data files without unpickling arbitrary objects.

Data folders are untrusted: a ``.pt`` file is a pickle, and PyG's own loader retries a file that
``torch.load(weights_only=True)`` refuses with ``weights_only=False``, which runs whatever code the
file names. Everything this package reads from a data folder goes through :func:`safe_torch_load`
instead (tensors, containers and the PyG data classes that PyG allowlists), and fails with a clear
error on anything else.
"""
from __future__ import annotations

import os
from typing import Any, Type

import torch
from torch_geometric.data import Data
from torch_geometric.data.data import BaseData

from .._errors import first_line

__all__ = ["safe_torch_load", "SafeLoadMixin"]


def safe_torch_load(path: str) -> Any:
    """``torch.load(path, weights_only=True)``; a ``ValueError`` naming the file when it holds anything else.

    Args:
        path (str): the file.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle.UnpicklingError for foreign objects; anything for a broken file
        raise ValueError(
            f"refused to load {path}: it is not a plain tensor / PyG data file ({first_line(error)[:200]}). "
            f"Data files are never unpickled beyond that; delete {os.path.basename(path)} to rebuild it "
            f"from the raw data, or replace it with a trusted copy"
        ) from None


class SafeLoadMixin:
    """For :class:`~torch_geometric.data.InMemoryDataset` subclasses: :meth:`load` through
    :func:`safe_torch_load` (list it before ``InMemoryDataset`` among the bases)."""

    def load(self, path: str, data_cls: Type[BaseData] = Data) -> None:
        """PyG's :meth:`~torch_geometric.data.InMemoryDataset.load`, weights-only.

        Args:
            path (str): a processed dataset file ``(data, slices[, class])``.
            data_cls (type, optional): the data class of the items. (default: :class:`Data`)
        """
        out = safe_torch_load(path)
        if not isinstance(out, tuple) or len(out) not in (2, 3):
            raise ValueError(f"{path} is not a processed PyG dataset file (expected (data, slices[, class]))")
        data, self.slices = out[0], out[1]
        if len(out) == 3:
            data_cls = out[2]
        if not (isinstance(data_cls, type) and issubclass(data_cls, BaseData)):
            raise ValueError(f"{path} names {data_cls!r} as its data class, not a PyG data class")
        self.data = data_cls.from_dict(data) if isinstance(data, dict) else data
