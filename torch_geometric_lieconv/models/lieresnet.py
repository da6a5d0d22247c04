r"""LieResNet (Fig. 5 of the paper): bottleneck residual blocks of LieConv over PyG batches."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import global_mean_pool
from torch_scatter import scatter_mean

from ..conv import LieConv
from ..graph import PairGraph, build_pair_graph
from ..groups import LieGroup, group_from_name
from ..lift import LiftedPoints, lift_points
from ..pool import farthest_point_subsample


def _norm_act(channels: int, batch_norm: bool) -> List[nn.Module]:
    return ([nn.BatchNorm1d(channels)] if batch_norm else []) + [nn.SiLU()]


class BottleBlock(nn.Module):
    r"""[BN] Swish Linear(c, c/4) [BN] Swish LieConv(c/4, c'/4) [BN] Swish Linear(c'/4, c'), plus the residual.

    With ``ds_frac < 1`` the block first picks the output points by farthest point sampling under the
    group distance; the convolution gathers from all input points and the residual is taken at the kept points.
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

    def convolve(self, x: Tensor, graph: PairGraph) -> Tuple[Tensor, Optional[Tensor]]:
        """The block's output at its kept points, and their indices (``None``: every point is kept)."""
        kept = farthest_point_subsample(graph, self.ds_frac) if self.ds_frac < 1 else None
        table = graph.table if kept is None else graph.table.rows(kept)
        out = self.post(self.conv(self.pre(x), graph.edge_index, graph.edge_attr, table=table,
                                  candidate_radius=graph.radius, edge_dist=graph.dist))
        residual = x if kept is None else x[kept]
        c = min(self.in_channels, self.out_channels)
        return torch.cat([out[:, :c] + residual[:, :c], out[:, c:]], dim=-1), kept

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, {self.conv})"


