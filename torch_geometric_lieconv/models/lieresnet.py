r"""LieResNet (Fig. 5 of the paper): bottleneck residual blocks of LieConv over PyG batches."""
from __future__ import annotations

import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_mean_pool
from torch_scatter import scatter_mean

from ..ops import NonFiniteInputError, dynamic_sizes_traced, graph_counts
from ..conv import LieConv
from ..graph import GraphSizes, PairGraph, build_pair_graph, count_index
from ..host_syncs import read_to_host
from ..groups import LieGroup, group_from_name
from ..lift import LiftedPoints, lift_points, point_flags, raise_for_points
from .hub import Rebuildable
from ..pool import farthest_point_subsample, subsample_counts


class ForwardPlan(NamedTuple):
    """What a :class:`LieResNet` forward pass reads from the device, once (:meth:`LieResNet.read_plan`).

    The input checks and the lifted graph's numbers hold their defaults when they were not asked for.
    A traced forward (:func:`torch.compile`, :func:`torch.export.export`) reads nothing
    (:meth:`LieResNet.traced_plan`): its radii are tensors, its sizes hold the counts only
    (:meth:`GraphSizes.traced`) and :attr:`num_graphs` is a symbolic size.
    """

    radii: List[Optional[Union[float, Tensor]]]  #: each block's ball radius (``None``: no ball)
    sizes: List[GraphSizes]  #: the lifted graphs' sizes before each block and after the last
    num_graphs: int  #: :math:`B`
    bad_points: bool = False  #: the points or the batch vector failed their checks (:func:`point_flags`)
    nonfinite_x: bool = False  #: the input features hold NaN or inf
    candidate_radius: float = math.inf  #: the radius a lifted graph's candidates were built for
    num_points: Optional[int] = None  #: the input points of a lifted graph


# NonFiniteInputError (imported above) is defined with the operator that raises it in a traced forward


def _nonfinite(x: Tensor) -> Tensor:
    """``[1]`` whether ``x`` holds a NaN or inf, on the device."""
    return (~torch.isfinite(x).all()).view(1)


def _raise_nonfinite(x: Tensor) -> None:
    bad = (~torch.isfinite(x)).any(-1).nonzero().flatten()[:5].tolist()
    raise NonFiniteInputError(f"x contains NaN or inf values (rows {bad} ...)")


def _norm_act(channels: int, batch_norm: bool) -> List[nn.Module]:
    return ([nn.BatchNorm1d(channels)] if batch_norm else []) + [nn.SiLU()]


