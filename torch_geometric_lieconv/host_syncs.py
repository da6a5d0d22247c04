r"""Counting the points where the host waits for the device (host syncs).

On a GPU every read of a device value on the host (a scalar, a shape that depends on the data)
stalls the stream until the device has caught up. :class:`HostSyncCounter` counts them for a block
of code: the operators whose result size or value the host must read, seen through a
:class:`~torch.utils._python_dispatch.TorchDispatchMode`, plus the reads this package makes on
purpose through :func:`read_to_host` (``Tensor.tolist`` dispatches no operator on a CPU, so the
mode alone would not see them).

.. code-block:: python

    import torch
    from torch_geometric_lieconv import QM9LieConv
    from torch_geometric_lieconv.host_syncs import HostSyncCounter

    model = QM9LieConv("T3", hidden_channels=16, num_layers=3)
    z, pos, batch = torch.tensor([6, 1, 1, 8, 1]), torch.randn(5, 3), torch.tensor([0, 0, 0, 1, 1])
    with HostSyncCounter() as syncs:
        model(z, pos, batch)
    print(syncs.count, syncs.by_kind)    # 1 Counter({'read_to_host': 1})
"""
from __future__ import annotations

from collections import Counter
from typing import Any, List

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["HostSyncCounter", "note_host_sync", "read_to_host"]

_active: List["HostSyncCounter"] = []


def read_to_host(value: Tensor) -> list:
    """``value.tolist()``: one deliberate host sync (counted by every active :class:`HostSyncCounter`).

    Args:
        value (torch.Tensor): the tensor to read.
    """
    note_host_sync("read_to_host")
    return value.tolist()


def note_host_sync(kind: str) -> None:
    """Count a host sync that happens inside a kernel the dispatch mode cannot see into (e.g. the
    output size of a neighbour search).

    Args:
        kind (str): what synced (a counter key).
    """
    for counter in _active:
        counter.record(kind)


class HostSyncCounter(TorchDispatchMode):
    """Counts host syncs while active: scalar reads (``item``, ``bool``, ``int``, ``float``),
    ``nonzero``, ``masked_select``, boolean-mask indexing, ``bincount`` (its output size is the
    input's maximum), ``repeat_interleave`` without ``output_size``, the radius search of
    ``torch_cluster`` (its output size), and :func:`read_to_host`.

    Attributes:
        count (int): the number of syncs.
        by_kind (collections.Counter): the syncs per kind.
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_kind: Counter = Counter()

    @property
    def count(self) -> int:
        return sum(self.by_kind.values())

    def record(self, kind: str) -> None:
        self.by_kind[kind] += 1

    def __enter__(self):
        _active.append(self)
        return super().__enter__()

    def __exit__(self, *args):
        _active.remove(self)
        return super().__exit__(*args)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = _sync_kind(func, args, kwargs)
        if kind is not None:
            self.record(kind)
        return func(*args, **kwargs)


def _sync_kind(func, args: tuple, kwargs: dict) -> Any:
    name = func.name().split(".")[0]  # without the overload
    if name in ("aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select", "aten::bincount",
                "torch_cluster::radius", "torch_cluster::knn"):
        return name.split("::")[1]
    if name == "aten::repeat_interleave" and kwargs.get("output_size") is None and (
            len(args) < 4 or args[3] is None):
        return "repeat_interleave"
    if name in ("aten::index", "aten::index_put", "aten::index_put_"):
        indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
        if any(isinstance(i, Tensor) and i.dtype == torch.bool for i in indices):
            return "boolean index"
    return None
