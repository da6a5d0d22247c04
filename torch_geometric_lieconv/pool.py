r"""Equivariant subsampling: farthest point sampling under the group distance, per graph."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor
from torch_scatter import scatter_max

from .ops import dynamic_sizes_traced, generator_kwargs
from .graph import GraphSizes, PairGraph
from .host_syncs import read_to_host


def subsample_counts(counts: Tensor, ratio: float) -> Tensor:
    r"""``[B]`` points kept per graph by :func:`farthest_point_subsample`: :math:`\lceil \text{ratio}\,n_g\rceil`
    (at least one of a non-empty graph).

    Args:
        counts (torch.Tensor): the points of each graph ``[B]``.
        ratio (float): the fraction to keep.
    """
    return torch.ceil(counts.to(torch.float64) * ratio).long().clamp_(min=1) * (counts > 0)


def farthest_point_starts(counts: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    r"""``[B]`` the random start of each graph's farthest point sampling, as an index into the graph
    (uniform over its :math:`n_g` points; ``-1`` for an empty graph): one draw of ``B`` uniforms, the
    draw :func:`farthest_point_subsample` makes when it is not given its starts.

    Args:
        counts (torch.Tensor): the points of each graph ``[B]``.
        generator (torch.Generator, optional): the stream of the random starts. (default: :obj:`None`)
    """
    start = torch.rand(counts.numel(), device=counts.device, **generator_kwargs(generator))
    return (start * counts).long().clamp_(max=counts - 1)


def farthest_point_subsample(graph: PairGraph, ratio: float, generator: Optional[torch.Generator] = None,
                             kept: Optional[GraphSizes] = None, start: Optional[Tensor] = None) -> Tensor:
    r"""Indices (sorted) of :math:`\lceil \text{ratio}\cdot n_g\rceil` points per graph chosen by farthest point sampling.

    Starting from a random point of each graph, repeatedly add the point whose distance
    :math:`\min_{s \in S} d(\cdot, s)` to the chosen set is largest. Distances are the group's invariant
    ones, taken from the candidate pairs of ``graph`` (a pair that is not a candidate is farther than
    any candidate, i.e. infinitely far here), so the choice commutes with the group action. All graphs of
    the batch advance together, one round per kept point of the largest graph: a round reads the
    chosen points' rows of the slot table (``num_graphs x max_degree``), with no host sync. With the
    kept sizes given (``kept``, e.g. read by a model with its other sizes) nothing is read from the
    device; else they are read once. In a traced forward (:func:`torch.compile`,
    :func:`torch.export.export`) the rounds run in the operator
    :func:`farthest_point_sample_op` (the starts are drawn outside it, as here).

    Args:
        graph (PairGraph): the points and their candidate pairs (the distances).
        ratio (float): the fraction of each graph to keep.
        generator (torch.Generator, optional): the stream of the random starts. (default: :obj:`None`)
        kept (GraphSizes, optional): the kept sizes, when read. (default: :obj:`None`)
        start (torch.Tensor, optional): ``[B]`` the start of each graph, an index into the graph (``None``:
            drawn by :func:`farthest_point_starts`). Given the starts, the choice is deterministic: a
            graph's kept points depend on its own points, candidate pairs and start only. (default: :obj:`None`)
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must lie in (0, 1], got {ratio}")
    batch, device, num_nodes = graph.batch, graph.batch.device, graph.num_nodes
    if ratio == 1:
        return torch.arange(num_nodes, device=device)
    counts = graph.sizes.counts
    if start is None:
        start = farthest_point_starts(counts, generator)
    if dynamic_sizes_traced():  # a traced forward: the rounds (a host number) run in the operator
        return farthest_point_sample_op(counts, batch, graph.edge_index[0], graph.dist, graph.slots,
                                         graph.slot_mask, start, float(ratio))
    return farthest_points(counts, batch, graph.edge_index[0], graph.dist, graph.slots, graph.slot_mask, ratio,
                           start, kept)


