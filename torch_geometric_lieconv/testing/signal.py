r"""Tolerances relative to the signal: an untrained model barely depends on where its points are."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["amplify_weights"]


def amplify_weights(module: nn.Module, scale: float = 3.0) -> nn.Module:
    r"""Scale every weight of ``module`` in place, so that an untrained module's output depends strongly
    on geometry (at default initialisation an output barely moves when its points move, too little for
    any equivariance tolerance to tell from an error).

    Args:
        module (torch.nn.Module): the module (returned).
        scale (float, optional): the factor of every parameter whose name contains ``weight``.
            (default: :obj:`3.0`)
    """
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "weight" in name:
                p.mul_(scale)
    return module
