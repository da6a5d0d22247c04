r"""Groups acting on :math:`\mathbb{R}^3`: rotations :math:`SO(3)` and rigid motions :math:`SE(3)`."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from ._rotations import hat3, homogeneous, rotation_with_first_column, vee3
from ._series import cosc, se3_left_jacobian_inverse_coefficient, sinc, sincc
from .base import LieGroup, log_in_double, weighted_parts

#: below this sin^2(theta) (and with cos(theta) > 0) the SO(3) log uses its Taylor series
_SMALL_SIN2 = 1e-8


def so3_exp(w: Tensor) -> Tensor:
    r"""Rodrigues: :math:`\exp([w]_\times) = I + \frac{\sin\theta}{\theta} W + \frac{1-\cos\theta}{\theta^2} W^2`.

    Args:
        w (torch.Tensor): rotation vectors ``[..., 3]``.
    """
    t2 = (w * w).sum(-1)[..., None, None]
    W = hat3(w)
    eye = torch.eye(3, dtype=w.dtype, device=w.device)
    return eye + sinc(t2) * W + cosc(t2) * (W @ W)


def so3_log(R: Tensor) -> Tensor:
    r"""Rotation vectors :math:`w` with :math:`\exp([w]_\times) = R`, :math:`\|w\| \le \pi`.

    Three regimes, each well conditioned, selected with gradient-safe ``where``:

    * :math:`\sin^2\theta < 10^{-8}`, :math:`\cos\theta > 0`: :math:`w = s(1 + s^2/6)`, with
      :math:`s = \mathrm{vee}(R - R^\top)/2 = \sin\theta\, n` (finite gradient at the identity);
    * :math:`\cos\theta \ge 0`: :math:`w = \mathrm{atan2}(\|s\|, \cos\theta)\, s/\|s\|`;
    * :math:`\cos\theta < 0` (towards :math:`\pi`, where :math:`s \to 0` loses the axis):
      the axis from the symmetric part, :math:`n n^\top = (\mathrm{sym}(R) - \cos\theta I)/(1-\cos\theta)`,
      its sign from :math:`s`, and :math:`\theta = \mathrm{atan2}(n\cdot s, \cos\theta)`.

    Args:
        R (torch.Tensor): rotations ``[..., 3, 3]``.
    """
    s = vee3(R)
    cos = ((R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1) / 2).clamp(-1.0, 1.0)
    s2 = (s * s).sum(-1)
    small = (s2 < _SMALL_SIN2) & (cos > 0)
    obtuse = cos < 0

    # regime 1: series
    w_small = s * (1 + s2 / 6 + 3 * s2 * s2 / 40).unsqueeze(-1)

    # regime 2: generic
    s_norm = torch.where(small | obtuse, torch.ones_like(s2), s2).sqrt()
    w_generic = (torch.atan2(s_norm, cos) / s_norm).unsqueeze(-1) * s

    # regime 3: near pi
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    sym = (R + R.transpose(-1, -2)) / 2
    one_minus_cos = torch.where(obtuse, 1 - cos, torch.ones_like(cos))
    nn = (sym - cos[..., None, None] * eye) / one_minus_cos[..., None, None]
    diag = torch.diagonal(nn, dim1=-2, dim2=-1)
    k = diag.argmax(-1, keepdim=True)
    col = torch.gather(nn, -1, k.unsqueeze(-2).expand(*nn.shape[:-1], 1)).squeeze(-1)
    pivot = torch.gather(diag, -1, k).clamp_min(1e-12)
    n = col / torch.where(obtuse.unsqueeze(-1), pivot, torch.ones_like(pivot)).sqrt()
    dot = (n * s).sum(-1, keepdim=True)
    n = torch.where(dot < 0, -n, n)
    theta = torch.atan2((n * s).sum(-1), cos)
    w_obtuse = theta.unsqueeze(-1) * n

    return torch.where(small.unsqueeze(-1), w_small, torch.where(obtuse.unsqueeze(-1), w_obtuse, w_generic))


class SO3(LieGroup):
    r"""Rotations of :math:`\mathbb{R}^3` about the origin; orbits are spheres, :math:`q = \|x\|`.

    Lift: :math:`u` is a rotation with :math:`u e_1 = x/\|x\|`, uniform over the stabilizer
    (rotations about :math:`e_1`) through a Haar-random frame; :math:`o_q = q e_1`. The origin is an
    orbit of its own (:math:`q = 0`) whose stabilizer is all of SO(3): its lift is a Haar-random rotation.
    Distance: :math:`\alpha\|w\| + (1-\alpha)|q_u - q_v|` of :math:`w = \log(v^{-1}u)`.
    """

    space_dim, lie_dim, q_dim = 3, 3, 1
    frame_dim = 3

    def exp(self, a: Tensor) -> Tensor:
        return so3_exp(a)

    def log(self, g: Tensor) -> Tensor:
        return so3_log(g)

    def lift(self, pos, num_samples=1, frames=None, generator=None) -> Tuple[Tensor, Tensor]:
        frames = self._frames(frames, pos, num_samples, generator).to(torch.float64)
        r = pos.norm(dim=-1, keepdim=True)
        at_origin = (r == 0).unsqueeze(1)
        direction = (pos.to(torch.float64) / torch.where(r == 0, torch.ones_like(r), r)).unsqueeze(1)
        # the origin is a whole orbit {0} whose stabilizer is SO(3): its lift is the random frame itself
        # (selected explicitly: rebuilding it from its first column would pick f2 or f3 by rounding noise)
        direction = torch.where(at_origin, frames[..., :, 0], direction.expand(-1, num_samples, -1))
        u = torch.where(at_origin.unsqueeze(-1), frames, rotation_with_first_column(direction, frames))
        return so3_log(u).to(pos.dtype), r.unsqueeze(1).expand(-1, num_samples, -1)

    def search_embedding(self, a: Tensor, q: Tensor, pos: Tensor) -> Tensor:
        r""":math:`(\tfrac{\alpha}{\sqrt 2}\mathrm{vec}(R_u), (1-\alpha) q)`. For rotations at angle
        :math:`\varphi = \|\log(R_v^\top R_u)\|` apart, :math:`\|R_u - R_v\|_F = 2\sqrt 2\sin(\varphi/2)
        \le \sqrt 2\,\varphi`, so :math:`\|\Delta\phi\|_2 \le \|\Delta\phi\|_1 \le d` (:math:`\rho(r) = r`)."""
        return weighted_parts((self.alpha / math.sqrt(2), so3_exp(a).flatten(-2)), (1 - self.alpha, q))

    def euclidean_radius(self, r: float, max_norm: float) -> Optional[float]:
        # |x_u - x_v| <= |r_u - r_v| + min(r) * angle(x_u, x_v), and that angle is at most |w|.
        if self.alpha in (0.0, 1.0):
            return None
        return r / (1 - self.alpha) + max_norm * r / self.alpha


class SE3(LieGroup):
    r"""Rigid motions of :math:`\mathbb{R}^3` as 4x4 homogeneous matrices; :math:`a = (w, v)`.

    :math:`\exp(w, v) = [R, V v]` with :math:`V = I + \frac{1-\cos\theta}{\theta^2}W + \frac{\theta-\sin\theta}{\theta^3}W^2`,
    :math:`V^{-1} = I - \tfrac12 W + \frac{1 - (\theta/2)\cot(\theta/2)}{\theta^2} W^2`.
    Lift: :math:`u = [F, x]` with :math:`F` Haar-random (``num_samples`` per point).
    Distance: :math:`\alpha\|w\| + (1-\alpha)\|v\|` of :math:`\log(v^{-1}u)`.
    """

    space_dim, lie_dim, q_dim = 3, 6, 0
    frame_dim = 3

    def exp(self, a: Tensor) -> Tensor:
        w, v = a[..., :3], a[..., 3:]
        t2 = (w * w).sum(-1)[..., None, None]
        W = hat3(w)
        eye = torch.eye(3, dtype=a.dtype, device=a.device)
        V = eye + cosc(t2) * W + sincc(t2) * (W @ W)
        return homogeneous(so3_exp(w), (V @ v.unsqueeze(-1)).squeeze(-1))

    def log(self, g: Tensor) -> Tensor:
        w = so3_log(g[..., :3, :3])
        t2 = (w * w).sum(-1)[..., None, None]
        W = hat3(w)
        eye = torch.eye(3, dtype=g.dtype, device=g.device)
        V_inv = eye - 0.5 * W + se3_left_jacobian_inverse_coefficient(t2) * (W @ W)
        return torch.cat([w, (V_inv @ g[..., :3, 3:4]).squeeze(-1)], dim=-1)

    def lift(self, pos, num_samples=1, frames=None, generator=None) -> Tuple[Tensor, Tensor]:
        frames = self._frames(frames, pos, num_samples, generator)
        t = pos.unsqueeze(1).expand(-1, num_samples, -1)
        return log_in_double(self, homogeneous(frames, t)), pos.new_zeros(pos.shape[0], num_samples, 0)

    def distance(self, abq: Tensor) -> Tensor:
        return self.alpha * abq[..., :3].norm(dim=-1) + (1 - self.alpha) * abq[..., 3:6].norm(dim=-1)

    def search_embedding(self, a: Tensor, q: Tensor, pos: Tensor) -> Tensor:
        r""":math:`((1-\alpha) x, \tfrac{\alpha}{\sqrt 2}\mathrm{vec}(R_u))`. :math:`\|v\| =
        \|V^{-1}R_v^\top(x_u - x_v)\| \ge \|x_u - x_v\|` because :math:`\|V\| \le 1`, and
        :math:`\|R_u - R_v\|_F \le \sqrt 2\,\|w\|` (see :class:`SO3`): hence
        :math:`\|\Delta\phi\|_2 \le \|\Delta\phi\|_1 \le d` (:math:`\rho(r) = r`)."""
        return weighted_parts((1 - self.alpha, pos), (self.alpha / math.sqrt(2), so3_exp(a[..., :3]).flatten(-2)))

    def euclidean_radius(self, r: float, max_norm: float) -> Optional[float]:
        # ||v|| = ||V^-1 (R_v^T (x_u - x_v))|| >= ||x_u - x_v|| because ||V|| <= 1.
        return None if self.alpha >= 1 else r / (1 - self.alpha)
