"""torch-geometric-lieconv: LieConv (Finzi et al., ICML 2020) for PyTorch Geometric."""
from .groups import SE2, SE3, SO2, SO3, LieGroup, Rx, RxSO2, T, Trivial, Tx, Ty, group_from_name
from .lift import LiftedPoints, lift_points
from .conv import LieConv
from .lifted_graph import LiftedGraph, lift_graph
from .models import LieResNet, QM9LieConv
from . import transforms

__version__ = "0.1.0"

__all__ = [
    "LieGroup", "Trivial", "T", "Tx", "Ty", "SO2", "RxSO2", "Rx", "SE2", "SO3", "SE3", "group_from_name",
    "LiftedGraph", "LiftedPoints", "lift_graph", "lift_points", "LieConv", "LieResNet", "QM9LieConv",
    "transforms",
]
