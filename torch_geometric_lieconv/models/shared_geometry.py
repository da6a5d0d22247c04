r"""The geometry of a batch of copies of one point set, computed once (the images of one size on one
pixel grid): the caches and replication helpers behind :class:`~.image.ImageLieResNet`.

* :class:`LiftedGraphCache`: the lift and candidate graph of the last batch, reused by an identical next
  batch;
* :class:`GeometryCache`: the first block's lift, candidate graph and neighbour table of ONE copy, kept
  across batches while the balls stay within a candidate radius rounded up to a power of the headroom
  (:func:`rounded_candidate_radius`), and replicated for the batch (:func:`replicate_lifted`,
  :func:`replicate_graph`);
* :class:`FarthestPointMemo`: farthest point samples remembered by start point (exact: each image still
  draws its own start);
* :class:`SharedGeometry`: one draw of the random geometry per batch (``shared_samples=True``).
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..graph import GraphSizes, NeighborTable, PairGraph
from ..host_syncs import read_to_host
from .._deprecation import renamed_keywords
from ..lift import LiftedPoints
from ..pool import farthest_point_subsample

__all__ = ["LiftedGraphCache", "GeometryCache", "SharedGeometry", "FarthestPointMemo", "rounded_candidate_radius",
           "replicate_lifted", "replicate_graph", "replicated_sizes", "single_graph_sizes", "graph_prefix",
           "dense_farthest_points"]


class LiftedGraphCache:
    """The lift and candidate pair graph of the last batch, reused while the next batch has the same points
    (:class:`ImageLieResNet` now keeps its geometry in a :class:`GeometryCache`).

    Images of one size cropped the same way are the same pixel grid, so with a lift that is a function
    of the positions alone every evaluation batch has the same lifted points and candidate graph. The
    key is compared exactly: the positions, the batch vector and the candidate radius (which changes
    while the ball radii adapt in training). The owner must not consult the cache when the lift is
    random (stabilizer samples): a cached lift would freeze one Monte Carlo draw for every batch.
    """

    def __init__(self) -> None:
        self.hits = self.misses = 0
        self._key: Optional[Tuple[Tensor, Tensor, Optional[float]]] = None
        self._value: Optional[Tuple[LiftedPoints, PairGraph]] = None

    def clear(self) -> None:
        self._key = self._value = None

    @renamed_keywords(radius="candidate_radius")  # before 0.3
    def get(self, pos: Tensor, batch: Tensor, candidate_radius: Optional[float]
            ) -> Optional[Tuple[LiftedPoints, PairGraph]]:
        """The cached ``(lifted, graph)`` if ``pos``, ``batch`` and ``candidate_radius`` equal the cached key,
        else ``None``."""
        if self._key is not None:
            cached_pos, cached_batch, cached_radius = self._key
            if (cached_radius == candidate_radius and cached_pos.dtype == pos.dtype and cached_pos.device == pos.device
                    and torch.equal(cached_pos, pos) and torch.equal(cached_batch, batch)):  # host sync
                self.hits += 1
                return self._value
        self.misses += 1
        return None

    @renamed_keywords(radius="candidate_radius")  # before 0.3
    def put(self, pos: Tensor, batch: Tensor, candidate_radius: Optional[float],
            value: Tuple[LiftedPoints, PairGraph]) -> None:
        self._key = (pos.detach().clone(), batch.clone(), candidate_radius)
        self._value = value


def rounded_candidate_radius(radius: Optional[float], headroom: float) -> Optional[float]:
    r"""``radius`` rounded up to the next power of ``headroom`` (``None`` and ``headroom <= 1``: as it is).

    The candidate graph of a fixed geometry is built for this radius, :math:`r \le R < h\,r`, so that it
    serves the ball while the ball radius :math:`r` adapts within one power of :math:`h`, and is rebuilt
    (tighter or wider) when :math:`r` crosses a power. A function of :math:`r` alone: the same with and
    without the cache, and after a resume.

    Args:
        radius (float, optional): the largest ball radius the graph serves (``None``: every pair).
        headroom (float): the factor :math:`h`.
    """
    if radius is None or headroom <= 1 or not radius > 0 or math.isinf(radius):
        return radius
    power = math.ceil(math.log(radius) / math.log(headroom) - 1e-9)
    rounded = headroom ** power
    return rounded if rounded >= radius else headroom ** (power + 1)


def single_graph_sizes(count: int, device: torch.device) -> GraphSizes:
    """The :class:`GraphSizes` of one graph of ``count`` points (no host sync)."""
    return GraphSizes(torch.full((1,), count, dtype=torch.long, device=device), count, count * count, count)


def replicated_sizes(count: int, num_graphs: int, device: torch.device) -> GraphSizes:
    """The :class:`GraphSizes` of ``num_graphs`` graphs of ``count`` points each (no host sync)."""
    return GraphSizes(torch.full((num_graphs,), count, dtype=torch.long, device=device), count,
                      num_graphs * count * count, num_graphs * count)


def replicate_lifted(single: LiftedPoints, num_graphs: int, points_per_graph: int) -> LiftedPoints:
    """``num_graphs`` copies of the lifted points of one graph, as a batch (graph-major); the input nodes of
    copy ``b`` are offset by ``b * points_per_graph``.

    Args:
        single (LiftedPoints): one graph's lifted points.
        num_graphs (int): :math:`B`.
        points_per_graph (int): the input points of each graph.
    """
    m, device = single.num_nodes, single.u.device
    offsets = torch.arange(num_graphs, device=device).unsqueeze(1)
    return LiftedPoints(single.u.repeat(num_graphs, 1), single.q.repeat(num_graphs, 1),
                        single.pos.repeat(num_graphs, 1),
                        torch.arange(num_graphs, device=device).repeat_interleave(m, output_size=num_graphs * m),
                        (single.node_index.unsqueeze(0) + offsets * points_per_graph).flatten(), single.lift_samples)


def replicate_graph(single: PairGraph, num_graphs: int) -> PairGraph:
    """``num_graphs`` copies of the candidate graph of one graph, as the graph of the batch: the same edges,
    pair embeddings, distances and neighbour table a build on the batch gives (edges graph-major, each copy's
    nodes and edge ids offset), laid out from the single graph's without a search or a sort.

    Args:
        single (PairGraph): one graph's candidate pairs.
        num_graphs (int): :math:`B`.
    """
    m, num_edges, device = single.num_nodes, single.edge_index.shape[1], single.batch.device
    table = single.table
    width = table.slots.shape[1]
    copies = torch.arange(num_graphs, device=device)
    slots = torch.where(table.mask, table.slots.unsqueeze(0) + (copies * num_edges).view(-1, 1, 1), 0)
    position = None
    if table.position is not None:
        position = (table.position.unsqueeze(0) + (copies * (m * width)).view(-1, 1)).flatten()
    graph = copy.copy(single)  # a dataclass copy: no __post_init__ (the table is laid out here)
    graph.edge_index = (single.edge_index.unsqueeze(1) + (copies * m).view(1, -1, 1)).reshape(2, -1)
    graph.edge_attr = single.edge_attr.repeat(num_graphs, 1)
    graph.dist = single.dist.repeat(num_graphs)
    graph.batch = copies.repeat_interleave(m, output_size=num_graphs * m)
    graph.num_nodes = num_graphs * m
    graph.sizes = replicated_sizes(m, num_graphs, device)
    graph.degree = None if single.degree is None else single.degree.repeat(num_graphs)
    graph.table = NeighborTable(slots.reshape(num_graphs * m, width), table.mask.repeat(num_graphs, 1),
                                table.graph_size.repeat(num_graphs), table.complete, position)
    return graph


def graph_prefix(graph: PairGraph, num_graphs: int, graph_nodes: int, graph_edges: int) -> PairGraph:
    """The first ``num_graphs`` graphs of a batch of equal graphs (``graph_nodes`` nodes and ``graph_edges``
    edges each): views of its leading edges and table rows, for the sampling of those graphs alone."""
    nodes, edges = num_graphs * graph_nodes, num_graphs * graph_edges
    table = graph.table
    prefix = copy.copy(graph)
    prefix.edge_index, prefix.edge_attr, prefix.dist = graph.edge_index[:, :edges], graph.edge_attr[:edges], graph.dist[:edges]
    prefix.batch, prefix.num_nodes = graph.batch[:nodes], nodes
    prefix.sizes = replicated_sizes(graph_nodes, num_graphs, graph.batch.device)
    prefix.degree = None if graph.degree is None else graph.degree[:nodes]
    prefix.table = NeighborTable(table.slots[:nodes], table.mask[:nodes], table.graph_size[:nodes], False, None)
    return prefix


class FarthestPointMemo:
    """The farthest point samples of one lasting geometry (a point set and its candidate graph), by start
    and kept fraction: filled as starts are drawn, shared by every batch size of that geometry."""

    def __init__(self) -> None:
        self._kept: Dict[float, Tuple[Tensor, Tensor]] = {}  # ratio -> (known [m], kept [m, k])

    def known(self, ratio: float) -> int:
        """How many starts of the fraction ``ratio`` are known (a host sync)."""
        return int(self._kept[ratio][0].sum()) if ratio in self._kept else 0

    def kept(self, geometry: "SharedGeometry", ratio: float, starts: Tensor) -> Tensor:
        """``[len(starts), k]`` the points kept from each start (see :meth:`SharedGeometry.kept_by_start`).
        Starts met before are looked up; when some are new they are sampled together, with as many other
        unknown starts as the batch has graphs (the rounds cost the same), in one host sync."""
        m, k = geometry.graph.num_nodes, geometry.kept_count(ratio)
        if ratio not in self._kept:
            self._kept[ratio] = (torch.zeros(m, dtype=torch.bool, device=starts.device),
                                 torch.zeros(m, k, dtype=torch.long, device=starts.device))
        known, table = self._kept[ratio]
        drawn = torch.zeros_like(known)
        drawn[starts] = True
        # the drawn starts met for the first time, then the other unknown ones
        priority = torch.where(drawn & ~known, 0, torch.where(known, 2, 1))
        order = torch.argsort(priority, stable=True)
        new, unknown = read_to_host(torch.stack([(priority == 0).sum(), (priority < 2).sum()]))  # host sync
        if new:
            fill = order[: min(unknown, geometry.num_graphs)]
            table[fill] = geometry.sample(ratio, fill)
            known[fill] = True
        return table[starts]


class SharedGeometry:
    """A batch of ``num_graphs`` copies of one point set: that graph's lifted points and candidate pairs
    (:attr:`lifted`, :attr:`graph`), replicated once for the batch (:attr:`batch_lifted`, :attr:`batch_graph`),
    and, for a geometry that lasts (a deterministic lift), a :class:`FarthestPointMemo` of its farthest
    point samples by start (:meth:`kept_by_start`)."""

    def __init__(self, lifted: LiftedPoints, graph: PairGraph, num_graphs: int, points_per_graph: int,
                 memo: Optional[FarthestPointMemo] = None) -> None:
        self.lifted, self.graph, self.num_graphs = lifted, graph, num_graphs
        self.points_per_graph = points_per_graph  #: the input points of each graph (before any subsampling)
        self._batch_lifted: Optional[LiftedPoints] = None
        self.batch_graph = replicate_graph(graph, num_graphs)
        self.batch_graph.shared = self  # the models find the shared geometry from the batch's graph
        self.memo = memo

    @property
    def batch_lifted(self) -> LiftedPoints:
        """The lifted points of the batch (replicated when first asked for)."""
        if self._batch_lifted is None:
            self._batch_lifted = replicate_lifted(self.lifted, self.num_graphs, self.points_per_graph)
        return self._batch_lifted

    def kept_count(self, ratio: float) -> int:
        """The points farthest point sampling keeps of the graph at fraction ``ratio``."""
        return max(1, math.ceil(self.graph.num_nodes * ratio)) if self.graph.num_nodes else 0

    def kept_by_start(self, ratio: float, starts: Tensor) -> Tensor:
        """``[len(starts), k]`` the points (sorted, indices into one graph) farthest point sampling keeps
        from each start (``len(starts) <= num_graphs``): exactly :func:`farthest_point_subsample` of the
        graph with that start, through the :attr:`memo` when there is one."""
        if self.memo is not None:
            return self.memo.kept(self, ratio, starts)
        return self.sample(ratio, starts)

    def sample(self, ratio: float, starts: Tensor) -> Tensor:
        """:meth:`kept_by_start` sampled now, on the first ``len(starts)`` copies of the batch's graph."""
        count, m, k = starts.numel(), self.graph.num_nodes, self.kept_count(ratio)
        if count > self.num_graphs:
            raise ValueError(f"{count} starts for a batch of {self.num_graphs} graphs")
        graphs = graph_prefix(self.batch_graph, count, m, self.graph.edge_index.shape[1])
        kept = farthest_point_subsample(graphs, ratio, kept=replicated_sizes(k, count, starts.device), start=starts)
        return kept.view(count, k) - (torch.arange(count, device=starts.device) * m).unsqueeze(1)


