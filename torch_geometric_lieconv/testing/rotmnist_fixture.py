r"""Write a tiny RotMNIST root in the benchmark's raw layout (``.amat`` text files), so that tests run
the real loading code without a download."""
from __future__ import annotations

import os
from typing import Sequence

import torch
from torch import Tensor

__all__ = ["TRAIN_VALID", "TEST", "write_amat", "write_rotmnist_root", "one_pixel_image"]

#: the benchmark's file of the 12,000 training and validation images
TRAIN_VALID = "mnist_all_rotation_normalized_float_train_valid.amat"
#: the benchmark's file of the 50,000 test images
TEST = "mnist_all_rotation_normalized_float_test.amat"


def write_amat(path: str, images: Sequence[Tensor], labels: Sequence[int]) -> None:
    r"""The benchmark's layout: one image per line, 784 row-major values then the label (as a float).

    Args:
        path (str): the file.
        images (Sequence[torch.Tensor]): ``[28, 28]`` images.
        labels (Sequence[int]): their digits.
    """
    with open(path, "w") as f:
        for image, label in zip(images, labels):
            values = " ".join(f"{v:.6e}" for v in image.flatten().tolist())
            f.write(f"{values} {float(label):.6e} \n")


def write_rotmnist_root(folder: str, train_images: Sequence[Tensor], train_labels: Sequence[int],
                        test_images: Sequence[Tensor], test_labels: Sequence[int]) -> str:
    r"""A RotMNIST root ``folder/rotmnist`` whose ``raw/`` holds both files; returns its path.

    Args:
        folder (str): where to create the root.
        train_images (Sequence[torch.Tensor]): the training and validation images (the last 2,000 of
            12,000 are the validation split; fewer images make a smaller training split).
        train_labels (Sequence[int]): their digits.
        test_images (Sequence[torch.Tensor]): the test images.
        test_labels (Sequence[int]): their digits.
    """
    raw = os.path.join(folder, "rotmnist", "raw")
    os.makedirs(raw)
    write_amat(os.path.join(raw, TRAIN_VALID), train_images, train_labels)
    write_amat(os.path.join(raw, TEST), test_images, test_labels)
    return os.path.join(folder, "rotmnist")


def one_pixel_image(row: int, col: int, value: float = 1.0) -> Tensor:
    r"""A ``[28, 28]`` image with one non-zero pixel at (``row``, ``col``).

    Args:
        row (int): the pixel's row.
        col (int): its column.
        value (float, optional): its intensity. (default: :obj:`1.0`)
    """
    image = torch.zeros(28, 28)
    image[row, col] = value
    return image
