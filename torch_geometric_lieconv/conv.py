r"""LieConv as a PyG :class:`~torch_geometric.nn.conv.MessagePassing` layer."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear, is_uninitialized_parameter
from torch_geometric.typing import PairTensor

from ._contraction import WeightedSegmentSum, cpu_autocast_bmm_dtype, gather_rows
from .ops import dynamic_sizes_traced
from .graph import NeighborTable, graph_sizes, neighbor_table, select_slots
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

    Args:
        in_channels (int): the pair embedding's width.
        out_channels (int): the kernel's outputs.
        hidden_channels (int, optional): the hidden width. (default: :obj:`32`)
        batch_norm (bool, optional): BatchNorm after the hidden layers. (default: :obj:`False`)
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

    A message passing layer on a graph of lifted points :math:`(u_i, q_i)`: an edge :math:`j \to i`
    carries the pair embedding :math:`\text{abq}_{ij} = [\log(v_j^{-1}u_i), q_i, q_j]` as its
    ``edge_attr`` (see :func:`~torch_geometric_lieconv.lift_graph`), and

    .. math::
        \mathbf{h}_i = L\,\mathrm{vec}\Big(\frac{1}{|\mathcal{N}_i|} \sum_{j \in \mathcal{N}_i}
        \mathbf{f}_j \otimes W_\theta(\text{abq}_{ij})\Big),

    where :math:`\mathcal{N}_i` holds at most ``mc_samples`` of :math:`i`'s edges drawn uniformly from
    the ball :math:`d(\text{abq}_{ij}) < r` (or the ``mc_samples`` nearest, ``knn=True``), the kernel
    MLP :math:`W_\theta: \mathbb{R}^{D} \to \mathbb{R}^{c_m}` and one Linear
    :math:`L: \mathbb{R}^{c_{in} c_m} \to \mathbb{R}^{c_{out}}` factorise the kernel
    :math:`k_\theta(\cdot)\,\mathbf{f} = L\,\mathrm{vec}(\mathbf{f} \otimes W_\theta(\cdot))`.

    Aggregation runs through :meth:`propagate` over the selected edges: :meth:`message` computes
    the kernel values :math:`W_\theta(\text{abq}_{ij})` (``[E, c_m]``, the tensor an explainer's
    edge mask scales) and :meth:`aggregate` forms
    :math:`P_i = \frac{1}{|\mathcal{N}_i|}\sum_j \mathbf{f}_j \otimes W_{ij}` as one batched
    contraction over padded neighbourhoods, never a per-edge :math:`c_{in} \times c_m` outer product.

    The radius :math:`r` is a buffer: in training mode it moves by
    :math:`0.5\,(\text{fill} - \text{observed fill})` each step so that on average a fraction ``fill``
    of each graph lies in the ball; ``fill >= 1`` means every edge (no radius).

    **The ball and its graph.** A ball can only select pairs that are in ``edge_index``, so a layer
    with a ball (``fill < 1`` and not ``knn``) must know the group radius :math:`R` the candidate edges
    were built for: pass ``candidate_radius`` (the ``candidate_radius`` of
    :func:`~torch_geometric_lieconv.lift_graph` and :class:`~torch_geometric_lieconv.transforms.LiftGraph`,
    or ``float("inf")`` when ``edge_index`` holds every pair of each graph); without it the layer
    raises. A ball wider than its graph is capped, :math:`\min(r, R)`, with one warning per layer
    (the fill it then reaches is recorded in the ``observed_fill`` buffer), and in training the
    radius adapts from the capped value, so it stays within :math:`R` plus one step.

    Args:
        in_channels (int or tuple): :math:`c_{in}`, the source features' size; ``-1`` infers it
            from the first input (lazy initialisation); a tuple ``(source, target)`` is accepted for
            bipartite graphs (the targets' features are not used).
        out_channels (int): :math:`c_{out}`.
        group (LieGroup or str): the group, or its name.
        mc_samples (int, optional): neighbourhood size (Monte Carlo samples of Eq. 7).
            (default: :obj:`32`)
        fill (float, optional): target fraction of each graph inside the ball. (default: :obj:`1/3`)
        knn (bool, optional): use the ``mc_samples`` nearest points under :math:`d` instead of
            random samples in the ball. (default: :obj:`False`)
        mean (bool, optional): divide by the number of sampled neighbours. (default: :obj:`True`)
        kernel_channels (int, optional): :math:`c_m`. (default: :obj:`16`)
        kernel_hidden (int, optional): width of the kernel MLP. (default: :obj:`32`)
        kernel_batch_norm (bool, optional): BatchNorm inside the kernel MLP (statistics over the
            selected edges). (default: :obj:`False`)
        aggregation (str, optional): how :math:`P_i` is formed; both compute the same thing.
            ``"bmm"``: gather the sources of each target into ``[T, S, c_in]`` and one batched
            matmul with the kernel values ``[T, S, c_m]``. ``"scatter"``: a weighted segment sum
            per (target, kernel channel) (:func:`torch.nn.functional.embedding_bag`) whose backward
            re-gathers the sources, so per-edge source features are never stored. Where each runs
            best (CPU, one thread, ``python -m benchmarks.aggregation``): ``"bmm"`` is the fastest
            forward + backward at QM9 and RotMNIST sizes, in float32 and bfloat16 (``"scatter"`` ties
            it at QM9's ``c_in = 384``, is 15% to 45% slower at RotMNIST's ``c_in`` 8 to 17), so it is
            the default on every device (CUDA not measured); ``"scatter"`` is the faster forward
            alone at QM9 sizes (2x to 3.6x in float32) and keeps less memory for backward. Under
            CPU autocast the ``"bmm"`` matmul runs in bfloat16 on CPUs with AMX-BF16 and in float32
            elsewhere (:func:`~torch_geometric_lieconv._contraction.cpu_bfloat16_bmm_is_faster`).
            A ``torch_scatter.segment_csr`` over the edges was measured too and lost everywhere
            (5x to 25x slower). (default: :obj:`"bmm"`)
        initial_radius (float, optional): the ball radius before adaptation. (default: :obj:`2.0`)
        radius_step (float, optional): step of the radius adaptation. (default: :obj:`0.5`)
        continuous_kernel (bool, optional): feed the kernel MLP the matrix :math:`v^{-1}u` (and the
            orbits) instead of its log (:meth:`LieGroup.continuous_kernel_input`): no jump where the
            relative rotation angle crosses :math:`\pm\pi` (SO(2), SE(2), RxSO(2), SO(3), SE(3)).
            Distances, balls and sampling still use the log. (default: :obj:`False`)
        chunk_size (int, optional): propagate at most this many targets at a time; with autograd
            each block is recomputed in backward (activation checkpointing), so the memory beyond
            the graph and the features is O(chunk_size * mc_samples). Needs the kernel's BatchNorm
            (if any) in eval mode. (default: :obj:`None`, all targets at once)
        **kwargs (optional): arguments of :class:`~torch_geometric.nn.conv.MessagePassing` that
            apply to this layer: ``flow`` and ``node_dim`` (``0`` or ``-2``). ``aggr`` (the layer's
            aggregation is its own) and ``decomposed_layers > 1`` raise.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}_s|, c_{in})`,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge features (abq) :math:`(|\mathcal{E}|, D)` with :math:`D` the group's
          ``embedding_dim``,
          size :math:`(|\mathcal{V}_s|, |\mathcal{V}_t|)` *(optional)*,
          batch vector :math:`(|\mathcal{V}_s|)` or a pair for the sources and the targets
          *(optional, by keyword)*
        - **output:** node features :math:`(|\mathcal{V}_t|, c_{out})`
    """

    def __init__(
        self,
        in_channels: Union[int, Tuple[int, int]],
        out_channels: int,
        group: Union[LieGroup, str],
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
        continuous_kernel: bool = False,
        chunk_size: Optional[int] = None,
        **kwargs,
    ) -> None:
        for name in ("aggr", "aggr_kwargs"):
            if name in kwargs:
                raise ValueError(f"LieConv: '{name}' cannot be set: the layer aggregates by its own "
                                 f"neighbourhood mean (mean=False for a sum)")
        if kwargs.get("node_dim", -2) not in (0, -2):
            raise ValueError(f"LieConv: node features are [num_nodes, channels]: node_dim must be 0 or -2, "
                             f"got {kwargs['node_dim']}")
        if kwargs.get("decomposed_layers", 1) != 1:
            raise ValueError("LieConv: decomposed_layers > 1 is not supported (the aggregation contracts "
                             "all channels at once)")
        kwargs["node_dim"] = 0
        super().__init__(aggr=None, **kwargs)
        if aggregation not in ("bmm", "scatter"):
            raise ValueError(f"aggregation must be 'bmm' or 'scatter', got {aggregation!r}")
        if mc_samples < 1:
            raise ValueError(f"mc_samples must be >= 1, got {mc_samples}")
        if not fill > 0:
            raise ValueError(f"fill must be > 0, got {fill}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be None or >= 1, got {chunk_size}")
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        if isinstance(in_channels, (tuple, list)):
            in_channels = in_channels[0]
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.group: LieGroup = group_from_name(group) if isinstance(group, str) else group
        self.mc_samples, self.fill, self.knn, self.mean = int(mc_samples), float(fill), knn, mean
        self.kernel_channels, self.aggregation = kernel_channels, aggregation
        self.initial_radius, self.radius_step = initial_radius, radius_step
        self.continuous_kernel = bool(continuous_kernel)
        self.kernel = KernelMLP(self.group.kernel_input_dim(self.continuous_kernel), kernel_channels, kernel_hidden,
                                kernel_batch_norm)
        self.lin = Linear(self.in_channels * kernel_channels if self.in_channels > 0 else -1, out_channels)
        self.register_buffer("radius", torch.tensor(float(initial_radius)))
        self.register_buffer("observed_fill", torch.tensor(float("nan")))
        self._warned_capped = False

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
        self._warned_capped = False

    def forward(
        self,
        x: Union[Tensor, PairTensor],
        edge_index: Tensor,
        edge_attr: Tensor,
        size: Optional[Tuple[int, int]] = None,
        *,
        batch: Optional[Union[Tensor, PairTensor]] = None,
        candidate_radius: Optional[Union[float, Tensor]] = None,
        table: Optional[NeighborTable] = None,
        edge_dist: Optional[Tensor] = None,
    ) -> Tensor:
        r"""Runs the forward pass of the module.

        Args:
            x (torch.Tensor or (torch.Tensor, torch.Tensor)): features of the lifted source points
                (a pair: sources and targets; the targets' features are not used).
            edge_index (torch.Tensor): candidate edges :math:`j \to i` (with the default
                ``flow="source_to_target"``: source row 0, target row 1).
            edge_attr (torch.Tensor): their pair embeddings :math:`\text{abq}_{ij}`.
            size ((int, int), optional): the number of sources and targets for a bipartite graph.
                (default: :obj:`None`, the same points)
            batch (torch.Tensor or (torch.Tensor, torch.Tensor), optional): graph of each source
                (and target) point; it sets each graph's size for the fill. (default: :obj:`None`,
                one graph)
            candidate_radius (float or torch.Tensor, optional): the group radius the candidate
                edges were built for (the ``candidate_radius`` of
                :func:`~torch_geometric_lieconv.lift_graph`; ``float("inf")``: every pair of each
                graph). Required with a ball (``fill < 1``, not ``knn``); a ball wider than it is
                capped (see the class docstring). (default: :obj:`None`)
            table (NeighborTable, optional): the targets' candidate rows, laid out once and shared
                by the layers of a model (:func:`~torch_geometric_lieconv.graph.neighbor_table`);
                with rows of a subset of the targets the outputs are those targets'. The caller of
                a precomputed table is the one who warns about a capped ball (models do, from the
                radii they read once per forward). (default: :obj:`None`, laid out here)
            edge_dist (torch.Tensor, optional): ``[E]`` the group distances of ``edge_attr``, when a
                model already has them for all its layers. (default: :obj:`None`, computed here)
        """
        if size is not None and not isinstance(size, (tuple, list)):
            raise TypeError(f"LieConv: size must be a pair (num_sources, num_targets), got "
                            f"{type(size).__name__}; pass the batch vector by keyword (batch=...)")
        x_src, x_dst = (x[0], x[1]) if isinstance(x, (tuple, list)) else (x, None)
        if self.flow == "target_to_source":
            edge_index = edge_index.flip(0)
        num_sources = x_src.shape[0]
        self._materialize(x_src)
        self._check_inputs(x_src, edge_index, edge_attr)
        own_table = table is None
        if own_table:
            num_targets = size[1] if size is not None else (x_dst.shape[0] if x_dst is not None else num_sources)
            batch_src, batch_dst = batch if isinstance(batch, (tuple, list)) else (batch, None)
            table = neighbor_table(
                edge_index, num_targets, graph_sizes(batch_src, batch_dst, num_sources, num_targets, x_src.device)
            )
        radius = self._ball(candidate_radius, warn=own_table)
        # a traced forward cannot compare a symbolic table width: its rows are always sampled
        selects = radius is not None or self.knn or dynamic_sizes_traced() or self.mc_samples < table.width
        dist = edge_attr.new_empty(0)
        if selects:
            dist = self.group.distance(edge_attr) if edge_dist is None else edge_dist
        chosen, valid, observed = select_slots(
            table.slots, table.mask, dist, table.graph_size, radius, self.mc_samples, self.knn
        )
        if observed is not None:
            self._adapt_radius(radius, observed)
        if self.chunk_size is not None and chosen.shape[0] > self.chunk_size:
            return self._chunked(x_src, edge_index, edge_attr, chosen, valid)
        # a complete table with no selection: propagate over the input edges as they are
        position = table.position if table.complete and not selects else None
        return self._neighborhood_pass(x_src, edge_index, edge_attr, chosen, valid, position)

    def _ball(self, candidate_radius: Optional[Union[float, Tensor]], warn: bool) -> Optional[Tensor]:
        """The ball radius :math:`\\min(r, R)` (``None``: no ball)."""
        if not self.uses_ball:
            return None
        if candidate_radius is None:
            raise ValueError(
                f"LieConv: fill={self.fill:g} cuts each neighbourhood by a ball, which can only select pairs "
                f"present in edge_index; pass candidate_radius=..., the group radius the edges were built "
                f"for (graph.candidate_radius of lift_graph / LiftGraph), or float('inf') when edge_index "
                f"holds every pair of each graph"
            )
        if not isinstance(candidate_radius, Tensor) and math.isinf(float(candidate_radius)):
            return self.radius
        bound = torch.as_tensor(candidate_radius, dtype=self.radius.dtype, device=self.radius.device).min()
        if warn and not self._warned_capped and not torch.compiler.is_compiling():
            self.warn_if_capped(float(self.radius), float(bound))  # host sync, only without a table
        return torch.minimum(self.radius, bound)

    def warn_if_capped(self, radius: float, candidate_radius: float) -> None:
        """Warn (once per layer) when the ball radius ``radius`` exceeds the graph's ``candidate_radius``.

        Args:
            radius (float): the ball radius.
            candidate_radius (float): the radius the candidate graph covers.
        """
        if radius > candidate_radius * (1 + 1e-6) and not self._warned_capped:
            self._warned_capped = True
            warnings.warn(
                f"LieConv: the ball radius {radius:.4g} exceeds the radius {candidate_radius:.4g} the "
                f"candidate edges were built for; the ball is capped at {candidate_radius:.4g}, so the "
                f"neighbourhoods reach a smaller fill than fill={self.fill:g} (recorded in "
                f"observed_fill); build the graph with a larger radius to reach it", stacklevel=3,
            )

    def _materialize(self, x: Tensor) -> None:
        """Infer ``in_channels`` from the first input (lazy ``in_channels=-1``)."""
        if self.in_channels > 0:
            return
        if is_uninitialized_parameter(self.lin.weight):
            self.lin.initialize_parameters(self.lin, (x.new_empty(0, x.shape[-1] * self.kernel_channels),))
        self.in_channels = self.lin.in_channels // self.kernel_channels

    def _check_inputs(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"LieConv: x must have shape [num_nodes, {self.in_channels}], got {list(x.shape)}")
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"LieConv: edge_index must have shape [2, E], got {list(edge_index.shape)}")
        if edge_attr.shape != (edge_index.shape[1], self.group.embedding_dim):
            raise ValueError(
                f"LieConv: edge_attr must hold the {self.group} pair embeddings, shape "
                f"[{edge_index.shape[1]}, {self.group.embedding_dim}], got {list(edge_attr.shape)}"
            )

    def _neighborhood_pass(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, chosen: Tensor,
                            valid: Tensor, position: Optional[Tensor] = None) -> Tensor:
        """Propagate over the selected edges ``chosen[valid]`` (rows = outputs), then the Linear.

        ``position``: every input edge is selected, at these flat positions of the ``[T, S]`` rows
        (a complete table with no selection); ``None``: gather the selected edges. In a traced forward
        (:func:`torch.export.export`, ``torch.compile(fullgraph=True)``: :func:`~torch_geometric_lieconv.ops.dynamic_sizes_traced`)
        the messages are every slot of the rows,
        padding included and weighted zero (:meth:`message`'s ``slot_valid``): fixed shapes, no
        data-dependent edge count."""
        num_targets, width = chosen.shape
        norm = 1.0 / valid.sum(1, dtype=edge_attr.dtype).clamp(min=1) if self.mean else None
        edge_id = slot_valid = None
        if position is None and dynamic_sizes_traced():
            edge_id, slot_valid = chosen.flatten(), valid.flatten()
            rows = torch.arange(num_targets, device=chosen.device).unsqueeze(1).expand(-1, width).flatten()
            edge_index = torch.stack([edge_index[0].index_select(0, edge_id), rows])
            edge_attr = edge_attr.index_select(0, edge_id)
        elif position is None:
            flat = valid.flatten()
            position = flat.nonzero().squeeze(1)  # one host sync (the number of selected edges)
            edge_id = chosen.flatten().index_select(0, position)
            rows = torch.div(position, width, rounding_mode="floor")
            if position.numel() == flat.numel():
                position = None  # every row is full: the selected edges, in order, are the rows themselves
            edge_index = torch.stack([edge_index[0].index_select(0, edge_id), rows])
            edge_attr = edge_attr.index_select(0, edge_id)
        size = (x.shape[0], num_targets)
        if self.flow == "target_to_source":  # propagate in the layer's own convention
            edge_index, size = edge_index.flip(0), (num_targets, x.shape[0])
        p = self.propagate(edge_index, size=size, x=x, edge_attr=edge_attr, norm=norm, position=position,
                           slot_mask=valid, edge_id=edge_id, slot_valid=slot_valid)
        return F.linear(p, self._lin_weight_kernel_major(), self.lin.bias)

    def _chunked(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, chosen: Tensor, valid: Tensor) -> Tensor:
        """:meth:`_neighborhood_pass` over blocks of ``chunk_size`` targets, each recomputed in backward."""
        if self.training and any(isinstance(layer, nn.BatchNorm1d) for layer in self.kernel):
            raise ValueError(
                "LieConv: chunk_size needs the kernel's BatchNorm in eval mode (its batch statistics span "
                "all edges); call .eval() or build the layer with kernel_batch_norm=False"
            )
        outs = []
        for start in range(0, chosen.shape[0], self.chunk_size):
            rows = slice(start, start + self.chunk_size)
            args = (x, edge_index, edge_attr, chosen[rows], valid[rows])
            if torch.is_grad_enabled():
                outs.append(checkpoint(self._neighborhood_pass, *args, use_reentrant=False))
            else:
                outs.append(self._neighborhood_pass(*args))
        return torch.cat(outs)

    def message(self, edge_attr: Tensor, slot_valid: Optional[Tensor] = None) -> Tensor:
        r"""The kernel values :math:`W_\theta(\text{abq}_{ij})` of the edges, ``[E, c_m]``.

        ``slot_valid`` (``[E]``, a traced forward's padded slots): the messages of the other slots are
        zero and the kernel's BatchNorm statistics skip them."""
        if self.continuous_kernel:
            edge_attr = self.group.continuous_kernel_input(edge_attr)
        if slot_valid is not None:
            return self.kernel(edge_attr, slot_valid).masked_fill(~slot_valid.unsqueeze(-1), 0.0)
        return self.kernel(edge_attr)

    def explain_message(self, inputs: Tensor, dim_size: Optional[int], edge_id: Optional[Tensor]) -> Tensor:
        """Scale each message by the explainer's mask of its edge in the layer's input ``edge_index``."""
        if edge_id is None:
            return super().explain_message(inputs, dim_size)
        if self._edge_mask is None:
            raise ValueError("LieConv: no edge mask to explain; did you forget to initialise it?")
        mask = self._edge_mask.sigmoid() if self._apply_sigmoid else self._edge_mask
        return inputs * mask.index_select(0, edge_id).unsqueeze(-1)

    def aggregate(self, inputs: Tensor, x: Tensor, edge_index_j: Tensor, position: Optional[Tensor],
                  slot_mask: Tensor, norm: Optional[Tensor]) -> Tensor:
        r""":math:`\mathrm{vec}(P_i)`, ``[T, c_m c_in]``, with
        :math:`P_i = \frac{1}{|\mathcal{N}_i|}\sum_j W_{ij} \otimes f_j`.

        The messages are laid out as ``[T, S]`` rows (``slot_mask.shape``): edge ``e`` at flat
        position ``position[e]`` (``None``: the edges are the full rows in order), padding slots
        weigh zero. Then one batched matmul per row (or a weighted segment sum); the mean's
        :math:`1/|\mathcal{N}_i|` (``norm``) is folded into :math:`W`, the smallest per-edge tensor."""
        num_targets, width = slot_mask.shape
        if inputs.shape[0] == 0 or width == 0:
            return x.new_zeros(num_targets, self.kernel_channels * self.in_channels)
        if position is None:
            w, source = inputs, edge_index_j
        else:
            w = inputs.new_zeros(num_targets * width, inputs.shape[1]).index_copy(0, position, inputs)
            source = edge_index_j.new_zeros(num_targets * width).index_copy_(0, position, edge_index_j)
        w, source = w.view(num_targets, width, -1), source.view(num_targets, width)
        if norm is not None:
            w = w * norm.view(-1, 1, 1).to(w.dtype)
        w = w.to(x.dtype)
        if self.aggregation == "scatter":
            p = WeightedSegmentSum.apply(x, source, w)
        elif x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            work = cpu_autocast_bmm_dtype(x.dtype)  # bfloat16 only where the CPU multiplies it faster
            with torch.autocast("cpu", enabled=False):
                p = torch.bmm(w.transpose(1, 2).to(work), gather_rows(x.to(work), source))  # cast N rows, not T*S
        else:
            p = torch.bmm(w.transpose(1, 2), gather_rows(x, source))  # [T, c_m, c_in]
        return p.reshape(num_targets, -1)

    def _lin_weight_kernel_major(self) -> Tensor:
        """``lin.weight`` with its input index reordered from (c_in, c_m) to (c_m, c_in), matching ``P_i^T``."""
        c_out, c_in, c_m = self.out_channels, self.in_channels, self.kernel_channels
        return self.lin.weight.view(c_out, c_in, c_m).transpose(1, 2).reshape(c_out, c_m * c_in)

    @torch.no_grad()
    def _adapt_radius(self, ball: Tensor, observed: Tensor) -> None:
        """Record the fill reached; in training move the radius from the ball used (``min(r, R)``)."""
        self.observed_fill.copy_(observed)
        if self.training:
            self.radius.copy_((ball + self.radius_step * (self.fill - observed)).clamp(min=1e-6))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, group={self.group}, "
            f"mc_samples={self.mc_samples}, fill={self.fill:g}, knn={self.knn})"
        )
