r"""The data-dependent steps of a forward pass as custom operators, for :func:`torch.compile` and
:func:`torch.export.export`.

Eager forward passes size their tensors from a few numbers read once on the host (see
:class:`~torch_geometric_lieconv.models.lieresnet.ForwardPlan`). A traced forward
(:func:`torch.export.export`, or :func:`torch.compile` with ``fullgraph=True``:
:func:`dynamic_sizes_traced`) cannot read the device; it calls these operators instead. Each runs
the package's eager code on real tensors and has a fake (meta) kernel that gives its data-dependent
output sizes as unbacked symbolic sizes (``torch.library.get_ctx().new_dynamic_size()``), so a
compiled or exported graph goes through them without a graph break and works for any number of
points, graphs and edges:

* ``lieconv::graph_counts`` (here): the points of each graph (the number of graphs read from the
  batch vector), and the input checks of a model (raises for bad input);
* ``lieconv::all_pairs`` (:mod:`~torch_geometric_lieconv.graph`): every ordered pair of points
  within each graph;
* ``lieconv::radius_pairs`` (:mod:`~torch_geometric_lieconv.graph`): :func:`torch_cluster.radius`
  candidate pairs, sorted by target;
* ``lieconv::neighbor_table`` (:mod:`~torch_geometric_lieconv.graph`): the padded
  ``[targets, max_degree]`` layout of the edges;
* ``lieconv::subgraph_edges`` (:mod:`~torch_geometric_lieconv.graph`): the edges between kept points;
* ``lieconv::farthest_point_sample`` (:mod:`~torch_geometric_lieconv.pool`): farthest point sampling
  (its rounds are the largest kept graph, a host number).

Each operator lives in the module of the code its kernel runs, so imports go one way.

The operators return integer tensors (indices, counts, masks): they have no gradient and need none.
The eager paths of the package do not call them (they read their sizes once instead), so eager speed
and host syncs are unchanged. This module imports only :mod:`torch`.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch._dynamo
from torch import Tensor

__all__ = ["dynamic_sizes_traced", "generator_kwargs", "NonFiniteInputError", "graph_counts", "INPUT_FLAGS"]


def dynamic_sizes_traced() -> bool:
    """Whether this code is being traced with data-dependent output sizes allowed: under
    :func:`torch.export.export`, or :func:`torch.compile` with ``fullgraph=True`` (or
    ``torch._dynamo.config.capture_dynamic_output_shape_ops``). The package then calls the operators of
    this module. Otherwise (eager, or a compile that may break the graph) it reads its sizes on the
    host as in eager mode, so a default :func:`torch.compile` keeps the eager planning outside its graph.
    """
    return torch.compiler.is_compiling() and _output_sizes_may_depend_on_data()


@torch._dynamo.assume_constant_result  # evaluated once while tracing, a constant of the graph
def _output_sizes_may_depend_on_data() -> bool:
    if torch.compiler.is_exporting():
        return True
    context = torch._guards.TracingContext.try_get()
    shape_env = getattr(getattr(context, "fake_mode", None), "shape_env", None)
    return bool(getattr(shape_env, "allow_dynamic_output_shape_ops", False))


def generator_kwargs(generator: Optional[torch.Generator]) -> dict:
    """``{"generator": generator}`` for a random draw, or nothing for ``None`` (an explicit
    ``generator=None`` makes :func:`torch.rand` of a symbolic shape fail under :func:`torch.export.export`).

    Args:
        generator (torch.Generator, optional): the stream of the draw.
    """
    return {} if generator is None else {"generator": generator}


class NonFiniteInputError(ValueError):
    """Input features with NaN or inf values (BatchNorm would spread them to other graphs)."""


#: the input checks :func:`graph_counts` raises for, in the order of its ``flags``
INPUT_FLAGS: Tuple[str, ...] = ("pos_nonfinite", "pos_unliftable", "batch_unsorted", "x_nonfinite")


def _raise_for_flags(flags: Tensor) -> None:
    """Raise the error of the first set flag of :data:`INPUT_FLAGS` (reads ``flags`` on the host)."""
    bad = [name for name, value in zip(INPUT_FLAGS, flags.reshape(-1).tolist()) if value]
    if "pos_nonfinite" in bad:
        raise ValueError("pos contains NaN or inf coordinates")
    if "pos_unliftable" in bad:
        raise ValueError("pos holds points where the group's lift is undefined (the origin, for polar "
                         "lifts): shift the points off the origin or use another group")
    if "batch_unsorted" in bad:
        raise ValueError("batch must be sorted (each graph's points contiguous, as PyG's DataLoader makes "
                         "them); an unsorted batch vector would connect points of different graphs")
    if "x_nonfinite" in bad:
        raise NonFiniteInputError("x contains NaN or inf values")


@torch.library.custom_op("lieconv::graph_counts", mutates_args=())
def graph_counts(batch: Tensor, num_graphs: int, flags: Optional[Tensor]) -> Tensor:
    r"""``[B]`` the points of each graph of a sorted ``batch``, raising first for the set ``flags``.

    Args:
        batch (torch.Tensor): the graph of each point ``[N]``.
        num_graphs (int): :math:`B`; ``-1``: ``batch[-1] + 1`` (0 for no points).
        flags (torch.Tensor, optional): booleans in the order of :data:`INPUT_FLAGS` (fewer are
            allowed): a ``ValueError`` (:class:`NonFiniteInputError` for ``x``) for the first set one.
    """
    if flags is not None:
        _raise_for_flags(flags)
    if num_graphs < 0:
        num_graphs = int(batch[-1]) + 1 if batch.numel() else 0
    return torch.zeros(num_graphs, dtype=torch.long, device=batch.device).scatter_add_(
        0, batch, torch.ones_like(batch))


@graph_counts.register_fake
def _graph_counts_fake(batch: Tensor, num_graphs: int, flags: Optional[Tensor]) -> Tensor:
    size = torch.library.get_ctx().new_dynamic_size() if num_graphs < 0 else num_graphs
    return batch.new_empty(size)


#: the operators of this module, for tests (``torch.library.opcheck``; the others: ``graph.TRACED_OPS``,
#: ``pool.TRACED_OPS``)
OPS: List = [graph_counts]
