"""RotMNIST: the .amat loader and pixel orientation, images as point sets, the image model's
invariances, training, and the ``lieconv train|evaluate|check rotmnist`` commands (tiny fixtures only)."""
import json
import math
import os

import pytest
import torch
from torch_geometric.loader import DataLoader

from signal_scale import geometric

from torch_geometric_lieconv.cli import main
from torch_geometric_lieconv.datasets.rotmnist import RotMNIST
from torch_geometric_lieconv.transforms import ImageToPointSet, pixel_grid
from torch_geometric_lieconv.experiments.rotmnist import _cross_entropy, paper_error
from torch_geometric_lieconv.groups import random_rotations
from torch_geometric_lieconv.models.image import ImageLieResNet, layer_schedule

TRAIN_VALID = "mnist_all_rotation_normalized_float_train_valid.amat"
TEST = "mnist_all_rotation_normalized_float_test.amat"


def write_amat(path, images, labels):
    """The benchmark's layout: one image per line, 784 row-major values then the label (as a float)."""
    with open(path, "w") as f:
        for image, label in zip(images, labels):
            values = " ".join(f"{v:.6e}" for v in image.flatten().tolist())
            f.write(f"{values} {float(label):.6e} \n")


def make_root(tmp_path, train_images, train_labels, test_images, test_labels, monkeypatch=None):
    raw = tmp_path / "rotmnist" / "raw"
    raw.mkdir(parents=True)
    write_amat(raw / TRAIN_VALID, train_images, train_labels)
    write_amat(raw / TEST, test_images, test_labels)
    if monkeypatch is not None:  # the raw files are there: any download attempt is a bug
        monkeypatch.setattr(RotMNIST, "download", lambda self: pytest.fail("RotMNIST tried to download"))
    return str(tmp_path / "rotmnist")


def one_pixel_image(row, col, value=1.0):
    image = torch.zeros(28, 28)
    image[row, col] = value
    return image


def disc_or_ring(label, gen, size=28):
    """Class 0: a filled disc of radius 3; class 1: a ring between radii 4 and 5.5; plus a little noise."""
    c = (size - 1) / 2
    i, j = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    r = (i**2 + j**2).sqrt()
    shape = (r < 3) if label == 0 else ((r > 4) & (r < 5.5))
    return (shape.float() + 0.1 * torch.rand(size, size, generator=gen)).clamp(max=1)


# ----------------------------------------------------------------------------------------------- data
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


def test_dataset_reads_amat_with_labels_splits_and_orientation(tmp_path, monkeypatch):
    # 12 training images: image k has one bright pixel at (row, col) = spots[k]
    spots = [(3, 5), (3, 22), (22, 5), (22, 22), (13, 14), (0, 0), (7, 9), (20, 1), (14, 27), (27, 14), (1, 13), (5, 5)]
    labels = [7, 1, 4, 9, 0, 3, 3, 8, 2, 6, 5, 1]
    test_spots, test_labels = [(10, 4), (16, 20)], [2, 8]
    root = make_root(tmp_path, [one_pixel_image(*s) for s in spots], labels,
                     [one_pixel_image(*s, value=0.5) for s in test_spots], test_labels, monkeypatch)
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


def test_dataset_splits_small_files_proportionally_and_rejects_bad_files(tmp_path, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(28, 28, generator=gen) for _ in range(6)]
    root = make_root(tmp_path, images, [0, 1, 2, 3, 4, 5], images[:1], [9], monkeypatch)
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

    def fake_download_url(url, folder, *args, **kwargs):
        fetched.append(url)
        path = f"{folder}/mnist_rotation_new.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for name in (TRAIN_VALID, TEST):
                archive.write(source / name, f"mnist_rotation_new/{name}")
        return path

    monkeypatch.setattr(rotmnist, "download_url", fake_download_url)
    test = RotMNIST(str(tmp_path / "root"), "test", log=False)
    assert fetched == [RotMNIST.url] and len(test) == 1 and int(test[0].y) == 4
    assert sorted(p.name for p in (tmp_path / "root" / "raw").iterdir() if p.is_file()) == sorted([TEST, TRAIN_VALID])


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


def rotation(theta):
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


def test_t2_image_model_exactly_invariant_to_translation_also_with_subsampling():
    x, pos, batch = small_point_sets()
    shift = torch.tensor([3.0, -5.0], dtype=torch.float64)  # integer shifts keep half-integer pixels exact
    for model in (tiny("T2"), tiny("T2", total_ds=0.3)):  # total_ds < 1: farthest point subsampling
        torch.manual_seed(0)
        out = model(x, pos, batch)
        torch.manual_seed(0)
        assert torch.equal(model(x, pos + shift, batch), out)
    # a rotation is not a symmetry of T(2): the output moves
    assert (model(x, pos @ rotation(0.7).T, batch) - out).abs().max() > 1e-6


