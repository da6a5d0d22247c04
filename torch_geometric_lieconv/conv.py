r"""LieConv as a PyG :class:`~torch_geometric.nn.conv.MessagePassing` layer."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torch_geometric.nn.conv import MessagePassing

from .graph import PairGraph, select_slots
from .groups import LieGroup, group_from_name


class MaskedBatchNorm1d(nn.BatchNorm1d):
    r""":class:`~torch.nn.BatchNorm1d` whose training statistics skip padding rows.

    ``forward(x, mask)`` with ``x`` ``[R, C]`` and ``mask`` ``[R]`` normalises every row with the mean and
    (biased) variance of the rows where ``mask`` is true, and updates the running statistics with
    them (unbiased variance, as :class:`~torch.nn.BatchNorm1d`); rows outside the mask get finite but
    meaningless values. Without a mask, or in eval mode with running statistics, it is the plain
    layer (the same parameters and buffers, so state dicts are interchangeable). Statistics are taken
    in at least float32, also under autocast.
    """

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        if mask is None or (not self.training and self.track_running_stats):
            return super().forward(x)
        work = torch.promote_types(x.dtype, torch.float32)
        weight = mask.to(work)
        count = weight.sum().clamp(min=1)
        xw = x.to(work)
        mean = (weight @ xw) / count
        centred = xw - mean
        var = (weight @ centred.square()) / count
        if self.training and self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        inv_std = torch.rsqrt(var + self.eps)
        out = torch.addcmul(self.bias, centred, self.weight * inv_std) if self.affine else centred * inv_std
        return out.to(x.dtype)


class KernelMLP(nn.Sequential):
    r"""The kernel network :math:`k_\theta(\text{abq})`: three Linear + Swish layers (optional BatchNorm).

    ``forward(abq, mask)``: rows outside ``mask`` (padding) are ignored by the BatchNorm statistics.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 32, batch_norm: bool = False):
        layers = []
        for c_in, c_out in [(in_channels, hidden_channels), (hidden_channels, hidden_channels), (hidden_channels, out_channels)]:
            layers += [nn.Linear(c_in, c_out)] + ([MaskedBatchNorm1d(c_out)] if batch_norm else []) + [nn.SiLU()]
        super().__init__(*layers)

    def forward(self, abq: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        for layer in self:
            abq = layer(abq, mask) if isinstance(layer, MaskedBatchNorm1d) else layer(abq)
        return abq

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
        aggregation: how :math:`P_i` is formed; both compute the same thing. ``"bmm"`` (default): gather
            the sources of each target into ``[T, S, c_in]`` and one batched matmul with the kernel
            values ``[T, S, c_m]``. ``"scatter"``: a weighted segment sum per (target, kernel channel),
            :math:`P_i[:, m] = \sum_j W_{ijm} f_j` (``torch.nn.functional.embedding_bag``), whose
            backward re-gathers the sources, so it never stores per-edge source features (memory
            ``S * c_m`` per target instead of ``S * c_in``). Neither forms per-edge ``c_in x c_m``
            outer products.
        chunk_size: process at most this many targets at a time; with autograd each block is
            recomputed in backward (activation checkpointing), so the memory beyond the graph and the
            features is O(chunk_size * mc_samples) instead of O(targets * mc_samples). Needs the
            kernel's BatchNorm (if any) in eval mode. ``None``: all targets at once.

    Neighbourhoods are padded rows of the graph's slot table (:class:`PairGraph`), so a forward pass
    has no host-device synchronisation and fixed shapes; under autocast the kernel MLP and the
    matmuls run in low precision, while the pair embeddings and distances (group math) come from
    the graph in its own precision.
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
        chunk_size: Optional[int] = None,
    ) -> None:
        super().__init__(aggr=None)
        if aggregation not in ("bmm", "scatter"):
            raise ValueError(f"aggregation must be 'bmm' or 'scatter', got {aggregation!r}")
        if mc_samples < 1:
            raise ValueError(f"mc_samples must be >= 1, got {mc_samples}")
        if fill <= 0:
            raise ValueError(f"fill must be > 0, got {fill}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be None or >= 1, got {chunk_size}")
        self.chunk_size = None if chunk_size is None else int(chunk_size)
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
        slots, slot_mask, graph_size = graph.slots, graph.slot_mask, graph.graph_size
        if target_index is not None:
            slots, slot_mask, graph_size = slots[target_index], slot_mask[target_index], graph_size[target_index]
        radius = self.radius if self.uses_ball else None
        edges, valid, observed = select_slots(slots, slot_mask, graph.dist, graph_size, radius, self.mc_samples, self.knn)
        if observed is not None:
            self._adapt_radius(observed)
        source = graph.edge_index[0][edges]
        if self.chunk_size is not None and edges.shape[0] > self.chunk_size:
            return self._chunked(x, source, graph.edge_attr, edges, valid)
        if target_index is None and radius is None and self.mc_samples >= graph.max_degree:
            # every candidate edge is in the neighbourhood: one kernel row per edge, no padding rows
            w = _gather_rows(self.kernel(graph.edge_attr), edges)
            return self.aggregate_padded(x, source, w, valid)
        return self._padded_rows(x, source, graph.edge_attr, edges, valid)

    def _padded_rows(self, x: Tensor, source: Tensor, edge_attr: Tensor, edges: Tensor, valid: Tensor) -> Tensor:
        """Kernel on the padded neighbourhood rows (BatchNorm statistics over the valid ones), then aggregate."""
        w = self.kernel(edge_attr[edges].flatten(0, 1), valid.flatten()).view(*edges.shape, -1)
        return self.aggregate_padded(x, source, w, valid)

    def _chunked(self, x: Tensor, source: Tensor, edge_attr: Tensor, edges: Tensor, valid: Tensor) -> Tensor:
        """:meth:`_padded_rows` over blocks of ``chunk_size`` targets, each recomputed in backward."""
        if self.training and any(isinstance(layer, nn.BatchNorm1d) for layer in self.kernel):
            raise ValueError(
                "LieConv: chunk_size needs the kernel's BatchNorm in eval mode (its batch statistics span "
                "all edges); call .eval() or build the layer with kernel_batch_norm=False"
            )
        outs = []
        for start in range(0, edges.shape[0], self.chunk_size):
            rows = slice(start, start + self.chunk_size)
            args = (x, source[rows], edge_attr, edges[rows], valid[rows])
            if torch.is_grad_enabled():
                outs.append(checkpoint(self._padded_rows, *args, use_reentrant=False))
            else:
                outs.append(self._padded_rows(*args))
        return torch.cat(outs)

    def aggregate_padded(self, x: Tensor, source: Tensor, w: Tensor, valid: Tensor) -> Tensor:
        r"""The layer on padded neighbourhoods: sources ``source`` ``[T, S]`` (node ids), kernel values
        ``w`` ``[T, S, c_m]``, ``valid`` ``[T, S]`` -> ``[T, c_out]``.

        :math:`h_i = L\,\mathrm{vec}(P_i)/|\mathcal N_i|` with :math:`P_i = \sum_j f_j \otimes W_{ij}`;
        the mean's :math:`1/|\mathcal N_i|` and the padding mask are folded into :math:`W`, the smallest
        per-edge tensor.
        """
        num_targets = source.shape[0]
        scale = valid.to(torch.promote_types(w.dtype, torch.float32))
        if self.mean:
            scale = scale / scale.sum(1, keepdim=True).clamp(min=1)
        w = (w * scale.unsqueeze(-1).to(w.dtype)).to(x.dtype)
        if self.aggregation == "bmm":
            p = torch.bmm(w.transpose(1, 2), _gather_rows(x, source))  # [T, c_m, c_in]
        else:
            p = _WeightedSegmentSum.apply(x, source, w)
        return F.linear(p.reshape(num_targets, -1), self._lin_weight_kernel_major(), self.lin.bias)

    def _lin_weight_kernel_major(self) -> Tensor:
        """``lin.weight`` with its input index reordered from (c_in, c_m) to (c_m, c_in), matching ``P_i^T``."""
        c_out, c_in, c_m = self.out_channels, self.in_channels, self.kernel_channels
        return self.lin.weight.view(c_out, c_in, c_m).transpose(1, 2).reshape(c_out, c_m * c_in)

    @torch.no_grad()
    def _adapt_radius(self, observed: Tensor) -> None:
        self.observed_fill.copy_(observed)
        if self.training:
            self.radius.add_(self.radius_step * (self.fill - observed)).clamp_(min=1e-6)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, group={self.group}, "
            f"mc_samples={self.mc_samples}, fill={self.fill:g}, knn={self.knn})"
        )


