"""Datasets of the paper's three applications: QM9 (targets, splits, a safe loader), rotated MNIST
as point sets, and spring / N-body dynamics."""
from .qm9 import QM9Target, RandomRotation3d, get_target, load_qm9, qm9_splits
from .rotmnist import RotMNIST
from .springs import (GravitySystem, NBodyDynamics, ParticleDynamics, SpringDynamics, SpringSystem,
                      generate_systems, system_params)

__all__ = [
    "QM9Target", "RandomRotation3d", "get_target", "load_qm9", "qm9_splits", "RotMNIST",
    "ParticleDynamics", "SpringDynamics", "NBodyDynamics", "SpringSystem", "GravitySystem",
    "generate_systems", "system_params",
]
