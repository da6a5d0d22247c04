r"""Hamiltonian dynamics of particle systems: vector fields, ``odeint`` rollouts and conservation metrics.

State layout (PyG style, one row per particle): ``z`` is ``[N, 2d]`` with ``z[:, :d] = q`` (positions)
and ``z[:, d:] = p`` (momenta); ``batch`` ``[N]`` (sorted) says which system each particle belongs to.
Trajectories are ``[N, T, 2d]`` (particle first, so that PyG batching concatenates systems).
Every function that reduces over particles accepts extra dimensions between the particle dimension
and the coordinates (``q`` ``[N, ..., d]`` gives energies ``[B, ...]``).

Hamilton's equations (Eq. 10 of the paper), :math:`\dot z = J\nabla_z\mathcal{H}`:

.. math::
    \dot q = \frac{\partial \mathcal{H}}{\partial p}, \qquad \dot p = -\frac{\partial \mathcal{H}}{\partial q}.

Noether: if :math:`\mathcal{H}` is invariant under translations, :math:`\sum_i \partial\mathcal{H}/\partial q_i = 0`
and the total linear momentum :math:`P = \sum_i p_i` is conserved; if it is invariant under rotations
about the origin (and :math:`\partial\mathcal{H}/\partial p_i \parallel p_i`, as for
:math:`\sum_i |p_i|^2/2m_i`), the total angular momentum :math:`L = \sum_i q_i \times p_i` is conserved.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor
from torch_scatter import scatter_add

Hamiltonian = Callable[[Tensor, Tensor], Tensor]
VectorField = Callable[[Tensor, Tensor], Tensor]

FIXED_STEP_METHODS = ("euler", "midpoint", "rk4", "explicit_adams", "implicit_adams")


def split_state(z: Tensor) -> Tuple[Tensor, Tensor]:
    """``z`` ``[..., 2d]`` -> ``(q, p)``, each ``[..., d]``.

    Args:
        z (torch.Tensor): states ``[..., 2d]``, positions then momenta.
    """
    if z.shape[-1] % 2:
        raise ValueError(f"a phase-space state has an even last dimension (q then p), got {list(z.shape)}")
    d = z.shape[-1] // 2
    return z[..., :d], z[..., d:]


def join_state(q: Tensor, p: Tensor) -> Tensor:
    """``(q, p)`` -> ``z = [q, p]`` along the last dimension.

    Args:
        q (torch.Tensor): positions ``[..., d]``.
        p (torch.Tensor): momenta of the same shape.
    """
    if q.shape != p.shape:
        raise ValueError(f"q and p must have the same shape, got {list(q.shape)} and {list(p.shape)}")
    return torch.cat([q, p], dim=-1)


def num_systems_of(batch: Tensor) -> int:
    """Number of systems in a sorted ``batch`` vector (one host sync).

    Args:
        batch (torch.Tensor): the system of each particle ``[N]``, sorted.
    """
    return int(batch.max()) + 1 if batch.numel() else 0


def broadcast_rows(value: Tensor, ndim: int) -> Tensor:
    """View a ``[N]`` tensor as ``[N, 1, ..., 1]`` with ``ndim`` dimensions, to broadcast along rows.

    Args:
        value (torch.Tensor): one value per row ``[N]``.
        ndim (int): the number of dimensions of the view.
    """
    return value.reshape(value.shape[0], *([1] * (ndim - 1)))


def per_system_sum(values: Tensor, batch: Tensor, num_systems: int) -> Tensor:
    """Sum per-particle ``values`` ``[N, ...]`` over each system: ``[B, ...]``.

    Args:
        values (torch.Tensor): per-particle values ``[N, ...]``.
        batch (torch.Tensor): the system of each particle ``[N]``.
        num_systems (int): :math:`B`.
    """
    return scatter_add(values, batch, dim=0, dim_size=num_systems)


def center_positions(q: Tensor, batch: Tensor, num_systems: int) -> Tensor:
    r"""Positions relative to each system's centroid, :math:`q_i - \frac{1}{n}\sum_{j} q_j`.

    Centring commutes with rotations about the origin and removes translations, so a function of
    centred positions is translation invariant, and stays rotation invariant if it was.

    Args:
        q (torch.Tensor): positions ``[N, ..., d]``.
        batch (torch.Tensor): the system of each particle ``[N]``.
        num_systems (int): :math:`B`.
    """
    ones = torch.ones(q.shape[0], dtype=q.dtype, device=q.device)
    counts = per_system_sum(ones, batch, num_systems).clamp_min(1)
    centroid = per_system_sum(q, batch, num_systems) / broadcast_rows(counts, q.dim())
    return q - centroid[batch]


def kinetic_energy(p: Tensor, m: Tensor, batch: Tensor, num_systems: int) -> Tensor:
    r""":math:`T = \sum_i |p_i|^2 / 2m_i` per system. ``p`` ``[N, ..., d]``, ``m`` ``[N]`` -> ``[B, ...]``.

    Args:
        p (torch.Tensor): momenta ``[N, ..., d]``.
        m (torch.Tensor): masses ``[N]``.
        batch (torch.Tensor): the system of each particle ``[N]``.
        num_systems (int): :math:`B`.
    """
    per_particle = p.pow(2).sum(-1) / (2 * broadcast_rows(m, p.dim() - 1))
    return per_system_sum(per_particle, batch, num_systems)


def hamiltonian_vector_field(hamiltonian: Hamiltonian, z: Tensor) -> Tensor:
    r"""The symplectic gradient :math:`J\nabla_z\mathcal{H} = (\partial_p\mathcal{H}, -\partial_q\mathcal{H})`.

    Args:
        hamiltonian (Hamiltonian): maps ``(q, p)`` (each ``[N, d]``) to the energies of the systems ``[B]``; the
            systems are independent, so the gradient of their sum is each system's own gradient.
        z (torch.Tensor): the state ``[N, 2d]``.

    When gradients are enabled on entry (training), the graph of the gradient is kept
    (``create_graph=True``), so a loss on the rolled-out states backpropagates to the parameters of
    :math:`\mathcal{H}` (this needs a twice differentiable :math:`\mathcal{H}`). Under ``torch.no_grad``
    the field is computed with a local graph and returned detached.
    """
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        if not z.requires_grad:
            z = z.detach().requires_grad_(True)
        q, p = split_state(z)
        energy = hamiltonian(q, p)
        if energy.dim() != 1:
            raise ValueError(f"the Hamiltonian must return one energy per system, shape [B], got {list(energy.shape)}")
        (grad,) = torch.autograd.grad(energy.sum(), z, create_graph=create_graph)
    dh_dq, dh_dp = split_state(grad)
    return join_state(dh_dp, -dh_dq)


def rollout(
    vector_field: VectorField,
    z0: Tensor,
    t: Tensor,
    *,
    method: str = "rk4",
    rtol: float = 1e-4,
    atol: float = 1e-6,
    step_size: Optional[float] = None,
) -> Tensor:
    r"""Integrate :math:`\dot z = F(t, z)` from ``z0`` ``[N, 2d]`` over the times ``t`` ``[T]`` (``t[0]`` is the start).

    Systems are integrated together as one batched state. Returns ``[N, T, 2d]`` (``[:, 0] = z0``).
    ``method`` is any :func:`torchdiffeq.odeint` method: fixed-step ones (``"rk4"``) step on the grid
    ``t`` (or with ``step_size``), adaptive ones (``"dopri5"``) use ``rtol``/``atol`` (with one error
    norm over the whole batch, so the stiffest system sets the steps of all).

    Args:
        vector_field (Callable): :math:`F(t, z)`, states ``[N, 2d]`` to their time derivatives.
        z0 (torch.Tensor): the initial states ``[N, 2d]``.
        t (torch.Tensor): the output times ``[T]``.
        method (str, optional): a :func:`torchdiffeq.odeint` method. (default: :obj:`"rk4"`)
        rtol (float, optional): relative tolerance of adaptive methods. (default: :obj:`1e-4`)
        atol (float, optional): absolute tolerance of adaptive methods. (default: :obj:`1e-6`)
        step_size (float, optional): the step of fixed-step methods. (default: the grid's)
    """
    if t.dim() != 1 or t.numel() < 1:
        raise ValueError(f"t must be a 1-D tensor of times, got shape {list(t.shape)}")
    options = {"step_size": step_size} if (step_size is not None and method in FIXED_STEP_METHODS) else None
    try:
        from torchdiffeq import odeint
    except ImportError:
        raise ImportError("rollouts need torchdiffeq: pip install 'torch-geometric-lieconv[experiments]'") from None
    zs = odeint(vector_field, z0, t.to(z0.dtype), method=method, rtol=rtol, atol=atol, options=options)
    return zs.transpose(0, 1)


# ---------------------------------------------------------------------------------- conserved quantities
def total_linear_momentum(p: Tensor, batch: Tensor, num_systems: int) -> Tensor:
    r""":math:`P = \sum_i p_i` per system: ``p`` ``[N, ..., d]`` -> ``[B, ..., d]``.

    Args:
        p (torch.Tensor): momenta ``[N, ..., d]``.
        batch (torch.Tensor): the system of each particle ``[N]``.
        num_systems (int): :math:`B`.
    """
    return per_system_sum(p, batch, num_systems)


def cross(q: Tensor, p: Tensor) -> Tensor:
    """Cross product along the last dimension: a scalar ``[...]`` in 2D (``q_x p_y - q_y p_x``), a vector in 3D.

    Args:
        q (torch.Tensor): positions ``[..., d]`` with d = 2 or 3.
        p (torch.Tensor): momenta of the same shape.
    """
    if q.shape[-1] == 2:
        return q[..., 0] * p[..., 1] - q[..., 1] * p[..., 0]
    if q.shape[-1] == 3:
        return torch.linalg.cross(q, p, dim=-1)
    raise ValueError(f"angular momentum is defined here for 2D and 3D positions, got dimension {q.shape[-1]}")


def total_angular_momentum(q: Tensor, p: Tensor, batch: Tensor, num_systems: int) -> Tensor:
    r""":math:`L = \sum_i q_i \times p_i` about the origin per system: ``[B, ...]`` in 2D, ``[B, ..., 3]`` in 3D.

    Args:
        q (torch.Tensor): positions ``[N, ..., d]``.
        p (torch.Tensor): momenta of the same shape.
        batch (torch.Tensor): the system of each particle ``[N]``.
        num_systems (int): :math:`B`.
    """
    return per_system_sum(cross(q, p), batch, num_systems)


def relative_energy_error(energy: Tensor) -> Tensor:
    r""":math:`|\mathcal{H}(t) - \mathcal{H}(0)| / |\mathcal{H}(0)|` for energies ``[B, T]``.

    Args:
        energy (torch.Tensor): energies along trajectories ``[B, T]``.
    """
    return (energy - energy[:, :1]).abs() / energy[:, :1].abs().clamp_min(torch.finfo(energy.dtype).tiny)


def _drift(total: Tensor, scale: Tensor) -> Tensor:
    """``|X(t) - X(0)| / scale`` for totals ``[B, T]`` or ``[B, T, k]`` and scales ``[B]``."""
    diff = total - total[:, :1]
    if diff.dim() == 3:
        diff = diff.norm(dim=-1)
    return diff.abs() / scale.clamp_min(torch.finfo(scale.dtype).tiny).unsqueeze(-1)


def conservation_metrics(
    traj: Tensor, batch: Tensor, num_systems: int, energy_fn: Optional[Hamiltonian] = None
) -> Dict[str, Tensor]:
    r"""Drifts of the conserved quantities along trajectories ``[N, T, 2d]``; each entry is ``[B, T]``.

    * ``linear_momentum``: :math:`|P(t) - P(0)| / \sum_i |p_i(0)|`,
    * ``angular_momentum``: :math:`|L(t) - L(0)| / \sum_i |q_i(0)||p_i(0)|` (about the origin),
    * ``energy`` (if ``energy_fn`` maps ``(q, p)`` ``[N, T, d]`` to ``[B, T]``): the relative energy error.

    The denominators bound :math:`|P(0)|` and :math:`|L(0)|` from above and are positive for any
    moving system, so the drifts are relative errors that never divide by a vanishing total.

    Args:
        traj (torch.Tensor): trajectories ``[N, T, 2d]``.
        batch (torch.Tensor): the system of each particle ``[N]``.
        num_systems (int): :math:`B`.
        energy_fn (Callable, optional): the energy of the systems, ``(q, p) -> [B, T]``. (default: :obj:`None`)
    """
    q, p = split_state(traj)
    q0, p0 = q[:, 0], p[:, 0]
    linear_scale = per_system_sum(p0.norm(dim=-1), batch, num_systems)
    angular_scale = per_system_sum(q0.norm(dim=-1) * p0.norm(dim=-1), batch, num_systems)
    out = {
        "linear_momentum": _drift(total_linear_momentum(p, batch, num_systems), linear_scale),
        "angular_momentum": _drift(total_angular_momentum(q, p, batch, num_systems), angular_scale),
    }
    if energy_fn is not None:
        out["energy"] = relative_energy_error(energy_fn(q, p))
    return out


def rollout_mse(pred: Tensor, target: Tensor, steps: Optional[int] = None) -> Tensor:
    r"""Mean squared error of rolled-out states (Eq. 11), over the first ``steps`` time steps (all if ``None``).

    Args:
        pred (torch.Tensor): predicted trajectories ``[N, T, 2d]``.
        target (torch.Tensor): true trajectories of the same shape.
        steps (int, optional): compare the first ``steps`` states only. (default: :obj:`None`)
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction and target trajectories differ in shape: {list(pred.shape)} vs {list(target.shape)}")
    if steps is not None:
        pred, target = pred[:, :steps], target[:, :steps]
    return (pred - target).pow(2).mean()
