"""``lieconv train|evaluate|study springs``: training, resume, evaluation, the study and its statistics."""
import json
import math
import os

import pytest
import torch
from torch_geometric.loader import DataLoader

from torch_geometric_lieconv.datasets.springs import (
    ParticleDynamics,
)
from torch_geometric_lieconv.models.hamiltonian import HamiltonianLieConv


F64 = torch.float64


pytestmark = pytest.mark.usefixtures("single_thread")  # many tiny ops: one thread is much faster


def _rotation(angle: float) -> torch.Tensor:
    return torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=F64)


# ----------------------------------------------------------------------------------------------- training
def test_a_few_training_steps_reduce_the_rollout_loss(tmp_path):
    from torch_geometric_lieconv.experiments.springs import RolloutObjective

    data = ParticleDynamics(str(tmp_path), "springs", "train", num_systems=8, traj_len=20, seed=0, chunk_len=5)
    batch = next(iter(DataLoader(data, batch_size=8)))
    torch.manual_seed(0)
    model = HamiltonianLieConv(2, "T2", hidden_channels=32, num_layers=1).to(F64)
    objective = RolloutObjective(data.param_keys)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(16):
        loss = objective.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_cli_train_resume_and_evaluate(tmp_path, capsys):
    from torch_geometric_lieconv.cli import main

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"n_train": 6, "n_val": 3, "n_test": 3, "traj_len": 20, "hidden_channels": 16,
                                  "num_layers": 1, "batch_size": 3, "lr": 3e-3}))
    out, root = str(tmp_path / "run"), str(tmp_path / "data")
    common = ["--config", str(config), "--root", root, "--out", out, "--no-progress", "--epochs", "2"]
    assert main(["train", "springs", "--model", "HLieConv", "--group", "SO2", *common, "--max-epochs", "1"]) == 0
    assert main(["train", "springs", "--model", "HLieConv", "--group", "SO2", *common, "--resume"]) == 0
    for name in ("checkpoint_best.pt", "checkpoint_last.pt", "metrics.csv", "config.json", "results_test.json"):
        assert os.path.isfile(os.path.join(out, name)), name
    capsys.readouterr()
    assert main(["evaluate", "springs", "--run", out, "--horizons", "5", "20"]) == 0
    printed = capsys.readouterr().out
    assert "MSE@20" in printed and "HLieConv" in printed
    row = json.load(open(os.path.join(out, "results_test.json")))
    assert row["epoch"] == 2 and row["group"] == "SO2"
    # another test-data seed draws other systems: another error, recorded with its seed
    assert main(["evaluate", "springs", "--run", out, "--horizons", "5", "20", "--data-seed", "7"]) == 0
    other = json.load(open(os.path.join(out, "results_test.json")))
    assert other["data_seed"] == 7 and other["data_seed"] != row["data_seed"]
    assert other["test_mse"] != row["test_mse"]
    # SO(2) with centred positions (the default): both momenta conserved, in the float64 evaluation
    assert row["angular_momentum_drift"] < 1e-12 and row["linear_momentum_drift"] < 1e-12


def test_geometric_interval_is_the_t_interval_of_the_logs():
    from statistics import mean, stdev

    from torch_geometric_lieconv.experiments.springs.statistics import geometric_interval

    values = [0.02, 0.005, 0.011, 0.04, 0.007]
    logs = [math.log(v) for v in values]
    half = 2.776 * stdev(logs) / math.sqrt(5)  # t_{0.975} with 4 degrees of freedom
    assert geometric_interval(values) == pytest.approx(
        (math.exp(mean(logs)), math.exp(mean(logs) - half), math.exp(mean(logs) + half)), rel=1e-12)
    assert geometric_interval([0.3, float("nan"), -1.0]) == pytest.approx((0.3, 0.3, 0.3))


def test_study_momentum_part_over_seeds_and_kept_rows(tmp_path, monkeypatch, capsys):
    from torch_geometric_lieconv.cli import main
    from torch_geometric_lieconv.experiments.springs import study as springs

    tiny = {"sizes": [4], "seeds": [0, 1], "n_val": 2, "n_test": 2, "epoch_scale": 16, "batch_size": 2,
            "momentum_n_train": 4, "momentum_epochs": 1, "momentum_n_test": 2,
            "widths": {m: (16, 1) for m in ("HLieConv", "FC", "HFC", "OGN", "HOGN")}, "lr_scale": {},
            "trajectory_steps": 10, "momentum_lr": {}, "traj_len": 12}
    monkeypatch.setitem(springs.STUDY_SCALES, "small", tiny)
    monkeypatch.setattr(springs, "MOMENTUM_MODELS", (("Trivial2", False, "Trivial"), ("T2", False, "T(2)"),
                                                     ("SO2", True, "SO(2) cont.")))
    out, root = str(tmp_path / "study"), str(tmp_path / "data")
    assert main(["study", "springs", "--parts", "momentum", "--out", out, "--root", root]) == 0
    printed = capsys.readouterr().out
    rows = json.load(open(os.path.join(out, "results.json")))
    assert sorted((r["label"], r["seed"]) for r in rows) == sorted(
        (label, seed) for label in ("Trivial", "T(2)", "SO(2) cont.") for seed in (0, 1))
    for row in rows:  # T(2) keeps linear momentum to rounding whatever its weights; Trivial does not
        if row["label"] == "T(2)":
            assert row["linear_momentum_drift"] < 1e-12
        if row["label"] == "Trivial":
            assert row["linear_momentum_drift"] > 1e-8
    assert "SO(2) cont." in printed and "angular drift" in printed
    assert os.path.isfile(os.path.join(out, "springs_momentum.png"))
    # a second call reuses the runs and their cached curves: the same numbers
    assert main(["study", "springs", "--parts", "momentum", "--out", out, "--root", root]) == 0
    again = json.load(open(os.path.join(out, "results.json")))
    assert [r["angular_momentum_drift"] for r in again] == [r["angular_momentum_drift"] for r in rows]
    # another part keeps the momentum rows
    assert main(["study", "springs", "--parts", "data", "--models", "HOGN", "--out", out, "--root", root]) == 0
    parts = [r["part"] for r in json.load(open(os.path.join(out, "results.json")))]
    assert parts.count("momentum") == 6 and parts.count("data") == 2
