r"""QM9 regressors with SchNet's calling convention ``forward(z, pos, batch) -> [B, 1]``: the paper's
LieConv model, and PyG's SchNet as the baseline."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..graph import count_index
from ..groups import LieGroup
from .hub import Rebuildable
from .lieresnet import LieResNet, NonFiniteInputError

#: the elements of QM9: H, C, N, O, F
QM9_SPECIES: Tuple[int, ...] = (1, 6, 7, 8, 9)
#: every element up to fermium, for ``species="all"``
ALL_SPECIES: Tuple[int, ...] = tuple(range(1, 101))


def atom_features(z: Tensor, species: Sequence[int] = QM9_SPECIES, dtype: Optional[torch.dtype] = None) -> Tensor:
    r"""Atomic numbers ``z`` ``[N]`` -> ``[N, 3S]``: one-hot species times :math:`[1, z/9, (z/9)^2]`.

    Channel ``3 s + p`` is :math:`[z = Z_s]\,(z/9)^p` for species ``s`` of ``species`` and power ``p``
    (the reference's order; with QM9's five species, 15 channels). An atom of no listed species gets a
    row of NaN (found by the model's one input check; :func:`unknown_species` names them).

    Args:
        z (torch.Tensor): atomic numbers ``[N]``.
        species (Sequence[int], optional): the atomic numbers of the species. (default: QM9's H, C, N, O, F)
        dtype (torch.dtype, optional): the features' dtype. (default: :obj:`None`)
    """
    table = torch.tensor(species, device=z.device)
    onehot = z.unsqueeze(-1) == table
    scaled = (z.to(dtype or torch.get_default_dtype()) / 9).unsqueeze(-1)
    powers = torch.cat([torch.ones_like(scaled), scaled, scaled * scaled], dim=-1)
    features = (onehot.unsqueeze(-1).to(powers.dtype) * powers.unsqueeze(-2)).flatten(1)
    return features.masked_fill(~onehot.any(-1, keepdim=True), float("nan"))


def unknown_species(z: Tensor, species: Sequence[int] = QM9_SPECIES) -> list:
    """The atomic numbers in ``z`` outside ``species`` (sorted; reads ``z`` on the host).

    Args:
        z (torch.Tensor): atomic numbers ``[N]``.
        species (Sequence[int], optional): the known species. (default: QM9's H, C, N, O, F)
    """
    return sorted(set(z.tolist()) - set(int(s) for s in species))


def _register_target_scale(module: nn.Module, target_mean: float, target_std: float, target_scale: float) -> None:
    r"""The buffers ``target_mean`` :math:`\mu` and ``target_std`` :math:`\sigma` of a regressor whose
    network predicts :math:`(y - \mu)/\sigma` (checkpoints that call them ``mean``/``std`` still load)."""
    if not target_std > 0:
        raise ValueError(f"target_std must be positive, got {target_std}")
    if not target_scale > 0:
        raise ValueError(f"target_scale must be positive, got {target_scale}")
    module.register_buffer("target_mean", torch.tensor(float(target_mean)))
    module.register_buffer("target_std", torch.tensor(float(target_std)))
    module.target_scale = float(target_scale)
    module._register_load_state_dict_pre_hook(_rename_old_target_buffers)


def _rename_old_target_buffers(state_dict, prefix, *args) -> None:
    """Checkpoints before 0.2 named the target buffers ``mean`` and ``std``."""
    for old, new in (("mean", "target_mean"), ("std", "target_std")):
        if prefix + old in state_dict and prefix + new not in state_dict:
            state_dict[prefix + new] = state_dict.pop(prefix + old)


def _in_target_units(module: nn.Module, h: Tensor) -> Tensor:
    r""":math:`(\mu + \sigma h)/s` with :math:`s` the ``target_scale``, in at least the buffers' precision
    (a bfloat16 ``h`` under autocast would round a HOMO of -6,500 meV to steps of 32 meV)."""
    y = h.to(torch.promote_types(h.dtype, module.target_std.dtype)) * module.target_std + module.target_mean
    return y if module.target_scale == 1.0 else y / module.target_scale



class QM9LieConv(Rebuildable):
    r"""LieResNet regressor of one molecular property (the paper's QM9 model and settings), with the
    calling convention of PyG's :class:`~torch_geometric.nn.models.SchNet`.

    Atoms are featurised as the one-hot species times :math:`[1, z/9, (z/9)^2]` (:func:`atom_features`;
    QM9's H, C, N, O, F by default: 15 channels). For groups containing rotations (SE(3), SO(3)) the
    positions are centred per molecule and multiplied by ``pos_scale`` before the lift, as in the
    reference. The output is

    .. math::
        y = \frac{1}{s}\Big(\mu + \sigma\, \underset{m \in \mathcal{L}}{\mathrm{mean}}\; h_m\Big)
        \quad\text{(readout "mean")}, \qquad
        y = \frac{n}{s}\Big(\mu + \sigma\, \underset{m}{\mathrm{mean}}\; h_m\Big)
        \quad\text{(readout "add", } n \text{ atoms)},

    plus the ``atomref`` of every atom, with :math:`h_m` the network's output at the lifted atom
    :math:`m`: the network predicts the target normalised by :math:`\mu, \sigma` and the model returns
    it in the units of the dataset (``target_scale`` :math:`s` converts, e.g. the paper's meV
    statistics to the eV of PyG's ``data.y``).

    Args:
        group (LieGroup or str, optional): the group (``"T3"``, ``"SE3"``, ``"SO3"``, ``"Trivial3"``...).
            (default: :obj:`"T3"`)
        hidden_channels (int, optional): width :math:`k` (the paper's). (default: :obj:`1536`)
        num_layers (int, optional): bottleneck blocks. (default: :obj:`6`)
        mc_samples (int, optional): neighbourhood size of each LieConv. (default: :obj:`100`)
        fill (float, optional): neighbourhood fill (1: every atom of the molecule). (default: :obj:`1.0`)
        lift_samples (int, optional): stabilizer samples per atom. (default: :obj:`1`)
        center (bool, optional): centre each molecule at its centroid before lifting. (default:
            :obj:`None`, when the group has rotations; T(3) and Trivial(3) don't need it)
        pos_scale (float, optional): multiply positions by this (after centring). (default: :obj:`1.0`)
        target_mean (float, optional): the target's offset :math:`\mu` (e.g. the training median).
            (default: :obj:`0.0`)
        target_std (float, optional): the target's scale :math:`\sigma` (e.g. the training MAD).
            (default: :obj:`1.0`)
        target_scale (float, optional): :math:`s`, the units of ``target_mean``, ``target_std`` and ``atomref`` per
            unit of the output, e.g. ``1000`` for statistics in meV and outputs in eV. (default:
            :obj:`1.0`)
        atomref (torch.Tensor, optional): a per-element reference ``[100]`` (or ``[100, 1]``) added
            per atom, as in :class:`~torch_geometric.nn.models.SchNet`. (default: :obj:`None`)
        readout (str, optional): ``"mean"`` (the paper's) or ``"add"`` (``"sum"``), for extensive
            targets. (default: :obj:`"mean"`)
        species (sequence of int or str, optional): the atomic numbers the model knows (one-hot
            channels), or ``"all"`` for elements 1 to 100. An atom of another species raises.
            (default: QM9's :obj:`(1, 6, 7, 8, 9)`)
        **kwargs (optional): more arguments of :class:`LieResNet`.

    Forces: the output is differentiable in ``pos``, so
    ``-torch.autograd.grad(model(z, pos).sum(), pos)[0]`` gives them for an energy target.

    Shapes:
        - **input** of :meth:`forward`: atomic numbers :math:`(N)`, positions :math:`(N, 3)`, batch
          vector :math:`(N)` *(optional)*
        - **input** of :meth:`forward_lifted`: a lifted graph with ``z`` per lifted node
        - **output:** one value per molecule :math:`(B, 1)`
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
        target_mean: float = 0.0,
        target_std: float = 1.0,
        target_scale: float = 1.0,
        atomref: Optional[Tensor] = None,
        readout: str = "mean",
        species: Union[Sequence[int], str] = QM9_SPECIES,
        **kwargs,
    ) -> None:
        super().__init__()
        if readout not in ("mean", "add", "sum"):
            raise ValueError(f"readout must be 'mean' or 'add' ('sum'), got {readout!r}")
        self.readout = "add" if readout == "sum" else readout
        if isinstance(species, str):
            if species != "all":
                raise ValueError(f"species must be a sequence of atomic numbers or 'all', got {species!r}")
            species = ALL_SPECIES
        self.species = tuple(int(s) for s in species)
        if not self.species or any(not 1 <= s <= 100 for s in self.species) or len(set(self.species)) < len(self.species):
            raise ValueError(f"species must be distinct atomic numbers in 1..100, got {list(species)}")
        _register_target_scale(self, target_mean, target_std, target_scale)
        self.register_buffer("atomref", None if atomref is None else torch.as_tensor(atomref).reshape(-1).clone())
        self.net = LieResNet(3 * len(self.species), 1, group, hidden_channels=hidden_channels,
                             num_layers=num_layers, mc_samples=mc_samples, fill=fill, lift_samples=lift_samples,
                             **kwargs)
        has_rotations = self.net.group.frame_dim is not None or self.net.group.undefined_at_origin
        self.center = has_rotations if center is None else bool(center)
        self.pos_scale = float(pos_scale)

    @property
    def group(self) -> LieGroup:
        return self.net.group

    def reset_parameters(self) -> None:
        self.net.reset_parameters()

    def atom_features(self, z: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
        """``[N]`` atomic numbers -> ``[N, 3 * len(species)]`` features (:func:`atom_features`).

        Args:
            z (torch.Tensor): atomic numbers ``[N]``.
            dtype (torch.dtype, optional): the features' dtype (the positions'). (default: :obj:`None`)
        """
        return atom_features(z, self.species, dtype)

    def forward(self, z: Tensor, pos: Tensor, batch: Optional[Tensor] = None, frames: Optional[Tensor] = None
                ) -> Tensor:
        """Atomic numbers ``z`` ``[N]``, positions ``[N, 3]``, ``batch`` ``[N]`` -> ``[B, 1]``."""
        if z.dim() != 1 or pos.dim() != 2 or pos.shape[0] != z.shape[0]:
            raise ValueError(f"z [N] and pos [N, 3] must describe the same atoms, got {list(z.shape)} and "
                             f"{list(pos.shape)}")
        if batch is None:
            batch = torch.zeros_like(z)
        elif batch.shape != z.shape:
            raise ValueError(f"batch must have one entry per atom ({z.shape[0]}), got {list(batch.shape)}")
        if self.center:
            pos = pos - _centroids(pos, batch)
        x = self.atom_features(z, pos.dtype)  # z/9 computed in the positions' precision
        h = self._checked_species(z, lambda: self.net(x, pos * self.pos_scale, batch, frames))
        return self._to_target(h, z, batch)

    def forward_lifted(self, data: Data) -> Tensor:
        r"""One value per molecule ``[B, 1]`` of a lifted graph (or a batch of them) that carries ``z``
        per lifted node, e.g. a :class:`~torch_geometric.datasets.QM9` item through
        :class:`~torch_geometric_lieconv.transforms.LiftGraph` and a
        :class:`~torch_geometric.loader.DataLoader`.

        The graph is used as lifted: centring and ``pos_scale`` (which :meth:`forward` applies
        before its lift) are the transform's job here, e.g.
        ``Compose([Center(), LiftGraph("SO3", candidate_radius=...)])``.

        Args:
            data (torch_geometric.data.Data): a lifted graph (or batch) with ``z`` per lifted node.
        """
        if isinstance(data, Tensor):
            raise TypeError("forward_lifted takes the lifted graph: forward_lifted(data)")
        x = self.atom_features(data.z, data.edge_attr.dtype)
        h = self._checked_species(data.z, lambda: self.net.forward_lifted(data, x))
        batch = getattr(data, "batch", None)
        batch = torch.zeros_like(data.z) if batch is None else batch
        return self._to_target(h, data.z, batch, int(torch.as_tensor(data.lift_samples).max()))

    def _checked_species(self, z: Tensor, run):
        """``run()``, with the error for atoms of unknown species named (they reach the network as NaN)."""
        try:
            return run()
        except NonFiniteInputError:
            unknown = unknown_species(z, self.species)
            if unknown:
                raise ValueError(f"{type(self).__name__} knows the atomic numbers {list(self.species)}, got "
                                 f"{unknown}; build it with species=[...] or species='all'") from None
            raise

    def _to_target(self, h: Tensor, z: Tensor, batch: Tensor, atoms_per_point: int = 1) -> Tensor:
        """Normalised per-molecule outputs ``h`` ``[B, 1]`` -> the target in the output's units."""
        y = _in_target_units(self, h)
        num_molecules = h.shape[0]
        if self.readout == "add":
            atoms = count_index(batch, num_molecules).to(y.dtype).unsqueeze(-1)
            y = y * atoms / atoms_per_point
        if self.atomref is not None:
            ref = torch.zeros(num_molecules, dtype=y.dtype, device=y.device).index_add_(
                0, batch, self.atomref[z].to(y.dtype))
            y = y + (ref / (atoms_per_point * self.target_scale)).unsqueeze(-1)
        return y

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(group={self.group}, hidden_channels={self.net.hidden_channels}, "
                f"num_layers={self.net.num_layers}, readout={self.readout!r})")


def _centroids(pos: Tensor, batch: Tensor) -> Tensor:
    """``[N, d]`` the centroid of each point's graph (no host sync: sized by the number of points)."""
    size = pos.shape[0]
    sums = torch.zeros(size, pos.shape[1], dtype=pos.dtype, device=pos.device).index_add_(0, batch, pos)
    counts = count_index(batch, size).clamp_(min=1).to(pos.dtype).unsqueeze(-1)
    return (sums / counts)[batch]


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


class QM9SchNet(Rebuildable):
    r"""PyG's :class:`~torch_geometric.nn.models.SchNet` as a QM9 regressor with the interface of
    :class:`~torch_geometric_lieconv.models.QM9LieConv`: ``forward(z, pos, batch)`` returns one value
    per molecule in the target's units, :math:`y = \mu + \sigma\,\text{SchNet}(z, \text{pos})`
    (SchNet's sum readout of per-atom outputs), with the interaction graph of
    :class:`RadiusInteractionGraph`. The baseline of the time-to-accuracy comparison.

    Args:
        hidden_channels (int, optional): SchNet's width (and number of filters). (default: :obj:`128`)
        num_interactions (int, optional): interaction blocks. (default: :obj:`6`)
        cutoff (float, optional): interaction radius in Ångström. (default: :obj:`10.0`)
        target_mean (float, optional): the target's offset :math:`\mu`. (default: :obj:`0.0`)
        target_std (float, optional): the target's scale :math:`\sigma`. (default: :obj:`1.0`)
        target_scale (float, optional): units of ``target_mean`` and ``target_std`` per unit of the output (see
            :class:`QM9LieConv`). (default: :obj:`1.0`)

    Shapes:
        - **input:** atomic numbers :math:`(N)`, positions :math:`(N, 3)`, batch vector :math:`(N)`
        - **output:** :math:`(B, 1)`
    """

    def __init__(self, hidden_channels: int = 128, num_interactions: int = 6, cutoff: float = 10.0,
                 target_mean: float = 0.0, target_std: float = 1.0, target_scale: float = 1.0
                 ) -> None:
        from torch_geometric.nn.models import SchNet

        super().__init__()
        _register_target_scale(self, target_mean, target_std, target_scale)
        self.net = SchNet(hidden_channels=hidden_channels, num_filters=hidden_channels,
                          num_interactions=num_interactions, cutoff=cutoff,
                          interaction_graph=RadiusInteractionGraph(cutoff))

    def reset_parameters(self) -> None:
        self.net.reset_parameters()

    def forward(self, z: Tensor, pos: Tensor, batch: Optional[Tensor] = None) -> Tensor:
        if batch is None:
            batch = torch.zeros_like(z)
        return _in_target_units(self, self.net(z, pos, batch))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(hidden_channels={self.net.hidden_channels}, "
                f"num_interactions={self.net.num_interactions}, cutoff={self.net.cutoff:g})")