def _gather_rows(values: Tensor, index: Tensor) -> Tensor:
    """``values[index]`` for a 2-d ``index`` via ``index_select`` (its backward is a fast ``index_add``)."""
    return values.index_select(0, index.flatten()).view(*index.shape, *values.shape[1:])


class _WeightedSegmentSum(torch.autograd.Function):
    r""":math:`P_i = W_i^\top X_{\text{source}_i}` (``[T, c_m, c_in]``) without storing the gathered rows.

    Forward: one weighted bag of ``S`` source rows per (target, kernel channel)
    (:func:`torch.nn.functional.embedding_bag`, a segment reduction). Backward: the two batched
    matmuls :math:`\partial X \mathrel{+}= W_i\,G_i` (scattered to the sources) and
    :math:`\partial W_i = X_{\text{source}_i} G_i^\top`, re-gathering the rows, so the memory kept for
    backward is ``S * c_m`` per target (plus ``x``), not ``S * c_in``. Differentiable twice (the
    backward is made of differentiable ops).
    """

    @staticmethod
    def forward(ctx, x: Tensor, source: Tensor, w: Tensor) -> Tensor:
        num_targets, width, channels = w.shape
        index = source.to(torch.int32) if x.shape[0] < 2**31 else source
        bags = index.unsqueeze(1).expand(num_targets, channels, width).reshape(num_targets * channels, width)
        weights = w.transpose(1, 2).reshape(num_targets * channels, width)
        ctx.save_for_backward(x, source, w)
        return F.embedding_bag(bags, x, mode="sum", per_sample_weights=weights).view(num_targets, channels, -1)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, source, w = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            rows = torch.bmm(w, grad)  # [T, S, c_in]
            grad_x = x.new_zeros(x.shape).index_add(0, source.flatten(), rows.flatten(0, 1))
        if ctx.needs_input_grad[2]:
            grad_w = torch.bmm(_gather_rows(x, source), grad.transpose(1, 2))  # [T, S, c_m]
        return grad_x, None, grad_w
