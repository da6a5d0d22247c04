"""torch-geometric-lieconv: LieConv (Finzi et al., ICML 2020) for PyTorch Geometric."""
from .groups import SE2, SE3, SO2, SO3, LieGroup, Rx, RxSO2, T, Trivial, Tx, Ty, group_from_name
from .lift import LiftedPoints, lift_points
from .conv import LieConv
from .lifted_graph import LiftedGraph, lift_graph
from .models import LieResNet, QM9LieConv
from . import transforms

def _version() -> str:
    """The installed distribution's version (pyproject.toml is its one source), else that of the source tree."""
    from importlib import metadata

    try:
        return metadata.version("torch-geometric-lieconv")
    except metadata.PackageNotFoundError:  # not installed: a source checkout on the path
        import re
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        found = re.search(r'^version = "([^"]+)"', pyproject.read_text(), re.M) if pyproject.is_file() else None
        return found.group(1) if found else "0+unknown"


__version__ = _version()

__all__ = [
    "LieGroup", "Trivial", "T", "Tx", "Ty", "SO2", "RxSO2", "Rx", "SE2", "SO3", "SE3", "group_from_name",
    "LiftedGraph", "LiftedPoints", "lift_graph", "lift_points", "LieConv", "LieResNet", "QM9LieConv",
    "transforms",
]
