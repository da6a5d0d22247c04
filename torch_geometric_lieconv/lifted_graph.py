r"""The lifted-graph Data API: lifted points and their candidate pairs as a PyG
:class:`~torch_geometric.data.Data` (:class:`LiftedGraph`, :func:`lift_graph`).

This layer sits above the lift (:mod:`~torch_geometric_lieconv.lift`) and the pair graph
(:mod:`~torch_geometric_lieconv.graph`) that it wraps, as PyG's ``RadiusGraph`` transform sits
above ``radius_graph``.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from .graph import PairGraph, build_pair_graph
from .groups import LieGroup, group_from_name
from ._deprecation import renamed_keywords
from .lift import LiftedPoints, lift_points

__all__ = ["LiftedGraph", "lift_graph", "lifted_data"]


class LiftedGraph(Data):
    r"""A graph of lifted points :math:`(u, q)` as a PyG :class:`~torch_geometric.data.Data`
    (made by :func:`lift_graph` and :class:`~torch_geometric_lieconv.transforms.LiftGraph`).

    Its nodes are the lifted elements (``num_nodes`` :math:`= N K`), its edges the candidate pairs
    :math:`j \to i` with ``edge_attr`` :math:`\text{abq}_{ij}`; ``node_index`` maps each lifted node
    back to its input point. Batching with :class:`~torch_geometric.loader.DataLoader` offsets
    ``edge_index`` by the lifted nodes and ``node_index`` by the input points (``num_points``) of
    the graphs before it, so a batch is the lifted graph of the batched points.
    """

    def __inc__(self, key: str, value, *args, **kwargs):
        if key == "node_index":
            return self.num_points
        return super().__inc__(key, value, *args, **kwargs)


# datasets saved with a LiftGraph pre_transform hold LiftedGraph objects: let PyG read them back with
# torch.load(weights_only=True) instead of falling back to unpickling arbitrary objects
torch.serialization.add_safe_globals(
    [LiftedGraph, (LiftedGraph, "torch_geometric_lieconv.lift.LiftedGraph")]  # before 0.2
)


@renamed_keywords(num_samples="lift_samples", radius="candidate_radius")  # before 0.3
def lift_graph(
    group: Union[LieGroup, str],
    pos: Tensor,
    batch: Optional[Tensor] = None,
    lift_samples: int = 1,
    candidate_radius: Optional[float] = None,
    frames: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    max_num_neighbors: Optional[int] = None,
) -> LiftedGraph:
    r"""Lift points (Algorithm 1) and connect the lifted elements by their candidate pairs.

    Every point becomes ``lift_samples`` lifted elements :math:`(u, q)`; the edges are the pairs
    :math:`j \to i` of one graph that can lie within group distance ``candidate_radius``
    (:func:`torch_cluster.radius` under the group's Euclidean bound, then every pair it returns),
    each with :math:`\text{abq}_{ij} = [\log(v_j^{-1}u_i), q_i, q_j]` as ``edge_attr``. Pass the
    result's ``x``-free fields to :class:`~torch_geometric_lieconv.LieConv` as
    ``conv(x[graph.node_index], graph.edge_index, graph.edge_attr, batch=graph.batch,
    candidate_radius=graph.candidate_radius)``.

    Args:
        group (LieGroup or str): the group, or its name.
        pos (torch.Tensor): point coordinates.
        batch (torch.Tensor, optional): graph of each point, sorted. (default: :obj:`None`, one
            graph; the result then has no ``batch`` attribute, as a single PyG graph)
        lift_samples (int, optional): lifted elements per point :math:`K` (stabilizer samples);
            ``num_samples`` before 0.3. (default: :obj:`1`)
        candidate_radius (float, optional): the largest group radius of any ball the graph must
            serve; ``radius`` before 0.3. (default: :obj:`None`, every pair of each graph)
        frames (torch.Tensor, optional): explicit stabilizer frames ``[N, K, m, m]``.
            (default: :obj:`None`, random)
        generator (torch.Generator, optional): random generator of the stabilizer samples.
        max_num_neighbors (int, optional): cap on candidates per point for the radius search.
            (default: :obj:`None`, exact)

    Returns a :class:`LiftedGraph` with ``pos`` ``[M, d]`` (the input point of each lifted node),
    ``u`` ``[M, lie_dim]`` (Lie algebra coordinates of :math:`u`), ``q`` ``[M, q_dim]``,
    ``node_index`` ``[M]``, ``edge_index`` ``[2, E]`` (sorted by target), ``edge_attr``
    ``[E, lie_dim + 2 q_dim]``, ``candidate_radius`` (``inf`` for all pairs), ``num_points``
    :math:`N`, ``lift_samples`` :math:`K` and ``batch`` ``[M]`` when ``batch`` was given.
    """
    group = group_from_name(group) if isinstance(group, str) else group
    with torch.autocast(pos.device.type, enabled=False):  # group math in the input precision
        lifted = lift_points(group, pos, batch, lift_samples, frames, generator)
        graph = build_pair_graph(group, lifted, candidate_radius, max_num_neighbors)
    return lifted_data(lifted, graph, has_batch=batch is not None)


def lifted_data(lifted: LiftedPoints, graph: PairGraph, has_batch: bool = True) -> LiftedGraph:
    """The :class:`LiftedGraph` of lifted points and their :class:`~torch_geometric_lieconv.graph.PairGraph`.

    Args:
        lifted (LiftedPoints): the lifted points.
        graph (PairGraph): their candidate pairs.
        has_batch (bool, optional): store the batch vector (``False`` for a single graph). (default:
            :obj:`True`)
    """
    data = LiftedGraph(
        pos=lifted.pos, u=lifted.u, q=lifted.q, node_index=lifted.node_index, edge_index=graph.edge_index,
        edge_attr=graph.edge_attr, num_nodes=lifted.num_nodes,
        candidate_radius=graph.candidate_radius, num_points=lifted.num_nodes // lifted.lift_samples,
        lift_samples=lifted.lift_samples,
    )
    if has_batch:
        data.batch = lifted.batch
    return data
