r"""QM9 regressors with SchNet's calling convention ``forward(z, pos, batch)``: the paper's LieConv
model, and PyG's SchNet as the baseline."""
from __future__ import annotations

import os
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..datasets.qm9 import QM9_SPECIES, atom_features
from ..groups import LieGroup
from .lieresnet import LieResNet


def _register_target_scale(module: nn.Module, mean: float, std: float) -> None:
    """The buffers ``mean`` and ``std`` of a regressor that predicts :math:`(y - \mu)/\sigma`."""
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    module.register_buffer("mean", torch.tensor(float(mean)))
    module.register_buffer("std", torch.tensor(float(std)))


def _in_target_units(h: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    r""":math:`\mu + \sigma h` in at least the buffers' precision (a bfloat16 ``h`` under autocast
    would round a HOMO of -6,500 meV to steps of 32 meV)."""
    return h.to(torch.promote_types(h.dtype, std.dtype)) * std + mean


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
        mean (float, optional): the target's offset :math:`\mu` (e.g. the training median).
            (default: :obj:`0.0`)
        std (float, optional): the target's scale :math:`\sigma` (e.g. the training MAD): the network
            predicts :math:`(y - \mu)/\sigma` and the model returns :math:`y` in physical units.
            (default: :obj:`1.0`)
        atomref (torch.Tensor, optional): a per-element reference ``[100]`` (or ``[100, 1]``) added
            per atom, as in :class:`~torch_geometric.nn.models.SchNet`. (default: :obj:`None`)
        readout (str, optional): ``"mean"``: :math:`y = \mu + \sigma h`, with :math:`h` the mean
            over the molecule's lifted atoms (the paper's); ``"sum"``: :math:`y = n(\mu + \sigma h)`
            for a molecule of :math:`n` atoms, for extensive targets. (default: :obj:`"mean"`)

    Forces: the output is differentiable in ``pos``, so
    ``-torch.autograd.grad(model(z, pos).sum(), pos)[0]`` gives them for an energy target.

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
        mean: float = 0.0,
        std: float = 1.0,
        atomref: Optional[Tensor] = None,
        readout: str = "mean",
        **kwargs,
    ) -> None:
        super().__init__()
        if readout not in ("mean", "sum"):
            raise ValueError(f"readout must be 'mean' or 'sum', got {readout!r}")
        self.readout = readout
        _register_target_scale(self, mean, std)
        self.register_buffer("atomref", None if atomref is None else torch.as_tensor(atomref).reshape(-1).clone())
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
        return self._to_target(self.net(x, pos * self.pos_scale, batch, frames).squeeze(-1), z, batch)

    def _to_target(self, h: Tensor, z: Tensor, batch: Tensor, atoms_per_point: int = 1) -> Tensor:
        """Normalised per-molecule outputs ``h`` ``[B]`` -> the target in physical units."""
        from torch_scatter import scatter_add

        y = _in_target_units(h, self.mean, self.std)
        num_molecules = h.shape[0]
        if self.readout == "sum":
            atoms = scatter_add(torch.ones_like(z, dtype=y.dtype), batch, dim=0, dim_size=num_molecules)
            y = y * atoms / atoms_per_point
        if self.atomref is not None:
            y = y + scatter_add(self.atomref[z].to(y.dtype), batch, dim=0, dim_size=num_molecules) / atoms_per_point
        return y

    @classmethod
    def from_checkpoint(cls, run: str, checkpoint: str = "best", map_location: str = "cpu") -> "QM9LieConv":
        """The trained model of a ``lieconv train qm9`` run folder (``checkpoint``: ``"best"`` or
        ``"last"``), in eval mode, returning the target in the run's units."""
        from ..experiments.qm9 import build_model
        from ..training import load_checkpoint

        state = load_checkpoint(os.path.join(run, f"checkpoint_{checkpoint}.pt"), map_location=map_location)
        config = state.get("config", {})
        if config.get("task") != "qm9":
            raise ValueError(f"{run} is not a QM9 run (task {config.get('task')!r})")
        model = build_model(config, config["pos_scale"])
        model.load_state_dict(state["model"])
        return model.eval()

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
        h = self.net.forward_lifted(data, x).squeeze(-1)
        batch = getattr(data, "batch", None)
        batch = torch.zeros_like(data.z) if batch is None else batch
        return self._to_target(h, data.z, batch, int(torch.as_tensor(data.lift_samples).max()))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(group={self.group}, hidden_channels={self.net.hidden_channels}, "
                f"num_layers={self.net.num_layers}, readout={self.readout!r})")


