r"""Rotated MNIST (Larochelle et al., 2007) as point sets (:class:`RotMNIST`).

Each image becomes the point set of its pixel centres inside the circular crop, with the coordinate
convention of :class:`~torch_geometric_lieconv.transforms.ImageToPointSet` (:math:`x` right,
:math:`y` up, origin at the image centre, pixel units). The reference code used (row, column)
coordinates on a grid of spacing 28/27; that is ours rotated by -90 degrees and scaled by 28/27, so
its ``Tx`` (along rows) is our :class:`~torch_geometric_lieconv.groups.Ty`, the paper's
"T(1)\ :sub:`y`". The reference kept :math:`\|p\| < 15` in its units, i.e. :math:`\|p\| < 14.46`
pixels; the default crop radius ``14.5`` keeps exactly the same 648 of 784 pixels.
"""
from __future__ import annotations

import glob
import os
import shutil
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset, download_url, extract_zip

from .._errors import first_line
from .._files import atomic_write
from ..transforms import DEFAULT_CROP_RADIUS, ImageToPointSet, pixel_grid
from .safe_load import SafeLoadMixin

__all__ = ["RotMNIST", "read_amat"]

def read_amat(path: str, num_pixels: int = 784) -> Tuple[Tensor, Tensor]:
    """Read an ``.amat`` file: one image per line, ``num_pixels`` values then the label.

    Returns ``images`` ``[N, num_pixels]`` (float32, as stored: row-major) and ``labels`` ``[N]`` (int64).

    Args:
        path (str): the file.
        num_pixels (int, optional): values per image before the label. (default: :obj:`784`)
    """
    values = np.fromfile(path, dtype=np.float64, sep=" ")
    width = num_pixels + 1
    if values.size == 0 or values.size % width:
        raise ValueError(f"{path} does not hold rows of {num_pixels} pixel values and a label "
                         f"({values.size} numbers); is it a rotated-MNIST .amat file?")
    rows = values.reshape(-1, width)
    labels = rows[:, -1]
    if not np.all((labels == np.round(labels)) & (labels >= 0)):
        raise ValueError(f"{path}: the last number of each line must be a class label (a non-negative integer)")
    return torch.from_numpy(rows[:, :-1].astype(np.float32)), torch.from_numpy(labels.astype(np.int64))


