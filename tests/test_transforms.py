"""Images as point sets: the pixel grid's orientation and crop, ImageToPointSet on single images and
batches, rot90 of an image as a rotation of its point set."""
import math

import pytest
import torch

from torch_geometric_lieconv.transforms import ImageToPointSet, pixel_grid


def test_pixel_grid_convention_and_crop_by_brute_force():
    pos, index = pixel_grid(28, 28, crop_radius=14.5)
    expected = [(j - 13.5, 13.5 - i, 28 * i + j) for i in range(28) for j in range(28)
                if (j - 13.5) ** 2 + (13.5 - i) ** 2 < 14.5**2]
    assert index.tolist() == [e[2] for e in expected]
    assert pos.tolist() == [[e[0], e[1]] for e in expected]
    # every pixel centre with |p| < 15 in the reference's units (grid spacing 28/27) and no other
    reference = [(i, j) for i in range(28) for j in range(28) if math.hypot(i - 13.5, j - 13.5) * 28 / 27 < 15]
    assert len(reference) == len(expected)
    full, full_index = pixel_grid(28, 28, crop_radius=None)
    assert full_index.tolist() == list(range(784))
    with pytest.raises(ValueError, match="keeps no pixel"):
        pixel_grid(28, 28, crop_radius=0.1)


def test_image_to_point_set_matches_dataset_and_batches():
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(3, 1, 28, 28, generator=gen)
    to_points = ImageToPointSet()
    single = [to_points(img) for img in images]
    assert torch.equal(to_points(images[0, 0]).x, single[0].x)  # [H, W] works like [1, H, W]
    pos, index = pixel_grid(28, 28)
    assert torch.equal(single[1].pos, pos) and torch.equal(single[1].x[:, 0], images[1, 0].flatten()[index])
    batch = to_points.batch(images)
    assert torch.equal(batch.x, torch.cat([d.x for d in single]))
    assert torch.equal(batch.pos, torch.cat([d.pos for d in single]))
    assert batch.batch.tolist() == sum([[k] * len(index) for k in range(3)], [])
    rgb = to_points(torch.rand(3, 28, 28, generator=gen))
    assert rgb.x.shape == (len(index), 3)
    with pytest.raises(ValueError, match="28 x 28"):
        to_points(torch.rand(1, 32, 32))
    with pytest.raises(ValueError, match="image tensor"):
        to_points(torch.rand(2, 1, 28, 28))


def test_rot90_of_the_image_is_the_point_set_rotated_by_90_degrees():
    """torch.rot90 (counter-clockwise as displayed) = rotating pos by +90 degrees: a permutation of the grid."""
    image = torch.rand(1, 28, 28)
    to_points = ImageToPointSet()
    original, turned = to_points(image), to_points(torch.rot90(image, 1, dims=(-2, -1)))
    rotated_pos = original.pos @ torch.tensor([[0.0, 1.0], [-1.0, 0.0]])  # (x, y) -> (-y, x)
    key = lambda p: [tuple(v) for v in p.tolist()]
    lookup = {k: n for n, k in enumerate(key(turned.pos))}
    perm = torch.tensor([lookup[k] for k in key(rotated_pos)])  # KeyError if not a grid permutation
    assert sorted(perm.tolist()) == list(range(len(perm)))
    assert torch.equal(turned.x[perm], original.x)
