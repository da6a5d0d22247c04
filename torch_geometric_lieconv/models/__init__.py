"""Models built from LieConv, and the baselines of the paper's experiments. Every model rebuilds
itself from a checkpoint (:meth:`~torch_geometric_lieconv.models.hub.Rebuildable.from_checkpoint`)."""
from .hub import Rebuildable
from .baselines import FCNeuralODE, GraphNetworkBlock, HamiltonianFC, HOGN, OGN
from .hamiltonian import DynamicsModel, HamiltonianLieConv, HamiltonianModel, SeparableHamiltonian
from .lieresnet import BottleBlock, LieResNet
from .image import ImageLieResNet
from .qm9 import QM9LieConv, QM9SchNet, RadiusInteractionGraph

__all__ = [
    "Rebuildable", "BottleBlock", "LieResNet", "ImageLieResNet", "QM9LieConv", "QM9SchNet",
    "RadiusInteractionGraph", "DynamicsModel", "HamiltonianModel", "SeparableHamiltonian",
    "HamiltonianLieConv", "FCNeuralODE", "HamiltonianFC", "OGN", "HOGN", "GraphNetworkBlock",
]
