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


# --------------------------------------------------------------------------- rotation on the pixel grid
from torch_geometric.data import Data  # noqa: E402

from torch_geometric_lieconv.transforms import RandomRotateOnGrid  # noqa: E402


def _digit(seed: int = 0, size: int = 28) -> torch.Tensor:
    image = torch.rand(1, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return image


@pytest.mark.parametrize("crop", [None, 14.5])
@pytest.mark.parametrize("quarter_turns", [1, 2, 3, -1])
def test_rotate_on_grid_by_quarter_turns_is_rot90_of_the_image(crop, quarter_turns):
    """A rotation by a multiple of 90 degrees maps pixel centres onto pixel centres, so the bilinear
    resampling is exact: the intensities are those of ``torch.rot90`` (counter-clockwise as displayed),
    the points do not move."""
    image = _digit()
    to_points = ImageToPointSet(28, 28, crop)
    data = to_points(image)
    angle = 90.0 * quarter_turns
    out = RandomRotateOnGrid((angle, angle))(data)
    expected = to_points(torch.rot90(image, quarter_turns, dims=(1, 2)))
    torch.testing.assert_close(out.pos, data.pos, rtol=0, atol=0)
    if crop is None:
        torch.testing.assert_close(out.x, expected.x, rtol=0, atol=1e-12)
    else:  # the corners outside the crop come in as zeros: compare where the source pixel was kept
        src = torch.stack([math.cos(math.radians(angle)) * data.pos[:, 0] + math.sin(math.radians(angle)) * data.pos[:, 1],
                           -math.sin(math.radians(angle)) * data.pos[:, 0] + math.cos(math.radians(angle)) * data.pos[:, 1]], -1)
        inside = src.norm(dim=-1) < 14.5 - 1e-6
        torch.testing.assert_close(out.x[inside], expected.x[inside], rtol=0, atol=1e-12)
    assert data.x is not out.x and not torch.equal(out.x, data.x)


def test_rotate_on_grid_small_angle_moves_a_dot_counter_clockwise_and_keeps_mass():
    """A bright dot right of the centre, turned by 30 degrees, lands up and to the right (x right, y up),
    where the point set rotated by +30 degrees puts it; the total intensity is kept to ~1 pixel's worth."""
    to_points = ImageToPointSet(28, 28, None)
    image = torch.zeros(1, 28, 28, dtype=torch.float64)
    pos, index = pixel_grid(28, 28, None)
    spot = ((pos - torch.tensor([8.5, 0.5], dtype=pos.dtype)).norm(dim=-1) < 2.5)
    image.view(-1)[index[spot]] = 1.0
    data = to_points(image)
    out = RandomRotateOnGrid((30.0, 30.0))(data)
    centre = (out.x[:, 0:1] * data.pos.double()).sum(0) / out.x.sum()
    before = (data.x[:, 0:1] * data.pos.double()).sum(0) / data.x.sum()
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    expected = torch.stack([c * before[0] - s * before[1], s * before[0] + c * before[1]])
    torch.testing.assert_close(centre, expected, rtol=0, atol=0.05)
    assert abs(float(out.x.sum() - data.x.sum())) < 0.1 * float(data.x.sum())


def test_rotate_on_grid_draws_angles_from_its_generator_and_checks_its_input():
    data = ImageToPointSet(28, 28)(_digit(1).float())
    a = RandomRotateOnGrid(180, generator=torch.Generator().manual_seed(3))(data)
    b = RandomRotateOnGrid(180, generator=torch.Generator().manual_seed(3))(data)
    c = RandomRotateOnGrid(180, generator=torch.Generator().manual_seed(4))(data)
    assert a.x.dtype == data.x.dtype
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    torch.testing.assert_close(RandomRotateOnGrid(0)(data).x, data.x, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="interval"):
        RandomRotateOnGrid((10, -10))
    with pytest.raises(ValueError, match="pixel centres"):
        RandomRotateOnGrid(10)(Data(x=data.x, pos=data.pos + 0.3))
    with pytest.raises(ValueError, match="pixel centres"):
        RandomRotateOnGrid(10, height=10, width=10)(data)
    with pytest.raises(ValueError, match="image point set"):
        RandomRotateOnGrid(10)(Data(x=data.x, pos=data.pos[:, :1]))
    assert "RandomRotateOnGrid" in repr(RandomRotateOnGrid(5))
