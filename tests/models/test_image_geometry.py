"""Geometry once: rotation augmentation is a no-op for groups with the rotations about the image centre,
a batch of copies of one pixel grid is lifted, connected and subsampled once (exactly as image by image),
the cache hits and misses as its key says, the ball radii start from the data, and shared samples give
each image what it gets alone."""
import random

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import RandomRotate

from torch_geometric_lieconv.experiments.rotmnist import SETTINGS, augmentation, rotation_is_exact
from torch_geometric_lieconv.graph import build_pair_graph
from torch_geometric_lieconv.groups import group_from_name, random_rotations
from torch_geometric_lieconv.lift import lift_points
from torch_geometric_lieconv.models.image import ImageLieResNet
from torch_geometric_lieconv.models.shared_geometry import rounded_candidate_radius
from torch_geometric_lieconv.pool import farthest_point_subsample
from torch_geometric_lieconv.testing import amplify_weights, planar_rotation
from torch_geometric_lieconv.transforms import ImageToPointSet, RandomRotateOnGrid

pytestmark = pytest.mark.usefixtures("single_thread")

GROUPS = ["T2", "SO2", "RxSO2", "SE2"]
F64 = torch.float64


def images(num, size=14, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(num, 1, size, size, generator=gen, dtype=F64)


def model(group, **kw):
    kw = {"hidden_channels": 8, "num_layers": 3, "mc_samples": 6, "fill": 0.15, "total_ds": 0.2, **kw}
    return ImageLieResNet(group, **kw).double()


# ------------------------------------------------------------------------------------- augmentation
@pytest.mark.parametrize("name", GROUPS)
def test_rotating_the_point_sets_is_a_no_op_for_groups_with_the_rotations_about_the_centre(name):
    """The same images with and without RandomRotate (the experiment's augmentation) by random angles,
    the same seed, eval mode, float64, balls and neighbourhoods that hold every candidate in the ball (the
    Monte Carlo draw is then pinned by the seed: a slot order is not): equal logits to rounding, relative
    to what another image changes, for SO(2) and RxSO(2), which lift about the grid's centre, the origin,
    and for SE(2) with its stabilizer samples turned along (they are Haar-random: as likely turned as not);
    a T(2) model sees the rotation (the control: the check can fail)."""
    to_points = ImageToPointSet(14, 14)
    data = to_points.batch(images(3))
    assert torch.allclose(to_points.pos.mean(0), torch.zeros(2))  # the pixel grid is centred at the origin
    torch.manual_seed(0)
    net = amplify_weights(model(name, num_layers=2, total_ds=1.0, mc_samples=1000, fill=0.3)).eval()
    for conv, radius in zip(net.convs, {"T2": (3.0, 4.0), "SE2": (3.0, 4.0)}.get(name, (0.3, 0.5))):
        conv.radius.fill_(radius)
    n = to_points.num_points
    frames = random_rotations((3 * n, net.lift_samples), 2, dtype=F64) if name == "SE2" else None
    moved, turned = [], []
    random.seed(1)  # RandomRotate draws its angle with Python's random module
    for b in range(3):
        points = data.pos[b * n:(b + 1) * n]
        rotated = RandomRotate(180)(Data(pos=points.clone())).pos
        # the random angle RandomRotate drew, applied in float64 (its own matrix is rounded to float32)
        fit = torch.linalg.lstsq(points, rotated).solution.T
        angle = float(torch.atan2(fit[1, 0], fit[0, 0]))
        rot = planar_rotation(angle)
        torch.testing.assert_close(points @ rot.T, rotated, rtol=0, atol=1e-5)
        assert abs(angle) > 0.05
        moved.append(points @ rot.T)
        if frames is not None:
            turned.append(rot @ frames[b * n:(b + 1) * n])
    moved = torch.cat(moved)
    turned = torch.cat(turned) if frames is not None else None
    with torch.no_grad():
        torch.manual_seed(2)
        out = net(data.x, data.pos, data.batch, frames)
        torch.manual_seed(2)
        rotated_out = net(data.x, moved, data.batch, turned)
    signal = float((out - out.mean(0)).abs().max())
    change = float((rotated_out - out).abs().max())
    assert signal > 1e-3
    group = group_from_name(name)
    assert rotation_is_exact(group) == (name != "T2")
    if rotation_is_exact(group):
        assert change < 1e-9 * signal, (change, signal)
    else:
        assert change > 1e-2 * signal, (change, signal)


def test_the_experiment_rotates_the_training_images_only_for_groups_without_those_rotations():
    """Where the group does not make rotations exact, the image content is rotated on the fixed grid (the
    points stay, so the model's geometry is computed once); elsewhere nothing is applied."""
    for name, rotates in [("T2", True), ("Trivial2", True), ("Ty", True), ("SO2", False), ("RxSO2", False),
                          ("SE2", False)]:
        transform = augmentation(SETTINGS.build("quick", {"group": name}))
        assert isinstance(transform, RandomRotateOnGrid) == rotates, name
        assert augmentation(SETTINGS.build("quick", {"group": name, "augment": False})) is None


# ------------------------------------------------------------------------------------- geometry once
@pytest.mark.parametrize("name", GROUPS)
def test_the_shared_geometry_forward_equals_the_unshared_one_exactly(name):
    """Training-mode forwards (balls adapting, Monte Carlo neighbourhoods, three farthest point samplings)
    over batches of new images on one grid, and a last smaller batch: the model that lifts, connects and
    subsamples the grid once gives exactly the logits and radii of the one that does it image by image,
    from the same seed. SE(2) draws stabilizer samples per point: never shared by default."""
    to_points = ImageToPointSet(14, 14)
    shared, alone = model(name), model(name, cache_graph=False)
    alone.load_state_dict(shared.state_dict())
    for step, num in enumerate((4, 4, 4, 2)):
        data = to_points.batch(images(num, seed=step))
        torch.manual_seed(step)
        out = shared(data.x, data.pos, data.batch)
        torch.manual_seed(step)
        assert torch.equal(out, alone(data.x, data.pos, data.batch)), step
        assert torch.equal(torch.stack([c.radius for c in shared.convs]), torch.stack([c.radius for c in alone.convs]))
    cache = shared.graph_cache
    if name == "SE2":
        assert cache.hits == cache.misses == 0
    else:
        assert cache.misses >= 2 and cache.hits >= 1  # batches of 4 and of 2: two geometries
    assert alone.graph_cache.hits == alone.graph_cache.misses == 0


def test_the_first_blocks_samples_are_looked_up_by_start_exactly():
    """The samples remembered by start are those of farthest point sampling from that start."""
    to_points = ImageToPointSet(14, 14)
    net = model("SO2").eval()
    data = to_points.batch(images(4))
    net(data.x, data.pos, data.batch)
    (geometry,) = [entry for _, entry in net.graph_cache._entries.values()]
    ratio = net.blocks[0].ds_frac
    assert geometry.memo.known(ratio) == 4  # one batch: its starts, then others up to the batch size
    starts = torch.tensor([5, 0, 17, geometry.graph.num_nodes - 1])
    looked_up = geometry.kept_by_start(ratio, starts)
    for start, kept in zip(starts, looked_up):
        direct = farthest_point_subsample(geometry.graph, ratio, start=start.view(1))
        assert torch.equal(kept, direct)


def test_the_cache_hits_after_the_first_batch_and_misses_when_a_ball_outgrows_its_headroom():
    to_points = ImageToPointSet(14, 14)
    net = model("SO2", candidate_headroom=1.25).eval()
    conv = net.convs[0]
    conv.radius.fill_(0.3)
    bound = rounded_candidate_radius(0.3, 1.25)
    assert 0.3 <= bound < 1.25 * 0.3 and rounded_candidate_radius(bound, 1.25) == bound
    assert rounded_candidate_radius(0.3, 1.0) == 0.3 and rounded_candidate_radius(None, 1.25) is None

    def forward(seed):
        data = to_points.batch(images(3, seed=seed))
        net(data.x, data.pos, data.batch)
        return net.graph_cache.hits, net.graph_cache.misses

    assert forward(0) == (0, 1)
    assert forward(1) == (1, 1)  # new images on the same grid
    conv.radius.fill_(0.99 * bound)  # the ball grew, within the candidate graph
    assert forward(2) == (2, 1)
    conv.radius.fill_(1.01 * bound)  # the ball outgrew it: a new candidate graph
    assert forward(3) == (2, 2)
    (key, _), = [(k, v) for k, v in net.graph_cache._entries.items() if k[4] > bound]
    assert key[4] >= 1.01 * bound
    moved = to_points.batch(images(3))
    net(moved.x, moved.pos + 0.25, moved.batch)  # another point set
    assert net.graph_cache.misses == 3
    # the graph built with headroom holds every pair the ball needs: the exact-radius graph's pairs
    lifted = lift_points(net.group, to_points.pos.double())
    exact = build_pair_graph(net.group, lifted, 1.01 * bound)
    wide = build_pair_graph(net.group, lifted, rounded_candidate_radius(1.01 * bound, 1.25))
    ball = lambda g: {tuple(e) for e, d in zip(g.edge_index.t().tolist(), g.dist.tolist()) if d < 1.01 * bound}
    assert ball(exact) == ball(wide)


# ------------------------------------------------------------------------------------- radius from data
def observed_fills(net, data):
    net(data.x, data.pos, data.batch)
    return [float(c.observed_fill) for c in net.convs]


@pytest.mark.parametrize("name", GROUPS)
def test_the_ball_radii_start_at_the_fill_of_the_data(name):
    """A fresh model's first training forward starts each ball at its fill on the first graph, capped at
    LieConv's initial 2.0: where 2.0 is nearly all pairs (SO(2), RxSO(2)) the balls start at their fill
    instead, where 2.0 is narrower than the fill (T(2), SE(2)) they start as the reference's do; a model
    whose balls were used, or set by hand, keeps its radii, and so does evaluation."""
    to_points = ImageToPointSet(20, 20)
    data = to_points.batch(images(3, size=20))
    torch.manual_seed(0)
    net = model(name, total_ds=0.3).train()
    fills = observed_fills(net, data)
    radii = [float(c.radius) for c in net.convs]
    torch.manual_seed(0)
    off = model(name, total_ds=0.3, radius_from_data=False).train()
    off_fills = observed_fills(off, data)
    if name in ("SO2", "RxSO2"):  # 2.0 holds nearly every pair: start at the fill
        assert all(f > 0.9 for f in off_fills), off_fills
        for conv, observed in zip(net.convs, fills):
            assert 0.7 * conv.fill < observed < 1.4 * conv.fill, (name, fills)
        assert all(abs(r - 2.0) > 0.1 for r in radii)
    else:  # 2.0 is narrower than the fill: the reference's start, untouched
        assert all(f < conv.fill for f, conv in zip(off_fills, off.convs)), off_fills
        assert radii == [float(c.radius) for c in off.convs] and fills == off_fills
    used = model(name, total_ds=0.3).eval()  # an evaluation pass uses the balls: observed_fill is set
    observed_fills(used, data)
    observed_fills(used.train(), data)
    assert all(abs(float(c.radius) - 2.0) < 0.6 for c in used.convs)  # adapted from 2.0, one step
    by_hand = model(name, total_ds=0.3).train()
    by_hand.convs[0].radius.fill_(0.77)
    by_hand._radii_from_data(data.pos, data.batch)
    assert float(by_hand.convs[0].radius) == pytest.approx(0.77)


def test_the_radius_from_the_data_is_invariant():
    gen = torch.Generator().manual_seed(3)
    pos = torch.randn(60, 2, generator=gen, dtype=F64) * 4
    for name, move in [("SO2", lambda p: p @ planar_rotation(0.9).T), ("RxSO2", lambda p: 1.7 * p @ planar_rotation(-2.0).T),
                       ("T2", lambda p: p + torch.tensor([3.0, -1.5], dtype=F64))]:
        radii = []
        for points in (pos, move(pos)):
            net = model(name, total_ds=0.3)
            net._radii_from_data(points, None)
            radii.append(torch.stack([c.radius for c in net.convs]))
        torch.testing.assert_close(radii[0], radii[1], rtol=1e-9, atol=0)


# ------------------------------------------------------------------------------------- shared samples
@pytest.mark.parametrize("name", GROUPS)
def test_shared_samples_give_every_image_of_a_batch_what_it_gets_alone(name, monkeypatch):
    """``shared_samples``: one farthest point start per block (and one set of SE(2) stabilizer samples)
    for the whole batch, every block's graph built for one image and replicated. With neighbourhoods that
    hold every candidate in the ball, each image's logits are exactly those it gets alone from the same
    seed (alone, a batch of one draws exactly what the default model draws)."""
    to_points = ImageToPointSet(14, 14)
    torch.manual_seed(0)
    net = model(name, shared_samples=True, mc_samples=1000).eval()
    default = model(name, mc_samples=1000).eval()
    default.load_state_dict(net.state_dict())
    for conv, radius in zip(net.convs + default.convs, 2 * [{"T2": 3.0, "SE2": 3.0}.get(name, 0.3)] * 3):
        conv.radius.fill_(radius)
    built = []
    connect = ImageLieResNet.connect
    monkeypatch.setattr(ImageLieResNet, "connect",
                        lambda self, lifted, *a, **k: built.append(int(lifted.batch.max())) or connect(self, lifted, *a, **k))
    batch = images(3, seed=4)
    data = to_points.batch(batch)
    with torch.no_grad():
        torch.manual_seed(7)
        out = net(data.x, data.pos, data.batch)
        assert built == [0, 0, 0]  # every block's graph built for one image
        for b in range(3):
            one = to_points.batch(batch[b:b + 1])
            torch.manual_seed(7)
            assert torch.equal(net(one.x, one.pos, one.batch)[0], out[b]), b
            torch.manual_seed(7)
            assert torch.equal(default(one.x, one.pos, one.batch)[0], out[b]), b