@pytest.mark.parametrize("name,scale", [("SO2", 1.0), ("RxSO2", 1.7)])
def test_so2_and_rxso2_image_models_invariant_to_rotation_and_scaling(name, scale):
    """Pixel grids are centrally symmetric: every pixel's antipode is at a relative angle of exactly pi."""
    x, pos, batch = small_point_sets()
    model = tiny(name)
    out = model(x, pos, batch)
    for theta in (0.3, 2.0, -2.9):
        moved = scale * pos @ rotation(theta).T
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
    rot = rotation(1.1)
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
    turned_frames[perm] = rotation(math.pi / 2) @ frames
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
        model = geometric(tiny(group, num_layers=1))
        out = model.forward_images(images)
        signal = float((out[0] - out[1]).abs().max())  # what another image changes
        assert signal > 1e-3
        change = max(float((model.forward_images(torch.rot90(images, k, dims=(-2, -1))) - out).abs().max())
                     for k in (1, 2, 3))
        if group == name:
            assert change < 1e-9 * signal
        else:
            assert change > 1e-2 * signal  # no rotation symmetry: the check can fail


def test_a_few_training_steps_reduce_the_loss(tmp_path, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    labels = [k % 2 for k in range(24)]
    root = make_root(tmp_path, [disc_or_ring(c, gen) for c in labels], labels,
                     [disc_or_ring(0, gen)], [0], monkeypatch)
    data = RotMNIST(root, "train", crop_radius=6.5)
    batch = next(iter(DataLoader(data, batch_size=len(data))))
    model = ImageLieResNet("T2", hidden_channels=16, num_layers=2, mc_samples=16, fill=0.3, total_ds=1.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = _cross_entropy(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_train_evaluate_check_commands_end_to_end(tmp_path, monkeypatch, capsys):
    gen = torch.Generator().manual_seed(0)
    labels = [k % 2 for k in range(24)]
    root = make_root(tmp_path, [disc_or_ring(c, gen) for c in labels], labels,
                     [disc_or_ring(k % 2, gen) for k in range(6)], [k % 2 for k in range(6)], monkeypatch)
    out = str(tmp_path / "run")
    # a deterministic SO(2) model (all points in every neighbourhood, no subsampling)
    common = ["--root", root]
    assert main(["train", "rotmnist", *common, "--group", "SO2", "--preset", "quick", "--epochs", "2",
                 "--hidden-channels", "8", "--num-layers", "1", "--mc-samples", "200", "--fill", "1",
                 "--total-ds", "1", "--crop-radius", "4.6", "--out", out, "--no-progress", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    label, figure = paper_error("SO2")
    assert f"paper Table 1 ({label}): {figure:.2f}%" in printed and "test error" in printed
    with open(f"{out}/metrics.csv") as f:
        assert len(f.read().strip().splitlines()) == 3  # header + 2 epochs
    with open(f"{out}/config.json") as f:
        assert json.load(f)["model"]["group"] == "SO2"
    with open(f"{out}/results_test.json") as f:
        trained_error = json.load(f)["error_percent"]
    checkpoint = f"{out}/checkpoint_best.pt"
    assert main(["evaluate", "rotmnist", *common, "--checkpoint", checkpoint, "--no-progress"]) == 0
    assert "test error" in capsys.readouterr().out
    os.remove(f"{out}/results_test.json")
    assert main(["evaluate", "rotmnist", *common, "--run", out, "--no-progress", "--no-download"]) == 0
    assert f"test error {trained_error:.2f}%" in capsys.readouterr().out
    with open(f"{out}/results_test.json") as f:
        assert json.load(f)["error_percent"] == pytest.approx(trained_error)
    assert main(["check", "rotmnist", *common, "--checkpoint", checkpoint, "--angles", "0", "45", "90", "180",
                 "--no-progress"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if "deg" in line or "random" in line]
    accuracies = {row[0]: float(row[-4]) for row in rows}
    assert sorted(accuracies) == ["0", "180", "45", "90", "random"]
    assert len(set(accuracies.values())) == 1  # an SO(2)-invariant model: the same accuracy at every angle
    # and check really rotates the images: the points it classifies at each angle are the 0-degree points
    # rotated by that angle (counter-clockwise about the image centre)
    from torch_geometric_lieconv.experiments import rotmnist as experiment

    seen = []
    monkeypatch.setattr(experiment, "classification_error",
                        lambda model, dataset, *args, **kwargs: seen.append(dataset[0].pos.clone()) or 0.0)
    assert main(["check", "rotmnist", *common, "--run", out, "--angles", "0", "90", "30", "--no-random",
                 "--no-progress"]) == 0
    assert len(seen) == 3
    for angle, points in zip([90.0, 30.0], seen[1:]):
        torch.testing.assert_close(points, seen[0] @ rotation(math.radians(angle)).T.float(), atol=1e-4, rtol=0)
    # errors the user made come back as one line
    assert main(["evaluate", "rotmnist", *common, "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
