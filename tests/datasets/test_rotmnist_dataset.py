"""RotMNIST: the .amat loader, pixel orientation, splits, the verified download, images as point sets."""
import hashlib
import math
import os
import shutil

import pytest
import torch

from torch_geometric_lieconv.testing.rotmnist_fixture import TEST, TRAIN_VALID, one_pixel_image, write_amat
from torch_geometric_lieconv.datasets.rotmnist import RotMNIST
from torch_geometric_lieconv.transforms import pixel_grid


# ----------------------------------------------------------------------------------------------- data
def test_dataset_reads_amat_with_labels_splits_and_orientation(rotmnist_root, tmp_path, monkeypatch):
    # 12 training images: image k has one bright pixel at (row, col) = spots[k]
    spots = [(3, 5), (3, 22), (22, 5), (22, 22), (13, 14), (0, 0), (7, 9), (20, 1), (14, 27), (27, 14), (1, 13), (5, 5)]
    labels = [7, 1, 4, 9, 0, 3, 3, 8, 2, 6, 5, 1]
    test_spots, test_labels = [(10, 4), (16, 20)], [2, 8]
    root = rotmnist_root([one_pixel_image(*s) for s in spots], labels,
                     [one_pixel_image(*s, value=0.5) for s in test_spots], test_labels)
    train, valid, test = (RotMNIST(root, split) for split in ("train", "valid", "test"))
    assert (len(train), len(valid), len(test)) == (10, 2, 2)  # the paper's 10k / 2k split, proportionally
    items = [train[k] for k in range(10)] + [valid[k] for k in range(2)]
    assert [int(d.y) for d in items] == labels
    assert [int(d.y) for d in test] == test_labels
    for data, (row, col) in zip(items, spots):
        assert data.x.shape == (data.pos.shape[0], 1) and data.pos.shape[1] == 2
        bright = data.pos[data.x[:, 0] > 0]
        if math.hypot(row - 13.5, col - 13.5) >= 14.5:
            assert bright.shape[0] == 0  # a corner pixel is cropped away
        else:
            assert bright.tolist() == [[col - 13.5, 13.5 - row]]
    # the top-left pixel (row 3, col 5) is left of and above the centre: x < 0, y > 0
    assert items[0].pos[items[0].x[:, 0] > 0].tolist() == [[-8.5, 10.5]]
    assert test[0].x.max() == 0.5
    # a different crop needs no reprocessing
    wide = RotMNIST(root, "train", crop_radius=None)
    assert wide[5].pos[wide[5].x[:, 0] > 0].tolist() == [[-13.5, 13.5]]  # pixel (0, 0): top left corner


def test_dataset_splits_small_files_proportionally_and_rejects_bad_files(rotmnist_root, tmp_path, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(28, 28, generator=gen) for _ in range(6)]
    root = rotmnist_root(images, [0, 1, 2, 3, 4, 5], images[:1], [9])
    train, valid = RotMNIST(root, "train"), RotMNIST(root, "valid")
    assert (len(train), len(valid)) == (5, 1)  # round(6 * 10 / 12) = 5
    # the values arrive in row-major order: pixel (i, j) of image 5 is the value at its grid point
    pos, index = pixel_grid(28, 28)
    torch.testing.assert_close(valid[0].x[:, 0], images[5].flatten()[index], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="split"):
        RotMNIST(root, "validation")
    bad = tmp_path / "bad" / "raw"
    bad.mkdir(parents=True)
    (bad / TRAIN_VALID).write_text("0.5 0.25 3\n")
    (bad / TEST).write_text("0.5 0.25 3\n")
    with pytest.raises(ValueError, match="784 pixel values"):
        RotMNIST(str(tmp_path / "bad"), "train", log=False)


def test_missing_raw_files_are_downloaded_and_unzipped(tmp_path, monkeypatch):
    """The download path, with the network replaced by a local zip (files inside a folder, as archives may be)."""
    import zipfile

    from torch_geometric_lieconv.datasets import rotmnist

    source = tmp_path / "source"
    source.mkdir()
    write_amat(source / TRAIN_VALID, [one_pixel_image(3, 5)] * 12, list(range(10)) + [0, 1])
    write_amat(source / TEST, [one_pixel_image(20, 20)], [4])
    fetched = []

    packed = tmp_path / "mnist_rotation_new.zip"
    with zipfile.ZipFile(packed, "w") as archive:
        for name in (TRAIN_VALID, TEST):
            archive.write(source / name, f"mnist_rotation_new/{name}")

    def fake_download_url(url, folder, *args, **kwargs):
        fetched.append(url)
        os.makedirs(folder, exist_ok=True)
        return shutil.copy(packed, os.path.join(folder, "mnist_rotation_new.zip"))

    monkeypatch.setattr(rotmnist, "download_url", fake_download_url)
    monkeypatch.setattr(RotMNIST, "archive_md5", hashlib.md5(packed.read_bytes()).hexdigest())
    test = RotMNIST(str(tmp_path / "root"), "test", log=False)
    assert fetched == [RotMNIST.url] and len(test) == 1 and int(test[0].y) == 4
    assert sorted(p.name for p in (tmp_path / "root" / "raw").iterdir() if p.is_file()) == sorted([TEST, TRAIN_VALID])


def test_an_archive_without_the_published_md5_is_refused_before_it_is_opened(tmp_path, monkeypatch):
    """A well-formed archive with both files, but not the official one: the md5 check refuses it,
    names both checksums, and leaves nothing in ``raw/``."""
    import zipfile

    from torch_geometric_lieconv.datasets import rotmnist

    assert RotMNIST.archive_md5 == "0f9a947ff3d30e95cd685462cbf3b847"  # the published checksum
    opened = []

    def planted_archive(url, folder, *args, **kwargs):
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "mnist_rotation_new.zip")
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"mnist_rotation_new/{TRAIN_VALID}", "0.5 " * 784 + "3\n")
            archive.writestr(f"mnist_rotation_new/{TEST}", "0.5 " * 784 + "3\n")
        return path

    monkeypatch.setattr(rotmnist, "download_url", planted_archive)
    monkeypatch.setattr(rotmnist, "extract_zip", lambda *args, **kwargs: opened.append(args))
    with pytest.raises(OSError, match="md5 [0-9a-f]{32}, not the published 0f9a947ff3d30e95cd685462cbf3b847"):
        RotMNIST(str(tmp_path / "root"), "test", log=False)
    assert not opened and not (tmp_path / "root" / "raw").exists()

