r"""The pair graph of lifted points, and the per-layer neighbourhood selection.

The pair graph holds candidate edges :math:`j \to i` within each graph of a batch, with the pair
embeddings :math:`\text{abq}_{ij} = [\log(v_j^{-1}u_i), q_i, q_j]` (Eq. 9) and the invariant distance
:math:`d(\text{abq}_{ij})`. It is built once per forward pass in O(E) memory: candidate edges come
from :func:`torch_cluster.radius` over the input points with a radius that provably bounds the
group distance (:meth:`LieGroup.euclidean_radius`), or are all pairs within each graph where no
bound is known. Each LieConv layer then keeps the edges inside its ball and samples at most
``mc_samples`` of them per target (:func:`select_slots`).

The candidates of each target are also laid out as one row of a padded table ``slots``
``[num_nodes, max_degree]`` (edge ids, with a validity mask), built once per graph. Every per-layer
step (ball, random subset, k nearest, aggregation) then works on fixed-shape ``[targets, slots]``
tensors: no loop over graphs or nodes, no host-device synchronisation, and static shapes for
``torch.compile``. Its memory is ``num_nodes * max_degree`` ids, O(E) when degrees are even
(the padding is the spread of the degrees, e.g. the largest molecule over the mean one).

The containers of the lifted data, each holding one thing:

* :class:`~torch_geometric_lieconv.lift.LiftedPoints`: the lifted elements :math:`(u, q)` of a batch,
  with the input point, graph and input node of each; no edges.
* :class:`PairGraph`: the candidate edges of lifted points with their pair embeddings, distances,
  candidate radius and neighbour table; the models' working graph, shared by their layers.
* :class:`NeighborTable`: the candidate edges of each target as one padded row of edge ids (and
  a mask), the fixed-shape layout every per-layer step works on.
* :class:`GraphSizes`: the number of points in each graph of a batch on the device, and the few
  totals the host needs to size tensors without reading the device again.
* :class:`~torch_geometric_lieconv.models.lieresnet.ForwardPlan`: the values one model forward
  reads from the device in its one host sync (input checks, sizes per stage, ball radii).
* :class:`~torch_geometric_lieconv.LiftedGraph`: lifted points and their candidate pairs as one
  PyG :class:`~torch_geometric.data.Data`, the public form that transforms, datasets and
  ``DataLoader`` batching handle (a model turns it into ``LiftedPoints`` and a ``PairGraph``).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor

from .ops import dynamic_sizes_traced, generator_kwargs, graph_counts
from .groups import LieGroup
from .host_syncs import note_host_sync, read_to_host
from ._deprecation import deprecated_alias, renamed_keywords
from .lift import LiftedPoints


class GraphSizes(NamedTuple):
    r"""The sizes of the graphs of a batch: on the device, and the few numbers the host needs.

    Read once per forward (:meth:`read`, one host sync for every stage of a model), they let
    every later step size its tensors without reading the device again: the all-pairs edge count
    for ``repeat_interleave``, the widest graph for the neighbour table and the radius search.

    A traced forward (:func:`torch.compile`, :func:`torch.export.export`) reads nothing: its sizes
    (:meth:`traced`) hold the counts only, and the custom operators of
    :mod:`~torch_geometric_lieconv.ops` size their own outputs.
    """

    counts: Tensor  #: ``[B]`` points in each graph
    max_count: Optional[int]  #: the largest graph (``None`` in a traced forward)
    num_pairs: Optional[int]  #: :math:`\sum_g n_g^2`, the all-pairs edge count (``None`` in a traced forward)
    total: Optional[int]  #: :math:`\sum_g n_g`, the number of points (``None``: not known in a traced forward)

    @staticmethod
    def summary(counts: Tensor) -> Tensor:
        """``[3]`` (max, sum of squares, sum) of ``counts``, to be read with others in one sync.

        Args:
            counts (torch.Tensor): the nodes of each graph ``[B]``.
        """
        if counts.numel() == 0:
            return counts.new_zeros(3)
        return torch.stack([counts.max(), counts.square().sum(), counts.sum()])

    @classmethod
    def from_summary(cls, counts: Tensor, summary) -> "GraphSizes":
        """The sizes of ``counts`` from its :meth:`summary`, read on the host.

        Args:
            counts (torch.Tensor): the nodes of each graph ``[B]``.
            summary (Sequence[float]): its :meth:`summary`, read on the host.
        """
        return cls(counts, *(int(v) for v in summary))

    @classmethod
    def traced(cls, counts: Tensor, total: Optional[int] = None) -> "GraphSizes":
        """The sizes of a traced forward: ``counts`` on the device and no host numbers but ``total``.

        Args:
            counts (torch.Tensor): the nodes of each graph ``[B]``.
            total (int, optional): the number of nodes, when known. (default: :obj:`None`)
        """
        return cls(counts, None, None, total)

    @classmethod
    def read(cls, batch: Tensor, num_graphs: Optional[int] = None) -> "GraphSizes":
        """The sizes of the graphs of a sorted ``batch`` (one host sync, two without ``num_graphs``).

        Args:
            batch (torch.Tensor): the graph of each node ``[N]``, sorted.
            num_graphs (int, optional): :math:`B`, when known. (default: :obj:`None`)

        In a traced forward the counts come from :func:`~torch_geometric_lieconv.ops.graph_counts`
        (:meth:`traced` sizes, no host read).
        """
        if dynamic_sizes_traced():
            return cls.traced(graph_counts(batch, -1 if num_graphs is None else num_graphs, None), batch.shape[0])
        if num_graphs is None:
            num_graphs = int(batch[-1]) + 1 if batch.numel() else 0  # host sync
        counts = count_index(batch, num_graphs)
        return cls.from_summary(counts, read_to_host(cls.summary(counts)))

    def per_node(self, batch: Tensor) -> Tensor:
        """``[N]`` the size of each node's graph.

        Args:
            batch (torch.Tensor): the graph of each node ``[N]``, sorted.
        """
        return self.counts[batch]


class NeighborTable(NamedTuple):
    r"""The candidate edges of each target as one padded row: ``[T, D]`` edge ids and a mask.

    Row ``t`` lists the ids (positions in an ``edge_index``) of the candidate edges of output
    ``t``; entries outside :attr:`mask` are padding (edge 0). A table can hold the rows of a subset
    of the targets (:meth:`rows`), which is how a layer computes outputs at subsampled points only.
    Built by :func:`neighbor_table`.
    """

    slots: Tensor  #: ``[T, D]`` candidate edge ids of each target, padded with 0
    mask: Tensor  #: ``[T, D]`` which entries of :attr:`slots` are real edges
    graph_size: Tensor  #: ``[T]`` number of source points in the graph of each target
    complete: bool  #: rows are the targets ``0..T-1`` of the edges, and hold every edge
    #: ``[E]`` flat position (``row * width + slot``) of every edge in a complete table, else ``None``
    position: Optional[Tensor] = None

    @property
    def width(self) -> int:
        return self.slots.shape[1]

    def rows(self, index: Tensor) -> "NeighborTable":
        """The table restricted to the targets ``index`` (output ``t`` is target ``index[t]``).

        Args:
            index (torch.Tensor): the targets to keep ``[M]``.
        """
        return NeighborTable(self.slots[index], self.mask[index], self.graph_size[index], False, None)


def neighbor_table(
    edge_index: Tensor,
    num_targets: int,
    graph_size: Tensor,
    max_degree: Optional[int] = None,
    is_sorted: Optional[bool] = None,
    degree: Optional[Tensor] = None,
) -> NeighborTable:
    r"""Lay out the edges of ``edge_index`` (any order) as one padded row per target.

    Args:
        edge_index (torch.Tensor): ``[2, E]`` edges ``j -> i`` (row 1 the targets).
        num_targets (int): number of targets :math:`T`.
        graph_size (torch.Tensor): ``[T]`` number of source points in each target's graph.
        max_degree (int, optional): padded width, at least the largest degree. (default:
            :obj:`None`, computed)
        is_sorted (bool, optional): whether the edges are sorted by target. (default: :obj:`None`,
            checked)
        degree (torch.Tensor, optional): ``[T]`` the number of edges of each target, when the caller
            has counted them. (default: :obj:`None`, counted)

    Reads the device once when ``max_degree`` or ``is_sorted`` is not given (both in one sync). In a
    traced forward (:func:`torch.compile`, :func:`torch.export.export`) the layout is the custom
    operator :func:`neighbor_table_op` (``max_degree``, ``is_sorted`` and
    ``degree`` unused; the width is at least 2).
    """
    if dynamic_sizes_traced():
        slots, mask, position = neighbor_table_op(edge_index[1], num_targets)
    else:
        slots, mask, position = table_layout(edge_index[1], num_targets, degree, max_degree, is_sorted)
    return NeighborTable(slots, mask, graph_size, True, position)


def table_layout(target: Tensor, num_targets: int, degree: Optional[Tensor] = None, max_degree: Optional[int] = None,
                 is_sorted: Optional[bool] = None, min_width: int = 0) -> Tuple[Tensor, Tensor, Tensor]:
    """The padded rows of :func:`neighbor_table`: ``(slots [T, D], mask [T, D], position [E])``.

    Args:
        target (torch.Tensor): the target of each edge ``[E]``, any order.
        num_targets (int): number of targets :math:`T`.
        degree (torch.Tensor, optional): ``[T]`` the edges of each target. (default: :obj:`None`, counted)
        max_degree (int, optional): padded width, at least the largest degree. (default: :obj:`None`, read)
        is_sorted (bool, optional): whether ``target`` is sorted. (default: :obj:`None`, read)
        min_width (int, optional): the least width :math:`D`. (default: :obj:`0`)
    """
    degree = count_index(target, num_targets) if degree is None else degree
    if max_degree is None or is_sorted is None:
        max_degree, is_sorted = _degree_and_order(target, degree, max_degree, is_sorted)
    max_degree = max(max_degree, min_width)
    order = None
    if not is_sorted:
        order = torch.argsort(target, stable=True)
        target = target[order]
    slots, mask = padded_segments(target, degree, max_degree)
    position = target * max_degree + segment_rank(target, num_targets, degree)
    if order is not None and order.numel():
        slots = order[slots]
        position = torch.empty_like(position).index_copy_(0, order, position)
    return slots, mask, position


def count_index(index: Tensor, size: int) -> Tensor:
    """``[size]`` occurrences of each value of ``index`` (values in ``[0, size)``), without a host sync
    (:func:`torch.bincount` reads the maximum of its input to size its output).

    Args:
        index (torch.Tensor): values in ``[0, size)``.
        size (int): the number of counts.
    """
    return torch.zeros(size, dtype=torch.long, device=index.device).scatter_add_(0, index, torch.ones_like(index))


def _degree_and_order(target: Tensor, degree: Tensor, max_degree: Optional[int],
                      is_sorted: Optional[bool]) -> Tuple[int, bool]:
    """The largest degree and whether ``target`` is sorted, read in one host sync."""
    unsorted = (target[1:] < target[:-1]).any() if target.numel() > 1 else target.new_zeros((), dtype=torch.bool)
    widest = degree.max() if degree.numel() else degree.new_zeros(())
    read_degree, read_unsorted = read_to_host(torch.stack([widest, unsorted.long()]))
    return (read_degree if max_degree is None else max_degree,
            (not read_unsorted) if is_sorted is None else is_sorted)


def graph_sizes(batch: Optional[Tensor], target_batch: Optional[Tensor], num_sources: int,
                num_targets: int, device: torch.device) -> Tensor:
    """``[num_targets]`` number of source points in the graph of each target (one graph if no batch).

    Args:
        batch (torch.Tensor, optional): the graph of each source ``[N]`` (``None``: one graph).
        target_batch (torch.Tensor, optional): the graph of each target ``[M]``.
        num_sources (int): :math:`N`.
        num_targets (int): :math:`M`.
        device (torch.device): where the counts live.
    """
    if batch is None:
        return torch.full((num_targets,), num_sources, dtype=torch.long, device=device)
    if dynamic_sizes_traced():  # a traced forward: the number of graphs is an operator's output size
        counts = graph_counts(batch, -1, None)
    else:
        counts = torch.bincount(batch)
    return counts[batch if target_batch is None else target_batch]


@dataclass
class PairGraph:
    """Candidate pair graph of ``num_nodes`` lifted points, edges sorted by target.

    The models' internal view of a lifted graph: the edges, their pair embeddings and distances,
    and the :class:`NeighborTable` of every target, laid out once and shared by every layer.
    ``candidate_radius`` is the group radius the candidates were built for (``inf``, or ``None`` when
    constructed: all pairs of each graph); a traced forward gives it as a tensor (never read on the
    host). ``max_degree`` (the most candidates of any target) is computed when not given (one host sync).
    """

    edge_index: Tensor  #: ``[2, E]``: row 0 the source j, row 1 the target i
    edge_attr: Tensor  #: ``[E, lie_dim + 2 q_dim]``: pair embeddings abq_ij
    dist: Tensor  #: ``[E]``: group distance d(abq_ij)
    batch: Tensor  #: ``[M]``: graph of each lifted point
    num_nodes: int
    max_degree: Optional[int] = None
    #: the group radius every ball of the graph's layers must stay within (``inf``: every pair of each graph;
    #: a tensor in a traced forward)
    candidate_radius: Optional[Union[float, Tensor]] = None
    sizes: Optional[GraphSizes] = None  #: the sizes of the graphs (``None``: read here)
    is_sorted: Optional[bool] = None  #: whether the edges are sorted by target (``None``: checked)
    degree: Optional[Tensor] = field(default=None, repr=False)  #: ``[M]`` edges per target (``None``: counted)
    table: NeighborTable = field(init=False, repr=False)
    #: :attr:`candidate_radius` as the layers take it: a tensor (a changing Python float would recompile
    #: them), or ``inf``
    candidate_radius_tensor: Union[float, Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.sizes is None:
            self.sizes = GraphSizes.read(self.batch)
        self.table = neighbor_table(self.edge_index, self.num_nodes, self.sizes.per_node(self.batch),
                                     self.max_degree, self.is_sorted, self.degree)
        self.max_degree = self.table.width
        if isinstance(self.candidate_radius, Tensor):  # a traced forward: the radius stays on the device
            self.candidate_radius_tensor = self.candidate_radius
            return
        radius = math.inf if self.candidate_radius is None else float(self.candidate_radius)
        self.candidate_radius = radius
        self.candidate_radius_tensor = radius if math.isinf(radius) else torch.tensor(
            radius, dtype=torch.float64, device=self.batch.device)

    @property
    def covers_all_pairs(self) -> bool:
        """Whether the edges are every pair of each graph (:attr:`candidate_radius` is ``inf``)."""
        return not isinstance(self.candidate_radius, Tensor) and math.isinf(self.candidate_radius)

    @property
    def radius(self) -> Optional[float]:
        """Deprecated (before 0.3): :attr:`candidate_radius`, ``None`` for all pairs."""
        warnings.warn("PairGraph.radius is deprecated and will be removed in 0.3; use .candidate_radius "
                      "(inf, not None, for all pairs)", DeprecationWarning, stacklevel=2)
        return None if self.covers_all_pairs else self.candidate_radius

    radius_bound = deprecated_alias("radius_bound", "candidate_radius_tensor")  # before 0.3

    @property
    def slots(self) -> Tensor:
        """``[M, max_degree]`` the candidate edge ids of each target (row), padded with edge 0."""
        return self.table.slots

    @property
    def slot_mask(self) -> Tensor:
        """``[M, max_degree]`` which entries of :attr:`slots` are real edges."""
        return self.table.mask

    @property
    def graph_size(self) -> Tensor:
        """``[M]`` the number of lifted points in the graph of each point."""
        return self.table.graph_size

    def subgraph(self, index: Tensor, sizes: Optional[GraphSizes] = None) -> "PairGraph":
        """The graph induced on the lifted points ``index`` (sorted), relabelled ``0..len(index)-1``
        (``sizes``: of the new graphs, when known).

        Args:
            index (torch.Tensor): the lifted points to keep, sorted ``[M]``.
            sizes (GraphSizes, optional): the sizes of their graphs, when known. (default: :obj:`None`)

        One host sync (the new edge count); in a traced forward none: the kept edges come from the
        operator :func:`subgraph_edges_op`.
        """
        traced = dynamic_sizes_traced()
        edge_index, edge_id = (subgraph_edges_op if traced else induced_edges)(self.edge_index, index, self.num_nodes)
        return PairGraph(edge_index, self.edge_attr[edge_id], self.dist[edge_id], self.batch[index], index.numel(),
                         None if traced else self.max_degree, self.candidate_radius, sizes, is_sorted=True)


def induced_edges(edge_index: Tensor, index: Tensor, num_nodes: int) -> Tuple[Tensor, Tensor]:
    r"""The edges between the points ``index`` of a graph of ``num_nodes`` points, relabelled
    ``0..len(index)-1``: ``(edge_index [2, E'], their ids in edge_index [E'])``, in their order.
    One host sync (``nonzero``: the number of kept edges).

    Args:
        edge_index (torch.Tensor): ``[2, E]`` edges.
        index (torch.Tensor): the points to keep ``[M]``.
        num_nodes (int): the points of the graph.
    """
    relabel = torch.full((num_nodes,), -1, dtype=torch.long, device=edge_index.device)
    relabel[index] = torch.arange(index.numel(), device=index.device)
    src, dst = relabel[edge_index[0]], relabel[edge_index[1]]
    edge_id = ((src >= 0) & (dst >= 0)).nonzero().flatten()
    return torch.stack([src[edge_id], dst[edge_id]]), edge_id


PairGraph.__init__ = renamed_keywords(radius="candidate_radius")(PairGraph.__init__)  # before 0.3


def padded_segments(target: Tensor, degree: Tensor, width: int) -> Tuple[Tensor, Tensor]:
    """Edge ids laid out as ``[num_targets, width]`` rows (``target`` sorted, ``width >= max(degree)``).

    Returns the table (padding entries hold edge 0, or nothing when there are no edges) and its mask.

    Args:
        target (torch.Tensor): the target of each edge ``[E]``, sorted.
        degree (torch.Tensor): the edges of each target ``[M]``.
        width (int): the row width, at least ``max(degree)``.
    """
    num_targets, device = degree.numel(), target.device
    rank = segment_rank(target, num_targets, degree)
    slots = torch.zeros(num_targets, width, dtype=torch.long, device=device)
    slots[target, rank] = torch.arange(target.numel(), device=device)
    mask = torch.arange(width, device=device) < degree.unsqueeze(-1)
    return slots, mask


def all_pairs_within_graphs(batch: Tensor, sizes: Optional[GraphSizes] = None) -> Tensor:
    """All ordered pairs (self pairs included) of nodes in the same graph, sorted by target. ``batch`` sorted.

    With the graphs' ``sizes`` known on the host this reads nothing from the device.

    Args:
        batch (torch.Tensor): the graph of each node ``[N]``, sorted.
        sizes (GraphSizes, optional): the sizes of the graphs, when known. (default: :obj:`None`)
    """
    if sizes is None:
        sizes = GraphSizes.read(batch)
    counts = sizes.counts
    per_node = counts[batch]
    first = torch.cumsum(counts, 0) - counts
    num_nodes = batch.numel()
    dst = torch.arange(num_nodes, device=batch.device).repeat_interleave(per_node, output_size=sizes.num_pairs)
    edge_start = torch.cumsum(per_node, 0) - per_node
    offset = torch.arange(dst.numel(), device=batch.device) - edge_start[dst]
    src = first[batch][dst] + offset
    return torch.stack([src, dst])


def radius_candidates(pos: Tensor, batch: Tensor, radius: float, max_num_neighbors: Optional[int] = None,
                      num_graphs: Optional[int] = None) -> Tensor:
    """Pairs ``[2, E]`` (source, target) within Euclidean ``radius`` in the same graph, in
    :func:`torch_cluster.radius`'s order (by target on the devices it runs on, not promised).

    One host sync (the search's output size) when ``max_num_neighbors`` and ``num_graphs`` are given.

    Args:
        pos (torch.Tensor): the points (or their search embeddings) ``[N, D]``.
        batch (torch.Tensor): the graph of each node ``[N]``, sorted.
        radius (float): the Euclidean search radius.
        max_num_neighbors (int, optional): a cap on the pairs per target (``None``: exact). (default:
            :obj:`None`)
        num_graphs (int, optional): :math:`B`, when known. (default: :obj:`None`)
    """
    import torch_cluster

    if max_num_neighbors is None:
        max_num_neighbors = int(torch.bincount(batch).max())  # host sync: the size bound for torch_cluster
    note_host_sync("torch_cluster.radius")
    row, col = torch_cluster.radius(pos, pos, radius, batch, batch, max_num_neighbors=max_num_neighbors,
                                    batch_size=num_graphs)
    return torch.stack([col, row])


@renamed_keywords(radius="candidate_radius")  # before 0.3
def build_pair_graph(
    group: LieGroup,
    lifted: LiftedPoints,
    candidate_radius: Optional[float] = None,
    max_num_neighbors: Optional[int] = None,
    sizes: Optional[GraphSizes] = None,
) -> PairGraph:
    """Candidate pairs covering every ball of group radius ``candidate_radius`` (``None`` or ``inf``: all
    pairs in each graph).

    The candidates are the pairs within :meth:`LieGroup.search_radius` in the group's
    :meth:`LieGroup.search_embedding` (a superset of the ball, proved per group), found with
    :func:`torch_cluster.radius`; for a group without an embedding, the pairs within
    :meth:`LieGroup.euclidean_radius` of the points; all pairs of each graph where neither bounds.

    Args:
        group (LieGroup): the group (its search embedding, distance and bounds).
        lifted (LiftedPoints): the lifted points.
        candidate_radius (float, optional): the largest ball radius any layer will use; ``radius``
            before 0.3. (default: :obj:`None`)
        max_num_neighbors (int, optional): cap on candidates per point for :func:`torch_cluster.radius`
            (``None``: exact; set it for very large point clouds). (default: :obj:`None`)
        sizes (GraphSizes, optional): the sizes of the lifted graphs, when the caller has read them (``None``:
            read here). (default: :obj:`None`)

    Host syncs: none for all pairs with ``sizes`` given; one for a radius graph (its widest row
    and whether the search returned it sorted), one more for a group without a search embedding.
    In a traced forward (:func:`torch.compile`, :func:`torch.export.export`) none: see
    :func:`traced_pair_graph`.
    """
    if dynamic_sizes_traced():
        return traced_pair_graph(group, lifted, candidate_radius, max_num_neighbors, sizes)
    if candidate_radius is not None and not float(candidate_radius) >= 0:
        raise ValueError(f"candidate_radius must be None or a non-negative number, got {candidate_radius}")
    radius = None if candidate_radius is None or math.isinf(float(candidate_radius)) else float(candidate_radius)
    points, bound = lifted.pos, None
    if radius is not None and lifted.num_nodes > 0:
        phi = _search_points(group, lifted)
        if phi is not None:
            points, bound = phi, group.search_radius(float(radius))
        else:
            max_norm = float(lifted.pos.detach().norm(dim=-1).max())  # host sync: the bound needs it
            bound = group.euclidean_radius(float(radius), max_norm)
    if sizes is None:
        sizes = GraphSizes.read(lifted.batch)
    max_degree = degree = None
    if bound is None:
        edge_index = all_pairs_within_graphs(lifted.batch, sizes)
        max_degree = sizes.max_count
    else:
        # widen by a relative 1e-6 so rounding never drops a pair on the boundary
        cap = sizes.max_count if max_num_neighbors is None else max_num_neighbors
        edge_index = radius_candidates(points.detach(), lifted.batch, _widened(bound), cap,
                                       max(sizes.counts.numel(), 1))
        degree = count_index(edge_index[1], lifted.num_nodes)
        max_degree, is_sorted = _degree_and_order(edge_index[1], degree, None, None)  # host sync
        if not is_sorted:
            edge_index = edge_index[:, torch.argsort(edge_index[1], stable=True)]
    edge_attr, dist = _pair_features(group, lifted, edge_index)
    return PairGraph(edge_index, edge_attr, dist, lifted.batch, lifted.num_nodes, max_degree, radius, sizes,
                     is_sorted=True, degree=degree)


def _search_points(group: LieGroup, lifted: LiftedPoints) -> Optional[Tensor]:
    """The group's search embedding of the lifted points (``None``: it has none), in double, so rounding
    never drops a pair on the boundary."""
    with torch.autocast(lifted.pos.device.type, enabled=False):
        work = torch.float64
        return group.search_embedding(lifted.u.to(work), lifted.q.to(work), lifted.pos.to(work))


def _pair_features(group: LieGroup, lifted: LiftedPoints, edge_index: Tensor) -> Tuple[Tensor, Tensor]:
    """The pair embeddings of ``edge_index`` and their distances, in the input precision (no autocast)."""
    with torch.autocast(lifted.pos.device.type, enabled=False):
        edge_attr = group.pair_embedding(lifted.u, lifted.q, edge_index)
        return edge_attr, group.distance(edge_attr)


def _widened(bound):
    """A search radius widened by a relative 1e-6 (and 1e-9), so rounding never drops a pair on the boundary."""
    return bound * (1 + 1e-6) + 1e-9


def traced_pair_graph(
    group: LieGroup,
    lifted: LiftedPoints,
    candidate_radius: Optional[Union[float, Tensor]] = None,
    max_num_neighbors: Optional[int] = None,
    sizes: Optional[GraphSizes] = None,
) -> PairGraph:
    """:func:`build_pair_graph` in a traced forward: no host read, the candidates from custom operators.

    The pairs within the radius in the group's search embedding (:func:`radius_pairs_op`,
    the radius a tensor) when the group has an embedding with the identity bound
    (:meth:`LieGroup.search_radius` not overridden), else all pairs of each graph
    (:func:`all_pairs_op`, a superset: the layers' balls select the same pairs).

    Args:
        group (LieGroup): the group.
        lifted (LiftedPoints): the lifted points.
        candidate_radius (float or torch.Tensor, optional): the largest ball radius (``None`` or ``inf``: all
            pairs). (default: :obj:`None`)
        max_num_neighbors (int, optional): cap on candidates per point (``None``: exact). (default: :obj:`None`)
        sizes (GraphSizes, optional): the sizes of the lifted graphs (``None``: counted). (default: :obj:`None`)
    """
    batch = lifted.batch
    if sizes is None:
        sizes = GraphSizes.read(batch)
    radius = phi = None
    if isinstance(candidate_radius, Tensor) or (candidate_radius is not None and not math.isinf(candidate_radius)):
        radius = torch.as_tensor(candidate_radius, dtype=torch.float64, device=batch.device).reshape(())
    if radius is not None and type(group).search_radius is LieGroup.search_radius:
        phi = _search_points(group, lifted)
    if phi is None:
        edge_index, radius = all_pairs_op(batch, sizes.counts), None
    else:
        cap = -1 if max_num_neighbors is None else int(max_num_neighbors)
        edge_index = radius_pairs_op(phi.detach(), batch, _widened(radius), cap)
    edge_attr, dist = _pair_features(group, lifted, edge_index)
    return PairGraph(edge_index, edge_attr, dist, batch, lifted.num_nodes, None, radius, sizes, is_sorted=True)


def segment_rank(target: Tensor, num_nodes: int, counts: Optional[Tensor] = None) -> Tensor:
    """Position of each edge within its target's segment (``target`` sorted; ``counts`` its bincount).

    Args:
        target (torch.Tensor): the target of each edge ``[E]``, sorted.
        num_nodes (int): the number of targets.
        counts (torch.Tensor, optional): the edges of each target, when known. (default: :obj:`None`)
    """
    if counts is None:
        counts = count_index(target, num_nodes)
    start = torch.cumsum(counts, 0) - counts
    return torch.arange(target.numel(), device=target.device) - start[target]


def select_slots(
    slots: Tensor,
    slot_mask: Tensor,
    dist: Tensor,
    target_graph_size: Tensor,
    radius: Optional[Tensor],
    mc_samples: int,
    knn: bool = False,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    r"""Each target's Monte Carlo neighbourhood, as padded rows of at most ``mc_samples`` edge ids.

    Args:
        slots (torch.Tensor): ``[T, D]`` candidate edge ids per target (see :class:`PairGraph`).
        slot_mask (torch.Tensor): ``[T, D]`` which of them are real.
        dist (torch.Tensor): ``[E]`` group distance of the candidate edges.
        target_graph_size (torch.Tensor): ``[T]`` number of points in each target's graph.
        radius (torch.Tensor): the ball radius (``None``: no ball, all candidates).
        mc_samples (int): at most this many edges per target.
        knn (bool, optional): take the ``mc_samples`` edges of smallest distance instead of random ones in the
            ball. (default: :obj:`False`)

    A uniformly random subset of size :math:`\min(\text{mc\_samples}, |\text{ball}|)` is the set of
    the smallest i.i.d. uniform keys among the ball's edges (``topk`` along each row). When every
    candidate fits (``mc_samples >= D``) no key is drawn. Returns ``(edge ids [T, S], mask [T, S],
    observed fill)`` with ``S = min(mc_samples, D)``; the fill (mean over targets of points in the
    ball over points in the graph) is ``None`` unless a radius was given. No host sync.

    In a traced forward (:func:`torch.compile`, :func:`torch.export.export`: the width may be a
    symbolic size) every row is sampled (keys drawn, ``topk``), since the graph cannot branch on
    ``mc_samples >= D``; when every candidate fits, the rows hold the same edges in another order.
    """
    width = slots.shape[1]
    symbolic = dynamic_sizes_traced()
    size = torch.sym_min(int(mc_samples), width) if symbolic else min(int(mc_samples), width)
    observed_fill, valid = None, slot_mask
    if knn:
        key = dist[slots].masked_fill(~slot_mask, float("inf"))
    else:
        if radius is not None:
            valid = slot_mask & (dist[slots] < radius)
            within = valid.sum(1).to(dist.dtype)
            observed_fill = (within / target_graph_size.to(dist.dtype)).mean()
        if not symbolic and size == width:
            return slots, valid, observed_fill
        key = torch.rand(slots.shape, dtype=dist.dtype, device=dist.device, **generator_kwargs(generator))
        key = key.masked_fill(~valid, 2.0)
    if not symbolic and size == width:
        return slots, valid, observed_fill
    pick = torch.topk(key, size, dim=1, largest=False, sorted=False).indices
    return slots.gather(1, pick), valid.gather(1, pick), observed_fill


# ----------------------------------------------------------------------------- traced-forward operators
@torch.library.custom_op("lieconv::all_pairs", mutates_args=())
def all_pairs_op(batch: Tensor, counts: Tensor) -> Tensor:
    r"""``[2, E]`` every ordered pair (self pairs included) of points in the same graph, sorted by
    target (:func:`~torch_geometric_lieconv.graph.all_pairs_within_graphs`).

    Args:
        batch (torch.Tensor): the graph of each point ``[N]``, sorted.
        counts (torch.Tensor): the points of each graph ``[B]``.
    """
    sizes = GraphSizes.from_summary(counts, GraphSizes.summary(counts).tolist())
    return all_pairs_within_graphs(batch, sizes)


@all_pairs_op.register_fake
def _all_pairs_fake(batch: Tensor, counts: Tensor) -> Tensor:
    return batch.new_empty(2, torch.library.get_ctx().new_dynamic_size())


@torch.library.custom_op("lieconv::radius_pairs", mutates_args=())
def radius_pairs_op(points: Tensor, batch: Tensor, radius: Tensor, max_num_neighbors: int) -> Tensor:
    r"""``[2, E]`` (source, target) pairs of the same graph closer than ``radius``, sorted by target
    (stable): :func:`~torch_geometric_lieconv.graph.radius_candidates` on a radius given as a tensor.

    Args:
        points (torch.Tensor): the points (or search embeddings) ``[N, D]``.
        batch (torch.Tensor): the graph of each point ``[N]``, sorted.
        radius (torch.Tensor): the Euclidean search radius (one value).
        max_num_neighbors (int): a cap on the pairs per target; ``-1``: exact (the largest graph).
    """
    if points.shape[0] == 0:
        return batch.new_zeros(2, 0)
    cap = max_num_neighbors if max_num_neighbors > 0 else int(count_index(batch, points.shape[0]).max())
    edge_index = radius_candidates(points, batch, float(radius), cap)
    return edge_index[:, torch.argsort(edge_index[1], stable=True)]


@radius_pairs_op.register_fake
def _radius_pairs_fake(points: Tensor, batch: Tensor, radius: Tensor, max_num_neighbors: int) -> Tensor:
    return batch.new_empty(2, torch.library.get_ctx().new_dynamic_size())


@torch.library.custom_op("lieconv::neighbor_table", mutates_args=())
def neighbor_table_op(target: Tensor, num_targets: int) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The edges of targets ``target`` (any order) as padded rows: ``(slots [T, D], mask [T, D],
    position [E])`` of :func:`~torch_geometric_lieconv.graph.neighbor_table`, with the width
    :math:`D = \max(2, \text{largest degree})` (padded to two slots at least: the fake kernel's width is
    then never 0 or 1, sizes that traced graphs and inductor's kernels would otherwise branch on).

    Args:
        target (torch.Tensor): the target of each edge ``[E]``.
        num_targets (int): :math:`T`.
    """
    return table_layout(target, num_targets, min_width=2)


@neighbor_table_op.register_fake
def _neighbor_table_fake(target: Tensor, num_targets: int) -> Tuple[Tensor, Tensor, Tensor]:
    width = torch.library.get_ctx().new_dynamic_size(min=2)
    return (target.new_empty(num_targets, width), target.new_empty(num_targets, width, dtype=torch.bool),
            target.new_empty(target.shape[0]))


@torch.library.custom_op("lieconv::subgraph_edges", mutates_args=())
def subgraph_edges_op(edge_index: Tensor, index: Tensor, num_nodes: int) -> Tuple[Tensor, Tensor]:
    r""":func:`induced_edges` as an operator, with the same arguments."""
    return induced_edges(edge_index, index, num_nodes)


@subgraph_edges_op.register_fake
def _subgraph_edges_fake(edge_index: Tensor, index: Tensor, num_nodes: int) -> Tuple[Tensor, Tensor]:
    size = torch.library.get_ctx().new_dynamic_size()
    return edge_index.new_empty(2, size), edge_index.new_empty(size)


#: the operators of this module (see :mod:`~torch_geometric_lieconv.ops`)
TRACED_OPS = [all_pairs_op, radius_pairs_op, neighbor_table_op, subgraph_edges_op]
