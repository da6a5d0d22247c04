r"""LieConv as a PyG :class:`~torch_geometric.nn.conv.MessagePassing` layer."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.nn.conv import MessagePassing

from .graph import PairGraph, segment_rank, select_neighbourhood
from .groups import LieGroup, group_from_name


class KernelMLP(nn.Sequential):
    r"""The kernel network :math:`k_\theta(\text{abq})`: three Linear + Swish layers (optional BatchNorm)."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 32, batch_norm: bool = False):
        layers = []
        for c_in, c_out in [(in_channels, hidden_channels), (hidden_channels, hidden_channels), (hidden_channels, out_channels)]:
            layers += [nn.Linear(c_in, c_out)] + ([nn.BatchNorm1d(c_out)] if batch_norm else []) + [nn.SiLU()]
        super().__init__(*layers)

    def reset_parameters(self) -> None:
        for layer in self:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()


class LieConv(MessagePassing):
    r"""The LieConv layer (Finzi et al., 2020, Algorithm 2 with the PointConv trick of Eq. 9).

    For lifted points :math:`(u_i, q_i)` with features :math:`f_j`,

    .. math::
        h_i = \frac{1}{|\mathcal{N}_i|} \sum_{j \in \mathcal{N}_i} k_\theta(\log(v_j^{-1}u_i), q_i, q_j)\, f_j ,

    where :math:`\mathcal{N}_i` holds at most ``mc_samples`` points drawn uniformly from the ball
    :math:`d(u_i, v_j) < r` (or the ``mc_samples`` nearest, ``knn=True``). The kernel is factorised as
    :math:`k_\theta(\cdot) f = L\,\mathrm{vec}(f\, W(\cdot)^\top)` with a small MLP
    :math:`W: \mathbb{R}^{D} \to \mathbb{R}^{c_m}` and one Linear :math:`L: \mathbb{R}^{c_{in} c_m} \to \mathbb{R}^{c_{out}}`,
    so per target only :math:`P_i = \sum_j f_j \otimes W_{ij}` (``[c_in, c_m]``) is formed.

    The radius :math:`r` is a buffer: in training mode it moves by
    :math:`0.5\,(\text{fill} - \text{observed fill})` each step so that on average a fraction ``fill``
    of each graph lies in the ball; ``fill >= 1`` means the whole graph (no radius).

    Args:
        in_channels: :math:`c_{in}`.
        out_channels: :math:`c_{out}`.
        group: the group, or its name.
        mc_samples: neighbourhood size (Monte Carlo samples of Eq. 7).
        fill: target fraction of each graph inside the ball.
        knn: use the ``mc_samples`` nearest points under :math:`d` instead of random samples in the ball.
        mean: divide by the number of sampled neighbours.
        kernel_channels: :math:`c_m`.
        kernel_hidden: width of the kernel MLP.
        kernel_batch_norm: BatchNorm inside the kernel MLP.
        aggregation: ``"bmm"`` (padded per-target batched matmul) or ``"scatter"`` (segment sum of
            per-edge outer products); both compute the same thing.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        group,
        *,
        mc_samples: int = 32,
        fill: float = 1 / 3,
        knn: bool = False,
        mean: bool = True,
        kernel_channels: int = 16,
        kernel_hidden: int = 32,
        kernel_batch_norm: bool = False,
        aggregation: str = "bmm",
        initial_radius: float = 2.0,
        radius_step: float = 0.5,
    ) -> None:
        super().__init__(aggr=None)
        if aggregation not in ("bmm", "scatter"):
            raise ValueError(f"aggregation must be 'bmm' or 'scatter', got {aggregation!r}")
        if mc_samples < 1:
            raise ValueError(f"mc_samples must be >= 1, got {mc_samples}")
        if fill <= 0:
            raise ValueError(f"fill must be > 0, got {fill}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.group: LieGroup = group_from_name(group) if isinstance(group, str) else group
        self.mc_samples, self.fill, self.knn, self.mean = int(mc_samples), float(fill), knn, mean
        self.kernel_channels, self.aggregation = kernel_channels, aggregation
        self.initial_radius, self.radius_step = initial_radius, radius_step
        self.kernel = KernelMLP(self.group.embedding_dim, kernel_channels, kernel_hidden, kernel_batch_norm)
        self.lin = nn.Linear(in_channels * kernel_channels, out_channels)
        self.register_buffer("radius", torch.tensor(float(initial_radius)))
        self.register_buffer("observed_fill", torch.tensor(float("nan")))

    @property
    def uses_ball(self) -> bool:
        """Whether neighbourhoods are cut by the radius (not knn, fill < 1)."""
        return not self.knn and self.fill < 1

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.kernel.reset_parameters()
        self.lin.reset_parameters()
        self.radius.fill_(self.initial_radius)
        self.observed_fill.fill_(float("nan"))

    def forward(self, x: Tensor, graph: PairGraph, target_index: Optional[Tensor] = None) -> Tensor:
        """Convolve features ``x`` ``[M, c_in]`` of the lifted points of ``graph``.

        ``target_index`` (sorted) restricts the outputs to those points (equivariant subsampling);
        the sources are always all points. Returns ``[M_out, c_out]``.
        """
        if x.shape != (graph.num_nodes, self.in_channels):
            raise ValueError(f"LieConv: x must have shape [{graph.num_nodes}, {self.in_channels}], got {list(x.shape)}")
        edge_index, edge_attr, dist, target_batch = graph.edge_index, graph.edge_attr, graph.dist, graph.batch
        if target_index is not None:
            edge_index, keep = _restrict_targets(edge_index, target_index, graph.num_nodes)
            edge_attr, dist, target_batch = edge_attr[keep], dist[keep], graph.batch[target_index]
        graph_size = torch.bincount(graph.batch)[target_batch]
        radius = self.radius if self.uses_ball else None
        edges, observed = select_neighbourhood(dist, edge_index[1], graph_size, radius, self.mc_samples, self.knn)
        if observed is not None:
            self._adapt_radius(observed)
        size = (graph.num_nodes, target_batch.numel())
        return self.propagate(edge_index[:, edges], x=x, edge_attr=edge_attr[edges], size=size)

    @torch.no_grad()
    def _adapt_radius(self, observed: Tensor) -> None:
        self.observed_fill.copy_(observed)
        if self.training:
            self.radius.add_(self.radius_step * (self.fill - observed)).clamp_(min=1e-6)

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return torch.cat([x_j, self.kernel(edge_attr).to(x_j.dtype)], dim=-1)

    def aggregate(self, inputs: Tensor, index: Tensor, ptr: Optional[Tensor] = None, dim_size: Optional[int] = None) -> Tensor:
        f, w = inputs[:, : self.in_channels], inputs[:, self.in_channels :]
        num_targets = int(dim_size)
        if self.aggregation == "bmm":
            p = _padded_outer_sum(f, w, index, num_targets)
        else:
            p = _scatter_outer_sum(f, w, index, num_targets)
        p = p.reshape(num_targets, -1)
        if self.mean:
            count = torch.bincount(index, minlength=num_targets).clamp_(min=1).to(p.dtype)
            p = p / count.unsqueeze(-1)
        return p

    def update(self, aggr_out: Tensor) -> Tensor:
        return self.lin(aggr_out)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, group={self.group}, "
            f"mc_samples={self.mc_samples}, fill={self.fill:g}, knn={self.knn})"
        )


def _padded_outer_sum(f: Tensor, w: Tensor, index: Tensor, num_targets: int) -> Tensor:
    r""":math:`P_i = \sum_{e \to i} f_e \otimes w_e` as one batched matmul over targets padded to the largest degree."""
    rank = segment_rank(index, num_targets)
    max_degree = int(rank.max()) + 1 if rank.numel() else 1  # host sync: the padded size
    f_pad = f.new_zeros(num_targets, max_degree, f.shape[-1]).index_put_((index, rank), f)
    w_pad = w.new_zeros(num_targets, max_degree, w.shape[-1]).index_put_((index, rank), w)
    return f_pad.transpose(1, 2) @ w_pad


def _scatter_outer_sum(f: Tensor, w: Tensor, index: Tensor, num_targets: int) -> Tensor:
    r""":math:`P_i = \sum_{e \to i} f_e \otimes w_e` as a segment sum of per-edge outer products."""
    outer = f.unsqueeze(-1) * w.unsqueeze(-2)
    return outer.new_zeros(num_targets, f.shape[-1], w.shape[-1]).index_add_(0, index, outer)


def _restrict_targets(edge_index: Tensor, target_index: Tensor, num_nodes: int):
    """Keep the edges whose target is in ``target_index`` (sorted); renumber targets ``0..m-1``."""
    relabel = torch.full((num_nodes,), -1, dtype=torch.long, device=target_index.device)
    relabel[target_index] = torch.arange(target_index.numel(), device=target_index.device)
    dst = relabel[edge_index[1]]
    keep = dst >= 0
    return torch.stack([edge_index[0, keep], dst[keep]]), keep
