r"""The image classifier of the paper's RotMNIST experiment (§5.1, Table 1): a :class:`LieResNet`
on pixel point sets, with equivariant subsampling spread over the layers."""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor

from ..transforms import ImageToPointSet
from ..graph import PairGraph
from ..groups import LieGroup, group_from_name
from ..lift import LiftedPoints, renamed_keywords
from .lieresnet import ForwardPlan, LieResNet

__all__ = ["ImageLieResNet", "LayerSchedule", "LiftedGraphCache", "layer_schedule"]


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


class LiftedGraphCache:
    """The lift and candidate pair graph of the last batch, reused while the next batch has the same points.

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

    With ``cache_graph=True`` (default) the lift and candidate graph of a batch are reused by the next
    batch when its point sets are exactly the same (:class:`LiftedGraphCache`): the fixed pixel grid
    of an evaluation pass is lifted and connected once. Never for a random lift (groups with a
    stabilizer, e.g. SE(2), unless ``frames`` fix it, and then the cache is skipped too), nor for
    positions that need gradients.

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
        cache_graph (bool, optional): reuse the lift and candidate graph of identical consecutive point sets.
            (default: :obj:`True`)
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
        ds_frac, fills, widths = layer_schedule(total_ds, fill, num_layers, hidden_channels, grow_channels)
        super().__init__(in_channels, num_classes, group, hidden_channels=widths, num_layers=num_layers,
                         mc_samples=mc_samples, fill=fills, lift_samples=lift_samples, knn=knn,
                         batch_norm=batch_norm, mean=True, ds_frac=ds_frac, pool=True, **kwargs)
        self.total_ds, self.fill, self.ds_frac, self.fills = total_ds, fill, ds_frac, fills
        self.grow_channels = bool(grow_channels)
        self.input_mean, self.input_std = float(input_mean), float(input_std)
        self._to_point_set: Optional[ImageToPointSet] = None
        self.cache_graph = cache_graph
        self.graph_cache = LiftedGraphCache()

    def lift_and_connect(self, pos: Tensor, batch: Optional[Tensor] = None, frames: Optional[Tensor] = None,
                         plan: Optional[ForwardPlan] = None) -> Tuple[LiftedPoints, PairGraph]:
        """:meth:`LieResNet.lift_and_connect`, through :attr:`graph_cache` where that is safe.

        Args:
            pos (torch.Tensor): points ``[N, d]``.
            batch (torch.Tensor, optional): the graph of each point ``[N]``, sorted. (default: :obj:`None`)
            frames (torch.Tensor, optional): stabilizer frames ``[N, K, m, m]``. (default: :obj:`None`)
            plan (ForwardPlan, optional): the checked points and sizes of :meth:`read_plan`. (default:
                :obj:`None`)
        """
        random_lift = bool(self.group.frame_dim)  # stabilizer samples
        if not self.cache_graph or random_lift or frames is not None or pos.requires_grad:
            return super().lift_and_connect(pos, batch, frames, plan)
        if batch is None:
            batch = torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device)
        radius = self.candidate_radius(0, None if plan is None else plan.radii)
        cached = self.graph_cache.get(pos, batch, radius)
        if cached is None:
            cached = super().lift_and_connect(pos, batch, frames, plan)
            self.graph_cache.put(pos, batch, radius, cached)
        return cached

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
