r"""Lifting (Algorithm 1 of the paper): points to group elements and orbits.

Every input point :math:`x_n` becomes ``num_samples`` lifted elements :math:`(u_{nk}, q_n)`, stored
flat and point-major (lifted index :math:`m = nK + k`), with the graph and input-node index of each,
so that features are gathered with ``x[lifted.node_index]`` and everything stays sparse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from .groups import LieGroup, group_from_name


@dataclass
class LiftedPoints:
    """Lifted elements of a batch of point sets (all tensors have ``M = N * num_samples`` rows)."""

    a: Tensor  #: ``[M, lie_dim]`` Lie algebra coordinates of :math:`u`
    q: Tensor  #: ``[M, q_dim]`` orbit embeddings
    pos: Tensor  #: ``[M, d]`` the input point of each lifted element
    batch: Tensor  #: ``[M]`` graph of each lifted element (sorted)
    node_index: Tensor  #: ``[M]`` input node of each lifted element
    num_samples: int

    @property
    def num_nodes(self) -> int:
        return self.a.shape[0]

    def index_select(self, index: Tensor) -> "LiftedPoints":
        """The lifted elements at ``index`` (kept in the given order)."""
        return LiftedPoints(
            self.a[index], self.q[index], self.pos[index], self.batch[index], self.node_index[index], self.num_samples
        )


def lift_points(
    group: LieGroup,
    pos: Tensor,
    batch: Optional[Tensor] = None,
    num_samples: int = 1,
    frames: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    checked: bool = False,
) -> LiftedPoints:
    """Validate ``pos`` ``[N, d]`` and lift it with ``group`` (``num_samples`` stabilizer samples per point).

    Args:
        group: the symmetry group.
        pos: point coordinates.
        batch: graph index of each point, sorted (``None``: one graph).
        num_samples: K, lifted elements per point (only matters for groups with a stabilizer).
        frames: explicit stabilizer frames ``[N, K, m, m]`` (see :meth:`LieGroup.lift`).
        generator: random generator for the stabilizer samples.
        checked: the caller has checked the values of ``pos`` and ``batch``
            (:func:`point_flags`); only shapes are checked here.
    """
    if not isinstance(group, LieGroup):
        raise TypeError(f"group must be a LieGroup, got {type(group).__name__}")
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    group.check_pos_shape(pos)
    n = pos.shape[0]
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=pos.device)
    elif batch.shape != (n,):
        raise ValueError(f"batch must have shape [{n}] to match pos, got {list(batch.shape)}")
    if not checked and bool(point_flags(group, pos, batch).any()):  # one host sync
        raise_for_points(group, pos, batch)
    k = int(num_samples)
    a, q = group.lift(pos, k, frames=frames, generator=generator)
    node_index = torch.arange(n, device=pos.device).repeat_interleave(k)
    return LiftedPoints(
        a=a.reshape(n * k, group.lie_dim),
        q=q.reshape(n * k, group.q_dim),
        pos=pos[node_index],
        batch=batch[node_index],
        node_index=node_index,
        num_samples=k,
    )


def point_flags(group: LieGroup, pos: Tensor, batch: Tensor) -> Tensor:
    """``[3]`` booleans on the device: the group's :meth:`LieGroup.pos_flags` of ``pos`` and an
    unsorted ``batch``, to be read with others in one host sync (:func:`raise_for_points` explains)."""
    unsorted = (batch[1:] < batch[:-1]).any() if batch.numel() > 1 else batch.new_zeros((), dtype=torch.bool)
    return torch.cat([group.pos_flags(pos), unsorted.view(1)])


def raise_for_points(group: LieGroup, pos: Tensor, batch: Tensor) -> None:
    """Raise the clear error for what :func:`point_flags` found."""
    group.raise_for_pos(pos)
    raise ValueError(
        "batch must be sorted (each graph's points contiguous, as PyG's DataLoader makes them); an "
        "unsorted batch vector would connect points of different graphs"
    )


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
if hasattr(torch.serialization, "add_safe_globals"):
    torch.serialization.add_safe_globals([LiftedGraph])


def lift_graph(
    group: Union[LieGroup, str],
    pos: Tensor,
    batch: Optional[Tensor] = None,
    num_samples: int = 1,
    radius: Optional[float] = None,
    frames: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    max_num_neighbors: Optional[int] = None,
) -> LiftedGraph:
    r"""Lift points (Algorithm 1) and connect the lifted elements by their candidate pairs.

    Every point becomes ``num_samples`` lifted elements :math:`(u, q)`; the edges are the pairs
    :math:`j \to i` of one graph that can lie within group distance ``radius``
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
        num_samples (int, optional): lifted elements per point :math:`K` (stabilizer samples).
            (default: :obj:`1`)
        radius (float, optional): the largest group radius of any ball the graph must serve.
            (default: :obj:`None`, every pair of each graph)
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
    from .graph import build_pair_graph

    group = group_from_name(group) if isinstance(group, str) else group
    with torch.autocast(pos.device.type, enabled=False):  # group math in the input precision
        lifted = lift_points(group, pos, batch, num_samples, frames, generator)
        graph = build_pair_graph(group, lifted, radius, max_num_neighbors)
    return lifted_data(lifted, graph, has_batch=batch is not None)


def lifted_data(lifted: LiftedPoints, graph, has_batch: bool = True) -> LiftedGraph:
    """The :class:`LiftedGraph` of lifted points and their :class:`~torch_geometric_lieconv.graph.PairGraph`."""
    data = LiftedGraph(
        pos=lifted.pos, u=lifted.a, q=lifted.q, node_index=lifted.node_index, edge_index=graph.edge_index,
        edge_attr=graph.edge_attr, num_nodes=lifted.num_nodes,
        candidate_radius=float("inf") if graph.radius is None else float(graph.radius),
        num_points=lifted.num_nodes // lifted.num_samples, lift_samples=lifted.num_samples,
    )
    if has_batch:
        data.batch = lifted.batch
    return data
