r"""A public equivariance checker, in the spirit of e3nn's ``assert_equivariant``.

For a function :math:`F` of point positions and a group :math:`G` acting on them, it samples
:math:`g \in G` and measures :math:`\max |F(g\cdot x) - \rho_{out}(g) F(x)|`. In exact mode the
stabilizer samples of the lift (``frames``) are transformed along with the input, so a correct
LieConv model is equivariant to float rounding; otherwise each call draws fresh samples and the
model is only equivariant in distribution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from .groups import LieGroup
from .groups import random_rotations
from ._deprecation import renamed_keywords

Forward = Callable[[Tensor, Optional[Tensor]], Tensor]
OutputAction = Callable[[Tensor, Tensor], Tensor]


@dataclass
class EquivarianceReport:
    """Largest absolute and relative errors over the trials."""

    max_abs_error: float
    max_rel_error: float
    trials: int

    def __str__(self) -> str:
        return f"equivariance error over {self.trials} trials: abs {self.max_abs_error:.3g}, rel {self.max_rel_error:.3g}"


@renamed_keywords(num_samples="lift_samples")  # before 0.3
def equivariance_error(
    forward: Forward,
    group: LieGroup,
    pos: Tensor,
    *,
    lift_samples: int = 1,
    output_action: Optional[OutputAction] = None,
    exact: bool = True,
    trials: int = 4,
    scale: float = 1.0,
    generator: Optional[torch.Generator] = None,
) -> EquivarianceReport:
    """Measure how far ``forward(pos, frames)`` is from equivariant.

    Args:
        forward (Forward): the model as a function of positions ``[N, d]`` and stabilizer frames
            (``[N, lift_samples, m, m]`` or ``None``).
        group (LieGroup): the group to test.
        pos (torch.Tensor): the input positions.
        lift_samples (int, optional): lift samples per point the model uses (shape of the frames);
            ``num_samples`` before 0.3. (default: :obj:`1`)
        output_action (OutputAction, optional): ``(g, out) -> rho(g) out``; ``None`` means the output is
            invariant. (default: :obj:`None`)
        exact (bool, optional): pass transformed frames (exact equivariance) rather than fresh random ones.
            (default: :obj:`True`)
        trials (int, optional): number of random group elements. (default: :obj:`4`)
        scale (float, optional): scale of the random Lie algebra coordinates of ``g``. (default: :obj:`1.0`)
    """
    worst_abs, worst_rel = 0.0, 0.0
    for _ in range(trials):
        g = group.sample(1, scale=scale, dtype=pos.dtype, device=pos.device, generator=generator)[0]
        frames = new_frames = None
        if exact and group.frame_dim is not None:
            frames = random_rotations((pos.shape[0], lift_samples), group.frame_dim, dtype=pos.dtype,
                                      device=pos.device, generator=generator)
            new_frames = group.rotate_frames(g, frames)
        out = forward(pos, frames)
        expected = out if output_action is None else output_action(g, out)
        moved = forward(group.act(g, pos), new_frames)
        err = (moved - expected).abs().max().item()
        worst_abs = max(worst_abs, err)
        worst_rel = max(worst_rel, err / max(expected.abs().max().item(), 1e-12))
    return EquivarianceReport(worst_abs, worst_rel, trials)


def assert_equivariant(forward: Forward, group: LieGroup, pos: Tensor, *, atol: float = 1e-5, rtol: float = 1e-4,
                       **kwargs) -> EquivarianceReport:
    """:func:`equivariance_error`, raising ``AssertionError`` when the error exceeds ``atol`` and ``rtol``.

    Args:
        forward (Forward): the model as a function of positions and frames.
        group (LieGroup): the group to test.
        pos (torch.Tensor): the input positions ``[N, d]``.
        atol (float, optional): the largest absolute error allowed. (default: :obj:`1e-5`)
        rtol (float, optional): the largest error relative to the output allowed. (default: :obj:`1e-4`)
        **kwargs (optional): further arguments of :func:`equivariance_error`.
    """
    report = equivariance_error(forward, group, pos, **kwargs)
    if report.max_abs_error > atol and report.max_rel_error > rtol:
        raise AssertionError(f"not equivariant to {group}: {report}")
    return report
