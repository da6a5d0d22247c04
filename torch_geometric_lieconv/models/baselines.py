r"""The paper's dynamics baselines (§6.3, Figure 8): FC Neural ODE, HFC, OGN and HOGN.

All share the interface of :class:`~torch_geometric_lieconv.models.hamiltonian.DynamicsModel`
(``model(t, z, params, batch) -> dz/dt``). Positions enter every model centred per system (as in
the reference code), so all four are translation invariant; none is rotation invariant.

* :class:`FCNeuralODE` (Chen et al., 2018): an MLP from the flattened state of a system to its time derivative.
* :class:`HamiltonianFC` (HFC): :math:`\mathcal{H} = \sum_i|p_i|^2/2m_i + \text{MLP}(q, s)` on the flattened system.
* :class:`OGN` (ODE graph network, Battaglia et al., 2016): message passing over the fully connected
  particle graph, predicting :math:`(\dot q_i, \dot p_i)` per particle.
* :class:`HOGN` (Hamiltonian ODE graph network, Sanchez-Gonzalez et al., 2019): the same graph
  network read out into one scalar :math:`\mathcal{H}` per system, dynamics by autograd.

The FC models need the same number of particles in every system (they flatten a system into one vector).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from ..dynamics import center_positions, join_state, num_systems_of, per_system_sum, split_state
from ..graph import all_pairs_within_graphs
from .hamiltonian import DynamicsModel, HamiltonianModel, SeparableHamiltonian


def mlp(channels: List[int], final_activation: bool = False) -> nn.Sequential:
    """Linear layers of the given widths with Swish (SiLU, twice differentiable) between them.

    Args:
        channels (List[int]): the widths, input first.
        final_activation (bool, optional): a Swish after the last layer too. (default: :obj:`False`)
    """
    layers: List[nn.Module] = []
    for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
        layers.append(nn.Linear(c_in, c_out))
        if i < len(channels) - 2 or final_activation:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def _flatten_systems(x: Tensor, num_systems: int, num_particles: int, who: str) -> Tensor:
    """``[N, c]`` (systems contiguous, ``num_particles`` each) -> ``[B, num_particles * c]``."""
    if x.shape[0] != num_systems * num_particles:
        raise ValueError(f"{who} flattens systems of exactly {num_particles} particles, but got {x.shape[0]} "
                         f"particles in {num_systems} systems; use a graph model for varying sizes")
    return x.reshape(num_systems, -1)


class FCNeuralODE(DynamicsModel):
    r"""FC Neural ODE: :math:`\dot z = \text{MLP}([q - \bar q, p, s])` on the flattened system.

    Args:
        num_particles (int, optional): particles per system (fixed). (default: :obj:`6`)
        dim (int, optional): space dimension. (default: :obj:`2`)
        param_channels (int, optional): per-particle parameters, masses first. (default: :obj:`2`)
        hidden_channels (int, optional): the MLP's width (the reference's). (default: :obj:`256`)
        num_layers (int, optional): the MLP's hidden layers (the reference's). (default: :obj:`4`)
    """

    def __init__(self, num_particles: int = 6, dim: int = 2, param_channels: int = 2, *, hidden_channels: int = 256,
                 num_layers: int = 4) -> None:
        super().__init__(dim, param_channels)
        self.num_particles, self.hidden_channels, self.num_layers = int(num_particles), hidden_channels, num_layers
        width = num_particles * (2 * dim + param_channels)
        self.net = mlp([width] + [hidden_channels] * num_layers + [num_particles * 2 * dim])

    def forward(self, t: Tensor, z: Tensor, params: Tensor, batch: Tensor,
                num_systems: Optional[int] = None) -> Tensor:
        self.check_input(z, params, batch)
        b = num_systems_of(batch) if num_systems is None else num_systems
        q, p = split_state(z)
        x = torch.cat([center_positions(q, batch, b), p, params], dim=-1)
        out = self.net(_flatten_systems(x, b, self.num_particles, type(self).__name__))
        return out.reshape(z.shape[0], 2 * self.dim)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_particles={self.num_particles}, dim={self.dim}, "
                f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers})")


class HamiltonianFC(SeparableHamiltonian):
    r"""HFC: :math:`\mathcal{H} = \sum_i |p_i|^2/2m_i + \text{MLP}([q - \bar q, s])` on the flattened system.

    Args:
        num_particles (int, optional): particles per system (fixed). (default: :obj:`6`)
        dim (int, optional): space dimension. (default: :obj:`2`)
        param_channels (int, optional): per-particle parameters, masses first. (default: :obj:`2`)
        hidden_channels (int, optional): the potential MLP's width. (default: :obj:`256`)
        num_layers (int, optional): its hidden layers. (default: :obj:`4`)
    """

    def __init__(self, num_particles: int = 6, dim: int = 2, param_channels: int = 2, *, hidden_channels: int = 256,
                 num_layers: int = 4) -> None:
        super().__init__(dim, param_channels)
        self.num_particles, self.hidden_channels, self.num_layers = int(num_particles), hidden_channels, num_layers
        self.net = mlp([num_particles * (dim + param_channels)] + [hidden_channels] * num_layers + [1])

    def potential(self, q: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        x = torch.cat([center_positions(q, batch, num_systems), params], dim=-1)
        return self.net(_flatten_systems(x, num_systems, self.num_particles, type(self).__name__)).squeeze(-1)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_particles={self.num_particles}, dim={self.dim}, "
                f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers})")


class GraphNetworkBlock(MessagePassing):
    r"""One graph-network block (Battaglia et al., 2018) without the global update:

    .. math::
        e'_{ij} = \phi_e([x_i, x_j, e_{ij}]),\qquad x'_i = \phi_v\Big(\Big[x_i, \sum_{j} e'_{ij}\Big]\Big),

    with two-layer Swish MLPs :math:`\phi_e, \phi_v` of width ``hidden_channels`` (edges ``j -> i``).
    Returns ``(x', e')``.

    Args:
        node_channels (int): node features :math:`x_i`.
        edge_channels (int): edge features :math:`e_{ij}`.
        hidden_channels (int): the width of :math:`\phi_e` and :math:`\phi_v`.
    """

    def __init__(self, node_channels: int, edge_channels: int, hidden_channels: int) -> None:
        super().__init__(aggr="sum")
        self.node_channels, self.edge_channels, self.hidden_channels = node_channels, edge_channels, hidden_channels
        self.edge_mlp = mlp([2 * node_channels + edge_channels, hidden_channels, hidden_channels], final_activation=True)
        self.node_mlp = mlp([node_channels + hidden_channels, hidden_channels, hidden_channels], final_activation=True)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for layer in list(self.edge_mlp) + list(self.node_mlp):
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tuple[Tensor, Tensor]:
        edge_out = self.edge_updater(edge_index, x=x, edge_attr=edge_attr)
        node_out = self.propagate(edge_index, x=x, edge_attr=edge_out)
        return node_out, edge_out

    def edge_update(self, x_i: Tensor, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return self.edge_mlp(torch.cat([x_i, x_j, edge_attr], dim=-1))

    def message(self, edge_attr: Tensor) -> Tensor:
        return edge_attr

    def update(self, aggr_out: Tensor, x: Tensor) -> Tensor:
        return self.node_mlp(torch.cat([x, aggr_out], dim=-1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.node_channels}, {self.edge_channels}, {self.hidden_channels})"


class _ParticleGraphNetwork(nn.Module):
    r"""``num_layers`` :class:`GraphNetworkBlock` s over the fully connected particle graph of each system.

    Node input :math:`[q_i - \bar q, p_i, s_i]` (positions centred per system, momenta, parameters),
    edge input :math:`[q_j - q_i, |q_j - q_i|]`.
    """

    def __init__(self, dim: int, param_channels: int, hidden_channels: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        node_in, edge_in = 2 * dim + param_channels, dim + 1
        self.blocks = nn.ModuleList(
            [GraphNetworkBlock(node_in, edge_in, hidden_channels)]
            + [GraphNetworkBlock(hidden_channels, hidden_channels, hidden_channels) for _ in range(num_layers - 1)]
        )

    def forward(self, z: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tuple[Tensor, Tensor, Tensor]:
        """Node and edge features after the blocks, and the edges ``[2, E]`` (``j -> i``, no self loops)."""
        q, p = split_state(z)
        src, dst = all_pairs_within_graphs(batch)
        keep = src != dst
        edge_index = torch.stack([src[keep], dst[keep]])
        rel = q[edge_index[0]] - q[edge_index[1]]
        edge_attr = torch.cat([rel, rel.norm(dim=-1, keepdim=True)], dim=-1)
        x = torch.cat([center_positions(q, batch, num_systems), p, params], dim=-1)
        for block in self.blocks:
            x, edge_attr = block(x, edge_index, edge_attr)
        return x, edge_attr, edge_index


class OGN(DynamicsModel):
    r"""ODE graph network: a graph network over the particles with per-particle heads :math:`(\dot q_i, \dot p_i)`.

    Args:
        dim (int, optional): space dimension. (default: :obj:`2`)
        param_channels (int, optional): per-particle parameters, masses first. (default: :obj:`2`)
        hidden_channels (int, optional): block width (the reference's). (default: :obj:`256`)
        num_layers (int, optional): graph-network blocks (the reference's). (default: :obj:`1`)
    """

    def __init__(self, dim: int = 2, param_channels: int = 2, *, hidden_channels: int = 256, num_layers: int = 1) -> None:
        super().__init__(dim, param_channels)
        self.hidden_channels, self.num_layers = hidden_channels, num_layers
        self.gn = _ParticleGraphNetwork(dim, param_channels, hidden_channels, num_layers)
        self.q_head = nn.Linear(hidden_channels, dim)
        self.p_head = nn.Linear(hidden_channels, dim)

    def forward(self, t: Tensor, z: Tensor, params: Tensor, batch: Tensor,
                num_systems: Optional[int] = None) -> Tensor:
        self.check_input(z, params, batch)
        b = num_systems_of(batch) if num_systems is None else num_systems
        x, _, _ = self.gn(z, params, batch, b)
        return join_state(self.q_head(x), self.p_head(x))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, hidden_channels={self.hidden_channels}, num_layers={self.num_layers})"


class HOGN(HamiltonianModel):
    r"""Hamiltonian ODE graph network: :math:`\mathcal{H} = w^\top\phi_u\big([\sum_i x'_i, \sum_{ij} e'_{ij}]\big)` per system.

    The graph network sees positions and momenta, so the whole Hamiltonian (kinetic energy included)
    is learned, as in the reference code.

    Args:
        dim (int, optional): space dimension. (default: :obj:`2`)
        param_channels (int, optional): per-particle parameters, masses first. (default: :obj:`2`)
        hidden_channels (int, optional): block width (the reference's). (default: :obj:`256`)
        num_layers (int, optional): graph-network blocks (the reference's). (default: :obj:`1`)
    """

    def __init__(self, dim: int = 2, param_channels: int = 2, *, hidden_channels: int = 256, num_layers: int = 1) -> None:
        super().__init__(dim, param_channels)
        self.hidden_channels, self.num_layers = hidden_channels, num_layers
        self.gn = _ParticleGraphNetwork(dim, param_channels, hidden_channels, num_layers)
        self.readout = mlp([2 * hidden_channels, hidden_channels, hidden_channels, 1])

    def hamiltonian(self, q: Tensor, p: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        x, edge_attr, edge_index = self.gn(join_state(q, p), params, batch, num_systems)
        pooled = torch.cat([per_system_sum(x, batch, num_systems),
                            per_system_sum(edge_attr, batch[edge_index[1]], num_systems)], dim=-1)
        return self.readout(pooled).squeeze(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, hidden_channels={self.hidden_channels}, num_layers={self.num_layers})"
