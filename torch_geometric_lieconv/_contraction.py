r"""The neighbourhood contraction of :class:`~torch_geometric_lieconv.LieConv`:
:math:`P_i = W_i^\top X_{\text{source}_i}` over padded ``[T, S]`` rows, and the CPU's bfloat16 choice.

Timed side by side (with ``torch_scatter.segment_csr`` over the edges, 5x to 25x slower everywhere,
so not offered) by ``python -m benchmarks.aggregation``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gather_rows(values: Tensor, index: Tensor) -> Tensor:
    """``values[index]`` for a 2-d ``index`` via ``index_select`` (its backward is a fast ``index_add``)."""
    return values.index_select(0, index.flatten()).view(*index.shape, *values.shape[1:])


def cpu_bfloat16_bmm_is_faster() -> bool:
    r"""Whether this CPU runs the aggregation's batched matmul faster in bfloat16 than in float32.

    True where the CPU has AMX-BF16 tiles (Intel Xeon from Sapphire Rapids on) and the operating
    system lets this process use them: oneDNN then runs a bfloat16 ``bmm`` on the tiles. There
    (an Intel Xeon with AMX, one thread), ``python -m benchmarks.aggregation`` measured the bfloat16
    ``bmm`` 1.9x to 3.4x faster than casting its bfloat16 inputs to float32 at QM9 sizes
    (``c_in = 384``), forward and forward + backward, and even to 1.2x faster at RotMNIST sizes
    (``c_in`` 8 to 17, within the run-to-run noise of ~10% there). Without AMX (the AMD EPYC behind
    the earlier float32 choice, see ``python -m benchmarks.mixed_precision``) the bfloat16 ``bmm`` of
    these shapes was slower, so it stays in float32 there, and wherever torch cannot tell (before
    torch 2.5). The layer reads
    :data:`CPU_BFLOAT16_BMM`, this answer taken once at import.
    """
    capabilities = getattr(torch.cpu, "get_capabilities", None)  # None before torch 2.5: keep float32
    has_amx = capabilities is not None and bool(capabilities().get("amx_bf16", False))
    # asks Linux for the AMX tile state (oneDNN asks too); False where the kernel refuses it
    request = getattr(getattr(torch._C, "_cpu", None), "_init_amx", None)
    return has_amx and (request is None or bool(request()))


#: :func:`cpu_bfloat16_bmm_is_faster` of this process, asked once at import: a constant that
#: ``torch.compile`` reads without tracing the probe (which would break the graph)
CPU_BFLOAT16_BMM: bool = cpu_bfloat16_bmm_is_faster()


def cpu_autocast_bmm_dtype(dtype: torch.dtype) -> torch.dtype:
    r"""The dtype of the aggregation's batched matmul under CPU autocast, for features of ``dtype``.

    bfloat16 where autocast runs in bfloat16, the features are float32 or bfloat16 and
    :data:`CPU_BFLOAT16_BMM` (:func:`cpu_bfloat16_bmm_is_faster`); otherwise at least float32
    (float64 stays float64), with the inputs cast up (measured by ``python -m
    benchmarks.aggregation``, see there).

    Args:
        dtype (torch.dtype): the features' dtype.
    """
    if (dtype in (torch.float32, torch.bfloat16) and torch.get_autocast_dtype("cpu") == torch.bfloat16
            and CPU_BFLOAT16_BMM):
        return torch.bfloat16
    return torch.promote_types(dtype, torch.float32)


class WeightedSegmentSum(torch.autograd.Function):
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
            grad_w = torch.bmm(gather_rows(x, source), grad.transpose(1, 2))  # [T, S, c_m]
        return grad_x, None, grad_w
