r"""QM9 helpers on top of :class:`torch_geometric.datasets.QM9`: targets and units, splits,
normalisation, featurisation and rotation augmentation (the paper's protocol).

PyG stores 19 targets per molecule in ``data.y`` ``[1, 19]``; energies in eV (converted from
Hartree with :math:`1\,E_h = 27.211386246` eV), the atomization energies (columns 12-15) converted
from kcal/mol with :math:`1` kcal/mol :math:`= 0.04336414` eV. The paper reports energies in meV and
U0/U/H/G as atomization energies, so :data:`QM9_TARGETS` maps every name to a PyG column and the
factor from PyG's unit to the paper's.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.datasets import QM9
from torch_geometric.transforms import BaseTransform

from ..groups import random_rotations
from .._errors import first_line
from .safe_load import SafeLoadMixin, safe_torch_load

__all__ = [
    "QM9Target", "QM9_TARGETS", "PAPER_MAE", "PAPER_HOMO_MAE_BY_GROUP", "get_target",
    "atom_features", "qm9_split_sizes", "qm9_splits", "save_splits", "load_splits", "target_statistics",
    "RandomRotation3d", "load_qm9", "target_values",
]

#: atomic numbers of the one-hot species encoding (H, C, N, O, F)

#: molecules of full QM9 after PyG removes the 3,054 uncharacterized ones; the paper trains on 100k
QM9_FULL_SIZE = 130_831
QM9_TRAIN_SIZE = 100_000
QM9_TEST_FRACTION = 0.1


@dataclass(frozen=True)
class QM9Target:
    """One regression target: its PyG column, the factor from PyG's unit to the paper's, the unit."""

    name: str
    column: int
    scale: float
    unit: str
    description: str


_MEV = 1000.0  # eV -> meV
#: the paper's 12 targets (Table 2), by name
QM9_TARGETS: Dict[str, QM9Target] = {t.name: t for t in [
    QM9Target("mu", 0, 1.0, "D", "dipole moment"),
    QM9Target("alpha", 1, 1.0, "bohr^3", "isotropic polarizability"),
    QM9Target("homo", 2, _MEV, "meV", "HOMO energy"),
    QM9Target("lumo", 3, _MEV, "meV", "LUMO energy"),
    QM9Target("gap", 4, _MEV, "meV", "HOMO-LUMO gap"),
    QM9Target("r2", 5, 1.0, "bohr^2", "electronic spatial extent"),
    QM9Target("zpve", 6, _MEV, "meV", "zero point vibrational energy"),
    QM9Target("U0", 12, _MEV, "meV", "atomization energy at 0 K"),
    QM9Target("U", 13, _MEV, "meV", "atomization energy at 298.15 K"),
    QM9Target("H", 14, _MEV, "meV", "atomization enthalpy at 298.15 K"),
    QM9Target("G", 15, _MEV, "meV", "atomization free energy at 298.15 K"),
    QM9Target("Cv", 11, 1.0, "cal/mol K", "heat capacity at 298.15 K"),
]}

#: Table 2 of the paper: LieConv(T3) test MAE per target, in the units of :data:`QM9_TARGETS`
PAPER_MAE: Dict[str, float] = {"alpha": 0.084, "gap": 49, "homo": 30, "lumo": 25, "mu": 0.032, "Cv": 0.038,
                               "G": 22, "H": 24, "r2": 0.800, "U": 19, "U0": 19, "zpve": 2.280}
#: Table 3 of the paper: HOMO test MAE (meV) per group
PAPER_HOMO_MAE_BY_GROUP: Dict[str, float] = {"Trivial": 31.7, "SO3": 65.4, "T3": 29.6, "SE3": 26.8}


def get_target(name: str) -> QM9Target:
    """The :class:`QM9Target` called ``name`` (case-insensitive), or a ``ValueError`` listing the names.

    Args:
        name (str): a key of :data:`QM9_TARGETS` (``"homo"``, ``"U0"``, ...).
    """
    for key, target in QM9_TARGETS.items():
        if key.lower() == str(name).lower():
            return target
    raise ValueError(f"unknown QM9 target {name!r}; choose one of {', '.join(QM9_TARGETS)}")


def target_values(y: Tensor, target: QM9Target) -> Tensor:
    """PyG's target rows ``y`` ``[B, 19]`` -> the target in the paper's units ``[B]``.

    Args:
        y (torch.Tensor): PyG's QM9 targets ``[B, 19]``.
        target (QM9Target): the target to take.
    """
    return y[:, target.column] * target.scale


# ----------------------------------------------------------------------------------------------- splits
def qm9_split_sizes(num_molecules: int, train_size: Optional[int] = None, valid_size: Optional[int] = None,
                    test_size: Optional[int] = None) -> Dict[str, int]:
    r"""Sizes of the paper's split (Cormorant's protocol): 100k train, 10% test, the rest valid.

    For a root with fewer molecules than full QM9 the train share :math:`100000/130831` is kept:
    :math:`n_\text{train} = \min(100000, \text{round}(N \cdot 100000/130831))`,
    :math:`n_\text{test} = \text{round}(0.1 N)`, :math:`n_\text{valid} = N - n_\text{train} - n_\text{test}`.
    ``train_size`` / ``valid_size`` ask for *at most* that many (a subset of the protocol's split, e.g.
    for a quick run); ``test_size`` sets the test size exactly (the valid share absorbs the change).

    Args:
        num_molecules (int): :math:`N`, the molecules of the root.
        train_size (int, optional): at most this many training molecules. (default: :obj:`None`)
        valid_size (int, optional): at most this many validation molecules. (default: :obj:`None`)
        test_size (int, optional): exactly this many test molecules. (default: :obj:`None`)
    """
    n = int(num_molecules)
    test = int(round(QM9_TEST_FRACTION * n)) if test_size is None else int(test_size)
    train = min(QM9_TRAIN_SIZE, int(round(n * QM9_TRAIN_SIZE / QM9_FULL_SIZE)))
    valid = n - train - test
    if min(train, valid, test) < 1:
        raise ValueError(f"cannot split {n} molecules into train {train}, valid {valid}, test {test}; "
                         f"use a bigger QM9 root or another test size")
    for name, size in (("train_size", train_size), ("valid_size", valid_size)):
        if size is not None and int(size) < 1:
            raise ValueError(f"{name} must be at least 1, got {size}")
    return {"train": train if train_size is None else min(train, int(train_size)),
            "valid": valid if valid_size is None else min(valid, int(valid_size)), "test": test}


def qm9_splits(num_molecules: int, seed: int = 0, **sizes: Optional[int]) -> Dict[str, Tensor]:
    """Disjoint index sets of :func:`qm9_split_sizes`, from one permutation seeded by ``seed``.

    The permutation is cut into the protocol's test, valid and train blocks (in this order); smaller
    ``train_size`` / ``valid_size`` take the first molecules of their block, so the test set never
    depends on them and a subset run's splits are subsets of the full run's.

    Args:
        num_molecules (int): :math:`N`, the molecules of the root.
        seed (int, optional): the permutation's seed. (default: :obj:`0`)
        **sizes (optional): ``train_size``, ``valid_size``, ``test_size`` of :func:`qm9_split_sizes`.
    """
    protocol = qm9_split_sizes(num_molecules, test_size=sizes.get("test_size"))
    counts = qm9_split_sizes(num_molecules, **sizes)
    perm = torch.randperm(num_molecules, generator=torch.Generator().manual_seed(int(seed)))
    valid_start = protocol["test"]
    train_start = valid_start + protocol["valid"]
    return {"test": perm[:protocol["test"]].sort().values,
            "valid": perm[valid_start:valid_start + counts["valid"]].sort().values,
            "train": perm[train_start:train_start + counts["train"]].sort().values}


def save_splits(path: str, splits: Dict[str, Tensor]) -> None:
    """Write the split indices as JSON ``{"train": [...], "valid": [...], "test": [...]}``.

    Args:
        path (str): the JSON file.
        splits (Dict[str, torch.Tensor]): index sets by split name.
    """
    from .._files import write_json

    write_json(path, {k: v.tolist() for k, v in splits.items()}, indent=None)


def load_splits(path: str) -> Dict[str, Tensor]:
    """The split indices written by :func:`save_splits`.

    Args:
        path (str): a JSON file of :func:`save_splits`.
    """
    with open(path) as f:
        return {k: torch.tensor(v, dtype=torch.long) for k, v in json.load(f).items()}


def target_statistics(values: Tensor) -> Tuple[float, float]:
    r"""Median :math:`m` and median absolute deviation :math:`\operatorname{median}|y - m|` of training targets.

    The model regresses :math:`(y - m)/\text{MAD}` (robust normalisation of the reference).

    Args:
        values (torch.Tensor): the training targets ``[B]``.
    """
    values = values.to(torch.float64)
    median = values.median()
    mad = (values - median).abs().median()
    if not float(mad) > 0:
        raise ValueError("the training targets are all equal (MAD = 0); use more training molecules")
    return float(median), float(mad)


# ----------------------------------------------------------------------------------------------- augmentation
class RandomRotation3d(BaseTransform):
    r"""Rotate ``data.pos`` by a Haar-uniform rotation :math:`R \in SO(3)` about ``center`` (default: the origin).

    :math:`x \mapsto R (x - c) + c`; the paper's SO(3) data augmentation. Draws from the global torch RNG.

    Args:
        center (str, optional): rotate about ``"origin"`` or each molecule's ``"centroid"``. (default:
            :obj:`"origin"`)
    """

    def __init__(self, center: str = "origin") -> None:
        if center not in ("origin", "centroid"):
            raise ValueError(f"center must be 'origin' or 'centroid', got {center!r}")
        self.center = center

    def forward(self, data: Data) -> Data:
        pos = data.pos
        rot = random_rotations((), 3, dtype=pos.dtype, device=pos.device)
        c = pos.mean(0, keepdim=True) if self.center == "centroid" else torch.zeros_like(pos[:1])
        data.pos = (pos - c) @ rot.T + c
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(center={self.center!r})"


# ----------------------------------------------------------------------------------------------- loading
def _writable(path: str) -> bool:
    """Whether ``path`` (which may not exist yet) could be created and written: its nearest existing
    ancestor is writable."""
    probe = os.path.abspath(path)  # a relative path climbs to the working directory, not to ''
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return os.access(probe, os.W_OK)


class SafeQM9(SafeLoadMixin, QM9):
    """PyG's :class:`~torch_geometric.datasets.QM9` that never unpickles arbitrary objects: the
    processed file and the raw ``qm9_v3.pt`` are read with ``weights_only=True`` only
    (:func:`~torch_geometric_lieconv.datasets.safe_load.safe_torch_load`)."""

    def process(self) -> None:
        raw = os.path.join(self.raw_dir, "qm9_v3.pt")
        if os.path.exists(raw):
            safe_torch_load(raw)  # refuse a tampered file before PyG's loader (which may retry unsafely)
        super().process()


def _raw_digest(root: str) -> str:
    """A key of ``root`` and the name, size and modification time of its raw files (stale caches miss)."""
    h = hashlib.sha1(root.encode())
    raw = os.path.join(root, "raw")
    for name in sorted(os.listdir(raw)) if os.path.isdir(raw) else []:
        info = os.stat(os.path.join(raw, name))
        h.update(f"{name}:{info.st_size}:{info.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def load_qm9(root: str, *, download: bool = True, cache_dir: Optional[str] = None):
    """:class:`torch_geometric.datasets.QM9` at ``root``, with one-line errors instead of tracebacks.

    Without data under ``root`` PyG downloads QM9 (``download=False`` refuses instead).
    If ``root`` is read-only and not processed yet, PyG's processed files go to
    ``cache_dir/qm9-<key>`` instead (default ``cache_dir``: ``~/.cache/torch_geometric_lieconv``),
    where the key covers ``root`` and the name, size and modification time of its raw files: a root
    whose raw files changed is processed again, never read from a stale cache.

    Args:
        root (str): the QM9 folder in PyG's layout (``root/raw``, ``root/processed``).
        download (bool, optional): download QM9 when ``root`` holds no data. (default: :obj:`True`)
        cache_dir (str, optional): the folder of the keyed caches of read-only roots.
            (default: ``~/.cache/torch_geometric_lieconv``)
    """
    root = os.path.abspath(os.path.expanduser(root))
    processed = os.path.join(root, "processed", "data_v3.pt")
    cls = SafeQM9
    if not os.path.exists(processed) and os.path.isdir(os.path.join(root, "raw")) and not _writable(
            os.path.join(root, "processed")):
        cache_base = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "torch_geometric_lieconv")
        target_dir = os.path.join(cache_base, f"qm9-{_raw_digest(root)}")

        class QM9ReadOnlyRoot(SafeQM9):
            @property
            def processed_dir(self) -> str:
                return target_dir

        cls = QM9ReadOnlyRoot
    has_raw = any(os.path.exists(os.path.join(root, "raw", name)) for name in ("qm9_v3.pt", "gdb9.sdf"))
    missing = (f"no QM9 data under {root} (expected raw/qm9_v3.pt, or raw/gdb9.sdf with RDKit, or "
               f"processed/data_v3.pt)")
    if not has_raw and not os.path.exists(processed) and not download:
        raise FileNotFoundError(f"{missing}; put PyG's raw QM9 files there or allow the download")
    try:
        return cls(root)
    except Exception as error:  # download failure (no network), unreadable files, ...
        detail = first_line(error)
        if not has_raw and not os.path.exists(processed):
            raise FileNotFoundError(f"{missing} and the download failed ({detail}); put PyG's raw QM9 files in "
                                    f"{os.path.join(root, 'raw')} or run once with network access") from None
        raise ValueError(f"could not load QM9 from {root}: {type(error).__name__}: {detail}") from None
