"""A dense, padded reference of LieConv: Algorithm 2 written directly over all pairs of each graph.

Used by the tests (the sparse layer must agree with it) and by the benchmarks (as the baseline whose
memory grows with the square of the largest graph, like the original implementation).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch_geometric.utils import to_dense_batch

from ..conv import LieConv
from ..lift import lift_points


def dense_pair_embeddings(group, a: Tensor, q: Tensor) -> Tensor:
    """``[B, n, n, D]`` with entry (b, i, j) = [log(v_j^-1 u_i), q_i, q_j].

    Args:
        group (LieGroup): the group.
        a (torch.Tensor): lifted elements, padded per graph ``[B, n, lie_dim]``.
        q (torch.Tensor): their orbits ``[B, n, q_dim]``.
    """
    n = a.shape[1]
    a_i = a.unsqueeze(2).expand(-1, -1, n, -1)
    a_j = a.unsqueeze(1).expand(-1, n, -1, -1)
    work = torch.float64
    ab = group.log(group.exp(-a_j.to(work)) @ group.exp(a_i.to(work))).to(a.dtype)
    q_i = q.unsqueeze(2).expand(-1, -1, n, -1)
    q_j = q.unsqueeze(1).expand(-1, n, -1, -1)
    return torch.cat([ab, q_i, q_j], dim=-1)


def dense_lieconv(conv: LieConv, x: Tensor, a: Tensor, q: Tensor, batch: Tensor, radius: Optional[float]) -> Tensor:
    """LieConv over every pair of each graph with d < radius (all pairs if ``None``), no sampling.

    Args:
        conv (LieConv): the layer whose weights to use.
        x (torch.Tensor): features of the lifted points ``[M, C]``.
        a (torch.Tensor): lifted elements ``[M, lie_dim]``.
        q (torch.Tensor): their orbits ``[M, q_dim]``.
        batch (torch.Tensor): the graph of each lifted point ``[M]``.
        radius (float, optional): the ball radius (``None``: all pairs).
    """
    xd, mask = to_dense_batch(x, batch)
    ad, _ = to_dense_batch(a, batch)
    qd, _ = to_dense_batch(q, batch)
    abq = dense_pair_embeddings(conv.group, ad, qd)
    pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
    if radius is not None:
        pair_mask = pair_mask & (conv.group.distance(abq) < radius)
    w = conv.kernel(abq.flatten(0, 2)).view(*abq.shape[:3], -1)
    w = w * pair_mask.unsqueeze(-1)
    p = torch.einsum("bjc,bijm->bicm", xd, w).flatten(2)
    if conv.mean:
        p = p / pair_mask.sum(-1, keepdim=True).clamp(min=1)
    return conv.lin(p)[mask]


def dense_model_forward(model, x: Tensor, pos: Tensor, batch: Tensor, frames: Optional[Tensor] = None) -> Tensor:
    """A :class:`LieResNet` forward with every LieConv replaced by :func:`dense_lieconv` (``fill >= 1``,
    no subsampling).

    Args:
        model (LieResNet): the model whose weights to use (``fill >= 1``, no subsampling).
        x (torch.Tensor): node features ``[N, C]``.
        pos (torch.Tensor): positions ``[N, d]``.
        batch (torch.Tensor): the graph of each node ``[N]``.
        frames (torch.Tensor, optional): stabilizer frames ``[N, K, m, m]``. (default: :obj:`None`)
    """
    lifted = lift_points(model.group, pos, batch, model.lift_samples, frames)
    h = model.lin_in(x[lifted.node_index])
    for block in model.blocks:
        out = block.post(dense_lieconv(block.conv, block.pre(h), lifted.u, lifted.q, lifted.batch, None))
        c = min(block.in_channels, block.out_channels)
        h = torch.cat([out[:, :c] + h[:, :c], out[:, c:]], dim=-1)
    from torch_geometric.nn import global_mean_pool

    return global_mean_pool(model.head(h), lifted.batch)
