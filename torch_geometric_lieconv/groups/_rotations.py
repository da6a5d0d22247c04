"""Small pure functions for rotations: hat/vee maps, Haar-random rotations and frames."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor


def hat3(w: Tensor) -> Tensor:
    r"""The skew matrix :math:`[w]_\times` of ``w`` ``[..., 3]``, so that ``hat3(w) @ v == cross(w, v)``."""
    zero = torch.zeros_like(w[..., 0])
    x, y, z = w.unbind(-1)
    return torch.stack(
        [torch.stack([zero, -z, y], -1), torch.stack([z, zero, -x], -1), torch.stack([-y, x, zero], -1)], -2
    )


def vee3(m: Tensor) -> Tensor:
    """Inverse of :func:`hat3` on the antisymmetric part: ``[..., 3, 3] -> [..., 3]``."""
    return torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1) / 2


def rotation2d(theta: Tensor) -> Tensor:
    """Rotation matrices ``[..., 2, 2]`` for angles ``theta`` ``[...]``."""
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def random_rotations(
    shape: Sequence[int],
    dim: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: Optional[torch.device] = None,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    r"""Haar-uniform rotations of :math:`SO(\text{dim})`, ``dim`` in {2, 3}, of shape ``[*shape, dim, dim]``.

    SO(2): a uniform angle. SO(3): a normalised standard Gaussian 4-vector is a uniform unit
    quaternion, and the quaternion-to-matrix map pushes it forward to the Haar measure.
    """
    shape = tuple(shape)
    if dim == 2:
        theta = torch.rand(shape, dtype=dtype, device=device, generator=generator) * (2 * math.pi)
        return rotation2d(theta)
    if dim == 3:
        q = torch.randn(shape + (4,), dtype=dtype, device=device, generator=generator)
        q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return quaternion_to_matrix(q)
    raise ValueError(f"random_rotations supports dim 2 or 3, got {dim}")


def stratified_rotations2d(
    num_points: int,
    num_samples: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: Optional[torch.device] = None,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    r"""``[N, K, 2, 2]`` rotations by :math:`\phi_n + 2\pi k/K`, :math:`\phi_n` uniform.

    Each sample is marginally Haar-uniform; together they cover the circle evenly (lower variance
    than independent samples, as in the reference implementation's SE(2) lift).
    """
    offset = torch.rand(num_points, 1, dtype=dtype, device=device, generator=generator) * (2 * math.pi)
    steps = torch.arange(num_samples, dtype=dtype, device=device) * (2 * math.pi / num_samples)
    return rotation2d(offset + steps)


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """Unit quaternions ``[..., 4]`` (w, x, y, z) to rotation matrices ``[..., 3, 3]``."""
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def rotation_with_first_column(direction: Tensor, frame: Tensor) -> Tensor:
    r"""A rotation :math:`u` with :math:`u e_1 = ` ``direction`` (unit), built from a reference ``frame``.

    The second column is the component of ``frame @ e2`` (or ``frame @ e3``, whichever is further
    from ``direction``) orthogonal to ``direction``. The construction commutes with rotations:
    ``f(R d, R F) = R f(d, F)``, and for a Haar-random ``frame`` the result is uniform over all
    rotations taking :math:`e_1` to ``direction``. It has no singular direction (unlike a fixed
    section, which breaks down at :math:`-e_1`).
    """
    d = direction
    f2, f3 = frame[..., :, 1], frame[..., :, 2]
    dot2, dot3 = (f2 * d).sum(-1, keepdim=True), (f3 * d).sum(-1, keepdim=True)
    use2 = dot2.abs() <= dot3.abs()
    b = torch.where(use2, f2 - dot2 * d, f3 - dot3 * d)
    b = b / b.norm(dim=-1, keepdim=True)
    c = torch.cross(d, b, dim=-1)
    return torch.stack([d, b, c], dim=-1)


def homogeneous(rot: Tensor, t: Tensor) -> Tensor:
    """Rotations ``[..., d, d]`` and translations ``[..., d]`` to ``[..., d+1, d+1]`` matrices ``[R, t; 0, 1]``."""
    d = rot.shape[-1]
    g = torch.zeros(*rot.shape[:-2], d + 1, d + 1, dtype=rot.dtype, device=rot.device)
    g[..., :d, :d] = rot
    g[..., :d, d] = t
    g[..., d, d] = 1
    return g
