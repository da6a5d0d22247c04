r"""Translation groups: :math:`T(d)`, its axis subgroups :math:`T_x, T_y`, and the trivial group."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from .base import LieGroup, weighted_parts


def _homogeneous_translation(t: Tensor) -> Tensor:
    """``[..., d]`` translations to ``[..., d+1, d+1]`` homogeneous matrices."""
    d = t.shape[-1]
    g = torch.eye(d + 1, dtype=t.dtype, device=t.device).expand(*t.shape[:-1], d + 1, d + 1).clone()
    g[..., :d, d] = t
    return g


class Trivial(LieGroup):
    r"""The trivial group on :math:`\mathbb{R}^d`: no symmetry, the orbit of :math:`x` is :math:`x` itself.

    ``lie_dim = 0``, :math:`q = x`, :math:`d = \|x_i - x_j\|`. LieConv reduces to PointConv.

    Args:
        dim (int, optional): :math:`d`. (default: :obj:`3`)
        alpha (float, optional): unused (no Lie algebra part); accepted for a uniform interface. (default:
            :obj:`None`)
    """

    lie_dim = 0
    pair_dtype = None

    def __init__(self, dim: int = 3, alpha: Optional[float] = None) -> None:
        super().__init__(alpha)
        self.space_dim = self.q_dim = int(dim)

    def exp(self, a: Tensor) -> Tensor:
        return torch.ones(*a.shape[:-1], 1, 1, dtype=a.dtype, device=a.device)

    def log(self, g: Tensor) -> Tensor:
        return g.new_zeros(*g.shape[:-2], 0)

    def lift(self, pos, num_samples=1, frames=None, generator=None) -> Tuple[Tensor, Tensor]:
        q = pos.unsqueeze(1).expand(-1, num_samples, -1)
        return pos.new_zeros(pos.shape[0], num_samples, 0), q

    def distance(self, abq: Tensor) -> Tensor:
        _, q_u, q_v = self.split_pair_embedding(abq)
        return self.orbit_distance(q_u, q_v)

    def pair_log(self, a_u: Tensor, a_v: Tensor) -> Tensor:
        return a_u

    def act(self, g: Tensor, pos: Tensor) -> Tensor:
        return pos

    def search_embedding(self, a: Tensor, q: Tensor, pos: Tensor) -> Tensor:
        r"""The point itself: :math:`d = \|q_u - q_v\|` exactly."""
        return q

    def euclidean_radius(self, r: float, max_norm: float) -> Optional[float]:
        return r

    def __repr__(self) -> str:
        return f"Trivial({self.space_dim})"


class T(LieGroup):
    r"""Translations :math:`T(d)` of :math:`\mathbb{R}^d`; a single orbit, :math:`u = x`.

    :math:`\log(v^{-1}u) = x_u - x_v` and :math:`d = \|x_u - x_v\|`.

    Args:
        dim (int, optional): :math:`d`. (default: :obj:`3`)
        alpha (float, optional): unused (no orbit part); accepted for a uniform interface. (default:
            :obj:`None`)
    """

    q_dim = 0
    pair_dtype = None

    def __init__(self, dim: int = 3, alpha: Optional[float] = None) -> None:
        super().__init__(alpha)
        self.space_dim = self.lie_dim = int(dim)

    def exp(self, a: Tensor) -> Tensor:
        return _homogeneous_translation(a)

    def log(self, g: Tensor) -> Tensor:
        d = self.lie_dim
        return g[..., :d, d]

    def lift(self, pos, num_samples=1, frames=None, generator=None) -> Tuple[Tensor, Tensor]:
        a = pos.unsqueeze(1).expand(-1, num_samples, -1)
        return a, pos.new_zeros(pos.shape[0], num_samples, 0)

    def distance(self, abq: Tensor) -> Tensor:
        return abq.norm(dim=-1)

    def pair_log(self, a_u: Tensor, a_v: Tensor) -> Tensor:
        return a_u - a_v

    def search_embedding(self, a: Tensor, q: Tensor, pos: Tensor) -> Tensor:
        r"""The translation itself: :math:`d = \|a_u - a_v\|` exactly."""
        return a

    def euclidean_radius(self, r: float, max_norm: float) -> Optional[float]:
        return r

    def __repr__(self) -> str:
        return f"T({self.lie_dim})"


class _AxisTranslation(LieGroup):
    r"""Translations of :math:`\mathbb{R}^2` along one axis; the other coordinate labels the orbit."""

    space_dim, lie_dim, q_dim = 2, 1, 1
    pair_dtype = None
    axis: int

    def exp(self, a: Tensor) -> Tensor:
        t = torch.zeros(*a.shape[:-1], 2, dtype=a.dtype, device=a.device)
        t[..., self.axis] = a[..., 0]
        return _homogeneous_translation(t)

    def log(self, g: Tensor) -> Tensor:
        return g[..., self.axis, 2:3]

    def lift(self, pos, num_samples=1, frames=None, generator=None) -> Tuple[Tensor, Tensor]:
        a = pos[:, self.axis : self.axis + 1].unsqueeze(1).expand(-1, num_samples, -1)
        q = pos[:, 1 - self.axis : 2 - self.axis].unsqueeze(1).expand(-1, num_samples, -1)
        return a, q

    def pair_log(self, a_u: Tensor, a_v: Tensor) -> Tensor:
        return a_u - a_v

    def search_embedding(self, a: Tensor, q: Tensor, pos: Tensor) -> Tensor:
        r""":math:`(\alpha a, (1-\alpha) q)`: its L1 distance is :math:`d`, so the L2 one is below it."""
        return weighted_parts((self.alpha, a), (1 - self.alpha, q))

    def euclidean_radius(self, r: float, max_norm: float) -> Optional[float]:
        # alpha |da| + (1 - alpha) |dq| < r: the convex |(da, dq)| is largest at a vertex of that region.
        if self.alpha in (0.0, 1.0):
            return None
        return max(r / self.alpha, r / (1 - self.alpha))


class Tx(_AxisTranslation):
    """Translations along the x axis of the plane."""

    axis = 0


class Ty(_AxisTranslation):
    """Translations along the y axis of the plane."""

    axis = 1
