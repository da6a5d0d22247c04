r"""The image classifier of the paper's RotMNIST experiment (§5.1, Table 1): a :class:`LieResNet`
on pixel point sets, with equivariant subsampling spread over the layers."""
from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor

from ..transforms import ImageToPointSet
from ..graph import PairGraph
from ..groups import LieGroup, group_from_name
from ..host_syncs import read_to_host
from ..lift import LiftedPoints, lift_points
from ..pool import farthest_point_starts
from .lieresnet import ForwardPlan, LieResNet
from .shared_geometry import (GeometryCache, LiftedGraphCache, SharedGeometry, dense_farthest_points,
                              rounded_candidate_radius, single_graph_sizes)

__all__ = ["ImageLieResNet", "LayerSchedule", "layer_schedule"]


class LayerSchedule(NamedTuple):
    """Per-block settings of the image network (:func:`layer_schedule`)."""

    ds_frac: float  #: fraction of its points each block keeps
    fills: List[float]  #: fill of each block's ball
    widths: List[int]  #: channels before the first block and after each block (``num_layers + 1``)


def layer_schedule(total_ds: float, fill: float, num_layers: int, hidden_channels: int = 128,
                   grow_channels: bool = True) -> LayerSchedule:
    r"""Per-block subsampling fraction, fills and widths of the reference image network.

    Every block keeps the same fraction :math:`\rho = \text{total\_ds}^{1/L}` of its points (farthest
    point sampling), so that :math:`\rho^L =` ``total_ds``; the fill of block :math:`i` (0-based) grows as
    :math:`\text{fill}_i = \text{fill}/\rho^{\,i}`, so that the neighbourhood ball keeps covering about the
    same region of the image as the points thin out. With ``grow_channels`` (the paper's image network)
    the channels grow as the points thin out, :math:`k_i = k/\rho^{\,i/2}` for :math:`i = 0, \dots, L`
    (rounded to a multiple of 4, the bottleneck's quarter width), so that the work per block stays about
    constant; otherwise every width is :math:`k`.

    Args:
        total_ds (float): fraction of the points left after the last block, in (0, 1].
        fill (float): fill of the first block.
        num_layers (int): number of blocks :math:`L`.
        hidden_channels (int, optional): :math:`k`, the width before the first block. (default: ``128``)
        grow_channels (bool, optional): widen by :math:`\rho^{-1/2}` per block. (default: ``True``)
    """
    if not 0 < total_ds <= 1:
        raise ValueError(f"total_ds must lie in (0, 1], got {total_ds}")
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if hidden_channels < 4 or hidden_channels % 4:
        raise ValueError(f"hidden_channels must be a positive multiple of 4, got {hidden_channels}")
    ds_frac = total_ds ** (1 / num_layers)
    growth = [ds_frac ** (-i / 2) if grow_channels else 1.0 for i in range(num_layers + 1)]
    widths = [4 * max(1, round(hidden_channels * g / 4)) for g in growth]
    return LayerSchedule(ds_frac, [fill / ds_frac**i for i in range(num_layers)], widths)


