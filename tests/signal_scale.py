"""Helpers for tests whose tolerances are relative to a model's dependence on geometry."""
from torch import nn


def geometric(module: nn.Module, scale: float = 3.0) -> nn.Module:
    """Scale every weight so that an untrained module's output depends strongly on geometry (an
    untrained model at default initialisation moves by ~1e-4 when its points move)."""
    import torch

    with torch.no_grad():
        for name, p in module.named_parameters():
            if "weight" in name:
                p.mul_(scale)
    return module
