r"""Groups acting on the plane: :math:`SO(2)`, :math:`\mathbb{R}^*\times SO(2)`, scalings, :math:`SE(2)`."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from ._rotations import homogeneous, rotation2d, stratified_rotations2d
from ._series import cosc, half_cot, sinc
from .base import LieGroup, log_in_double, unit_circle, weighted_parts


#: the branch cut of logged angles sits at -pi + BRANCH_CUT_SHIFT rather than at +-pi
BRANCH_CUT_SHIFT = 1e-5


def wrap_angle(theta: Tensor) -> Tensor:
    r"""Angles from :func:`torch.atan2` (in :math:`[-\pi, \pi]`) moved into :math:`(-\pi + \delta, \pi + \delta]`.

    A relative rotation by exactly :math:`\pi` is common on symmetric point sets (a pixel and its
    antipode); rounding sends its log to :math:`+\pi` or :math:`-\pi` at random, and the kernel input
    would jump. Moving the cut by :math:`\delta` = ``BRANCH_CUT_SHIFT`` gives such pairs a consistent
    :math:`+\pi`; exp(log(g)) = g is unaffected.

    Args:
        theta (torch.Tensor): angles ``[...]`` from :func:`torch.atan2`.
    """
    return torch.where(theta <= -torch.pi + BRANCH_CUT_SHIFT, theta + 2 * torch.pi, theta)


def angle_difference(theta_u: Tensor, theta_v: Tensor) -> Tensor:
    r"""The angle of :math:`R(\theta_v)^{-1}R(\theta_u)` for angles in one branch of width :math:`2\pi`:
    :math:`\theta_u - \theta_v` (in :math:`(-2\pi, 2\pi)`) moved into the branch of :func:`wrap_angle`,
    with two comparisons instead of matrices or trigonometry.

    Args:
        theta_u (torch.Tensor): angles ``[...]``.
        theta_v (torch.Tensor): angles of the same shape.
    """
    d = theta_u - theta_v
    d = torch.where(d > torch.pi + BRANCH_CUT_SHIFT, d - 2 * torch.pi, d)
    return torch.where(d <= -torch.pi + BRANCH_CUT_SHIFT, d + 2 * torch.pi, d)


def _angle_of(m: Tensor) -> Tensor:
    """The rotation angle of (a multiple of) a 2x2 rotation matrix, see :func:`wrap_angle`."""
    return wrap_angle(torch.atan2(m[..., 1, 0] - m[..., 0, 1], m[..., 0, 0] + m[..., 1, 1]))


def _polar(pos: Tensor) -> Tuple[Tensor, Tensor]:
    return pos.norm(dim=-1), torch.atan2(pos[:, 1], pos[:, 0])


def _expand(t: Tensor, k: int) -> Tensor:
    """Per-point values ``[N]`` or ``[N, c]`` repeated for ``k`` lift samples: ``[N, k, c]``."""
    return (t.unsqueeze(-1) if t.dim() == 1 else t).unsqueeze(1).expand(-1, k, -1)


class SO2(LieGroup):
    r"""Rotations about the origin of :math:`\mathbb{R}^2`.

    Lift: :math:`u = R(\theta)` with :math:`\theta = \mathrm{atan2}(y, x)`, orbit :math:`q = r = \|x\|`,
    origin of the orbit :math:`o_q = (r, 0)`. Distance (reference):
    :math:`\alpha|\Delta\theta| + (1-\alpha)\,|r_u - r_v| / (r_u + r_v + 10^{-3})`.
    """

    space_dim, lie_dim, q_dim = 2, 1, 1
    undefined_at_origin = True
    #: pair logs are one subtraction and a wrap, exact to the input's rounding: no double precision
    pair_dtype = None

    def exp(self, a: Tensor) -> Tensor:
        return rotation2d(a[..., 0])

    def log(self, g: Tensor) -> Tensor:
        return _angle_of(g).unsqueeze(-1)

    def lift(self, pos, num_samples=1, frames=None, generator=None) -> Tuple[Tensor, Tensor]:
        r, theta = _polar(pos)
        return _expand(theta, num_samples), _expand(r, num_samples)

    def pair_log(self, a_u: Tensor, a_v: Tensor) -> Tensor:
        return angle_difference(a_u, a_v)  # abelian: the angle difference, wrapped; no matrices

    def distance(self, abq: Tensor) -> Tensor:
        ab, r_u, r_v = self.split_pair_embedding(abq)
        radial = (r_u - r_v).abs() / (r_u + r_v + 1e-3)
        return self.alpha * ab[..., 0].abs() + (1 - self.alpha) * radial[..., 0]

    def search_embedding(self, a: Tensor, q: Tensor, pos: Tensor) -> Tensor:
        r""":math:`\phi = (\alpha\cos\theta, \alpha\sin\theta, \tfrac{1-\alpha}{2}\log(r + c))`,
        :math:`c = 5\cdot 10^{-4}`.

        Proof of :math:`d < r_b \Rightarrow \|\Delta\phi\| < \rho(r_b)`: the chord between the angles
        is at most :math:`|\Delta\theta|`. With :math:`R = r + c` the radial term of :math:`d` is
        :math:`\delta = |\Delta R|/(R_u + R_v) = \tanh(|\Delta\log R|/2)`, so the last part of
        :math:`\Delta\phi` is :math:`(1-\alpha)\,\mathrm{artanh}\,\delta`. As :math:`d < r_b` gives
        :math:`\delta < s = r_b/(1-\alpha)` and :math:`\mathrm{artanh}(x)/x` increases,
        :math:`\mathrm{artanh}\,\delta \le k\,\delta` with :math:`k = \mathrm{artanh}(s)/s \ge 1`.
        Hence :math:`\|\Delta\phi\|_2 \le \|\Delta\phi\|_1 \le k\,d < k\,r_b = \rho(r_b)`;
        for :math:`s \ge 1` there is no bound (all pairs)."""
        return weighted_parts((self.alpha, unit_circle(a[..., 0])), ((1 - self.alpha) / 2, torch.log(q + 5e-4)))

    def search_radius(self, r: float) -> Optional[float]:
        s = r / (1 - self.alpha) if self.alpha < 1 else 0.0
        if s >= 1:
            return None
        return r * (math.atanh(s) / s if s > 0 else 1.0)

    def euclidean_radius(self, r: float, max_norm: float) -> Optional[float]:
        # |x_u - x_v| <= |r_u - r_v| + min(r) |dtheta|, each bounded through d < r: with
        # rho = r / (1 - alpha), |dr| < rho (r_u + r_v + 1e-3) <= rho (2 max(r) - |dr| + 1e-3).
        if self.alpha in (0.0, 1.0):
            return None
        rho = r / (1 - self.alpha)
        return rho * (2 * max_norm + 1e-3) / (1 + rho) + max_norm * r / self.alpha


class RxSO2(LieGroup):
    r"""Rotations and scalings about the origin (the similitudes fixing 0), acting on :math:`\mathbb{R}^2\setminus\{0\}`.

    :math:`a = (\log r, \theta)`, a single orbit; :math:`u = r R(\theta)` maps :math:`e_1` to :math:`x`.
    Distance: :math:`\alpha|\Delta\theta| + (1-\alpha)|\Delta\log r|`.
    """

    space_dim, lie_dim, q_dim = 2, 2, 0
    default_alpha = 0.3
    undefined_at_origin = True
    #: pair logs are subtractions and a wrap, exact to the input's rounding: no double precision
    pair_dtype = None

    def exp(self, a: Tensor) -> Tensor:
        return torch.exp(a[..., 0])[..., None, None] * rotation2d(a[..., 1])

    def log(self, g: Tensor) -> Tensor:
        scale = g[..., :, 0].norm(dim=-1)
        return torch.stack([scale.log(), _angle_of(g)], dim=-1)

    def lift(self, pos, num_samples=1, frames=None, generator=None) -> Tuple[Tensor, Tensor]:
        r, theta = _polar(pos)
        a = torch.stack([r.log(), theta], dim=-1)
        return _expand(a, num_samples), pos.new_zeros(pos.shape[0], num_samples, 0)

    def pair_log(self, a_u: Tensor, a_v: Tensor) -> Tensor:
        # abelian: the difference of the coordinates, the angle wrapped; no matrices
        return torch.stack([a_u[..., 0] - a_v[..., 0], angle_difference(a_u[..., 1], a_v[..., 1])], dim=-1)

    def distance(self, abq: Tensor) -> Tensor:
        return self.alpha * abq[..., 1].abs() + (1 - self.alpha) * abq[..., 0].abs()

    def search_embedding(self, a: Tensor, q: Tensor, pos: Tensor) -> Tensor:
        r""":math:`((1-\alpha)\log r, \alpha\cos\theta, \alpha\sin\theta)`: the chord is at most
        :math:`|\Delta\theta|`, so :math:`\|\Delta\phi\|_2 \le \|\Delta\phi\|_1 \le d` (:math:`\rho(r) = r`)."""
        return weighted_parts((1 - self.alpha, a[..., :1]), (self.alpha, unit_circle(a[..., 1])))

    def euclidean_radius(self, r: float, max_norm: float) -> Optional[float]:
        if self.alpha in (0.0, 1.0):
            return None
        return max_norm * (1 - math.exp(-r / (1 - self.alpha)) + r / self.alpha)


class Rx(LieGroup):
    r"""Scalings :math:`x \mapsto s x`, :math:`s > 0`, of :math:`\mathbb{R}^2\setminus\{0\}`.

    :math:`a = \log\|x\|`; the orbit (a ray) is embedded as the unit vector :math:`q = x/\|x\|`, so the
    orbit distance has no jump at :math:`\pm\pi` (the reference used the raw angle).
    """

    space_dim, lie_dim, q_dim = 2, 1, 2
    undefined_at_origin = True

    def exp(self, a: Tensor) -> Tensor:
        eye = torch.eye(2, dtype=a.dtype, device=a.device)
        return torch.exp(a[..., 0])[..., None, None] * eye

    def log(self, g: Tensor) -> Tensor:
        return g[..., 0, 0].abs().log().unsqueeze(-1)

    def lift(self, pos, num_samples=1, frames=None, generator=None) -> Tuple[Tensor, Tensor]:
        r = pos.norm(dim=-1, keepdim=True)
        return _expand(r.log(), num_samples), _expand(pos / r, num_samples)

    def pair_log(self, a_u: Tensor, a_v: Tensor) -> Tensor:
        return a_u - a_v

    def search_embedding(self, a: Tensor, q: Tensor, pos: Tensor) -> Tensor:
        r""":math:`(\alpha\log r, (1-\alpha) q)`: its L1 distance is :math:`d` (:math:`\rho(r) = r`)."""
        return weighted_parts((self.alpha, a), (1 - self.alpha, q))

    def euclidean_radius(self, r: float, max_norm: float) -> Optional[float]:
        # |x_u - x_v| <= |r_u - r_v| + min(r) |q_u - q_v| (q unit vectors, so the chord is the orbit distance)
        if self.alpha in (0.0, 1.0):
            return None
        return max_norm * (1 - math.exp(-r / self.alpha) + r / (1 - self.alpha))


def _left_jacobian(theta: Tensor, v: Tensor) -> Tensor:
    r""":math:`V(\theta)\,v`: the translation of :math:`\exp(\theta, v)` in SE(2)."""
    t2 = theta * theta
    s, c = sinc(t2), theta * cosc(t2)
    return torch.stack([s * v[..., 0] - c * v[..., 1], c * v[..., 0] + s * v[..., 1]], dim=-1)


def _inverse_left_jacobian(theta: Tensor, t: Tensor) -> Tensor:
    r""":math:`V(\theta)^{-1} t`: the algebra translation of the SE(2) element with angle :math:`\theta`, translation :math:`t`."""
    h, b = half_cot(theta * theta), theta / 2
    return torch.stack([h * t[..., 0] + b * t[..., 1], h * t[..., 1] - b * t[..., 0]], dim=-1)


class SE2(LieGroup):
    r"""Rigid motions of the plane, as 3x3 homogeneous matrices; :math:`a = (\theta, v_1, v_2)`.

    :math:`\exp(\theta, v) = [R(\theta), V(\theta) v]` with
    :math:`V = \frac{\sin\theta}{\theta} I + \frac{1-\cos\theta}{\theta} J`, and
    :math:`V^{-1} = \frac{\theta}{2}\cot\frac{\theta}{2} I - \frac{\theta}{2} J`.
    Lift: :math:`u = [F, x]` with :math:`F` a Haar-random rotation (stratified over the K samples).
    Distance: :math:`\alpha|\theta| + (1-\alpha)\|v\|` of :math:`\log(v^{-1}u)`.
    """

    space_dim, lie_dim, q_dim = 2, 3, 0
    default_alpha = 0.05
    frame_dim = 2

    def exp(self, a: Tensor) -> Tensor:
        theta = a[..., 0]
        t = _left_jacobian(theta, a[..., 1:])
        g = torch.zeros(*a.shape[:-1], 3, 3, dtype=a.dtype, device=a.device)
        g[..., :2, :2] = rotation2d(theta)
        g[..., :2, 2] = t
        g[..., 2, 2] = 1
        return g

    def log(self, g: Tensor) -> Tensor:
        theta = _angle_of(g[..., :2, :2])
        return torch.cat([theta.unsqueeze(-1), _inverse_left_jacobian(theta, g[..., :2, 2])], dim=-1)

    def lift(self, pos, num_samples=1, frames=None, generator=None) -> Tuple[Tensor, Tensor]:
        if frames is None:
            frames = stratified_rotations2d(
                pos.shape[0], num_samples, dtype=pos.dtype, device=pos.device, generator=generator
            )
        frames = self._frames(frames, pos, num_samples, generator)
        t = pos.unsqueeze(1).expand(-1, num_samples, -1)
        return log_in_double(self, homogeneous(frames, t)), pos.new_zeros(pos.shape[0], num_samples, 0)

    def pair_embedding(self, a: Tensor, q: Tensor, edge_index: Tensor) -> Tensor:
        r"""Closed form of :math:`\log(v_j^{-1}u_i)`, without 3x3 matrices.

        With :math:`u = (R(\theta_u), t_u)`, :math:`v^{-1}u = (R(\theta_u - \theta_v), R(-\theta_v)(t_u - t_v))`,
        whose log is :math:`(\theta, V(\theta)^{-1} R(-\theta_v)(t_u - t_v))` with
        :math:`\theta = \theta_u - \theta_v` wrapped into the branch of :func:`wrap_angle`, and
        :math:`V(\theta)^{-1} = \frac{\theta/2}{\sin(\theta/2)} R(-\theta/2)` (a scaled rotation). The
        translations :math:`t = V(\theta)v` and the rotations :math:`R(-\theta_v)` are formed once per point
        in :attr:`pair_dtype`; each edge then costs a few element-wise operations in the input's dtype
        (float32 rounding of the result, about :math:`10^{-7}` of its size, for float32 inputs).
        """
        out_dtype = a.dtype
        work = self.pair_work_dtype(out_dtype)
        theta_w = a[:, 0].to(work)
        t = _left_jacobian(theta_w, a[:, 1:].to(work)).to(out_dtype)
        cos_v, sin_v = torch.cos(theta_w).to(out_dtype), torch.sin(theta_w).to(out_dtype)
        src, dst = edge_index[0], edge_index[1]
        theta = a[:, 0]
        d = angle_difference(theta[dst], theta[src])  # both angles lie in one branch of width 2 pi
        dt = t[dst] - t[src]
        cos_v, sin_v = cos_v[src], sin_v[src]
        rx, ry = cos_v * dt[:, 0] + sin_v * dt[:, 1], cos_v * dt[:, 1] - sin_v * dt[:, 0]  # R(-theta_v) dt
        half = d / 2
        scale = 1 / torch.sinc(half / torch.pi)  # (theta/2) / sin(theta/2), in [1, pi/2] on the branch
        cos_h, sin_h = torch.cos(half) * scale, torch.sin(half) * scale
        return torch.stack([d, cos_h * rx + sin_h * ry, cos_h * ry - sin_h * rx], dim=-1)

    def distance(self, abq: Tensor) -> Tensor:
        return self.alpha * abq[..., 0].abs() + (1 - self.alpha) * abq[..., 1:3].norm(dim=-1)

    def search_embedding(self, a: Tensor, q: Tensor, pos: Tensor) -> Tensor:
        r""":math:`((1-\alpha) x, \alpha\cos\theta, \alpha\sin\theta)`. The translation part of
        :math:`\log(v^{-1}u)` is :math:`V(\theta)^{-1}R(-\theta_v)(x_u - x_v)` and :math:`\|V\| \le 1`, so
        :math:`\|\Delta x\| \le \|v\|`; the chord is at most :math:`|\theta|`: hence
        :math:`\|\Delta\phi\|_2 \le \|\Delta\phi\|_1 \le d` (:math:`\rho(r) = r`)."""
        return weighted_parts((1 - self.alpha, pos), (self.alpha, unit_circle(a[..., 0])))

    def euclidean_radius(self, r: float, max_norm: float) -> Optional[float]:
        # The translation part of log(v^-1 u) is V^-1 (x_u - x_v) rotated, and ||V|| <= 1.
        return None if self.alpha >= 1 else r / (1 - self.alpha)

