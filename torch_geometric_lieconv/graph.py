r"""The pair graph of lifted points, and the per-layer neighbourhood selection.

The pair graph holds candidate edges :math:`j \to i` within each graph of a batch, with the pair
embeddings :math:`\text{abq}_{ij} = [\log(v_j^{-1}u_i), q_i, q_j]` (Eq. 9) and the invariant distance
:math:`d(\text{abq}_{ij})`. It is built once per forward pass in O(E) memory: candidate edges come
from :func:`torch_cluster.radius` over the input points with a radius that provably bounds the
group distance (:meth:`LieGroup.euclidean_radius`), or are all pairs within each graph where no
bound is known. Each LieConv layer then keeps the edges inside its ball and samples at most
``mc_samples`` of them per target (:func:`select_neighbourhood`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

from .groups import LieGroup
from .lift import LiftedPoints


@dataclass
class PairGraph:
    """Candidate pair graph of ``num_nodes`` lifted points, edges sorted by target."""

    edge_index: Tensor  #: ``[2, E]``: row 0 the source j, row 1 the target i
    edge_attr: Tensor  #: ``[E, lie_dim + 2 q_dim]``: pair embeddings abq_ij
    dist: Tensor  #: ``[E]``: group distance d(abq_ij)
    batch: Tensor  #: ``[M]``: graph of each lifted point
    num_nodes: int

    @property
    def graph_size(self) -> Tensor:
        """``[M]`` the number of lifted points in the graph of each point."""
        counts = torch.bincount(self.batch)
        return counts[self.batch]

    def subgraph(self, index: Tensor) -> "PairGraph":
        """The graph induced on the lifted points ``index`` (sorted), relabelled ``0..len(index)-1``."""
        relabel = torch.full((self.num_nodes,), -1, dtype=torch.long, device=self.batch.device)
        relabel[index] = torch.arange(index.numel(), device=index.device)
        src, dst = relabel[self.edge_index[0]], relabel[self.edge_index[1]]
        keep = (src >= 0) & (dst >= 0)
        return PairGraph(
            torch.stack([src[keep], dst[keep]]), self.edge_attr[keep], self.dist[keep], self.batch[index], index.numel()
        )


def all_pairs_within_graphs(batch: Tensor) -> Tensor:
    """All ordered pairs (self pairs included) of nodes in the same graph, sorted by target. ``batch`` sorted."""
    counts = torch.bincount(batch)
    per_node = counts[batch]
    first = torch.cumsum(counts, 0) - counts
    num_nodes = batch.numel()
    dst = torch.arange(num_nodes, device=batch.device).repeat_interleave(per_node)
    edge_start = torch.cumsum(per_node, 0) - per_node
    offset = torch.arange(dst.numel(), device=batch.device) - edge_start[dst]
    src = first[batch][dst] + offset
    return torch.stack([src, dst])


def radius_pairs(pos: Tensor, batch: Tensor, radius: float, max_num_neighbors: Optional[int] = None) -> Tensor:
    """Pairs within Euclidean ``radius`` in the same graph (self pairs included), sorted by target.

    ``max_num_neighbors`` defaults to the largest graph, which makes the result exact.
    """
    import torch_cluster

    if max_num_neighbors is None:
        max_num_neighbors = int(torch.bincount(batch).max())  # host sync: the size bound for torch_cluster
    row, col = torch_cluster.radius(pos, pos, radius, batch, batch, max_num_neighbors=max_num_neighbors)
    order = torch.argsort(row, stable=True)
    return torch.stack([col[order], row[order]])


def build_pair_graph(
    group: LieGroup,
    lifted: LiftedPoints,
    radius: Optional[float] = None,
    max_num_neighbors: Optional[int] = None,
) -> PairGraph:
    """Candidate pairs covering every ball of group radius ``radius`` (``None``: all pairs in each graph).

    Args:
        group: the group (its distance and Euclidean bound).
        lifted: the lifted points.
        radius: the largest ball radius any layer will use.
        max_num_neighbors: cap on candidates per point for :func:`torch_cluster.radius`
            (``None``: exact; set it for very large point clouds).
    """
    bound = None
    if radius is not None and lifted.num_nodes > 0:
        max_norm = float(lifted.pos.norm(dim=-1).max())  # host sync: needed for the bound and torch_cluster
        bound = group.euclidean_radius(float(radius), max_norm)
    if bound is None:
        edge_index = all_pairs_within_graphs(lifted.batch)
    else:
        # widen by a relative 1e-6 so rounding never drops a pair on the boundary
        edge_index = radius_pairs(lifted.pos, lifted.batch, bound * (1 + 1e-6) + 1e-12, max_num_neighbors)
    edge_attr = group.pair_embedding(lifted.a, lifted.q, edge_index)
    return PairGraph(edge_index, edge_attr, group.distance(edge_attr), lifted.batch, lifted.num_nodes)


def segment_rank(target: Tensor, num_nodes: int) -> Tensor:
    """Position of each edge within its target's segment (``target`` sorted)."""
    counts = torch.bincount(target, minlength=num_nodes)
    start = torch.cumsum(counts, 0) - counts
    return torch.arange(target.numel(), device=target.device) - start[target]


def select_neighbourhood(
    dist: Tensor,
    target: Tensor,
    target_graph_size: Tensor,
    radius: Optional[Tensor],
    mc_samples: int,
    knn: bool = False,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Optional[Tensor]]:
    """Edges of each target's Monte Carlo neighbourhood, and the observed fill.

    Args:
        dist: ``[E]`` group distance of the candidate edges.
        target: ``[E]`` their targets, sorted.
        target_graph_size: ``[num_targets]`` number of points in each target's graph.
        radius: the ball radius (``None``: no ball, all candidates).
        mc_samples: at most this many edges per target.
        knn: take the ``mc_samples`` edges of smallest distance instead of random ones in the ball.

    Returns the selected edge ids (sorted by target) and, when a radius was used, the average over
    targets of (points within the ball) / (points in the graph).
    """
    device, num_targets = dist.device, target_graph_size.numel()
    observed_fill = None
    if knn:
        order = torch.argsort(dist)
        candidates = order[torch.argsort(target[order], stable=True)]
    else:
        if radius is None:
            candidates = torch.arange(dist.numel(), device=device)
        else:
            inside = dist < radius
            within = torch.zeros(num_targets, dtype=dist.dtype, device=device).index_add_(0, target, inside.to(dist.dtype))
            observed_fill = (within / target_graph_size.to(dist.dtype)).mean()
            candidates = inside.nonzero().flatten()  # data-dependent size: one host sync
        # a uniformly random order within each target: sort by target + uniform noise in [0, 1)
        noise = torch.rand(candidates.numel(), dtype=torch.float64, device=device, generator=generator)
        candidates = candidates[torch.argsort(target[candidates].to(torch.float64) + noise)]
    rank = segment_rank(target[candidates], num_targets)
    return candidates[rank < mc_samples], observed_fill
