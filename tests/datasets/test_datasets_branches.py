"""Branches of the dataset modules (qm9, rotmnist, safe_load, springs) that the other tests leave out,
each stated as a fact: an error that names the problem, a file left as the user had it, a data file
read back equal to what was written, or the physics of a sampler (3D circular orbits)."""
import hashlib
import os
import pickle
import shutil
import zipfile

import pytest
import torch
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.datasets import QM9

from torch_geometric_lieconv.datasets import rotmnist
from torch_geometric_lieconv.datasets.qm9 import RandomRotation3d, SafeQM9, _writable, qm9_split_sizes
from torch_geometric_lieconv.datasets.rotmnist import RotMNIST, read_amat
from torch_geometric_lieconv.datasets.safe_load import SafeLoadMixin
from torch_geometric_lieconv.datasets.springs import (GravitySystem, SpringSystem, generate_systems, simulate,
                                                      system_from_name)
from torch_geometric_lieconv.testing.rotmnist_fixture import TEST, TRAIN_VALID, one_pixel_image, write_amat

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64


# ---------------------------------------------------------------------------------------------- qm9
@pytest.mark.parametrize("name", ["train_size", "valid_size"])
def test_a_split_cap_below_one_is_refused_by_name(name):
    with pytest.raises(ValueError, match=f"{name} must be at least 1, got 0"):
        qm9_split_sizes(1000, **{name: 0})


def test_random_rotation_refuses_an_unknown_centre():
    with pytest.raises(ValueError, match="center must be 'origin' or 'centroid', got 'middle'"):
        RandomRotation3d("middle")


def test_a_missing_relative_folder_under_a_writable_directory_is_writable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert os.access(".", os.W_OK)
    assert _writable(os.path.join("no", "such", "folder"))  # it climbed to '' and asked os.access('') before
    os.chmod(tmp_path, 0o500)
    try:
        assert _writable(os.path.join("no", "such", "folder")) == os.access(".", os.W_OK)  # root writes anyway
    finally:
        os.chmod(tmp_path, 0o700)


def _bare_safe_qm9(root):
    dataset = SafeQM9.__new__(SafeQM9)  # no __init__: only process() is under test
    dataset.root = str(root)
    return dataset


def test_safe_qm9_vets_the_raw_pt_file_only_when_there_is_one(tmp_path, monkeypatch):
    """Without ``raw/qm9_v3.pt`` (RDKit's ``gdb9.sdf`` layout) processing goes to PyG as it is; a
    ``qm9_v3.pt`` that is not plain data is refused before PyG's loader can unpickle it."""
    handed = []
    monkeypatch.setattr(QM9, "process", lambda self: handed.append(self))
    (tmp_path / "raw").mkdir()
    dataset = _bare_safe_qm9(tmp_path)
    dataset.process()
    assert handed == [dataset]
    with open(tmp_path / "raw" / "qm9_v3.pt", "wb") as f:
        pickle.dump(Data, f, protocol=2)  # a class reference: a pickle that is not weights-only data
    with pytest.raises(ValueError, match="refused to load .*qm9_v3.pt"):
        dataset.process()
    assert handed == [dataset]


# ---------------------------------------------------------------------------------------------- rotmnist
def _root_with(tmp_path, train_lines, test_lines=None):
    raw = tmp_path / "root" / "raw"
    raw.mkdir(parents=True)
    write_amat(raw / TRAIN_VALID, *train_lines)
    write_amat(raw / TEST, *(test_lines or train_lines))
    return str(tmp_path / "root")


def test_read_amat_refuses_a_fractional_label(tmp_path):
    path = tmp_path / "bad.amat"
    path.write_text("0.5 0.25 2.5\n")
    with pytest.raises(ValueError, match="must be a class label"):
        read_amat(str(path), num_pixels=2)


def test_rotmnist_refuses_labels_that_are_not_digits(tmp_path):
    root = _root_with(tmp_path, ([one_pixel_image(3, 3)] * 6, [0, 1, 2, 3, 4, 10]))
    with pytest.raises(ValueError, match=r"labels must be digits 0\.\.9"):
        RotMNIST(root, log=False)


def test_rotmnist_refuses_a_file_too_small_to_split(tmp_path):
    root = _root_with(tmp_path, ([one_pixel_image(3, 3)], [4]))
    with pytest.raises(ValueError, match="has 1 images: too few for a train/valid split"):
        RotMNIST(root, log=False)


def test_missing_files_with_downloading_off_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(rotmnist, "download_url", lambda *a, **k: pytest.fail("downloaded with download=False"))
    with pytest.raises(FileNotFoundError, match=f"{TRAIN_VALID} and {TEST} are missing .* downloading is off"):
        RotMNIST(str(tmp_path / "root"), download=False, log=False)


def _serve(monkeypatch, payload: bytes, md5=True):
    def fake_download_url(url, folder, *args, **kwargs):
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "mnist_rotation_new.zip")
        with open(path, "wb") as f:
            f.write(payload)
        return path

    monkeypatch.setattr(rotmnist, "download_url", fake_download_url)
    monkeypatch.setattr(RotMNIST, "archive_md5", hashlib.md5(payload).hexdigest() if md5 else "0" * 32)


def _zip_bytes(tmp_path, members):
    path = tmp_path / "packed.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path.read_bytes()


