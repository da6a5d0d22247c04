"""The image classifier: its layer schedule, widths, invariances, graph caches and rot90 exactness."""
import math

import pytest
import torch

from torch_geometric_lieconv.testing import planar_rotation

from torch_geometric_lieconv.testing import amplify_weights

from torch_geometric_lieconv.transforms import ImageToPointSet
from torch_geometric_lieconv.groups import random_rotations
from torch_geometric_lieconv.models.image import ImageLieResNet, layer_schedule


# ----------------------------------------------------------------------------------------------- model
def test_layer_schedule_reaches_total_ds_and_grows_fill():
    ds_frac, fills, _ = layer_schedule(0.1, 0.1, 6)
    assert math.isclose(ds_frac**6, 0.1, rel_tol=1e-12)
    assert math.isclose(fills[0], 0.1) and math.isclose(fills[-1], 0.1 / 0.1 ** (5 / 6))
    assert all(b / a == pytest.approx(1 / ds_frac) for a, b in zip(fills, fills[1:]))
    model = ImageLieResNet("SE2")
    assert model.lift_samples == 2 and model.group.alpha == 0.05
    assert [conv.fill for conv in model.convs] == pytest.approx(fills)
    assert all(block.ds_frac == pytest.approx(ds_frac) for block in model.blocks)
    assert ImageLieResNet("SO2").lift_samples == 1 and ImageLieResNet("SO2", alpha=0.4).group.alpha == 0.4
    with pytest.raises(ValueError, match="plane"):
        ImageLieResNet("T3")
    with pytest.raises(ValueError, match="total_ds"):
        ImageLieResNet("T2", total_ds=0.0)


def test_image_network_widens_as_the_points_thin_out():
    # the paper's image network: k_i = k / rho^(i/2), so the last width is k / sqrt(total_ds)
    ds_frac, _, widths = layer_schedule(0.1, 0.1, 6, hidden_channels=128)
    assert len(widths) == 7 and widths[0] == 128 and all(w % 4 == 0 for w in widths)
    assert widths[-1] == pytest.approx(128 / math.sqrt(0.1), abs=2)
    assert all(abs(w - 128 * ds_frac ** (-i / 2)) <= 2 for i, w in enumerate(widths))
    assert layer_schedule(0.1, 0.1, 6, hidden_channels=128, grow_channels=False).widths == [128] * 7
    model = ImageLieResNet("T2", hidden_channels=32, num_layers=3)
    _, _, expected = layer_schedule(0.1, 0.1, 3, hidden_channels=32)
    assert [b.in_channels for b in model.blocks] + [model.blocks[-1].out_channels] == expected
    assert model.lin_in.out_features == 32 and model.head[-1].in_features == expected[-1]
    flat = ImageLieResNet("T2", hidden_channels=32, num_layers=3, grow_channels=False)
    assert {b.out_channels for b in flat.blocks} == {32}
    # the widened network still maps images to logits; its residual keeps the first k_i channels
    torch.manual_seed(0)
    data = ImageToPointSet(12, 12).batch(torch.rand(2, 1, 12, 12))
    assert model.eval()(data.x, data.pos, data.batch, num_graphs=2).shape == (2, 10)


def tiny(group, **kw):
    """Deterministic unless told otherwise: every point in every neighbourhood, no subsampling."""
    kw = {"hidden_channels": 8, "num_layers": 2, "mc_samples": 1000, "fill": 1.0, "total_ds": 1.0, **kw}
    return ImageLieResNet(group, **kw).double().eval()


