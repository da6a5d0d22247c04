"""Models built from LieConv."""
from .lieresnet import BottleBlock, LieResNet

__all__ = ["BottleBlock", "LieResNet"]
