r"""Intervals over seeds for errors that spread over decades: the geometric mean and its 95% t-interval."""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch


def t_quantile_975(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom (1.96 beyond 9).

    Args:
        dof (int): degrees of freedom.
    """
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
    return table.get(dof, 1.96)


def geometric_interval(values: Sequence[float]) -> Tuple[float, float, float]:
    """Geometric mean of positive ``values`` and its 95% t-interval (on the log scale).

    Args:
        values (Sequence[float]): positive values (others are dropped).
    """
    logs = torch.tensor([math.log(v) for v in values if math.isfinite(v) and v > 0], dtype=torch.float64)
    if logs.numel() == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(logs.mean())
    half = t_quantile_975(logs.numel() - 1) * float(logs.std()) / math.sqrt(logs.numel()) if logs.numel() > 1 else 0.0
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)