def farthest_points(counts: Tensor, batch: Tensor, source: Tensor, dist: Tensor, slots: Tensor, slot_mask: Tensor,
                    ratio: float, start: Tensor, kept: Optional[GraphSizes] = None) -> Tensor:
    r"""The rounds of :func:`farthest_point_subsample` on the tensors of a pair graph (``ratio < 1``).

    Args:
        counts (torch.Tensor): the points of each graph ``[B]``.
        batch (torch.Tensor): the graph of each point ``[N]``, sorted.
        source (torch.Tensor): the source of each candidate edge ``[E]``.
        dist (torch.Tensor): the group distance of each candidate edge ``[E]``.
        slots (torch.Tensor): the neighbour table's edge ids ``[N, D]``.
        slot_mask (torch.Tensor): its mask ``[N, D]``.
        ratio (float): the fraction of each graph to keep.
        start (torch.Tensor): ``[B]`` the start of each graph, an index into the graph.
        kept (GraphSizes, optional): the kept sizes, when read. (default: :obj:`None`, read here)
    """
    device, num_nodes = batch.device, batch.shape[0]
    num_graphs = counts.numel()
    keep = subsample_counts(counts, ratio)
    if kept is None:
        kept = GraphSizes.from_summary(keep, read_to_host(GraphSizes.summary(keep)))
    first = torch.cumsum(counts, 0) - counts

    min_dist = torch.full((num_nodes,), math.inf, dtype=dist.dtype, device=device)
    chosen = (first + start).clamp_(0, max(num_nodes - 1, 0))
    chosen_per_round, active_per_round = [], []
    for step in range(kept.max_count):
        active = keep > step
        chosen_per_round.append(chosen)
        active_per_round.append(active)
        # mark the chosen points of the active graphs (-1), then relax distances from them
        mark = torch.where(active, -1.0, math.inf).to(min_dist.dtype)
        min_dist.scatter_reduce_(0, chosen, mark, "amin")
        rows, row_mask = slots[chosen], slot_mask[chosen] & active.unsqueeze(-1)
        reached = dist[rows].masked_fill(~row_mask, math.inf)
        min_dist.scatter_reduce_(0, source[rows].flatten(), reached.flatten(), "amin")
        _, chosen = scatter_max(min_dist, batch, dim=0, dim_size=num_graphs)
        chosen = chosen.clamp_(max=max(num_nodes - 1, 0))  # empty graphs report index num_nodes
    if not chosen_per_round:
        return torch.zeros(0, dtype=torch.long, device=device)
    # the chosen points of the active graphs, in order: inactive entries sort last and are cut off
    selected = torch.stack(chosen_per_round).masked_fill(~torch.stack(active_per_round), num_nodes)
    return torch.sort(selected.flatten()).values[: kept.total]


# ----------------------------------------------------------------------------- traced-forward operator
@torch.library.custom_op("lieconv::farthest_point_sample", mutates_args=())
def farthest_point_sample_op(counts: Tensor, batch: Tensor, source: Tensor, dist: Tensor, slots: Tensor,
                          slot_mask: Tensor, start: Tensor, ratio: float) -> Tensor:
    r"""The sorted indices of the points :func:`~torch_geometric_lieconv.pool.farthest_point_subsample`
    keeps, from the tensors of a pair graph (at least one: the fake kernel promises a non-empty batch):
    :func:`farthest_points` as an operator, with the same arguments (``ratio`` in ``(0, 1)``).
    """
    return farthest_points(counts, batch, source, dist, slots, slot_mask, ratio, start)


@farthest_point_sample_op.register_fake
def _farthest_point_sample_fake(counts: Tensor, batch: Tensor, source: Tensor, dist: Tensor, slots: Tensor,
                                slot_mask: Tensor, start: Tensor, ratio: float) -> Tensor:
    return batch.new_empty(torch.library.get_ctx().new_dynamic_size(min=1))


#: the operators of this module (see :mod:`~torch_geometric_lieconv.ops`)
TRACED_OPS = [farthest_point_sample_op]