class RotMNIST(SafeLoadMixin, InMemoryDataset):
    r"""The rotated-MNIST benchmark (Larochelle et al., 2007) as PyG point sets.

    Each item is ``Data(x=[n, 1], pos=[n, 2], y=[1])``: the intensities of the :math:`n` pixels inside
    the circular crop (648 with the default radius), at the coordinates of :func:`~torch_geometric_lieconv.transforms.pixel_grid`
    (x right, y up, origin at the image centre, pixel units), and the digit label.

    Files: ``root/raw/mnist_all_rotation_normalized_float_train_valid.amat`` (12,000 images) and
    ``root/raw/mnist_all_rotation_normalized_float_test.amat`` (50,000 images); when missing they are
    downloaded from :attr:`url` and unzipped. Splits as in the paper: ``"train"`` is the first 10/12 of
    the train_valid file (10,000 images), ``"valid"`` the rest (2,000), ``"test"`` the test file. A
    smaller train_valid file is split in the same proportion (first ``round(10 N / 12)`` for training).

    The processed files store the images (``[784]`` values each, not the coordinates); the point set
    is formed on access with one precomputed grid, so ``crop_radius`` can change without reprocessing.

    Args:
        root (str): dataset folder (``raw/`` and ``processed/`` below it).
        split (str, optional): ``"train"``, ``"valid"`` or ``"test"``. (default: :obj:`'train'`)
        crop_radius (float, optional): pixels with :math:`\|p\| <` ``crop_radius`` are kept (``None``: all 784).
            (default: :obj:`DEFAULT_CROP_RADIUS`)
        transform (callable, optional): a PyG transform applied to each point set on access (e.g.
            ``torch_geometric.transforms.RandomRotate(180)`` for rotation augmentation). (default: :obj:`None`)
        force_reload (bool, optional): re-process the raw files. (default: :obj:`False`)
        log (bool, optional): print PyG's processing messages. (default: :obj:`True`)
        download (bool, optional): fetch the archive when the raw files are missing (``False``: raise instead).
            (default: :obj:`True`)
    """

    url = "http://www.iro.umontreal.ca/~lisa/icml2007data/mnist_rotation_new.zip"
    #: the published md5 of :attr:`url`'s archive, checked before it is opened (``None``: no check, for
    #: a mirror that repacked it)
    archive_md5: Optional[str] = "0f9a947ff3d30e95cd685462cbf3b847"
    splits = ("train", "valid", "test")
    train_fraction = 10 / 12
    image_size = 28
    num_classes = 10

    def __init__(self, root: str, split: str = "train", crop_radius: Optional[float] = DEFAULT_CROP_RADIUS,
                 transform=None, force_reload: bool = False, log: bool = True, download: bool = True) -> None:
        if split not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, got {split!r}")
        self.split, self.allow_download = split, download
        self.to_point_set = ImageToPointSet(self.image_size, self.image_size, crop_radius)
        super().__init__(root, transform, force_reload=force_reload, log=log)
        self.load(self.processed_paths[self.splits.index(split)])

    @property
    def raw_file_names(self) -> List[str]:
        return ["mnist_all_rotation_normalized_float_train_valid.amat", "mnist_all_rotation_normalized_float_test.amat"]

    @property
    def processed_file_names(self) -> List[str]:
        return [f"{split}.pt" for split in self.splits]

    def download(self) -> None:
        """Fetch and unpack the official archive; on any failure nothing is left behind in ``raw/``.

        The archive is checked before it is used: its md5 must be the published
        :attr:`archive_md5`, it must be a zip holding exactly the two ``.amat`` members (at most one
        folder deep), and :meth:`process` then checks their rows (784 pixel values and a digit label
        each).
        """
        if not self.allow_download:
            raise FileNotFoundError(f"RotMNIST: {' and '.join(self.raw_file_names)} are missing from "
                                    f"{self.raw_dir} and downloading is off; put them there")
        before = set(os.listdir(self.raw_dir)) if os.path.isdir(self.raw_dir) else set()
        try:
            archive = download_url(self.url, self.raw_dir, log=False)
            self._check_archive(archive)
            extract_zip(archive, self.raw_dir, log=False)
            os.unlink(archive)
            for name in self.raw_file_names:  # the archive may hold a folder
                target = os.path.join(self.raw_dir, name)
                if not os.path.exists(target):
                    found = glob.glob(os.path.join(self.raw_dir, "**", name), recursive=True)
                    shutil.move(found[0], target)
        except BaseException as error:
            for name in set(os.listdir(self.raw_dir)) - before if os.path.isdir(self.raw_dir) else ():
                path = os.path.join(self.raw_dir, name)
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
            if os.path.isdir(self.raw_dir) and not os.listdir(self.raw_dir):
                os.rmdir(self.raw_dir)  # PyG made it for the download: leave no empty raw/ behind
            if isinstance(error, (OSError, ValueError)):
                raise OSError(f"could not download RotMNIST from {self.url} ({type(error).__name__}: "
                              f"{first_line(error)}); put the two .amat files in "
                              f"{self.raw_dir} instead") from None
            raise

    def _check_archive(self, archive: str) -> None:
        import hashlib
        import zipfile

        if self.archive_md5 is not None:
            digest = hashlib.md5()
            with open(archive, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != self.archive_md5:
                raise ValueError(f"the downloaded archive has md5 {digest.hexdigest()}, not the published "
                                 f"{self.archive_md5}: a corrupt or foreign file")
        if not zipfile.is_zipfile(archive):
            raise ValueError(f"{archive} is not a zip archive")
        with zipfile.ZipFile(archive) as zipped:
            names = [n for n in zipped.namelist() if not n.endswith("/")]
        expected = set(self.raw_file_names)
        found = {os.path.basename(n) for n in names}
        deep = [n for n in names if n.count("/") > 1 or n.startswith("/") or ".." in n.split("/")]
        if found != expected or len(names) != len(expected) or deep:
            raise ValueError(f"unexpected archive members {sorted(names)}; expected {sorted(expected)}")

    def process(self) -> None:
        num_pixels = self.image_size**2
        images, labels = read_amat(self.raw_paths[0], num_pixels)
        if labels.numel() == 0 or int(labels.max()) >= self.num_classes:
            raise ValueError(f"{self.raw_paths[0]}: labels must be digits 0..{self.num_classes - 1}")
        num_train = int(round(self.train_fraction * len(labels)))
        if num_train in (0, len(labels)):
            raise ValueError(f"{self.raw_paths[0]} has {len(labels)} images: too few for a train/valid split")
        test_images, test_labels = read_amat(self.raw_paths[1], num_pixels)
        parts = {"train": slice(0, num_train), "valid": slice(num_train, None)}
        for split, path in zip(self.splits, self.processed_paths):
            imgs, labs = (test_images, test_labels) if split == "test" else (images[parts[split]], labels[parts[split]])
            data, slices = self.collate([Data(x=img.unsqueeze(-1), y=lab.view(1)) for img, lab in zip(imgs, labs)])
            # PyG's save format, written atomically: a crash never leaves half a cache behind
            atomic_write(path, lambda f, d=data, s=slices: torch.save((d.to_dict(), s, d.__class__), f))

    def get(self, idx: int) -> Data:
        stored = super().get(idx)  # x: the full image, [784, 1]
        data = self.to_point_set(stored.x.view(self.image_size, self.image_size))
        data.y = stored.y
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)}, split={self.split!r}, points={self.to_point_set.num_points})"
