"""Smoke test of ``benchmarks.rotmnist_end_to_end`` on a tiny RotMNIST root: both sides get the same
digits, the original's loop runs (partial batches skipped in training, padded in validation), and the
table and the project's command line come out as documented."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from torch_geometric_lieconv.datasets.rotmnist import RotMNIST
from torch_geometric_lieconv.testing.rotmnist_fixture import TRAIN_VALID

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "LieConv"


@pytest.fixture
def end_to_end(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import rotmnist_end_to_end

    return rotmnist_end_to_end


@pytest.fixture
def prepared(rotmnist_root, tmp_path, end_to_end):
    """A prepared root of 12 train_valid digits (10 for training, 2 for validation) and 2 test digits."""
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(28, 28, generator=gen) for _ in range(14)]
    source = rotmnist_root(images[:12], [i % 10 for i in range(12)], images[12:], [0, 1])
    return end_to_end.prepare_root(Path(source), tmp_path / "prepared")


def test_both_sides_get_the_same_digits(prepared, end_to_end):
    train, valid = end_to_end.split_ranges(prepared, None, None)
    assert (train, valid) == ((0, 10), (10, 12))
    assert end_to_end.split_ranges(prepared, 4, 1) == ((0, 4), (10, 11))
    rows = np.loadtxt(prepared / "raw" / TRAIN_VALID)
    for split, (start, stop) in (("train", train), ("valid", valid)):
        dataset = RotMNIST(str(prepared), split, log=False, download=False)
        stored = torch.stack([dataset._data.x[dataset.slices["x"][i]:dataset.slices["x"][i + 1], 0]
                              for i in range(len(dataset))])
        assert torch.allclose(stored, torch.from_numpy(rows[start:stop, :-1]).float())


def test_cosine_factor_is_oil_coslr():
    from benchmarks.rotmnist_end_to_end import cosine_factor

    assert cosine_factor(0, 5) == 1.0
    assert math.isclose(cosine_factor(2.5, 5), 0.5)
    assert cosine_factor(5, 5) == 1e-3


@pytest.mark.skipif(not (REFERENCE / "lie_conv" / "lieConv.py").is_file(), reason="no original LieConv code")
def test_original_loop_runs_and_skips_partial_batches(prepared, end_to_end, tmp_path):
    threads = torch.get_num_threads()
    spec = {"group": "T2", "seed": 0, "epochs": 1, "batch_size": 4, "schedule_epochs": 5,
            "reference": str(REFERENCE), "train_valid": str(prepared / "raw" / TRAIN_VALID),
            "train": [0, 10], "valid": [10, 12], "group_constructor": "T", "alpha": None, "lr": 3e-3,
            "model": {"k": 4, "num_layers": 1, "nbhd": 4, "fill": 0.5, "total_ds": 0.5,
                      "increase_channels": True, "liftsamples": 1},
            "progress": str(tmp_path / "progress.json")}
    try:
        result = end_to_end.original_run(spec)
    finally:
        torch.set_num_threads(threads)
    assert result["train_images"] == 8 and result["valid_images"] == 2  # 2 whole batches of 4; 2 padded to 4
    (epoch,) = result["epochs"]
    assert epoch["cpu_s"] >= epoch["train_cpu_s"] > 0 and epoch["valid_accuracy"] in (0.0, 50.0, 100.0)
    assert (tmp_path / "progress.json").is_file()


def test_project_command_and_table(end_to_end):
    spec = {"group": "SE2", "preset": "quick", "epochs": 2, "schedule_epochs": 5, "seed": 0, "root": "R",
            "out": "O", "train_size": 200, "valid_size": None}
    command = end_to_end.project_command(spec)
    assert command[:5] == [sys.executable, "-m", "torch_geometric_lieconv.cli", "train", "rotmnist"]
    assert "--train-size" in command and "--valid-size" not in command and "--epochs" not in command
    assert command[command.index("--max-epochs") + 1] == "2" and "--no-test" in command
    original = {"epochs": [{"epoch": 1, "cpu_s": 30.0, "valid_accuracy": 20.0}], "process_cpu_s": None}
    project = {"epochs": [{"epoch": 1, "cpu_s": 5.0, "valid_accuracy": 25.0},
                          {"epoch": 2, "cpu_s": 4.0, "valid_accuracy": 30.0}], "process_cpu_s": 12.0}
    rows = [{"group": "SE2", "original": original, "project": project}]
    text = end_to_end.results_table(rows, 2)
    assert "| SE2 | 30.0 | - | 5.0 | 4.0 | 6.00 | - | - | 12.0 | - | 20.0 / - | 25.0 / 30.0 |" in text
