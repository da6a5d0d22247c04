"""``lieconv train|evaluate|check rotmnist`` end to end on tiny fixtures."""
import json
import math
import os

import pytest
import torch
from torch_geometric.loader import DataLoader


from torch_geometric_lieconv.cli import main
from torch_geometric_lieconv.testing import planar_rotation
from torch_geometric_lieconv.datasets.rotmnist import RotMNIST
from torch_geometric_lieconv.experiments.rotmnist import _cross_entropy, paper_error
from torch_geometric_lieconv.models.image import ImageLieResNet


def disc_or_ring(label, gen, size=28):
    """Class 0: a filled disc of radius 3; class 1: a ring between radii 4 and 5.5; plus a little noise."""
    c = (size - 1) / 2
    i, j = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    r = (i**2 + j**2).sqrt()
    shape = (r < 3) if label == 0 else ((r > 4) & (r < 5.5))
    return (shape.float() + 0.1 * torch.rand(size, size, generator=gen)).clamp(max=1)


def test_a_few_training_steps_reduce_the_loss(rotmnist_root, tmp_path, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    labels = [k % 2 for k in range(24)]
    root = rotmnist_root([disc_or_ring(c, gen) for c in labels], labels,
                     [disc_or_ring(0, gen)], [0])
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
        losses.append(float(loss.detach()))
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_train_evaluate_check_commands_end_to_end(rotmnist_root, tmp_path, monkeypatch, capsys):
    gen = torch.Generator().manual_seed(0)
    labels = [k % 2 for k in range(24)]
    root = rotmnist_root([disc_or_ring(c, gen) for c in labels], labels,
                     [disc_or_ring(k % 2, gen) for k in range(6)], [k % 2 for k in range(6)])
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
    assert main(["evaluate", "rotmnist", *common, "--run", out, "--checkpoint", "last", "--no-progress"]) == 0
    assert "test error" in capsys.readouterr().out
    os.remove(f"{out}/results_test.json")
    assert main(["evaluate", "rotmnist", *common, "--run", out, "--no-progress", "--no-download"]) == 0
    assert f"test error {trained_error:.2f}%" in capsys.readouterr().out
    with open(f"{out}/results_test.json") as f:
        assert json.load(f)["error_percent"] == pytest.approx(trained_error)
    assert main(["check", "rotmnist", *common, "--run", out, "--angles", "0", "45", "90", "180",
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
        torch.testing.assert_close(points, seen[0] @ planar_rotation(math.radians(angle)).T.float(), atol=1e-4, rtol=0)
    # errors the user made come back as one line
    assert main(["evaluate", "rotmnist", *common, "--run", str(tmp_path / "none")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_shared_samples_is_an_explicit_setting_that_reaches_the_model():
    from torch_geometric_lieconv.experiments.rotmnist import SETTINGS, model_arguments
    from torch_geometric_lieconv.models import ImageLieResNet

    for value in (False, True):
        settings = SETTINGS.build("quick", {"shared_samples": value} if value else {})
        name, arguments = model_arguments(settings)
        assert name == "ImageLieResNet" and ImageLieResNet(**arguments).shared_samples is value
