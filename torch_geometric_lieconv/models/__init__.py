"""Models built from LieConv, and the baselines of the paper's experiments."""
from .baselines import FCNeuralODE, GraphNetworkBlock, HamiltonianFC, HOGN, OGN
from .hamiltonian import DynamicsModel, HamiltonianLieConv, HamiltonianModel, SeparableHamiltonian
from .lieresnet import BottleBlock, LieResNet
from .qm9 import QM9LieConv, QM9SchNet, RadiusInteractionGraph

__all__ = [
    "BottleBlock", "LieResNet", "QM9LieConv", "QM9SchNet", "RadiusInteractionGraph", "DynamicsModel", "HamiltonianModel", "SeparableHamiltonian",
    "HamiltonianLieConv", "FCNeuralODE", "HamiltonianFC", "OGN", "HOGN", "GraphNetworkBlock",
]
