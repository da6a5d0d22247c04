"""Datasets and data helpers: QM9 targets and splits, spring / N-body dynamics, RotMNIST."""
from .springs import GravitySystem, NBodyDynamics, ParticleDynamics, SpringDynamics, SpringSystem, generate_systems, system_params

__all__ = ["ParticleDynamics", "SpringDynamics", "NBodyDynamics", "SpringSystem", "GravitySystem", "generate_systems",
           "system_params"]