def small_point_sets(num=3, size=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    data = ImageToPointSet(size, size, crop_radius=4.6).batch(torch.rand(num, 1, size, size, generator=gen))
    return data.x.double(), data.pos.double(), data.batch


def test_t2_image_model_exactly_invariant_to_translation_also_with_subsampling():
    x, pos, batch = small_point_sets()
    shift = torch.tensor([3.0, -5.0], dtype=torch.float64)  # integer shifts keep half-integer pixels exact
    for model in (tiny("T2"), tiny("T2", total_ds=0.3)):  # total_ds < 1: farthest point subsampling
        torch.manual_seed(0)
        out = model(x, pos, batch)
        torch.manual_seed(0)
        assert torch.equal(model(x, pos + shift, batch), out)
    # a rotation is not a symmetry of T(2): the output moves
    assert (model(x, pos @ planar_rotation(0.7).T, batch) - out).abs().max() > 1e-6


@pytest.mark.parametrize("name,scale", [("SO2", 1.0), ("RxSO2", 1.7)])
def test_so2_and_rxso2_image_models_invariant_to_rotation_and_scaling(name, scale):
    """Pixel grids are centrally symmetric: every pixel's antipode is at a relative angle of exactly pi."""
    x, pos, batch = small_point_sets()
    model = tiny(name)
    out = model(x, pos, batch)
    for theta in (0.3, 2.0, -2.9):
        moved = scale * pos @ planar_rotation(theta).T
        torch.testing.assert_close(model(x, moved, batch), out, atol=1e-10, rtol=1e-10)
    # not invariant to translations
    assert (model(x, pos + torch.tensor([1.25, 0.5], dtype=torch.float64), batch) - out).abs().max() > 1e-6
    if name == "SO2":  # and SO(2) is not scale invariant
        assert (model(x, 1.7 * pos, batch) - out).abs().max() > 1e-6


def test_se2_image_model_invariant_with_explicit_lift_samples():
    x, pos, batch = small_point_sets()
    model = tiny("SE2")
    assert model.lift_samples == 2
    frames = random_rotations((pos.shape[0], 2), 2, dtype=torch.float64)
    out = model(x, pos, batch, frames)
    rot = planar_rotation(1.1)
    moved = pos @ rot.T + torch.tensor([2.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(model(x, moved, batch, rot @ frames), out, atol=1e-9, rtol=1e-9)
    # other stabilizer samples give another output, so the check above is not vacuous
    other = random_rotations((pos.shape[0], 2), 2, dtype=torch.float64)
    assert (model(x, moved, batch, rot @ other) - out).abs().max() > 1e-6


def test_grid_graph_cache_reuses_identical_grids_only_and_never_a_random_lift():
    x, pos, batch = small_point_sets()
    model = tiny("SO2", total_ds=0.5)
    fresh = tiny("SO2", total_ds=0.5, cache_graph=False)
    fresh.load_state_dict(model.state_dict())
    other_x = torch.rand_like(x)
    for features in (x, other_x):  # same grid, other intensities: the cached graph serves, outputs as without cache
        torch.manual_seed(1)
        out = model(features, pos, batch)
        torch.manual_seed(1)
        torch.testing.assert_close(out, fresh(features, pos, batch), atol=0, rtol=0)
    assert (model.graph_cache.hits, model.graph_cache.misses) == (1, 1)
    model(x, pos + 0.25, batch)  # another point set: rebuilt
    model(x, pos, torch.zeros_like(batch))  # same points grouped differently: rebuilt
    assert (model.graph_cache.hits, model.graph_cache.misses) == (1, 3)
    # SE(2) lifts with random stabilizer samples: never cached, each call draws new samples
    se2 = tiny("SE2")
    first, second = se2(x, pos, batch), se2(x, pos, batch)
    assert se2.graph_cache.hits == se2.graph_cache.misses == 0
    assert (first - second).abs().max() > 1e-6


def test_per_block_graphs_compute_the_shared_graph_model_where_both_see_every_pair():
    """With fill 1 every block uses every pair, so per-block graphs (rebuilt on the kept lifted points) and
    one shared graph (induced subgraphs) must give the same logits for the same farthest point draws; with
    balls, per-block graphs are what the blocks use (candidate radius of the first block only)."""
    x, pos, batch = small_point_sets(num=2)
    per_block = tiny("SO2", num_layers=3, total_ds=0.3)
    shared = tiny("SO2", num_layers=3, total_ds=0.3, graph_per_block=False)
    shared.load_state_dict(per_block.state_dict())
    assert per_block.graph_per_block and not shared.graph_per_block
    torch.manual_seed(3)
    out = per_block(x, pos, batch)
    torch.manual_seed(3)
    torch.testing.assert_close(shared(x, pos, batch), out, atol=1e-12, rtol=0)
    balls = tiny("SO2", num_layers=3, total_ds=0.3, fill=0.2)
    for conv, radius in zip(balls.convs, (0.5, 1.0, 2.0)):
        conv.radius.fill_(radius)
    assert balls.candidate_radius(0) == 0.5 and balls.candidate_radius(2) == 2.0


def rot90_permutation(to_points):
    """``perm`` with ``grid(rot90 image).pos[perm] == R(90 deg) grid.pos`` and ``.x[perm] == grid.x``."""
    pos = to_points.pos.double()
    turned = pos @ torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)  # (x, y) -> (-y, x)
    lookup = {tuple(p): n for n, p in enumerate(pos.tolist())}
    return torch.tensor([lookup[tuple(p)] for p in turned.tolist()])


def test_se2_image_model_gives_the_same_logits_for_a_rot90_image():
    """rot90 permutes the pixel grid; with the stabilizer samples turned along, SE(2) logits agree exactly."""
    gen = torch.Generator().manual_seed(2)
    images = torch.rand(2, 1, 10, 10, generator=gen, dtype=torch.float64)
    to_points = ImageToPointSet(10, 10)
    model = tiny("SE2", num_layers=1)
    data, turned = to_points.batch(images), to_points.batch(torch.rot90(images, 1, dims=(-2, -1)))
    n = to_points.num_points
    perm = torch.cat([rot90_permutation(to_points) + k * n for k in range(2)])
    assert torch.equal(turned.x[perm], data.x)
    frames = random_rotations((2 * n, 2), 2, dtype=torch.float64)
    turned_frames = torch.empty_like(frames)
    turned_frames[perm] = planar_rotation(math.pi / 2) @ frames
    out = model(data.x, data.pos, data.batch, frames)
    torch.testing.assert_close(model(turned.x, turned.pos, turned.batch, turned_frames), out, atol=1e-10, rtol=1e-10)
    trivial = tiny("Trivial2", num_layers=1)  # the trivial group sees the difference
    assert (trivial.forward_images(torch.rot90(images, 1, dims=(-2, -1))) - trivial.forward_images(images)).abs().max() > 1e-6


@pytest.mark.parametrize("name", ["SO2", "RxSO2"])
def test_so2_and_rxso2_image_models_give_the_same_logits_for_a_rot90_image(name):
    """Exact rotations of the pixel grid by multiples of 90 degrees leave the logits unchanged, to 1e-9 of
    the logits' dependence on the image; a Trivial(2) model of the same size changes by a sizeable
    fraction of its own."""
    gen = torch.Generator().manual_seed(2)
    images = torch.rand(2, 1, 16, 16, generator=gen, dtype=torch.float64)
    for group in (name, "Trivial2"):
        torch.manual_seed(0)
        model = amplify_weights(tiny(group, num_layers=1))
        out = model.forward_images(images)
        signal = float((out[0] - out[1]).abs().max())  # what another image changes
        assert signal > 1e-3
        change = max(float((model.forward_images(torch.rot90(images, k, dims=(-2, -1))) - out).abs().max())
                     for k in (1, 2, 3))
        if group == name:
            assert change < 1e-9 * signal
        else:
            assert change > 1e-2 * signal  # no rotation symmetry: the check can fail
