r"""Lifting (Algorithm 1 of the paper): points to group elements and orbits.

Every input point :math:`x_n` becomes ``lift_samples`` lifted elements :math:`(u_{nk}, q_n)`, stored
flat and point-major (lifted index :math:`m = nK + k`), with the graph and input-node index of each,
so that features are gathered with ``x[lifted.node_index]`` and everything stays sparse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .ops import dynamic_sizes_traced
from ._deprecation import deprecated_alias, renamed_keywords
from .groups import LieGroup

@dataclass
class LiftedPoints:
    """Lifted elements of a batch of point sets (all tensors have ``M = N * lift_samples`` rows)."""

    u: Tensor  #: ``[M, lie_dim]`` the lifted elements :math:`u`, as Lie algebra coordinates :math:`\log u`
    q: Tensor  #: ``[M, q_dim]`` orbit embeddings
    pos: Tensor  #: ``[M, d]`` the input point of each lifted element
    batch: Tensor  #: ``[M]`` graph of each lifted element (sorted)
    node_index: Tensor  #: ``[M]`` input node of each lifted element
    lift_samples: int  #: :math:`K`, lifted elements per input point

    @property
    def num_nodes(self) -> int:
        return self.u.shape[0]

    def index_select(self, index: Tensor) -> "LiftedPoints":
        """The lifted elements at ``index`` (kept in the given order).

        Args:
            index (torch.Tensor): lifted points ``[M]``.
        """
        return LiftedPoints(
            self.u[index], self.q[index], self.pos[index], self.batch[index], self.node_index[index], self.lift_samples
        )


LiftedPoints.__init__ = renamed_keywords(num_samples="lift_samples")(LiftedPoints.__init__)  # before 0.3
LiftedPoints.num_samples = deprecated_alias("num_samples", "lift_samples")  # before 0.3


@renamed_keywords(num_samples="lift_samples")  # before 0.3
def lift_points(
    group: LieGroup,
    pos: Tensor,
    batch: Optional[Tensor] = None,
    lift_samples: int = 1,
    frames: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    checked: bool = False,
) -> LiftedPoints:
    """Validate ``pos`` ``[N, d]`` and lift it with ``group`` (``lift_samples`` stabilizer samples per point).

    Args:
        group (LieGroup): the symmetry group.
        pos (torch.Tensor): point coordinates.
        batch (torch.Tensor, optional): graph index of each point, sorted (``None``: one graph).
            (default: :obj:`None`)
        lift_samples (int, optional): K, lifted elements per point (only matters for groups with a
            stabilizer); ``num_samples`` before 0.3. (default: :obj:`1`)
        frames (torch.Tensor, optional): explicit stabilizer frames ``[N, K, m, m]`` (see
            :meth:`LieGroup.lift`). (default: :obj:`None`)
        generator (torch.Generator, optional): random generator for the stabilizer samples.
            (default: :obj:`None`)
        checked (bool, optional): the caller has checked the values of ``pos`` and ``batch``
            (:func:`point_flags`); only shapes are checked here. (default: :obj:`False`)
    """
    if not isinstance(group, LieGroup):
        raise TypeError(f"group must be a LieGroup, got {type(group).__name__}")
    if int(lift_samples) < 1:
        raise ValueError(f"lift_samples must be >= 1, got {lift_samples}")
    group.check_pos_shape(pos)
    n = pos.shape[0]
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=pos.device)
    elif batch.shape != (n,):
        raise ValueError(f"batch must have shape [{n}] to match pos, got {list(batch.shape)}")
    if not checked and dynamic_sizes_traced():  # a traced forward checks on the device, when it runs
        torch._assert_async(~point_flags(group, pos, batch).any(), "lift_points: pos holds NaN, inf or points the "
                            "group cannot lift, or batch is not sorted")
    elif not checked and bool(point_flags(group, pos, batch).any()):  # one host sync
        raise_for_points(group, pos, batch)
    k = int(lift_samples)
    a, q = group.lift(pos, k, frames=frames, generator=generator)
    node_index = torch.arange(n, device=pos.device).repeat_interleave(k)
    return LiftedPoints(
        u=a.reshape(n * k, group.lie_dim),
        q=q.reshape(n * k, group.q_dim),
        pos=pos[node_index],
        batch=batch[node_index],
        node_index=node_index,
        lift_samples=k,
    )


def point_flags(group: LieGroup, pos: Tensor, batch: Tensor) -> Tensor:
    """``[3]`` booleans on the device: the two of the group's :meth:`LieGroup.pos_flags` of ``pos``
    and an unsorted ``batch``, to be read with others in one host sync (:func:`raise_for_points`
    explains). Raises a ``TypeError`` naming the group when its ``pos_flags`` does not return the
    ``[2]`` flags of its contract (a user group may override it).

    Args:
        group (LieGroup): the group that will lift the points.
        pos (torch.Tensor): points ``[N, d]``.
        batch (torch.Tensor): the graph of each point ``[N]``.
    """
    flags = group.pos_flags(pos)
    if not isinstance(flags, Tensor) or flags.shape != (NUM_POS_FLAGS,):
        got = f"shape {list(flags.shape)}" if isinstance(flags, Tensor) else type(flags).__name__
        raise TypeError(f"{group.name}.pos_flags(pos) must return a tensor of {NUM_POS_FLAGS} booleans (some "
                        f"coordinate is not finite, some point is where the lift is undefined), got {got}")
    # against the running maximum, not batch[1:] < batch[:-1]: no slice of length N - 1 (which would make
    # torch.export guard on N >= 3) and no branch on N
    unsorted = (batch < torch.cummax(batch, 0).values).any()
    return torch.cat([flags.to(torch.bool), unsorted.view(1)])


#: the flags of :meth:`LieGroup.pos_flags`; :func:`point_flags` adds one for the batch vector
NUM_POS_FLAGS = 2


def raise_for_points(group: LieGroup, pos: Tensor, batch: Tensor) -> None:
    """Raise the clear error for what :func:`point_flags` found.

    Args:
        group (LieGroup): the group that will lift the points.
        pos (torch.Tensor): points ``[N, d]``.
        batch (torch.Tensor): the graph of each point ``[N]``.
    """
    group.raise_for_pos(pos)
    raise ValueError(
        "batch must be sorted (each graph's points contiguous, as PyG's DataLoader makes them); an "
        "unsorted batch vector would connect points of different graphs"
    )
