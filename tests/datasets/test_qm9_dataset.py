"""QM9 on a tiny root written in PyG's raw format: loading, targets and units, splits, features,
augmentation."""
from __future__ import annotations

import os

import pytest
import torch
from torch_geometric_lieconv.testing.qm9_fixture import HARTREE_EV, write_qm9_root

from torch_geometric_lieconv.datasets.qm9 import (QM9_TARGETS, RandomRotation3d, get_target, load_qm9,
                                                  qm9_split_sizes, qm9_splits, target_statistics, target_values)
from torch_geometric_lieconv.models.qm9 import atom_features


# ----------------------------------------------------------------------------------------------- data
def test_fixture_loads_through_pyg(qm9_root):
    from torch_geometric.datasets import QM9

    root, molecules = qm9_root
    for name in QM9(root).raw_file_names:  # whichever raw format the installed packages select exists
        assert os.path.isfile(os.path.join(root, "raw", name))
    dataset = load_qm9(root, download=False)
    assert len(dataset) == len(molecules)
    for i in (0, 7, len(molecules) - 1):
        assert dataset[i].z.tolist() == molecules[i]["z"]
        torch.testing.assert_close(dataset[i].pos, molecules[i]["pos"], atol=1e-4, rtol=0)


# Paper units from QM9's raw CSV units, from the physical constants (not from the package):
# 1 Hartree = 27.211386246 eV (CODATA); 1 kcal/mol = 4184 J/mol / 96485.33212 C/mol = 0.0433641 eV.
KCAL_MEV = 4184 / 96485.33212 * 1e3
EXPECTED = {  # paper target -> (raw CSV column, factor to the paper's unit)
    "mu": ("mu", 1.0), "alpha": ("alpha", 1.0), "homo": ("homo", 1000 * HARTREE_EV), "lumo": ("lumo", 1000 * HARTREE_EV),
    "gap": ("gap", 1000 * HARTREE_EV), "r2": ("r2", 1.0), "zpve": ("zpve", 1000 * HARTREE_EV), "Cv": ("cv", 1.0),
    "U0": ("u0_atom", KCAL_MEV), "U": ("u298_atom", KCAL_MEV), "H": ("h298_atom", KCAL_MEV),
    "G": ("g298_atom", KCAL_MEV),
}


def test_a_lifted_pre_transform_is_saved_and_read_back_with_weights_only(tmp_path):
    """``QM9(root, pre_transform=LiftGraph(...))`` stores LiftedGraph objects; reading them back needs no
    fallback to unpickling arbitrary objects (PyG warns and falls back when a class is not allowlisted)."""
    import warnings

    from torch_geometric.datasets import QM9
    from torch_geometric_lieconv import LiftedGraph
    from torch_geometric_lieconv.transforms import LiftGraph

    write_qm9_root(str(tmp_path), 6, seed=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Ww]eights only load failed.*")
        QM9(str(tmp_path), pre_transform=LiftGraph("T3"))  # processes and saves
        again = QM9(str(tmp_path), pre_transform=LiftGraph("T3"))  # reads the saved file back
    assert isinstance(again[0], LiftedGraph) and again[0].edge_attr.shape[1] == 3


def test_targets_units_and_mapping(qm9_root):
    root, molecules = qm9_root
    dataset = load_qm9(root, download=False)
    assert set(QM9_TARGETS) == set(EXPECTED)
    for i in (0, 5):
        y = dataset[i].y
        for name, (column, factor) in EXPECTED.items():
            expected = molecules[i]["raw"][column] * factor
            assert float(target_values(y, get_target(name))) == pytest.approx(expected, rel=2e-6), name
    # HOMO of molecule 0 by hand: Hartree -> meV
    assert float(target_values(dataset[0].y, get_target("homo"))) == pytest.approx(
        molecules[0]["raw"]["homo"] * 27211.386246, rel=1e-6)
    assert get_target("u0").name == "U0" and get_target("cv").name == "Cv"
    with pytest.raises(ValueError, match="unknown QM9 target"):
        get_target("enthalpy")


