r"""Batches on their way to the model: moved to a device and dtype, and counted."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

__all__ = ["move_to", "num_samples"]


def move_to(obj: Any, device: torch.device, dtype: Optional[torch.dtype] = None) -> Any:
    r"""Move a batch to ``device``; floating-point tensors are also cast to ``dtype`` when given.

    Args:
        obj (Any): a ``Data``/``Batch``, a tensor, or a nested tuple/list/dict of them.
        device (torch.device): the target device.
        dtype (torch.dtype, optional): the floating-point dtype. (default: :obj:`None`)
    """
    if isinstance(obj, Tensor):
        obj = obj.to(device, non_blocking=True)
        return obj.to(dtype) if dtype is not None and obj.is_floating_point() else obj
    if isinstance(obj, (list, tuple)):
        moved = [move_to(o, device, dtype) for o in obj]
        return type(obj)(moved) if not hasattr(obj, "_fields") else type(obj)(*moved)
    if isinstance(obj, dict):
        return {k: move_to(v, device, dtype) for k, v in obj.items()}
    if hasattr(obj, "apply") and hasattr(obj, "to"):  # PyG Data / Batch
        obj = obj.to(device, non_blocking=True)
        if dtype is not None:
            obj = obj.apply(lambda t: t.to(dtype) if t.is_floating_point() else t)
        return obj
    return obj


def num_samples(batch: Any) -> int:
    r"""Samples in a batch: ``num_graphs`` of a PyG batch, else the leading size of the first tensor.

    Args:
        batch (Any): a PyG batch, a tensor, or a tuple/list/dict of them.
    """
    if hasattr(batch, "num_graphs"):
        return int(batch.num_graphs)
    if isinstance(batch, Tensor):
        return int(batch.shape[0])
    if isinstance(batch, (list, tuple)) and batch:
        return num_samples(batch[0])
    if isinstance(batch, dict) and batch:
        return num_samples(next(iter(batch.values())))
    raise ValueError(f"cannot tell the number of samples in a batch of type {type(batch).__name__}")