class BottleBlock(nn.Module):
    r"""[BN] Swish Linear(c, c/4) [BN] Swish LieConv(c/4, c'/4) [BN] Swish Linear(c'/4, c'), plus the residual.

    With ``ds_frac < 1`` the block first picks the output points by farthest point sampling under the
    group distance; the convolution gathers from all input points and the residual is taken at the kept points.

    Args:
        in_channels (int): :math:`c`.
        out_channels (int): :math:`c'`.
        group (LieGroup): the LieConv's group.
        batch_norm (bool, optional): the BatchNorm layers. (default: :obj:`True`)
        ds_frac (float, optional): fraction of the points the block keeps. (default: :obj:`1.0`)
        **conv_kwargs (optional): arguments of the :class:`LieConv`.
    """

    def __init__(self, in_channels: int, out_channels: int, group: LieGroup, *, batch_norm: bool = True,
                 ds_frac: float = 1.0, **conv_kwargs) -> None:
        super().__init__()
        if in_channels % 4 or out_channels % 4:
            raise ValueError(f"BottleBlock channels must be divisible by 4, got {in_channels} -> {out_channels}")
        self.in_channels, self.out_channels, self.ds_frac = in_channels, out_channels, ds_frac
        self.pre = nn.Sequential(*_norm_act(in_channels, batch_norm), nn.Linear(in_channels, in_channels // 4),
                                 *_norm_act(in_channels // 4, batch_norm))
        self.conv = LieConv(in_channels // 4, out_channels // 4, group, kernel_batch_norm=batch_norm, **conv_kwargs)
        self.post = nn.Sequential(*_norm_act(out_channels // 4, batch_norm), nn.Linear(out_channels // 4, out_channels))

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor, graph: PairGraph) -> Tuple[Tensor, PairGraph]:
        """The block's output at its kept points, and the candidate graph induced on them."""
        out, kept = self.convolve(x, graph)
        return out, (graph if kept is None else graph.subgraph(kept))

    def convolve(self, x: Tensor, graph: PairGraph, kept_sizes: Optional[GraphSizes] = None,
                 kept: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """The block's output at its kept points, and their indices (``None``: every point is kept).
        ``kept_sizes``: the sizes of the kept graphs, when the caller has read them.

        Args:
            x (torch.Tensor): features of the block's input points ``[M, c]``.
            graph (PairGraph): their candidate pairs.
            kept_sizes (GraphSizes, optional): the sizes of the kept graphs, when read. (default: :obj:`None`)
            kept (torch.Tensor, optional): the kept points (sorted), when the caller has chosen them as
                :func:`farthest_point_subsample` would (e.g. looked up for a known geometry). (default:
                :obj:`None`, chosen here)
        """
        if kept is None and self.ds_frac < 1:
            kept = farthest_point_subsample(graph, self.ds_frac, kept=kept_sizes)
        table = graph.table if kept is None else graph.table.rows(kept)
        out = self.post(self.conv(self.pre(x), graph.edge_index, graph.edge_attr, table=table,
                                  candidate_radius=graph.candidate_radius_tensor, edge_dist=graph.dist))
        residual = x if kept is None else x[kept]
        c = min(self.in_channels, self.out_channels)
        return torch.cat([out[:, :c] + residual[:, :c], out[:, c:]], dim=-1), kept

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, {self.conv})"


class LieResNet(Rebuildable):
    r"""LieResNet: lift, ``num_layers`` :class:`BottleBlock` s of LieConv, a head, and mean pooling per graph.

    .. math::
        \text{out}_g = \frac{1}{|\mathcal{L}_g|}\sum_{m \in \mathcal{L}_g} \text{Head}(h_m^{(L)}),\qquad
        h^{(0)} = \text{Linear}(x_{n(m)}),

    where :math:`\mathcal{L}_g` are the lifted points of graph :math:`g`. With ``pool=True`` (default) and a
    group the data is invariant under, the output is invariant (exactly, when neighbourhoods are
    deterministic: ``fill >= 1`` or ``knn``, ``mc_samples`` at least the graph size, deterministic lift;
    in distribution otherwise).

    Args:
        in_channels (int): input feature channels.
        out_channels (int): outputs per graph.
        group (LieGroup or str): the group (or its name).
        hidden_channels (int or Sequence[int], optional): width k of the residual stream; or ``num_layers + 1``
            widths :math:`(k_0, \dots, k_L)`, block :math:`i` mapping :math:`k_i` to :math:`k_{i+1}` channels
            (the first :math:`k_i` of its output carry the residual), e.g. the image network's widening.
            (default: :obj:`1536`)
        num_layers (int, optional): number of bottleneck blocks. (default: :obj:`6`)
        mc_samples (int, optional): neighbourhood size of each LieConv. (default: :obj:`32`)
        fill (float or Sequence[float], optional): fraction of each graph in the neighbourhood ball, one value
            or one per layer. (default: :obj:`1 / 3`)
        lift_samples (int, optional): stabilizer samples K per point. (default: :obj:`1`)
        knn (bool, optional): nearest neighbours instead of random samples in the ball.
            (default: :obj:`False`)
        batch_norm (bool, optional): BatchNorm in the blocks and the kernel MLPs. (default: :obj:`True`)
        mean (bool, optional): average (not sum) over neighbourhoods. (default: :obj:`True`)
        ds_frac (float or Sequence[float], optional): fraction of points kept by each block (farthest point
            sampling); one value or one per layer. (default: :obj:`1.0`)
        pool (bool, optional): mean-pool to one output per graph; otherwise one output per input node (mean over
            its lift samples; requires ``ds_frac == 1``). (default: :obj:`True`)
        kernel_channels (int, optional): the kernel's output channels per input channel (see
            :class:`LieConv`). (default: :obj:`16`)
        kernel_hidden (int, optional): the kernel MLP's hidden width. (default: :obj:`32`)
        aggregation (str, optional): ``"bmm"`` or ``"scatter"`` (see :class:`LieConv`).
            (default: :obj:`'bmm'`)
        continuous_kernel (bool, optional): kernels of the matrix :math:`v^{-1}u` instead of its log (see
            :class:`LieConv`). (default: :obj:`False`)
        max_num_neighbors (int, optional): cap for the candidate radius search (``None``: exact).
            (default: :obj:`None`)
        graph_per_block (bool, optional): build each block's candidate graph on its own points with its own ball
            radius (``True``), or one graph at the largest radius shared by all blocks (``False``). ``None``
            (default): per block exactly when the blocks subsample (``ds_frac < 1``), where the balls grow as
            the points thin out and one graph at the last block's radius over all the first block's points would
            hold several times the pairs any block uses. Farthest point sampling in a block sees the distances
            of that block's candidate pairs (farther pairs count as infinitely far, which keeps it equivariant).

    Shapes:
        - **input** of :meth:`forward`: node features :math:`(N, C_{in})`, positions :math:`(N, d)`,
          batch vector :math:`(N)` *(optional)*, frames :math:`(N, K, m, m)` *(optional)*
        - **input** of :meth:`forward_lifted`: lifted node features :math:`(NK, C_{in})` and a
          :class:`~torch_geometric_lieconv.LiftedGraph` (or a batch of them)
        - **output:** graph features :math:`(B, C_{out})`, or :math:`(N, C_{out})` with ``pool=False``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        group: Union[LieGroup, str],
        *,
        hidden_channels: Union[int, Sequence[int]] = 1536,
        num_layers: int = 6,
        mc_samples: int = 32,
        fill: Union[float, Sequence[float]] = 1 / 3,
        lift_samples: int = 1,
        knn: bool = False,
        batch_norm: bool = True,
        mean: bool = True,
        ds_frac: Union[float, Sequence[float]] = 1.0,
        pool: bool = True,
        kernel_channels: int = 16,
        kernel_hidden: int = 32,
        aggregation: str = "bmm",
        max_num_neighbors: Optional[int] = None,
        graph_per_block: Optional[bool] = None,
        continuous_kernel: bool = False,
    ) -> None:
        super().__init__()
        self.group = group_from_name(group) if isinstance(group, str) else group
        self.in_channels, self.out_channels, self.hidden_channels = in_channels, out_channels, hidden_channels
        widths = _widths(hidden_channels, num_layers)
        self.widths = widths
        self.num_layers, self.lift_samples, self.pool = num_layers, int(lift_samples), pool
        self.max_num_neighbors = max_num_neighbors
        fills = _per_layer(fill, num_layers, "fill")
        ds_fracs = _per_layer(ds_frac, num_layers, "ds_frac")
        self.graph_per_block = any(f < 1 for f in ds_fracs) if graph_per_block is None else bool(graph_per_block)
        if not pool and any(f < 1 for f in ds_fracs):
            raise ValueError("pool=False needs ds_frac == 1 (per-node outputs are undefined after subsampling)")
        self.lin_in = nn.Linear(in_channels, widths[0])
        self.blocks = nn.ModuleList(
            BottleBlock(widths[i], widths[i + 1], self.group, batch_norm=batch_norm, ds_frac=ds_fracs[i],
                        mc_samples=mc_samples, fill=fills[i], knn=knn, mean=mean, kernel_channels=kernel_channels,
                        continuous_kernel=continuous_kernel,
                        kernel_hidden=kernel_hidden, aggregation=aggregation)
            for i in range(num_layers)
        )
        self.head = nn.Sequential(*_norm_act(widths[-1], batch_norm), nn.Linear(widths[-1], out_channels))

    @property
    def convs(self) -> List[LieConv]:
        return [block.conv for block in self.blocks]

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def candidate_radius(self, first_block: int = 0, radii: Optional[Sequence[Optional[float]]] = None
                         ) -> Optional[float]:
        """The largest ball radius of the blocks the graph built before block ``first_block`` serves
        (that block alone with :attr:`graph_per_block`, else it and all later ones), or ``None`` when one
        of them needs every pair. ``radii``: the blocks' ball radii as read by :meth:`read_plan`
        (``None``: read here, one host sync).

        Args:
            first_block (int, optional): the first block the graph serves. (default: :obj:`0`)
            radii (Sequence[float], optional): the blocks' ball radii, when read. (default: :obj:`None`)
        """
        if radii is None:
            radii = self.ball_radii()
        used = radii[first_block : first_block + 1] if self.graph_per_block else radii[first_block:]
        if any(r is None for r in used):
            return None
        if any(isinstance(r, Tensor) for r in used):  # a traced forward: the radii stay on the device
            return torch.stack([torch.as_tensor(r, dtype=torch.float64).reshape(()) for r in used]).amax()
        return max(used, default=0.0)  # no block (num_layers=0): no ball needs a pair

    def graph_radius(self, first_block: int = 0, radii: Optional[Sequence[Optional[float]]] = None
                     ) -> Optional[float]:
        """The radius :meth:`connect` builds the candidate graph before block ``first_block`` for: the
        :meth:`candidate_radius` (a subclass may build with headroom, e.g. to keep a graph while the balls
        adapt).

        Args:
            first_block (int, optional): the first block the graph serves. (default: :obj:`0`)
            radii (Sequence[float], optional): the blocks' ball radii, when read. (default: :obj:`None`)
        """
        return self.candidate_radius(first_block, radii)

    def ball_radii(self) -> List[Optional[float]]:
        """Each block's ball radius (``None``: no ball), read in one host sync."""
        balls = self._ball_tensors()
        return self._per_block(read_to_host(torch.cat(balls)) if balls else [])

    def _ball_tensors(self) -> List[Tensor]:
        return [conv.radius.detach().reshape(1) for conv in self.convs if conv.uses_ball]

    def _per_block(self, ball_values: Sequence[float]) -> List[Optional[float]]:
        """The values of the ball blocks spread over all blocks (``None`` where a block has no ball)."""
        values = iter(ball_values)
        return [next(values) if conv.uses_ball else None for conv in self.convs]

    def read_plan(self, counts: Tensor, num_graphs: Union[int, Tensor], *, point_flags: Optional[Tensor] = None,
                  nonfinite_x: Optional[Tensor] = None, candidate_radius: Optional[Tensor] = None,
                  num_points: Optional[Tensor] = None) -> ForwardPlan:
        r"""Everything a forward pass needs from the device, read in one host sync.

        Args:
            counts (torch.Tensor): lifted points per graph, at least as long as the number of graphs
                (trailing zeros are cut to ``num_graphs``).
            num_graphs (int or torch.Tensor): the number of graphs (a tensor: read in the sync).
            point_flags (torch.Tensor, optional): the input checks of the points and the batch vector
                (:func:`~torch_geometric_lieconv.lift.point_flags`); read as :attr:`ForwardPlan.bad_points`,
                set when any is. (default: :obj:`None`)
            nonfinite_x (torch.Tensor, optional): whether the features hold NaN or inf (one boolean).
                (default: :obj:`None`)
            candidate_radius (torch.Tensor, optional): a lifted graph's candidate radius (a scalar).
                (default: :obj:`None`)
            num_points (torch.Tensor, optional): a lifted graph's input points (a scalar).
                (default: :obj:`None`)

        The caller raises for the checks that are set.
        """
        stages = [counts]
        for block in self.blocks:
            stages.append(subsample_counts(stages[-1], block.ds_frac) if block.ds_frac < 1 else stages[-1])
        balls = self._ball_tensors()
        asked: Dict[str, Tensor] = {
            name: value.reshape(-1).any() if name == "bad_points" else value.reshape(())
            for name, value in (("bad_points", point_flags), ("nonfinite_x", nonfinite_x),
                                ("candidate_radius", candidate_radius), ("num_points", num_points))
            if value is not None
        }
        last = [num_graphs.reshape(1)] if isinstance(num_graphs, Tensor) else []
        parts = [*(value.reshape(1) for value in asked.values()), *(GraphSizes.summary(c) for c in stages), *balls,
                 *last]
        values = iter(read_to_host(torch.cat([p.to(torch.float64) for p in parts])))  # the host sync
        read = {name: next(values) for name in asked}
        summaries = [[next(values) for _ in range(3)] for _ in stages]
        radii = self._per_block([next(values) for _ in balls])
        if isinstance(num_graphs, Tensor):
            num_graphs = int(next(values))
        sizes = [GraphSizes.from_summary(c[:num_graphs], s) for c, s in zip(stages, summaries)]
        return ForwardPlan(
            radii, sizes, num_graphs, bad_points=bool(read.get("bad_points", False)),
            nonfinite_x=bool(read.get("nonfinite_x", False)),
            candidate_radius=float(read.get("candidate_radius", math.inf)),
            num_points=int(read["num_points"]) if "num_points" in read else None,
        )

    def traced_plan(self, counts: Tensor) -> ForwardPlan:
        r"""The plan of a traced forward (:func:`torch.compile`, :func:`torch.export.export`), read from
        nothing: each block's ball radius as a tensor, the counts of every stage (:meth:`GraphSizes.traced`)
        and the number of graphs as the symbolic length of ``counts``.

        Args:
            counts (torch.Tensor): lifted points per graph ``[B]``
                (:func:`~torch_geometric_lieconv.ops.graph_counts`).
        """
        stages = [counts]
        for block in self.blocks:
            stages.append(subsample_counts(stages[-1], block.ds_frac) if block.ds_frac < 1 else stages[-1])
        radii = [conv.radius.detach().to(torch.float64) if conv.uses_ball else None for conv in self.convs]
        return ForwardPlan(radii, [GraphSizes.traced(c) for c in stages], counts.shape[0])

    def connect(self, lifted: LiftedPoints, first_block: int = 0, plan: Optional[ForwardPlan] = None) -> PairGraph:
        """The candidate pair graph of ``lifted`` for block ``first_block`` (and the later ones, unless
        per block); with a ``plan`` (:meth:`read_plan`) nothing is read from the device but the new
        graph's widest row (radius graphs only).

        Args:
            lifted (LiftedPoints): the lifted points.
            first_block (int, optional): the first block the graph serves. (default: :obj:`0`)
            plan (ForwardPlan, optional): the sizes and radii of :meth:`read_plan`. (default: :obj:`None`)
        """
        radius = self.graph_radius(first_block, None if plan is None else plan.radii)
        sizes = None if plan is None else plan.sizes[first_block]
        with torch.autocast(lifted.pos.device.type, enabled=False):  # group math in the input precision
            return build_pair_graph(self.group, lifted, radius, self.max_num_neighbors, sizes)

    def lift_and_connect(self, pos: Tensor, batch: Optional[Tensor] = None, frames: Optional[Tensor] = None,
                         plan: Optional[ForwardPlan] = None) -> Tuple[LiftedPoints, PairGraph]:
        """Lift the points (Algorithm 1) and build the first block's candidate pair graph (``plan``:
        the points were checked and the sizes read by :meth:`read_plan`).

        Args:
            pos (torch.Tensor): points ``[N, d]``.
            batch (torch.Tensor, optional): the graph of each point ``[N]``, sorted. (default: :obj:`None`)
            frames (torch.Tensor, optional): stabilizer frames ``[N, K, m, m]``. (default: :obj:`None`)
            plan (ForwardPlan, optional): the checked points and sizes of :meth:`read_plan`. (default:
                :obj:`None`)
        """
        with torch.autocast(pos.device.type, enabled=False):  # group math in the input precision
            lifted = lift_points(self.group, pos, batch, self.lift_samples, frames, checked=plan is not None)
        return lifted, self.connect(lifted, 0, plan)

    def forward(self, x: Tensor, pos: Tensor, batch: Optional[Tensor] = None, frames: Optional[Tensor] = None,
                num_graphs: Optional[int] = None) -> Tensor:
        """``x`` ``[N, in_channels]``, ``pos`` ``[N, d]``, ``batch`` ``[N]`` -> ``[num_graphs, out_channels]``
        (or ``[N, out_channels]`` with ``pool=False``). ``frames`` fixes the stabilizer samples.

        The same as :meth:`forward_lifted` on :func:`~torch_geometric_lieconv.lift_graph` of the points
        with this model's lift samples and :meth:`candidate_radius`. Under :func:`torch.compile` and
        :func:`torch.export.export` the whole forward is traced: its data-dependent steps are the custom
        operators of :mod:`~torch_geometric_lieconv.ops` (one graph, ``fullgraph=True`` works, and sizes
        stay dynamic)."""
        if x.dim() != 2 or x.shape[0] != pos.shape[0] or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape [{pos.shape[0]}, {self.in_channels}], got {list(x.shape)}")
        x, pos = self._checked_features(x), self._in_model_dtype(pos)
        lifted, graph, plan = self._lift_and_plan(x, pos, batch, frames, num_graphs)
        return self._forward_graph(x[lifted.node_index], lifted, graph, plan, pos.shape[0])

    def _lift_and_plan(self, x: Tensor, pos: Tensor, batch: Optional[Tensor], frames: Optional[Tensor],
                       num_graphs: Optional[int]) -> Tuple[LiftedPoints, PairGraph, ForwardPlan]:
        """Check the input, plan, lift and connect: traced under :func:`torch.compile` and
        :func:`torch.export.export` (the checks and counts by :func:`~torch_geometric_lieconv.ops.graph_counts`,
        :meth:`traced_plan`), else eagerly with one host sync (:meth:`read_plan`)."""
        if not dynamic_sizes_traced():
            return self._eager_lift_and_plan(x, pos, batch, frames, num_graphs)
        batch = self._checked_batch(pos, batch)
        flags = torch.cat([point_flags(self.group, pos, batch), _nonfinite(x)])
        counts = graph_counts(batch, -1 if num_graphs is None else int(num_graphs), flags)
        plan = self.traced_plan(counts * self.lift_samples)
        lifted, graph = self.lift_and_connect(pos, batch, frames, plan)
        return lifted, graph, plan

    def _checked_batch(self, pos: Tensor, batch: Optional[Tensor]) -> Tensor:
        """The batch vector of ``pos`` (one graph when ``None``), after the shape checks of both."""
        self.group.check_pos_shape(pos)
        n = pos.shape[0]
        if batch is None:
            return torch.zeros(n, dtype=torch.long, device=pos.device)
        if batch.shape != (n,):
            raise ValueError(f"batch must have shape [{n}] to match pos, got {list(batch.shape)}")
        return batch

    @torch.compiler.disable
    def _eager_lift_and_plan(self, x: Tensor, pos: Tensor, batch: Optional[Tensor], frames: Optional[Tensor],
                             num_graphs: Optional[int]) -> Tuple[LiftedPoints, PairGraph, ForwardPlan]:
        """Check the input, read the plan (one host sync), lift and connect: the eager part of a forward."""
        batch = self._checked_batch(pos, batch)
        n = pos.shape[0]
        counts = count_index(batch, max(n, num_graphs or 0)) * self.lift_samples
        if num_graphs is None:
            num_graphs = batch[-1] + 1 if n else 0
        plan = self.read_plan(counts, num_graphs, point_flags=point_flags(self.group, pos, batch),
                              nonfinite_x=_nonfinite(x))
        if plan.bad_points:
            raise_for_points(self.group, pos, batch)
        if plan.nonfinite_x:
            _raise_nonfinite(x)
        lifted, graph = self.lift_and_connect(pos, batch, frames, plan)
        return lifted, graph, plan

    def forward_lifted(self, data: Data, x: Optional[Tensor] = None) -> Tensor:
        r"""The model on a lifted graph (:func:`~torch_geometric_lieconv.lift_graph`,
        :class:`~torch_geometric_lieconv.transforms.LiftGraph`, or a batch of them).

        Args:
            data (LiftedGraph): the lifted graph. A ball wider than ``data.candidate_radius`` is
                capped at it, with one warning per layer (see :class:`LieConv`).
            x (torch.Tensor, optional): ``[M, in_channels]`` features of the lifted nodes.
                (default: :obj:`None`, ``data.x``)

        Returns ``[num_graphs, out_channels]`` (or one row per input point with ``pool=False``).
        """
        if isinstance(data, Tensor):
            raise TypeError("forward_lifted takes the lifted graph first: forward_lifted(data, x=None) "
                            "(x defaults to data.x)")
        x = data.x if x is None else x
        num_nodes = data.num_nodes
        if x is None or x.dim() != 2 or x.shape[0] != num_nodes or x.shape[1] != self.in_channels:
            got = None if x is None else list(x.shape)
            raise ValueError(f"x must have shape [{num_nodes}, {self.in_channels}], got {got}")
        x = self._checked_features(x)
        lifted, graph, plan = self._plan_lifted(data, x)
        return self._forward_graph(x, lifted, graph, plan, plan.num_points)

    @torch.compiler.disable
    def _plan_lifted(self, data: Data, x: Tensor) -> Tuple[LiftedPoints, PairGraph, ForwardPlan]:
        """The plan and pair graph of a lifted graph (the eager part of :meth:`forward_lifted`)."""
        num_nodes = data.num_nodes
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = torch.zeros(num_nodes, dtype=torch.long, device=x.device)
        if isinstance(data, Batch):
            num_graphs = data.num_graphs
        else:
            num_graphs = batch[-1] + 1 if batch.numel() else 0
        bound = torch.as_tensor(data.candidate_radius, dtype=torch.float64).min()
        num_points = torch.as_tensor(data.num_points).sum()
        counts = count_index(batch, max(num_nodes, num_graphs if isinstance(num_graphs, int) else 0))
        plan = self.read_plan(counts, num_graphs, nonfinite_x=_nonfinite(x), candidate_radius=bound,
                              num_points=num_points)
        if plan.nonfinite_x:
            _raise_nonfinite(x)
        for conv, r in zip(self.convs, plan.radii):
            if r is not None:
                conv.warn_if_capped(r, plan.candidate_radius)
        samples = data.lift_samples
        lifted = LiftedPoints(data.u, data.q, data.pos, batch, data.node_index,
                              int(samples.max()) if isinstance(samples, Tensor) else int(samples))
        graph = PairGraph(data.edge_index, data.edge_attr, self.group.distance(data.edge_attr), batch, num_nodes,
                          candidate_radius=plan.candidate_radius, sizes=plan.sizes[0])
        return lifted, graph, plan

    def _in_model_dtype(self, value: Tensor) -> Tensor:
        """``value`` cast to the model's floating point dtype (integer input is left to the checks)."""
        dtype = self.lin_in.weight.dtype
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value

    def _checked_features(self, x: Tensor) -> Tensor:
        """``x`` in the model's dtype (NaN or inf are checked with the plan: BatchNorm would spread them)."""
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating point tensor, got {x.dtype}")
        return self._in_model_dtype(x)

    def input_features(self, x: Tensor) -> Tensor:
        """The features the first layer sees, of input features ``x`` ``[*, in_channels]``: ``x`` itself.

        Every entry point (:meth:`forward`, :meth:`forward_lifted` and those of subclasses) reaches the
        network through it, so a subclass that transforms its input (e.g. standardises it) overrides
        this method, never one entry point. It must act on each row alone (it runs on the lifted rows).

        Args:
            x (torch.Tensor): input features, in the model's dtype.
        """
        return x

    def _forward_graph(self, x: Tensor, lifted: LiftedPoints, graph: PairGraph, plan: ForwardPlan,
                       num_points: int) -> Tensor:
        """The shared path of every entry point: :meth:`input_features`, the blocks, head and pooling
        on lifted features ``x`` ``[M, in_channels]``."""
        h = self.lin_in(self.input_features(x))
        for i, block in enumerate(self.blocks):
            chosen = self._kept_points(i, graph, plan) if block.ds_frac < 1 else None
            h, kept = block.convolve(h, graph, plan.sizes[i + 1], kept=chosen)
            if kept is not None:
                lifted = lifted.index_select(kept)
            if i + 1 == self.num_layers:
                break
            graph = self._next_graph(i + 1, lifted, graph, kept, plan)
        h = self.head(h)
        if not self.pool:
            return scatter_mean(h, lifted.node_index, dim=0, dim_size=num_points)
        return global_mean_pool(h, lifted.batch, plan.num_graphs)

    def _kept_points(self, block: int, graph: PairGraph, plan: ForwardPlan) -> Optional[Tensor]:
        """The points block ``block`` keeps of ``graph``, when chosen here; ``None``: the block chooses them
        (farthest point sampling). A subclass that knows the geometry may look them up instead, drawing
        the same random starts (:func:`~torch_geometric_lieconv.pool.farthest_point_starts`)."""
        return None

    def _next_graph(self, block: int, lifted: LiftedPoints, graph: PairGraph, kept: Optional[Tensor],
                    plan: ForwardPlan) -> PairGraph:
        """The candidate graph of block ``block`` on its input points ``lifted`` (the points ``kept`` of the
        previous block's ``graph``)."""
        if self.graph_per_block:
            if dynamic_sizes_traced():  # a traced forward: the candidate search is an operator
                return self.connect(lifted, block, plan)
            return self._connect_eagerly(lifted, block, plan)
        if kept is not None:
            return graph.subgraph(kept, plan.sizes[block])
        return graph

    @torch.compiler.disable
    def _connect_eagerly(self, lifted: LiftedPoints, first_block: int, plan: ForwardPlan) -> PairGraph:
        return self.connect(lifted, first_block, plan)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, group={self.group}, "
                f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers})")


def _widths(hidden_channels: Union[int, Sequence[int]], num_layers: int) -> List[int]:
    """The residual stream's widths before the first block and after each block."""
    if isinstance(hidden_channels, int):
        return [hidden_channels] * (num_layers + 1)
    widths = [int(k) for k in hidden_channels]
    if len(widths) != num_layers + 1:
        raise ValueError(f"hidden_channels must be a number or num_layers + 1 = {num_layers + 1} widths, "
                         f"got {len(widths)}")
    return widths


def _per_layer(value, num_layers: int, name: str) -> List[float]:
    if isinstance(value, (int, float)):
        return [float(value)] * num_layers
    values = [float(v) for v in value]
    if len(values) != num_layers:
        raise ValueError(f"{name} must be a number or {num_layers} numbers, got {len(values)}")
    return values
