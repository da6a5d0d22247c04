r"""A LieConv model for QM9 with SchNet's calling convention ``forward(z, pos, batch)``."""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..datasets.qm9 import QM9_SPECIES, atom_features
from ..groups import LieGroup
from .lieresnet import LieResNet


class QM9LieConv(nn.Module):
    r"""LieResNet regressor of one molecular property (the paper's QM9 model and settings).

    Atoms are featurised as the one-hot species (H, C, N, O, F) times :math:`[1, z/9, (z/9)^2]`
    (15 channels). For groups containing rotations (SE(3), SO(3)) the positions are centred per
    molecule and multiplied by ``pos_scale`` before the lift, as in the reference.

    Args:
        group: the group (``"T3"``, ``"SE3"``, ``"SO3"``, ``"Trivial3"``...).
        hidden_channels, num_layers, mc_samples, fill, lift_samples, ...: see :class:`LieResNet`.
        center: centre each molecule at its centroid before lifting (default: when the group has
            rotations; T(3) and Trivial(3) don't need it).
        pos_scale: multiply positions by this (after centring).

    Shapes:
        - **input** of :meth:`forward`: atomic numbers :math:`(N)`, positions :math:`(N, 3)`, batch
          vector :math:`(N)` *(optional)*
        - **input** of :meth:`forward_lifted`: a lifted graph with ``z`` per lifted node
        - **output:** one value per molecule :math:`(B)`
    """

    def __init__(
        self,
        group: Union[LieGroup, str] = "T3",
        hidden_channels: int = 1536,
        num_layers: int = 6,
        mc_samples: int = 100,
        fill: float = 1.0,
        lift_samples: int = 1,
        center: Optional[bool] = None,
        pos_scale: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__()
        self.net = LieResNet(3 * len(QM9_SPECIES), 1, group, hidden_channels=hidden_channels, num_layers=num_layers,
                             mc_samples=mc_samples, fill=fill, lift_samples=lift_samples, **kwargs)
        self.center = self.net.group.frame_dim is not None or self.net.group.undefined_at_origin if center is None else center
        self.pos_scale = float(pos_scale)

    @property
    def group(self) -> LieGroup:
        return self.net.group

    def reset_parameters(self) -> None:
        self.net.reset_parameters()

    def atom_features(self, z: Tensor) -> Tensor:
        """``[N]`` atomic numbers -> ``[N, 15]`` features (:func:`~torch_geometric_lieconv.datasets.qm9.atom_features`)."""
        return atom_features(z)

    def forward(self, z: Tensor, pos: Tensor, batch: Optional[Tensor] = None, frames: Optional[Tensor] = None) -> Tensor:
        """Atomic numbers ``z`` ``[N]``, positions ``[N, 3]``, ``batch`` ``[N]`` -> one value per molecule ``[B]``."""
        if z.dim() != 1 or pos.dim() != 2 or pos.shape[0] != z.shape[0]:
            raise ValueError(f"z [N] and pos [N, 3] must describe the same atoms, got {list(z.shape)} and "
                             f"{list(pos.shape)}")
        if batch is None:
            batch = torch.zeros_like(z)
        elif batch.shape != z.shape:
            raise ValueError(f"batch must have one entry per atom ({z.shape[0]}), got {list(batch.shape)}")
        if self.center:
            from torch_scatter import scatter_mean

            pos = pos - scatter_mean(pos, batch, dim=0)[batch]
        x = self.atom_features(z).to(pos.dtype)
        return self.net(x, pos * self.pos_scale, batch, frames).squeeze(-1)

    def forward_lifted(self, data: Data) -> Tensor:
        r"""One value per molecule ``[B]`` of a lifted graph (or a batch of them) that carries ``z``
        per lifted node, e.g. a :class:`~torch_geometric.datasets.QM9` item through
        :class:`~torch_geometric_lieconv.transforms.LiftGraph` and a
        :class:`~torch_geometric.loader.DataLoader`.

        The graph is used as lifted: centring and ``pos_scale`` (which :meth:`forward` applies
        before its lift) are the transform's job here, e.g.
        ``Compose([Center(), LiftGraph("SO3", radius=...)])``.
        """
        x = self.atom_features(data.z).to(data.edge_attr.dtype)
        return self.net.forward_lifted(x, data).squeeze(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(group={self.group}, hidden_channels={self.net.hidden_channels}, num_layers={self.net.num_layers})"