class GeometryCache:
    """The :class:`SharedGeometry` of the last few batches of identical point sets, by key.

    A batch whose graphs are ``B`` copies of one point set (images of one size, cropped alike: every
    RotMNIST batch once the geometry is fixed) is lifted and connected once, as one graph, and the
    result replicated for the batch; with a deterministic lift (no stabilizer samples) it serves every
    later batch of the same key: that point set (compared exactly), ``B`` and the candidate radius. The
    candidate radius is rounded up with headroom (:func:`rounded_candidate_radius`), so it changes only
    when a ball radius crosses a power of the headroom. Holds ``max_entries`` geometries (e.g. the
    last, smaller batch of an epoch and the full ones), least recently used out first.

    Args:
        max_entries (int, optional): geometries kept. (default: :obj:`2`)
    """

    def __init__(self, max_entries: int = 2) -> None:
        self.max_entries = int(max_entries)
        self.hits = self.misses = 0
        self._entries: "OrderedDict[tuple, Tuple[Tensor, SharedGeometry]]" = OrderedDict()
        self._memos: "OrderedDict[tuple, Tuple[Tensor, FarthestPointMemo]]" = OrderedDict()

    def clear(self) -> None:
        self._entries.clear()
        self._memos.clear()

    def memo(self, key: tuple, pattern: Tensor) -> FarthestPointMemo:
        """The farthest point samples of the geometry of ``key`` whatever its batch size (``key`` without
        the number of graphs): new, or that of an entry with the same point set (compared exactly)."""
        shape, dtype, device, _, radius, lift_samples = key
        memo_key = (shape, dtype, device, radius, lift_samples)
        found = self._memos.get(memo_key)
        if found is None or not torch.equal(found[0], pattern):  # host sync, on a cache miss only
            found = (pattern.detach().clone(), FarthestPointMemo())
            self._memos[memo_key] = found
        self._memos.move_to_end(memo_key)
        while len(self._memos) > self.max_entries:
            self._memos.popitem(last=False)
        return found[1]

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(pattern: Tensor, num_graphs: int, candidate_radius: Optional[float], lift_samples: int) -> tuple:
        return (tuple(pattern.shape), pattern.dtype, pattern.device, num_graphs, candidate_radius, lift_samples)

    def candidates(self, key: tuple) -> List[Tuple[tuple, Tensor]]:
        """The cached point sets under ``key`` (to be compared with the batch's in one host sync)."""
        entry = self._entries.get(key)
        return [] if entry is None else [(key, entry[0])]

    def hit(self, key: tuple) -> SharedGeometry:
        self.hits += 1
        self._entries.move_to_end(key)
        return self._entries[key][1]

    def put(self, key: tuple, pattern: Tensor, geometry: SharedGeometry) -> None:
        self.misses += 1
        self._entries[key] = (pattern.detach().clone(), geometry)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def dense_farthest_points(dist: Tensor, count: int) -> Tensor:
    """The first ``count`` points (at most all) of farthest point sampling on a dense distance matrix
    ``[m, m]``, from point 0: nested samples (the first ``k`` are the sample of size ``k``)."""
    m = dist.shape[0]
    min_dist = torch.full((m,), math.inf, dtype=dist.dtype, device=dist.device)
    chosen = [torch.zeros((), dtype=torch.long, device=dist.device)]
    for _ in range(min(count, m) - 1):
        min_dist = torch.minimum(min_dist, dist[chosen[-1]])
        min_dist[chosen[-1]] = -1
        chosen.append(min_dist.argmax())
    return torch.stack(chosen)
