r"""Simple references of the candidate graph and the neighbourhood selection, for tests and benchmarks:
the exact Euclidean radius graph sorted by target (:func:`radius_pairs`) and the Monte Carlo
neighbourhoods of a flat edge list (:func:`select_neighborhood`), which the package's own code does
with the padded table of :class:`~torch_geometric_lieconv.graph.NeighborTable` instead.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from ..graph import count_index, padded_segments, radius_candidates, select_slots

__all__ = ["radius_pairs", "select_neighborhood"]


def radius_pairs(pos: Tensor, batch: Tensor, radius: float, max_num_neighbors: Optional[int] = None) -> Tensor:
    """:func:`~torch_geometric_lieconv.graph.radius_candidates` (same arguments), sorted by target:
    the pairs within Euclidean ``radius`` in the same graph, self pairs included; without
    ``max_num_neighbors`` the result is exact."""
    edge_index = radius_candidates(pos, batch, radius, max_num_neighbors)
    target = edge_index[1]
    if target.numel() > 1 and bool((target[1:] < target[:-1]).any()):  # host sync: skip the sort when sorted
        edge_index = edge_index[:, torch.argsort(target, stable=True)]
    return edge_index


def select_neighborhood(
    dist: Tensor,
    target: Tensor,
    target_graph_size: Tensor,
    radius: Optional[Tensor],
    mc_samples: int,
    knn: bool = False,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Optional[Tensor]]:
    """:func:`~torch_geometric_lieconv.graph.select_slots` for a flat edge list: the selected edge ids
    (sorted by target) and the fill.

    Args:
        dist (torch.Tensor): ``[E]`` group distance of the candidate edges.
        target (torch.Tensor): ``[E]`` their targets, sorted.
        target_graph_size (torch.Tensor): ``[num_targets]`` number of points in each target's graph.
        radius (torch.Tensor, optional): the ball radius (``None``: no ball, all candidates).
        mc_samples (int): at most this many edges per target.
        knn (bool, optional): the ``mc_samples`` nearest edges instead of random ones in the ball.
            (default: :obj:`False`)
        generator (torch.Generator, optional): the random stream of the samples. (default: :obj:`None`)
    """
    degree = count_index(target, target_graph_size.numel())
    width = int(degree.max()) if degree.numel() else 0  # host sync: the padded width
    slots, mask = padded_segments(target, degree, width)
    chosen, valid, observed_fill = select_slots(slots, mask, dist, target_graph_size, radius, mc_samples, knn,
                                                generator)
    return chosen[valid], observed_fill  # boolean indexing: one host sync (the edge count)