class ImageLieResNet(LieResNet):
    r"""LieResNet for images given as point sets (:class:`~torch_geometric_lieconv.datasets.RotMNIST`,
    :class:`~torch_geometric_lieconv.transforms.ImageToPointSet`), with the paper's RotMNIST settings.

    The input intensities are standardised (:meth:`input_features`, on every entry point),
    :math:`x \mapsto (x - \mu)/\sigma` with the reference's dataset statistics
    :math:`\mu = 0.130, \sigma = 0.297`; then a :class:`LieResNet` with ``num_layers``
    bottleneck blocks, each keeping a fraction :math:`\rho = \text{total\_ds}^{1/L}` of the points by
    farthest point sampling under the group distance, fill :math:`\text{fill}/\rho^{\,i}` in block
    :math:`i`, mean pooling and ``num_classes`` logits. As in the paper's image network, the channels
    grow as the points thin out, :math:`k_i = k/\rho^{\,i/2}` after block :math:`i` (rounded to a multiple
    of 4; ``grow_channels=False``: constant ``hidden_channels``); see :func:`layer_schedule`.

    Defaults are the paper's (reference command line): k = 128 channels, 6 layers, total_ds = 0.1,
    fill = 0.1, 25 Monte Carlo neighbours, and 2 lift samples for groups with a stabilizer (SE(2)),
    1 otherwise; the group's default :math:`\alpha` (SO(2) 0.2, RxSO(2) 0.3, SE(2) 0.05).

    **Geometry once.** With ``cache_graph=True`` (default) and a deterministic lift (no stabilizer
    samples: T(2), SO(2), RxSO(2), ...), a batch whose graphs are copies of one point set (images of one
    size and crop, with no augmentation that moves the points: see ``lieconv train rotmnist``) is lifted
    and connected as one graph, replicated for the batch (:class:`SharedGeometry`) and kept for later
    batches (:attr:`graph_cache`, a :class:`GeometryCache`), together with the first block's farthest
    point samples by start, looked up for the start each image draws. The first block's candidate graph
    of such a batch is built for the ball radius rounded up to a power of ``candidate_headroom``
    (:func:`rounded_candidate_radius`), so it lasts while the ball adapts (also with
    ``cache_graph=False``, so that both compute one function; batches of differing point sets, e.g.
    rotated ones, keep the exact radius). The outputs are exactly those without the cache (the same
    random draws): each image still draws its own farthest point starts and Monte Carlo neighbourhoods.
    Never for given ``frames``, nor for positions that need gradients; the later blocks' points differ
    from image to image and are connected per batch. With ``shared_samples=True`` the random geometry of
    such a batch is drawn once and shared by its images: one farthest point start per block (and, for
    SE(2), one set of stabilizer samples), so every block's points and candidate graph are built for one
    image and replicated. Each image's subsample (and lift) has the distribution it has without, but the
    images of a batch are no longer sampled independently: an explicit option, off by default.

    With ``radius_from_data=True`` (default) the first training forward of a fresh model (ball radii
    never used) sets each block's ball radius to the ``fill`` quantile of the group distances between the
    points of the batch's first graph where that is narrower than LieConv's initial 2.0 (for SO(2) and
    RxSO(2) a ball of 2.0 holds nearly every pair, which made the first steps several times slower);
    the fill adaptation then refines it. Distances are invariant, so the radius is too.

    Args:
        group (LieGroup or str, optional): the group or its name (``"Trivial2"``, ``"Ty"``, ``"T2"``, ``"SO2"``,
            ``"RxSO2"``, ``"SE2"``...). (default: :obj:`'SE2'`)
        in_channels (int, optional): channels per pixel. (default: :obj:`1`)
        num_classes (int, optional): logits per image. (default: :obj:`10`)
        hidden_channels (int, optional): channels :math:`k` before the first block. (default: :obj:`128`)
        grow_channels (bool, optional): widen the channels by :math:`\rho^{-1/2}` per block (the paper's image
            network). (default: :obj:`True`)
        num_layers (int, optional): bottleneck blocks. (default: :obj:`6`)
        mc_samples (int, optional): neighbourhood size of each LieConv. (default: :obj:`25`)
        knn (bool, optional): nearest neighbours instead of random samples in the ball.
            (default: :obj:`False`)
        batch_norm (bool, optional): BatchNorm in the blocks and kernels. (default: :obj:`True`)
        total_ds (float, optional): fraction of the points left after the last block. (default: :obj:`0.1`)
        fill (float, optional): neighbourhood fill of the first block. (default: :obj:`0.1`)
        lift_samples (int, optional): stabilizer samples per point (``None``: 2 for groups with a stabilizer,
            else 1). (default: :obj:`None`)
        alpha (float, optional): the group's distance weight (only with a group name; ``None``: the group's
            default). (default: :obj:`None`)
        input_mean (float, optional): :math:`\mu` of the standardisation. (default: :obj:`0.13`)
        input_std (float, optional): :math:`\sigma` of the standardisation. (default: :obj:`0.297`)
        cache_graph (bool, optional): lift and connect a batch of copies of one point set once, and keep that
            geometry for later batches (deterministic lifts). (default: :obj:`True`)
        candidate_headroom (float, optional): with a deterministic lift, the first block's candidate graph
            of a batch of copies of one point set is built for its ball radius rounded up to a power of this
            factor (``1``: the ball radius itself), with or without the cache. (default: :obj:`1.25`)
        shared_samples (bool, optional): draw the random geometry (farthest point starts, SE(2) stabilizer
            samples) once per batch of copies of one point set, shared by its images. (default: :obj:`False`)
        radius_from_data (bool, optional): start the ball radii at the fill quantiles of the first training
            batch's group distances. (default: :obj:`True`)
        **kwargs (optional): passed on to :class:`LieResNet`.
    """

    def __init__(
        self,
        group: Union[LieGroup, str] = "SE2",
        *,
        in_channels: int = 1,
        num_classes: int = 10,
        hidden_channels: int = 128,
        grow_channels: bool = True,
        num_layers: int = 6,
        total_ds: float = 0.1,
        fill: float = 0.1,
        mc_samples: int = 25,
        lift_samples: Optional[int] = None,
        alpha: Optional[float] = None,
        knn: bool = False,
        batch_norm: bool = True,
        input_mean: float = 0.130,
        input_std: float = 0.297,
        cache_graph: bool = True,
        candidate_headroom: float = 1.25,
        shared_samples: bool = False,
        radius_from_data: bool = True,
        **kwargs,
    ) -> None:
        if isinstance(group, str):
            group = group_from_name(group, alpha)
        elif alpha is not None:
            raise ValueError("alpha applies to a group given by name; set it on the LieGroup instead")
        if group.space_dim != 2:
            raise ValueError(f"ImageLieResNet needs a group acting on the plane, got {group} on R^{group.space_dim}")
        if input_std <= 0:
            raise ValueError(f"input_std must be positive, got {input_std}")
        if lift_samples is None:
            lift_samples = 2 if group.frame_dim else 1
        if not candidate_headroom >= 1:
            raise ValueError(f"candidate_headroom must be >= 1, got {candidate_headroom}")
        ds_frac, fills, widths = layer_schedule(total_ds, fill, num_layers, hidden_channels, grow_channels)
        super().__init__(in_channels, num_classes, group, hidden_channels=widths, num_layers=num_layers,
                         mc_samples=mc_samples, fill=fills, lift_samples=lift_samples, knn=knn,
                         batch_norm=batch_norm, mean=True, ds_frac=ds_frac, pool=True, **kwargs)
        self.total_ds, self.fill, self.ds_frac, self.fills = total_ds, fill, ds_frac, fills
        self.grow_channels = bool(grow_channels)
        self.input_mean, self.input_std = float(input_mean), float(input_std)
        self._to_point_set: Optional[ImageToPointSet] = None
        self.cache_graph = cache_graph
        self.candidate_headroom = float(candidate_headroom)
        self.shared_samples = bool(shared_samples)
        self.radius_from_data = bool(radius_from_data)
        self.graph_cache = GeometryCache()
        self._radii_checked = False  # whether the first training forward has looked at the ball radii
        self._chosen: Optional[Tuple[PairGraph, Tensor]] = None  # shared_samples: one graph's kept points
        self._headroom = False  # whether this forward's first graph is built with headroom

    @property
    def deterministic_lift(self) -> bool:
        """Whether the lift is a function of the points alone (no stabilizer samples)."""
        return not self.group.frame_dim

    def graph_radius(self, first_block: int = 0, radii=None) -> Optional[float]:
        """:meth:`LieResNet.graph_radius`; the first block's graph of a batch of copies of one point set,
        lifted deterministically (a geometry that can be kept), is built for the :meth:`candidate_radius`
        rounded up to a power of :attr:`candidate_headroom` (:func:`rounded_candidate_radius`), with or
        without the cache, so that both compute the same function.

        Args:
            first_block (int, optional): the first block the graph serves. (default: :obj:`0`)
            radii (Sequence[float], optional): the blocks' ball radii, when read. (default: :obj:`None`)
        """
        radius = super().graph_radius(first_block, radii)
        if first_block == 0 and self._headroom:
            return rounded_candidate_radius(radius, self.candidate_headroom)
        return radius

    @torch.compiler.disable
    def _lift_and_plan(self, x: Tensor, pos: Tensor, batch: Optional[Tensor], frames: Optional[Tensor],
                       num_graphs: Optional[int]) -> Tuple[LiftedPoints, PairGraph, ForwardPlan]:
        if self.training and self.radius_from_data and not self._radii_checked:
            self._radii_checked = True
            self._radii_from_data(pos, batch)
        return super()._lift_and_plan(x, pos, batch, frames, num_graphs)

    @torch.no_grad()
    def _radii_from_data(self, pos: Tensor, batch: Optional[Tensor], max_points: int = 2048) -> None:
        """Set the ball radii of a fresh model (never used: ``observed_fill`` NaN, radius at its initial
        value) from the batch's first graph (at most ``max_points`` of its lifted points, evenly spaced;
        lifted with a private seed, so the random stream is not touched).

        Block :math:`i` sees the points left by the blocks before it and fills its ball around the points
        it keeps; the observed fill is the mean over those targets of the fraction of the block's points
        inside the ball. With the nested farthest point samples of the graph under the group distance
        (from its first point) standing in for them, the radius is the ``fill`` quantile of the distances
        from the targets to the block's points: the fill on that graph. Distances are invariant, and so is
        the radius."""
        balls = [i for i, block in enumerate(self.blocks) if block.conv.uses_ball]
        if not balls or pos.shape[0] == 0:
            return
        state = torch.stack([torch.stack([self.blocks[i].conv.observed_fill, self.blocks[i].conv.radius]).double()
                             for i in balls])
        first = (torch.full((), pos.shape[0], device=pos.device) if batch is None
                 else (batch == batch[0]).sum())  # the first graph's points (batch is sorted)
        values = read_to_host(torch.cat([state.flatten(), first.reshape(1).to(state)]))  # one host sync
        fresh = [i for j, i in enumerate(balls) if math.isnan(values[2 * j])
                 and values[2 * j + 1] == float(self.blocks[i].conv.initial_radius)]
        if not fresh:
            return
        n = int(values[-1])
        generator = torch.Generator(device=pos.device).manual_seed(0)
        with torch.autocast(pos.device.type, enabled=False):
            lifted = lift_points(self.group, pos[:n].detach(), None, self.lift_samples, generator=generator)
            m = lifted.num_nodes
            if m > max_points:
                lifted = lifted.index_select(torch.linspace(0, m - 1, max_points, device=pos.device).round().long())
                m = max_points
            every = torch.arange(m, device=pos.device)
            pairs = torch.stack([every.repeat(m), every.repeat_interleave(m)])  # row t: distances from target t
            dist = self.group.distance(self.group.pair_embedding(lifted.u, lifted.q, pairs)).view(m, m)
        sizes = [m]
        for block in self.blocks:
            sizes.append(max(1, math.ceil(sizes[-1] * block.ds_frac)))
        order = dense_farthest_points(dist, max(sizes[1:]) if len(sizes) > 1 else 1)
        for i in fresh:
            points, targets = order[: sizes[i]], order[: sizes[i + 1]]
            within = dist[targets][:, points].flatten()
            rank = min(max(1, math.ceil(self.blocks[i].conv.fill * within.numel())), within.numel())
            inside = within.kthvalue(rank).values
            above = within[within > inside]  # the ball is open (d < r): reach just past the rank-th distance
            nxt = above.min() if above.numel() else inside * 2 + 1e-6
            # never wider than the reference's start: the data radius shortens the slow first steps where
            # the initial ball holds nearly all pairs (SO(2), RxSO(2)), and leaves the groups whose
            # initial ball is already narrower than their fill (T(2), SE(2)) to grow as the reference's do
            radius = torch.clamp((inside + nxt) / 2, max=float(self.blocks[i].conv.initial_radius))
            self.blocks[i].conv.radius.copy_(radius.to(self.blocks[i].conv.radius.dtype))

    def lift_and_connect(self, pos: Tensor, batch: Optional[Tensor] = None, frames: Optional[Tensor] = None,
                         plan: Optional[ForwardPlan] = None) -> Tuple[LiftedPoints, PairGraph]:
        """:meth:`LieResNet.lift_and_connect`, once for a batch of copies of one point set where that is
        safe (see the class docstring: :class:`SharedGeometry`, :attr:`graph_cache`).

        Args:
            pos (torch.Tensor): points ``[N, d]``.
            batch (torch.Tensor, optional): the graph of each point ``[N]``, sorted. (default: :obj:`None`)
            frames (torch.Tensor, optional): stabilizer frames ``[N, K, m, m]``. (default: :obj:`None`)
            plan (ForwardPlan, optional): the checked points and sizes of :meth:`read_plan`. (default:
                :obj:`None`)
        """
        self._chosen = None
        copies = self._copies(pos, frames, plan)
        if copies is None:
            return super().lift_and_connect(pos, batch, frames, plan)
        self._headroom = self.deterministic_lift
        try:
            geometry = self._shared_geometry(pos, plan, *copies)
            if geometry is None:  # the same function image by image (cache_graph=False)
                return super().lift_and_connect(pos, batch, frames, plan)
            return geometry.batch_lifted, geometry.batch_graph
        finally:
            self._headroom = False

    def _copies(self, pos: Tensor, frames: Optional[Tensor], plan: Optional[ForwardPlan]
                ) -> Optional[Tuple[int, Optional[tuple], bool]]:
        """Whether the batch is ``B`` copies of one point set of ``n`` points, with a lift that may share
        its geometry: ``(n, key of a cached geometry of the same points or None, ...)``, else ``None``.
        One host sync (the points compared with the first graph's and with a cached geometry's)."""
        if plan is None or frames is not None or pos.requires_grad or not (self.deterministic_lift or self.shared_samples):
            return None
        sizes, num_graphs, k = plan.sizes[0], plan.num_graphs, self.lift_samples
        total = pos.shape[0]
        if (num_graphs < 1 or total == 0 or total % num_graphs or sizes.total != total * k
                or sizes.max_count * num_graphs != sizes.total or sizes.num_pairs != num_graphs * sizes.max_count ** 2):
            return None  # graphs of different sizes (the sizes were read with the plan: no host sync)
        n = total // num_graphs
        pattern = pos[:n]
        key = None
        if self.deterministic_lift and self.cache_graph:
            self._headroom = True
            key = GeometryCache.key(pattern, num_graphs, self.graph_radius(0, plan.radii), k)
            self._headroom = False
        cached = self.graph_cache.candidates(key) if key is not None else []
        checks = [(pos.view(num_graphs, n, -1) == pattern).all()] if num_graphs > 1 else []
        checks += [(cached_pattern == pattern).all() for _, cached_pattern in cached]  # the key holds the shape
        flags = read_to_host(torch.stack(checks)) if checks else []  # one host sync
        if num_graphs > 1 and not flags[0]:
            return None  # the graphs are not copies of one point set
        return n, key, bool(cached and flags[-1])

    def _shared_geometry(self, pos: Tensor, plan: ForwardPlan, n: int, key: Optional[tuple], hit: bool
                         ) -> Optional[SharedGeometry]:
        """The geometry of a batch of copies of one point set of ``n`` points (cached under ``key`` when
        the lift is deterministic: ``hit`` when it is there), or ``None`` where it is not shared."""
        if hit:
            return self.graph_cache.hit(key)
        if key is None and not self.shared_samples:
            return None
        pattern = pos[:n]
        with torch.autocast(pos.device.type, enabled=False):  # group math in the input precision
            lifted = lift_points(self.group, pattern, None, self.lift_samples, checked=True)
        memo = self.graph_cache.memo(key, pattern) if key is not None else None
        geometry = SharedGeometry(lifted, self.connect(lifted, 0, self._single_plan(plan)), plan.num_graphs, n, memo)
        if key is not None:
            self.graph_cache.put(key, pattern, geometry)
        return geometry

    @staticmethod
    def _single_plan(plan: ForwardPlan) -> ForwardPlan:
        """``plan`` for one of its (equal) graphs."""
        device = plan.sizes[0].counts.device
        return plan._replace(sizes=[single_graph_sizes(s.max_count, device) for s in plan.sizes], num_graphs=1)

    @torch.compiler.disable
    def _kept_points(self, block: int, graph: PairGraph, plan: ForwardPlan) -> Optional[Tensor]:
        """For a shared geometry, block ``block``'s farthest point samples: looked up by the start each
        graph draws (exactly :func:`farthest_point_subsample`), or, with ``shared_samples``, one start for
        every graph."""
        self._chosen = None
        geometry: Optional[SharedGeometry] = getattr(graph, "shared", None)
        if geometry is None or not (geometry.memo is not None or self.shared_samples):
            return None
        ratio, num_graphs = self.blocks[block].ds_frac, geometry.num_graphs
        m = geometry.graph.num_nodes
        if self.shared_samples:
            starts = farthest_point_starts(geometry.graph.sizes.counts)  # one start, for every graph
            single = geometry.kept_by_start(ratio, starts)[0]
            self._chosen = (graph, single)
            kept = single.unsqueeze(0).expand(num_graphs, -1)
        else:
            kept = geometry.kept_by_start(ratio, farthest_point_starts(geometry.batch_graph.sizes.counts))
        return (kept + (torch.arange(num_graphs, device=kept.device) * m).unsqueeze(1)).flatten()

    def _next_graph(self, block: int, lifted: LiftedPoints, graph: PairGraph, kept: Optional[Tensor],
                    plan: ForwardPlan) -> PairGraph:
        if self._chosen is None or self._chosen[0] is not graph:
            return super()._next_graph(block, lifted, graph, kept, plan)
        return self._next_shared_graph(block, graph, plan)

    @torch.compiler.disable
    def _next_shared_graph(self, block: int, graph: PairGraph, plan: ForwardPlan) -> PairGraph:
        """``shared_samples``: block ``block``'s graph, built for one graph's kept points and replicated."""
        _, single_kept = self._chosen
        self._chosen = None
        geometry: SharedGeometry = graph.shared
        single_plan = self._single_plan(plan)
        lifted = geometry.lifted.index_select(single_kept)
        if self.graph_per_block:
            single_graph = self.connect(lifted, block, single_plan)
        else:
            single_graph = geometry.graph.subgraph(single_kept, single_plan.sizes[block])
        return SharedGeometry(lifted, single_graph, geometry.num_graphs, geometry.points_per_graph).batch_graph

    def input_features(self, x: Tensor) -> Tensor:
        r"""The standardised intensities :math:`(x - \mu)/\sigma`, for every entry point (:meth:`forward`,
        :meth:`forward_lifted`, :meth:`forward_images`) alike.

        Args:
            x (torch.Tensor): raw intensities ``[*, C]``.
        """
        return (x - self.input_mean) / self.input_std

    def forward_images(self, images: Tensor) -> Tensor:
        """Logits of images ``[B, C, H, W]``, turned into point sets by :class:`ImageToPointSet` (default crop).

        Args:
            images (torch.Tensor): images ``[B, C, H, W]``.
        """
        if images.dim() != 4:
            raise ValueError(f"forward_images expects images [B, C, H, W], got {list(images.shape)}")
        height, width = images.shape[-2:]
        if self._to_point_set is None or (self._to_point_set.height, self._to_point_set.width) != (height, width):
            self._to_point_set = ImageToPointSet(height, width)
        data = self._to_point_set.batch(images)
        return self(data.x, data.pos, data.batch, num_graphs=images.shape[0])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(group={self.group}, widths={self.widths}, "
                f"num_layers={self.num_layers}, total_ds={self.total_ds:g}, fill={self.fill:g}, "
                f"mc_samples={self.convs[0].mc_samples}, lift_samples={self.lift_samples})")