def test_an_archive_with_the_files_at_its_top_level_is_used_as_it_is(tmp_path, monkeypatch):
    line = " ".join(["0.0"] * 784)
    train = "".join(f"{line} {d}\n" for d in [1, 2, 3, 4, 5, 6])
    _serve(monkeypatch, _zip_bytes(tmp_path, {TRAIN_VALID: train, TEST: f"{line} 7\n"}))
    test = RotMNIST(str(tmp_path / "root"), "test", log=False)
    assert [int(d.y) for d in test] == [7]
    assert sorted(os.listdir(tmp_path / "root" / "raw")) == sorted([TEST, TRAIN_VALID])


def test_a_failed_download_removes_what_it_wrote_and_keeps_the_users_files(tmp_path, monkeypatch):
    """A download that is not a zip (with the right md5) is refused by name; ``raw/`` keeps the file the
    user had put there and loses the archive."""
    raw = tmp_path / "root" / "raw"
    raw.mkdir(parents=True)
    (raw / "notes.txt").write_text("mine")
    _serve(monkeypatch, b"<html>not found</html>")
    with pytest.raises(OSError, match="is not a zip archive"):
        RotMNIST(str(tmp_path / "root"), log=False)
    assert os.listdir(raw) == ["notes.txt"] and (raw / "notes.txt").read_text() == "mine"


def test_an_interrupted_download_is_reraised_as_it_is_and_cleaned_up(tmp_path, monkeypatch):
    """A KeyboardInterrupt is not a download error to explain: it propagates unchanged, and the partial
    file and the ``raw/`` folder made for it are gone."""
    def interrupted(url, folder, *args, **kwargs):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "mnist_rotation_new.zip"), "wb") as f:
            f.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(rotmnist, "download_url", interrupted)
    with pytest.raises(KeyboardInterrupt):
        RotMNIST(str(tmp_path / "root"), log=False)
    assert not (tmp_path / "root" / "raw").exists()


# ---------------------------------------------------------------------------------------------- safe_load
class _Tiny(SafeLoadMixin, InMemoryDataset):
    def __init__(self):
        super().__init__(None)


def test_safe_load_reads_a_two_part_file_as_data_and_refuses_what_is_not_a_dataset(tmp_path):
    items = [Data(x=torch.randn(3, 2), y=torch.tensor([1])), Data(x=torch.randn(5, 2), y=torch.tensor([0]))]
    data, slices = InMemoryDataset.collate(items)
    two = tmp_path / "two.pt"
    torch.save((data.to_dict(), slices), two)
    dataset = _Tiny()
    dataset.load(str(two))
    assert len(dataset) == 2
    for item, original in zip(dataset, items):
        assert torch.equal(item.x, original.x) and torch.equal(item.y, original.y)
    listed = tmp_path / "list.pt"
    torch.save([data.to_dict(), slices], listed)
    with pytest.raises(ValueError, match="not a processed PyG dataset file"):
        _Tiny().load(str(listed))
    named = tmp_path / "named.pt"
    torch.save((data.to_dict(), slices, "Data"), named)
    with pytest.raises(ValueError, match="names 'Data' as its data class, not a PyG data class"):
        _Tiny().load(str(named))


# ---------------------------------------------------------------------------------------------- springs
@pytest.mark.parametrize("kwargs,message", [
    (dict(num_particles=1), "at least 2 particles, got 1"),
    (dict(dim=4), "2D or 3D, got dim=4"),
])
def test_particle_systems_refuse_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpringSystem(**kwargs)


def test_unknown_system_names_list_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown particle system 'pendulum'; choose one of \['gravity', 'springs'\]"):
        system_from_name("pendulum")


def test_simulation_and_generation_refuse_empty_runs():
    system = SpringSystem()
    with pytest.raises(ValueError, match="substeps must be >= 1, got 0"):
        simulate(system, torch.zeros(6, 4, dtype=F64), torch.ones(6, 2, dtype=F64), torch.zeros(6, dtype=torch.long),
                 1, torch.arange(3, dtype=F64), substeps=0)
    with pytest.raises(ValueError, match="need num_systems >= 1, traj_len >= 1, dt > 0; got 0, 5, 0.1"):
        generate_systems(system, 0, traj_len=5, dt=0.1)


def test_3d_gravity_starts_planets_on_circular_orbits_in_random_planes():
    """In 3D each planet moves perpendicular to its radius at the circular speed sqrt(G M / r); the
    orbit planes (the planets' angular momenta) point in different directions."""
    system = GravitySystem(num_particles=5, dim=3, gravity=1.5)
    q, p, m = system.sample(4, torch.Generator().manual_seed(0))
    star = m[:, 0] == system.star_mass
    assert int(star.sum()) == 4 and q[star].abs().max() == 0 and p[star].abs().max() == 0
    planets = ~star
    v = p[planets] / m[planets]
    r = q[planets].norm(dim=-1)
    torch.testing.assert_close(v.norm(dim=-1), (1.5 * system.star_mass / r).sqrt(), atol=0, rtol=1e-12)
    assert (v * q[planets]).sum(-1).abs().max() < 1e-12 * (v.norm(dim=-1) * r).max()
    normals = torch.linalg.cross(q[planets], v)
    normals = normals / normals.norm(dim=-1, keepdim=True)
    assert (normals @ normals.T).abs().min() < 0.9
