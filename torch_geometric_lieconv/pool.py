r"""Equivariant subsampling: farthest point sampling under the group distance, per graph."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor
from torch_scatter import scatter_max, scatter_min

from .graph import PairGraph


def farthest_point_subsample(graph: PairGraph, ratio: float, generator: Optional[torch.Generator] = None) -> Tensor:
    r"""Indices (sorted) of :math:`\lceil \text{ratio}\cdot n_g\rceil` points per graph chosen by farthest point sampling.

    Starting from a random point of each graph, repeatedly add the point whose distance
    :math:`\min_{s \in S} d(\cdot, s)` to the chosen set is largest. Distances are the group's invariant
    ones, taken from the candidate pairs of ``graph`` (a pair that is not a candidate is farther than
    any candidate, i.e. infinitely far here), so the choice commutes with the group action. All graphs of
    the batch advance together: one step costs O(edges of the chosen points).
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must lie in (0, 1], got {ratio}")
    batch, device = graph.batch, graph.batch.device
    counts = torch.bincount(batch)
    num_graphs = counts.numel()
    if ratio == 1:
        return torch.arange(graph.num_nodes, device=device)
    keep = torch.ceil(counts.to(torch.float64) * ratio).long().clamp_(min=1)
    first = torch.cumsum(counts, 0) - counts
    degree = torch.bincount(graph.edge_index[1], minlength=graph.num_nodes)
    edge_ptr = torch.cumsum(degree, 0) - degree

    min_dist = torch.full((graph.num_nodes,), math.inf, dtype=graph.dist.dtype, device=device)
    start = torch.rand(num_graphs, device=device, generator=generator)
    chosen = first + (start * counts).long().clamp_(max=counts - 1)
    selected = []
    for step in range(int(keep.max())):  # host sync: the number of rounds
        active = keep > step
        current = chosen[active]
        selected.append(current)
        min_dist[current] = -1.0
        # distances from the newly chosen points to their candidate neighbours (symmetric d)
        lengths = degree[current]
        edge_ids = torch.repeat_interleave(edge_ptr[current], lengths)
        edge_ids = edge_ids + torch.arange(edge_ids.numel(), device=device) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths
        )
        src, dist = graph.edge_index[0, edge_ids], graph.dist[edge_ids]
        reached = scatter_min(dist, src, dim=0, dim_size=graph.num_nodes)[0]
        touched = torch.zeros(graph.num_nodes, dtype=torch.bool, device=device)
        touched[src] = True
        min_dist = torch.where(touched & (min_dist >= 0), torch.minimum(min_dist, reached), min_dist)
        _, chosen = scatter_max(min_dist, batch, dim=0, dim_size=num_graphs)
    return torch.sort(torch.cat(selected)).values
