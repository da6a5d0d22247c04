"""Models built from LieConv."""
from .lieresnet import BottleBlock, LieResNet
from .qm9 import QM9LieConv

__all__ = ["BottleBlock", "LieResNet", "QM9LieConv"]
