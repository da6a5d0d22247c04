r"""Numerically safe scalar functions of an angle :math:`\theta`, evaluated from :math:`\theta^2`.

Each function switches to its Taylor series for small :math:`\theta` and evaluates the closed form
elsewhere with the "double ``where``" trick, so values *and* gradients are finite at
:math:`\theta = 0` (where every self pair :math:`\log(u_i^{-1} u_i)` sits).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor

#: Below this value of theta^2 (theta < 0.5) the Taylor series is used; the series below are
#: truncated so that their remainder is under 1e-15 there.
SERIES_THRESHOLD = 0.25

# Bernoulli numbers B_0, B_2, ..., B_18 (for x cot x).
_BERNOULLI_EVEN = [1.0, 1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798]


def _horner(t2: Tensor, coefficients: Sequence[float]) -> Tensor:
    out = torch.full_like(t2, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        out = out * t2 + c
    return out


def _switch(t2: Tensor, series: Sequence[float], closed_form: Callable[[Tensor], Tensor]) -> Tensor:
    small = t2 < SERIES_THRESHOLD
    theta = torch.where(small, torch.ones_like(t2), t2).sqrt()
    return torch.where(small, _horner(t2, series), closed_form(theta))


_SINC = [(-1) ** k / math.factorial(2 * k + 1) for k in range(10)]
_COSC = [(-1) ** k / math.factorial(2 * k + 2) for k in range(10)]
_SINCC = [(-1) ** k / math.factorial(2 * k + 3) for k in range(10)]
_HALF_COT = [(-1) ** n * _BERNOULLI_EVEN[n] / math.factorial(2 * n) for n in range(10)]


def sinc(t2: Tensor) -> Tensor:
    r""":math:`\sin\theta / \theta` as a function of :math:`\theta^2`."""
    return _switch(t2, _SINC, lambda t: torch.sin(t) / t)


def cosc(t2: Tensor) -> Tensor:
    r""":math:`(1-\cos\theta)/\theta^2`, written as :math:`2\sin^2(\theta/2)/\theta^2` (no cancellation)."""
    return _switch(t2, _COSC, lambda t: 2 * torch.sin(t / 2) ** 2 / t**2)


def sincc(t2: Tensor) -> Tensor:
    r""":math:`(\theta-\sin\theta)/\theta^3`."""
    return _switch(t2, _SINCC, lambda t: (t - torch.sin(t)) / t**3)


def half_cot(t2: Tensor) -> Tensor:
    r""":math:`(\theta/2)\cot(\theta/2) = \theta\sin\theta / (2(1-\cos\theta))`, finite on :math:`[0, \pi]`."""
    return _switch(t2, _HALF_COT, lambda t: (t / 2) * torch.cos(t / 2) / torch.sin(t / 2))


def se3_left_jacobian_inverse_coefficient(t2: Tensor) -> Tensor:
    r""":math:`(1 - (\theta/2)\cot(\theta/2))/\theta^2`, the :math:`W^2` coefficient of :math:`V^{-1}`."""
    series = [-c for c in _HALF_COT[1:]]
    return _switch(t2, series, lambda t: (1 - (t / 2) * torch.cos(t / 2) / torch.sin(t / 2)) / t**2)


def safe_norm(x: Tensor, dim: int = -1, keepdim: bool = False, eps: float = 1e-30) -> Tensor:
    """Euclidean norm whose gradient is finite (zero) at the zero vector."""
    sq = (x * x).sum(dim=dim, keepdim=keepdim)
    zero = sq <= eps
    return torch.where(zero, torch.zeros_like(sq), torch.where(zero, torch.ones_like(sq), sq).sqrt())