class LieResNet(nn.Module):
    r"""LieResNet: lift, ``num_layers`` :class:`BottleBlock` s of LieConv, a head, and mean pooling per graph.

    .. math::
        \text{out}_g = \frac{1}{|\mathcal{L}_g|}\sum_{m \in \mathcal{L}_g} \text{Head}(h_m^{(L)}),\qquad
        h^{(0)} = \text{Linear}(x_{n(m)}),

    where :math:`\mathcal{L}_g` are the lifted points of graph :math:`g`. With ``pool=True`` (default) and a
    group the data is invariant under, the output is invariant (exactly, when neighbourhoods are
    deterministic: ``fill >= 1`` or ``knn``, ``mc_samples`` at least the graph size, deterministic lift;
    in distribution otherwise).

    Args:
        in_channels: input feature channels.
        out_channels: outputs per graph.
        group: the group (or its name).
        hidden_channels: width k of the residual stream; or ``num_layers + 1`` widths
            :math:`(k_0, \dots, k_L)`, block :math:`i` mapping :math:`k_i` to :math:`k_{i+1}` channels (the
            first :math:`k_i` of its output carry the residual), e.g. the image network's widening.
        num_layers: number of bottleneck blocks.
        mc_samples: neighbourhood size of each LieConv.
        fill: fraction of each graph in the neighbourhood ball, one value or one per layer.
        lift_samples: stabilizer samples K per point.
        knn: nearest neighbours instead of random samples in the ball.
        batch_norm: BatchNorm in the blocks and the kernel MLPs.
        mean: average (not sum) over neighbourhoods.
        ds_frac: fraction of points kept by each block (farthest point sampling); one value or one per layer.
        pool: mean-pool to one output per graph; otherwise one output per input node (mean over its
            lift samples; requires ``ds_frac == 1``).
        aggregation: ``"bmm"`` or ``"scatter"`` (see :class:`LieConv`).
        continuous_kernel: kernels of the matrix :math:`v^{-1}u` instead of its log (see :class:`LieConv`).
        max_num_neighbors: cap for the candidate radius search (``None``: exact).
        graph_per_block: build each block's candidate graph on its own points with its own ball radius
            (``True``), or one graph at the largest radius shared by all blocks (``False``). ``None``
            (default): per block exactly when the blocks subsample (``ds_frac < 1``), where the balls
            grow as the points thin out and one graph at the last block's radius over all the first
            block's points would hold several times the pairs any block uses. Farthest point
            sampling in a block sees the distances of that block's candidate pairs (farther pairs count
            as infinitely far, which keeps it equivariant).

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

    def candidate_radius(self, first_block: int = 0) -> Optional[float]:
        """The largest ball radius of the blocks the graph built before block ``first_block`` serves
        (that block alone with :attr:`graph_per_block`, else it and all later ones), or ``None`` when one
        of them needs every pair."""
        convs = self.convs[first_block : first_block + 1] if self.graph_per_block else self.convs[first_block:]
        if any(not conv.uses_ball for conv in convs):
            return None
        return max(float(conv.radius) for conv in convs)  # host sync: a few scalars per graph

    def connect(self, lifted: LiftedPoints, first_block: int = 0) -> PairGraph:
        """The candidate pair graph of ``lifted`` for block ``first_block`` (and the later ones, unless per block)."""
        with torch.autocast(lifted.pos.device.type, enabled=False):  # group math in the input precision
            return build_pair_graph(self.group, lifted, self.candidate_radius(first_block), self.max_num_neighbors)

    def lift_and_connect(self, pos: Tensor, batch: Optional[Tensor] = None,
                         frames: Optional[Tensor] = None) -> Tuple[LiftedPoints, PairGraph]:
        """Lift the points (Algorithm 1) and build the first block's candidate pair graph."""
        with torch.autocast(pos.device.type, enabled=False):  # group math in the input precision
            lifted = lift_points(self.group, pos, batch, self.lift_samples, frames)
        return lifted, self.connect(lifted)

    def forward(self, x: Tensor, pos: Tensor, batch: Optional[Tensor] = None, frames: Optional[Tensor] = None,
                num_graphs: Optional[int] = None) -> Tensor:
        """``x`` ``[N, in_channels]``, ``pos`` ``[N, d]``, ``batch`` ``[N]`` -> ``[num_graphs, out_channels]``
        (or ``[N, out_channels]`` with ``pool=False``). ``frames`` fixes the stabilizer samples.

        The same as :meth:`forward_lifted` on :func:`~torch_geometric_lieconv.lift_graph` of the points
        with this model's lift samples and :meth:`candidate_radius`."""
        if x.dim() != 2 or x.shape[0] != pos.shape[0] or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape [{pos.shape[0]}, {self.in_channels}], got {list(x.shape)}")
        x, pos = self._checked_features(x), self._in_model_dtype(pos)
        lifted, graph = self.lift_and_connect(pos, batch, frames)
        return self._forward_graph(x[lifted.node_index], lifted, graph, pos.shape[0], num_graphs)

    def forward_lifted(self, x: Tensor, data: Data, num_graphs: Optional[int] = None) -> Tensor:
        r"""The model on a lifted graph (:func:`~torch_geometric_lieconv.lift_graph`,
        :class:`~torch_geometric_lieconv.transforms.LiftGraph`, or a batch of them).

        Args:
            x (torch.Tensor): ``[M, in_channels]`` features of the lifted nodes.
            data (LiftedGraph): the lifted graph; ``data.candidate_radius`` must cover every ball
                of the model (else its LieConv layers raise).
            num_graphs (int, optional): number of graphs (default: from ``data.batch``).

        Returns ``[num_graphs, out_channels]`` (or one row per input point with ``pool=False``).
        """
        num_nodes = data.num_nodes
        if x.dim() != 2 or x.shape[0] != num_nodes or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape [{num_nodes}, {self.in_channels}], got {list(x.shape)}")
        x = self._checked_features(x)
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = torch.zeros(num_nodes, dtype=torch.long, device=x.device)
        lifted = LiftedPoints(data.u, data.q, data.pos, batch, data.node_index, int(data.lift_samples.max())
                              if isinstance(data.lift_samples, Tensor) else int(data.lift_samples))
        radius = float(torch.as_tensor(data.candidate_radius).min())  # host sync: one scalar per graph
        graph = PairGraph(data.edge_index, data.edge_attr, self.group.distance(data.edge_attr), batch, num_nodes,
                          radius=None if radius == float("inf") else radius)
        num_points = int(torch.as_tensor(data.num_points).sum())
        return self._forward_graph(x, lifted, graph, num_points, num_graphs)

    def _in_model_dtype(self, value: Tensor) -> Tensor:
        """``value`` cast to the model's floating point dtype (integer input is left to the checks)."""
        dtype = self.lin_in.weight.dtype
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value

    def _checked_features(self, x: Tensor) -> Tensor:
        """``x`` in the model's dtype; NaN or inf raise (BatchNorm would spread them to other graphs)."""
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating point tensor, got {x.dtype}")
        if not bool(torch.isfinite(x).all()):  # host sync, once per forward
            bad = (~torch.isfinite(x)).any(-1).nonzero().flatten()[:5].tolist()
            raise ValueError(f"x contains NaN or inf values (rows {bad} ...)")
        return self._in_model_dtype(x)

    def _forward_graph(self, x: Tensor, lifted: LiftedPoints, graph: PairGraph, num_points: int,
                       num_graphs: Optional[int]) -> Tensor:
        """The blocks, head and pooling on lifted features ``x`` ``[M, in_channels]``."""
        h = self.lin_in(x)
        for i, block in enumerate(self.blocks):
            h, kept = block.convolve(h, graph)
            if kept is not None:
                lifted = lifted.index_select(kept)
            if i + 1 == self.num_layers:
                break
            if self.graph_per_block:
                graph = self.connect(lifted, i + 1)
            elif kept is not None:
                graph = graph.subgraph(kept)
        h = self.head(h)
        if not self.pool:
            return scatter_mean(h, lifted.node_index, dim=0, dim_size=num_points)
        if num_graphs is None:
            num_graphs = int(lifted.batch.max()) + 1 if lifted.batch.numel() else 0  # host sync
        return global_mean_pool(h, lifted.batch, num_graphs)

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