class RadiusInteractionGraph(nn.Module):
    r"""SchNet's interaction graph through ``torch_cluster.radius_graph``: every pair of atoms of a
    molecule closer than ``cutoff``, at most ``max_num_neighbors`` per atom (PyG's own
    ``RadiusInteractionGraph`` needs ``pyg-lib``, which not every platform has).

    Args:
        cutoff (float, optional): interaction radius in the positions' units. (default: :obj:`10.0`)
        max_num_neighbors (int, optional): neighbours per atom. (default: :obj:`32`)
    """

    def __init__(self, cutoff: float = 10.0, max_num_neighbors: int = 32) -> None:
        super().__init__()
        self.cutoff, self.max_num_neighbors = float(cutoff), int(max_num_neighbors)

    def forward(self, pos: Tensor, batch: Tensor) -> Tuple[Tensor, Tensor]:
        """``edge_index`` ``[2, E]`` and the edge lengths ``[E]``."""
        import torch_cluster

        edge_index = torch_cluster.radius_graph(pos, self.cutoff, batch, max_num_neighbors=self.max_num_neighbors)
        return edge_index, (pos[edge_index[0]] - pos[edge_index[1]]).norm(dim=-1)


class QM9SchNet(nn.Module):
    r"""PyG's :class:`~torch_geometric.nn.models.SchNet` as a QM9 regressor with the interface of
    :class:`~torch_geometric_lieconv.models.QM9LieConv`: ``forward(z, pos, batch)`` returns one value
    per molecule in the target's units, :math:`y = \mu + \sigma\,\text{SchNet}(z, \text{pos})`
    (SchNet's sum readout of per-atom outputs), with the interaction graph of
    :class:`RadiusInteractionGraph`. The baseline of the time-to-accuracy comparison.

    Args:
        hidden_channels (int, optional): SchNet's width (and number of filters). (default: :obj:`128`)
        num_interactions (int, optional): interaction blocks. (default: :obj:`6`)
        cutoff (float, optional): interaction radius in Ångström. (default: :obj:`10.0`)
        mean (float, optional): the target's offset :math:`\mu`. (default: :obj:`0.0`)
        std (float, optional): the target's scale :math:`\sigma`. (default: :obj:`1.0`)

    Shapes:
        - **input:** atomic numbers :math:`(N)`, positions :math:`(N, 3)`, batch vector :math:`(N)`
        - **output:** :math:`(B)`
    """

    def __init__(self, hidden_channels: int = 128, num_interactions: int = 6, cutoff: float = 10.0,
                 mean: float = 0.0, std: float = 1.0) -> None:
        from torch_geometric.nn.models import SchNet

        super().__init__()
        _register_target_scale(self, mean, std)
        self.net = SchNet(hidden_channels=hidden_channels, num_filters=hidden_channels,
                          num_interactions=num_interactions, cutoff=cutoff,
                          interaction_graph=RadiusInteractionGraph(cutoff))

    def reset_parameters(self) -> None:
        self.net.reset_parameters()

    def forward(self, z: Tensor, pos: Tensor, batch: Optional[Tensor] = None) -> Tensor:
        if batch is None:
            batch = torch.zeros_like(z)
        return _in_target_units(self.net(z, pos, batch).squeeze(-1), self.mean, self.std)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(hidden_channels={self.net.hidden_channels}, "
                f"num_interactions={self.net.num_interactions}, cutoff={self.net.cutoff:g})")