def test_atom_features_by_hand():
    z = torch.tensor([1, 6, 9, 8])
    f = atom_features(z, dtype=torch.float64)
    expected = torch.zeros(4, 15, dtype=torch.float64)
    for row, (species, value) in enumerate([(0, 1), (1, 6), (4, 9), (3, 8)]):
        expected[row, 3 * species:3 * species + 3] = torch.tensor([1.0, value / 9, (value / 9) ** 2])
    torch.testing.assert_close(f, expected)
    assert bool(atom_features(torch.tensor([6, 16])).isnan()[1].all())  # unknown: a NaN row for the check
    wide = atom_features(torch.tensor([16, 1]), species=(1, 16), dtype=torch.float64)
    torch.testing.assert_close(wide[0], torch.tensor([0, 0, 0, 1, 16 / 9, (16 / 9) ** 2], dtype=torch.float64))


def test_model_refuses_unknown_atoms_by_name_and_takes_any_element_when_asked():
    from torch_geometric_lieconv.models import QM9LieConv

    pos = torch.randn(3, 3)
    with pytest.raises(ValueError, match=r"knows the atomic numbers \[1, 6, 7, 8, 9\], got \[16\]"):
        QM9LieConv("T3", hidden_channels=8, num_layers=1)(torch.tensor([6, 16, 1]), pos)
    for species in ("all", [1, 6, 16]):
        out = QM9LieConv("T3", hidden_channels=8, num_layers=1, species=species).eval()(torch.tensor([6, 16, 1]), pos)
        assert out.shape == (1, 1) and bool(torch.isfinite(out).all())


def test_split_sizes_and_disjointness():
    # full QM9 after removing the uncharacterized molecules: 100k train, 10% test, the rest valid
    assert qm9_split_sizes(130_831) == {"train": 100_000, "valid": 130_831 - 100_000 - 13_083, "test": 13_083}
    assert qm9_split_sizes(1000) == {"train": round(1000 * 100_000 / 130_831), "valid": 1000 - 764 - 100, "test": 100}
    splits = qm9_splits(1000, seed=3)
    together = torch.cat(list(splits.values()))
    assert together.unique().numel() == together.numel() == 1000
    again, other = qm9_splits(1000, seed=3), qm9_splits(1000, seed=4)
    assert all(torch.equal(splits[k], again[k]) for k in splits)
    assert not torch.equal(splits["test"], other["test"])
    small = qm9_splits(1000, seed=3, train_size=50, valid_size=20)
    assert torch.equal(small["test"], splits["test"])
    assert len(small["train"]) == 50 and set(small["train"].tolist()) <= set(splits["train"].tolist())
    assert set(small["valid"].tolist()) <= set(splits["valid"].tolist())
    with pytest.raises(ValueError, match="cannot split"):
        qm9_splits(5)


def test_target_statistics_median_and_mad():
    median, mad = target_statistics(torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert (median, mad) == (3.0, 1.0)  # |y - 3| = 2, 1, 0, 1, 97 -> median 1
    with pytest.raises(ValueError, match="MAD"):
        target_statistics(torch.ones(4))


def test_random_rotation_is_rigid_and_uniform():
    from torch_geometric.data import Data

    pos = torch.randn(6, 3, dtype=torch.float64)
    transform = RandomRotation3d()
    moved = transform(Data(pos=pos.clone())).pos
    torch.testing.assert_close(torch.cdist(moved, moved), torch.cdist(pos, pos))
    torch.testing.assert_close(moved.norm(dim=-1), pos.norm(dim=-1))  # about the origin
    assert not torch.allclose(moved, pos)
    # uniform on SO(3): a rotated unit vector is uniform on the sphere (mean 0, second moment I/3)
    e1 = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    v = torch.cat([transform(Data(pos=e1.clone())).pos for _ in range(1000)])
    assert v.mean(0).abs().max() < 0.08
    torch.testing.assert_close(v.T @ v / len(v), torch.eye(3, dtype=torch.float64) / 3, atol=0.04, rtol=0)
    centred = RandomRotation3d(center="centroid")(Data(pos=pos.clone())).pos
    torch.testing.assert_close(centred.mean(0), pos.mean(0))
