r"""Learned dynamics of particle systems: the common interface, Hamiltonian models, and HLieConv (§6 of the paper).

Every dynamics model maps the phase-space state of a batch of systems to its time derivative,

.. code-block:: python

    import torch
    from torch_geometric_lieconv.models import HamiltonianLieConv

    model = HamiltonianLieConv(2, "T2", hidden_channels=32, num_layers=1)
    t, z = torch.tensor(0.0), torch.randn(6, 4)            # z = (q, p): [N, 2d], here d = 2
    params, batch = torch.rand(6, 2) + 0.5, torch.tensor([0, 0, 0, 1, 1, 1])   # [N, c], [N]
    dz_dt = model(t, z, params, batch)                     # [N, 2d]

with ``z[:, :d] = q``, ``z[:, d:] = p`` per particle and ``params[:, 0]`` the masses (see
:mod:`torch_geometric_lieconv.dynamics`), so any of them can be handed to ``odeint``.

A :class:`HamiltonianModel` learns a scalar :math:`\mathcal{H}_\theta(q, p)` per system and returns
:math:`J\nabla\mathcal{H}_\theta` (autograd with ``create_graph`` while training). If
:math:`\mathcal{H}_\theta` is invariant under a continuous group, Noether's theorem makes the
corresponding momentum an exact invariant of the learned flow, for any weights: translations
:math:`\Rightarrow \sum_i p_i`, rotations about the origin :math:`\Rightarrow \sum_i q_i\times p_i`.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import Tensor, nn

from ..dynamics import center_positions, hamiltonian_vector_field, kinetic_energy, num_systems_of
from ..groups import LieGroup, group_from_name
from ..groups._rotations import rotation2d
from .hub import Rebuildable
from .lieresnet import LieResNet


class DynamicsModel(Rebuildable):
    r"""Base class: ``forward(t, z, params, batch, num_systems=None) -> dz/dt`` ``[N, 2d]``.

    Args:
        dim (int): space dimension :math:`d`.
        param_channels (int): per-particle parameters, masses first.
    """

    def __init__(self, dim: int, param_channels: int) -> None:
        super().__init__()
        if dim < 1 or param_channels < 1:
            raise ValueError(f"need dim >= 1 and param_channels >= 1 (masses first), got {dim}, {param_channels}")
        self.dim, self.param_channels = int(dim), int(param_channels)

    def check_input(self, z: Tensor, params: Tensor, batch: Tensor) -> None:
        """Raise a ``ValueError`` naming the first mismatched input.

        Args:
            z (torch.Tensor): states ``[N, 2d]``.
            params (torch.Tensor): per-particle parameters ``[N, c]``.
            batch (torch.Tensor): the system of each particle ``[N]``.
        """
        if z.dim() != 2 or z.shape[1] != 2 * self.dim:
            raise ValueError(f"{type(self).__name__}: z must be [N, {2 * self.dim}] (q then p), got {list(z.shape)}")
        if params.shape != (z.shape[0], self.param_channels):
            raise ValueError(f"{type(self).__name__}: params must be [{z.shape[0]}, {self.param_channels}] "
                             f"(masses first), got {list(params.shape)}")
        if batch.shape != (z.shape[0],):
            raise ValueError(f"{type(self).__name__}: batch must be [{z.shape[0]}], got {list(batch.shape)}")

    def forward(self, t: Tensor, z: Tensor, params: Tensor, batch: Tensor,
                num_systems: Optional[int] = None) -> Tensor:
        raise NotImplementedError

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()


class HamiltonianModel(DynamicsModel):
    r"""A model of :math:`\mathcal{H}_\theta(q, p)`; the dynamics are :math:`(\partial_p\mathcal{H}_\theta, -\partial_q\mathcal{H}_\theta)`.

    Subclasses implement :meth:`hamiltonian`, which must be twice differentiable in ``q`` and ``p``
    for training (the loss differentiates the vector field, itself a gradient).
    """

    def hamiltonian(self, q: Tensor, p: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        """The energy of each system, ``[B]``."""
        raise NotImplementedError

    def forward(self, t: Tensor, z: Tensor, params: Tensor, batch: Tensor,
                num_systems: Optional[int] = None) -> Tensor:
        self.check_input(z, params, batch)
        b = num_systems_of(batch) if num_systems is None else num_systems
        return hamiltonian_vector_field(lambda q, p: self.hamiltonian(q, p, params, batch, b), z)


class SeparableHamiltonian(HamiltonianModel):
    r""":math:`\mathcal{H}_\theta = \sum_i |p_i|^2/2m_i + V_\theta(q)`: the known kinetic energy and a learned potential."""

    def potential(self, q: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        """The learned potential of each system, ``[B]``."""
        raise NotImplementedError

    def hamiltonian(self, q: Tensor, p: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        return kinetic_energy(p, params[:, 0], batch, num_systems) + self.potential(q, params, batch, num_systems)


class HamiltonianLieConv(SeparableHamiltonian):
    r"""HLieConv: :math:`\mathcal{H} = \sum_i |p_i|^2/2m_i + V_\theta(q, s)` with :math:`V_\theta` a pooled :class:`LieResNet`.

    The particles of each system are the points of one graph: positions :math:`q_i` (centred per system
    when ``center=True``) and features :math:`s_i` = the per-particle system parameters
    (``params``, e.g. mass and spring constant). With ``fill=1`` and ``mc_samples`` at least the number
    of particles every particle sees all others and nothing is sampled, so :math:`V_\theta` is a
    deterministic, exactly :math:`G`-invariant, twice differentiable (Swish) function of :math:`q`.

    Symmetries and conserved momenta (for any weights):

    ============  ========================  ================  ====================
    group         ``center=False``          ``center=True``   conserved (centred)
    ============  ========================  ================  ====================
    Trivial(2)    nothing                   :math:`\sum p`    linear
    T(2)          :math:`\sum p`            :math:`\sum p`    linear
    SO(2)         :math:`\sum q\times p`    both              linear and angular
    SE(2)         both                      both              linear and angular
    ============  ========================  ================  ====================

    Centring is itself a translation symmetry (and commutes with rotations about the origin), so
    to see the effect of the group alone (Figure 7), use ``center=False``.

    Groups with a stabilizer (SE(2)) need rotation frames in the lift. Random frames would make
    :math:`V_\theta` random from one evaluation to the next, which an ODE solver cannot integrate;
    instead the frame of particle :math:`i` is the rotation taking :math:`e_1` to the direction from the
    system's centroid to :math:`q_i` (and, for ``lift_samples`` K > 1, that rotation followed by the K
    rotations by :math:`2\pi k/K`). These frames rotate with the input, so the lift, and
    :math:`V_\theta`, are exactly equivariant / invariant and deterministic.

    Polar lifts (SO(2), RxSO(2), and the centroid frames) are undefined at the origin / the centroid:
    a particle exactly there raises a ``ValueError`` from the group's input check. For continuous data
    this has probability zero; close to it, the potential varies quickly (angles change as
    :math:`1/r`), which only costs integrator accuracy.

    Args:
        param_channels (int, optional): per-particle parameters (masses first): 2 for springs ``(m, k)``.
            (default: :obj:`2`)
        group (str or LieGroup, optional): the group or its name (``"T2"``, ``"SO2"``, ``"SE2"``,
            ``"Trivial2"``...). (default: :obj:`'T2'`)
        hidden_channels (int, optional): the :class:`LieResNet`'s width. (default: :obj:`384`)
        num_layers (int, optional): its blocks. (default: :obj:`4`)
        mc_samples (int, optional): its neighbourhood size. (default: :obj:`100`)
        fill (float, optional): its neighbourhood fill. (default: :obj:`1.0`)
        lift_samples (int, optional): lifts per particle. (default: :obj:`1`)
        batch_norm (bool, optional): BatchNorm in its blocks (the paper's HLieConv has none).
            (default: :obj:`False`)
        center (bool, optional): centre positions per system before the network. (default: :obj:`True`)
        **kwargs (optional): further :class:`LieResNet` options (``kernel_channels``, ``aggregation``...).
    """

    def __init__(self, param_channels: int = 2, group: Union[str, LieGroup] = "T2", *, hidden_channels: int = 384,
                 num_layers: int = 4, mc_samples: int = 100, fill: float = 1.0, lift_samples: int = 1,
                 batch_norm: bool = False, center: bool = True, **kwargs) -> None:
        group = group_from_name(group) if isinstance(group, str) else group
        super().__init__(group.space_dim, param_channels)
        if group.frame_dim is not None and group.frame_dim != 2:
            raise ValueError(f"{group}: HamiltonianLieConv builds deterministic stabilizer frames only in 2D; "
                             f"a random 3D frame would make the potential random between ODE steps")
        self.group, self.center, self.lift_samples = group, bool(center), int(lift_samples)
        self.net = LieResNet(param_channels, 1, group, hidden_channels=hidden_channels, num_layers=num_layers,
                             mc_samples=mc_samples, fill=fill, lift_samples=lift_samples, batch_norm=batch_norm,
                             **kwargs)

    def frames(self, q: Tensor, batch: Tensor, num_systems: int) -> Optional[Tensor]:
        r"""Deterministic, equivariant stabilizer frames ``[N, K, 2, 2]`` (``None`` for groups without).

        Args:
            q (torch.Tensor): positions ``[N, 2]``.
            batch (torch.Tensor): the system of each particle ``[N]``.
            num_systems (int): :math:`B`.
        """
        if self.group.frame_dim is None:
            return None
        rel = center_positions(q, batch, num_systems)
        # "at the centroid" up to the rounding of the centroid itself
        at_centroid = rel.norm(dim=-1) <= 8 * torch.finfo(rel.dtype).eps * q.norm(dim=-1).clamp_min(1)
        if bool(at_centroid.any()):  # host sync, as the groups' own input checks
            bad = at_centroid.nonzero().flatten()[:5].tolist()
            raise ValueError(f"{self.group}: the stabilizer frame of a particle points from its system's centroid, "
                             f"but particles {bad} lie at the centroid; perturb them or use another group")
        angle = torch.atan2(rel[:, 1], rel[:, 0])
        offsets = (2 * math.pi / self.lift_samples) * torch.arange(self.lift_samples, dtype=q.dtype, device=q.device)
        return rotation2d(angle.unsqueeze(-1) + offsets)

    def potential(self, q: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        pos = center_positions(q, batch, num_systems) if self.center else q
        out = self.net(params, pos, batch, frames=self.frames(q, batch, num_systems), num_graphs=num_systems)
        return out.squeeze(-1)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(group={self.group}, hidden_channels={self.net.hidden_channels}, "
                f"num_layers={self.net.num_layers}, center={self.center})")
