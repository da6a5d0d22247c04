r"""Spring systems for tests of dynamics models: initial states, and potentials scaled to the physical
force so that conservation is tested where a drift would show."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from ..datasets.springs import ParticleSystem, SpringSystem
from ..dynamics import conservation_metrics, join_state, rollout, split_state

__all__ = ["spring_systems", "at_physical_force", "frame_turn_per_step", "drifts_per_substeps"]


def spring_systems(num: int, seed: int = 0, system: Optional[ParticleSystem] = None
                   ) -> Tuple[Tensor, Tensor, Tensor]:
    r"""``num`` random systems as ``(z, params, batch)``: states ``[N, 2d]`` (positions then momenta),
    parameters ``[N, c]`` and the system of each particle ``[N]``.

    Args:
        num (int): the number of systems.
        seed (int, optional): the sampler's seed. (default: :obj:`0`)
        system (ParticleSystem, optional): the kind of system. (default: :class:`SpringSystem`)
    """
    system = system or SpringSystem()
    q, p, params = system.sample(num, torch.Generator().manual_seed(seed))
    batch = torch.arange(num).repeat_interleave(system.num_particles)
    return join_state(q, p), params, batch


def at_physical_force(model: nn.Module, z: Tensor, params: Tensor, batch: Tensor, num: int) -> nn.Module:
    r"""Scale a Hamiltonian model's potential (its head) in place so that its forces on these spring
    systems have the mean size of the true spring forces: an untrained model is near free flight, where
    any integrator conserves everything.

    Args:
        model (torch.nn.Module): a model with ``potential(q, params, batch, num)`` and a linear last
            layer ``model.net.head[-1]`` (e.g. :class:`~torch_geometric_lieconv.models.HamiltonianLieConv`).
        z (torch.Tensor): states ``[N, 2d]``.
        params (torch.Tensor): the systems' parameters ``[N, c]``.
        batch (torch.Tensor): the system of each particle ``[N]``.
        num (int): the number of systems.
    """
    system = SpringSystem()
    q, _ = split_state(z)
    q = q.detach().requires_grad_(True)
    true = torch.autograd.grad(system.potential(q, params, batch, num).sum(), q)[0].abs().mean()
    learned = torch.autograd.grad(model.potential(q, params, batch, num).sum(), q)[0].abs().mean()
    factor = float(true / learned)
    with torch.no_grad():
        head = model.net.head[-1]
        head.weight.mul_(factor)
        head.bias.mul_(factor)
    return model


def frame_turn_per_step(traj: Tensor, params: Tensor, batch: Tensor, num: int, dt: float,
                        about: str = "origin") -> Tensor:
    r"""The fastest turn of a lifted frame in one time step, per system: the largest
    :math:`\lvert r \times \dot r\rvert / \lVert r \rVert^2 \, \Delta t` over particles and times, with
    :math:`r` a particle's position from the origin (SO(2)'s polar lift) or from its system's centroid
    (SE(2)'s lift). Where it nears a radian, a particle passes close to the point where its frame is
    undefined and the dynamics are stiff for a step of this size.

    Args:
        traj (torch.Tensor): states ``[N, T, 2d]`` (positions then momenta).
        params (torch.Tensor): the systems' parameters ``[N, c]``, the mass first.
        batch (torch.Tensor): the system of each particle ``[N]``.
        num (int): the number of systems.
        dt (float): the time step.
        about (str, optional): ``"origin"`` or ``"centroid"``. (default: :obj:`"origin"`)

    Shapes:
        - **output:** :math:`(\text{num},)`
    """
    if about not in ("origin", "centroid"):
        raise ValueError(f"about must be 'origin' or 'centroid', got {about!r}")
    q, p = split_state(traj)
    v = p / params[:, :1].unsqueeze(1)
    if about == "centroid":
        q = q - scatter(q, batch, dim=0, dim_size=num, reduce="mean")[batch]
        v = v - scatter(v, batch, dim=0, dim_size=num, reduce="mean")[batch]
    turn = (q[..., 0] * v[..., 1] - q[..., 1] * v[..., 0]).abs() / q.pow(2).sum(-1) * dt
    return torch.zeros(num, dtype=q.dtype, device=q.device).scatter_reduce(0, batch, turn.amax(1), "amax")


def drifts_per_substeps(model: nn.Module, z: Tensor, params: Tensor, batch: Tensor, num: int, steps: int,
                        dt: float, substeps: Sequence[int], quantity: str = "angular_momentum"
                        ) -> Tuple[List[Tensor], Tensor]:
    r"""The largest drift of a conserved ``quantity`` per system along RK4 rollouts of a Hamiltonian
    model with each number of ``substeps`` per sample, and the trajectory of the last.

    Args:
        model (torch.nn.Module): a model called as ``model(t, z, params, batch, num)``.
        z (torch.Tensor): initial states ``[N, 2d]``.
        params (torch.Tensor): the systems' parameters ``[N, c]``.
        batch (torch.Tensor): the system of each particle ``[N]``.
        num (int): the number of systems.
        steps (int): samples of the rollout, ``dt`` apart.
        dt (float): the time between samples.
        substeps (Sequence[int]): RK4 steps per sample, one rollout each.
        quantity (str, optional): a key of
            :func:`~torch_geometric_lieconv.dynamics.conservation_metrics`. (default: :obj:`"angular_momentum"`)

    Shapes:
        - **output:** a list of :math:`(\text{num},)` drifts, one per entry of ``substeps``, and the
          trajectory :math:`(N, \text{steps}, 2d)`
    """
    t = dt * torch.arange(steps, dtype=z.dtype, device=z.device)
    drifts = []
    for count in substeps:
        with torch.no_grad():
            traj = rollout(lambda _, state: model(_, state, params, batch, num), z, t, step_size=dt / count)
        drifts.append(conservation_metrics(traj, batch, num)[quantity].max(dim=1).values)
    return drifts, traj
