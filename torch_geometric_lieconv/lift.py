r"""Lifting (Algorithm 1 of the paper): points to group elements and orbits.

Every input point :math:`x_n` becomes ``num_samples`` lifted elements :math:`(u_{nk}, q_n)`, stored
flat and point-major (lifted index :math:`m = nK + k`), with the graph and input-node index of each,
so that features are gathered with ``x[lifted.node_index]`` and everything stays sparse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from .groups import LieGroup, group_from_name


@dataclass
class LiftedPoints:
    """Lifted elements of a batch of point sets (all tensors have ``M = N * num_samples`` rows)."""

    a: Tensor  #: ``[M, lie_dim]`` Lie algebra coordinates of :math:`u`
    q: Tensor  #: ``[M, q_dim]`` orbit embeddings
    pos: Tensor  #: ``[M, d]`` the input point of each lifted element
    batch: Tensor  #: ``[M]`` graph of each lifted element (sorted)
    node_index: Tensor  #: ``[M]`` input node of each lifted element
    num_samples: int

    @property
    def num_nodes(self) -> int:
        return self.a.shape[0]

    def index_select(self, index: Tensor) -> "LiftedPoints":
        """The lifted elements at ``index`` (kept in the given order)."""
        return LiftedPoints(
            self.a[index], self.q[index], self.pos[index], self.batch[index], self.node_index[index], self.num_samples
        )


def lift_points(
    group: LieGroup,
    pos: Tensor,
    batch: Optional[Tensor] = None,
    num_samples: int = 1,
    frames: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> LiftedPoints:
    """Validate ``pos`` ``[N, d]`` and lift it with ``group`` (``num_samples`` stabilizer samples per point).

    Args:
        group: the symmetry group.
        pos: point coordinates.
        batch: graph index of each point, sorted (``None``: one graph).
        num_samples: K, lifted elements per point (only matters for groups with a stabilizer).
        frames: explicit stabilizer frames ``[N, K, m, m]`` (see :meth:`LieGroup.lift`).
        generator: random generator for the stabilizer samples.
    """
    if not isinstance(group, LieGroup):
        raise TypeError(f"group must be a LieGroup, got {type(group).__name__}")
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    group.check_pos(pos)
    n = pos.shape[0]
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=pos.device)
    elif batch.shape != (n,):
        raise ValueError(f"batch must have shape [{n}] to match pos, got {list(batch.shape)}")
    k = int(num_samples)
    a, q = group.lift(pos, k, frames=frames, generator=generator)
    node_index = torch.arange(n, device=pos.device).repeat_interleave(k)
    return LiftedPoints(
        a=a.reshape(n * k, group.lie_dim),
        q=q.reshape(n * k, group.q_dim),
        pos=pos[node_index],
        batch=batch[node_index],
        node_index=node_index,
        num_samples=k,
    )


class LiftTransform(BaseTransform):
    """A PyG transform storing the lift of ``data.pos`` on the data object.

    Adds ``lie_a`` ``[N*K, lie_dim]``, ``lie_q`` ``[N*K, q_dim]`` and ``lie_node_index`` ``[N*K]``.
    Only deterministic lifts (no stabilizer, e.g. T(d), SO(2)) should be cached this way; a random
    lift must be drawn anew for every forward pass.
    """

    def __init__(self, group, num_samples: int = 1) -> None:
        self.group = group_from_name(group) if isinstance(group, str) else group
        self.num_samples = num_samples

    def forward(self, data: Data) -> Data:
        lifted = lift_points(self.group, data.pos, None, self.num_samples)
        data.lie_a, data.lie_q, data.lie_node_index = lifted.a, lifted.q, lifted.node_index
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.group}, num_samples={self.num_samples})"
