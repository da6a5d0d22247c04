"""``lieconv train|evaluate qm9`` on a tiny root in PyG's raw format: training, resume, evaluation,
bad input, invariance of trained models, bfloat16, the SchNet baseline."""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import urllib.error

import pytest
import torch
from torch_geometric_lieconv.testing.qm9_fixture import HARTREE_EV, write_qm9_root

from torch_geometric_lieconv.cli import main
from torch_geometric_lieconv.datasets.qm9 import (load_qm9, qm9_split_sizes)
from torch_geometric_lieconv.training import load_checkpoint

# tiny model and run settings shared by the CLI tests
TINY = ["--hidden-channels", "16", "--num-layers", "1", "--batch-size", "4", "--lr", "3e-3", "--no-progress"]


@pytest.fixture(scope="module")
def t3_run(qm9_root, tmp_path_factory):
    root, _ = qm9_root
    out = str(tmp_path_factory.mktemp("run") / "t3")
    code = main(["train", "qm9", "--root", root, "--target", "homo", "--group", "T3", "--epochs", "2", "--out", out]
                + TINY)
    assert code == 0
    return out


# ----------------------------------------------------------------------------------------------- training
def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_writes_files_and_learns(qm9_root, t3_run, capsys):
    _, molecules = qm9_root
    for name in ("checkpoint_last.pt", "checkpoint_best.pt", "metrics.csv", "learning_curve.png", "config.json",
                 "splits.json", "results_test.json"):
        assert os.path.isfile(os.path.join(t3_run, name)), name
    rows = _rows(os.path.join(t3_run, "metrics.csv"))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    # a threshold only learning reaches: the MAD-normalised L1 of a model that does not learn stays at
    # ~1.02 (the targets' spread); 2 epochs of learning reach 0.89
    assert float(rows[1]["train_loss"]) < 0.95
    assert all(math.isfinite(float(r["valid_mae"])) for r in rows)
    with open(os.path.join(t3_run, "splits.json")) as f:
        splits = json.load(f)
    sizes = qm9_split_sizes(len(molecules))
    assert {k: len(v) for k, v in splits.items()} == sizes
    assert len(set(sum(splits.values(), []))) == len(molecules)
    state = load_checkpoint(os.path.join(t3_run, "checkpoint_last.pt"))
    config = state["config"]
    assert state["epoch"] == 2 and config["data"]["target"] == "homo" and config["model"]["group"] == "T3"


def test_evaluate_matches_a_hand_computed_mae(qm9_root, t3_run, capsys):
    from torch_geometric_lieconv.experiments.common import build_model
    from torch_geometric_lieconv.experiments.qm9 import SETTINGS, model_arguments

    root, molecules = qm9_root
    capsys.readouterr()
    assert main(["evaluate", "qm9", "--run", t3_run, "--root", root, "--checkpoint", "last"]) == 0
    table = capsys.readouterr().out
    assert "homo" in table and "29.6" in table and "30" in table  # the paper's figures next to ours
    with open(os.path.join(t3_run, "results_test.json")) as f:
        result = json.load(f)
    state = load_checkpoint(os.path.join(t3_run, "checkpoint_last.pt"))
    settings = SETTINGS.from_saved(state["config"])
    model = build_model(*model_arguments(settings))
    model.load_state_dict(state["model"])
    model.eval()
    with open(os.path.join(t3_run, "splits.json")) as f:
        test_index = json.load(f)["test"]
    errors = []
    with torch.no_grad():
        for i in test_index:
            z, pos = torch.tensor(molecules[i]["z"]), molecules[i]["pos"]
            prediction = float(model(z, pos, torch.zeros_like(z)))  # the model returns eV, PyG's unit of y
            errors.append(abs(prediction * 1000 - molecules[i]["raw"]["homo"] * 1000 * HARTREE_EV))
    assert result["mae"] == pytest.approx(sum(errors) / len(errors), rel=1e-4)
    assert result["unit"] == "meV"
    # the same model, rebuilt from the run folder alone
    from torch_geometric_lieconv import QM9LieConv

    restored = QM9LieConv.from_checkpoint(t3_run, "last")
    assert float(restored.target_std) == pytest.approx(settings.measured["target_mad"])
    assert float(restored.target_mean) == pytest.approx(settings.measured["target_median"])
    with torch.no_grad():
        again = [abs(1000 * float(restored(torch.tensor(molecules[i]["z"]), molecules[i]["pos"]))
                     - molecules[i]["raw"]["homo"] * 1000 * HARTREE_EV) for i in test_index]
        # in the units of PyG's QM9 y (eV): model(z, pos) - data.y[:, 2] is the error, as for SchNet
        dataset = load_qm9(root, download=False)
        in_ev = [abs(float(restored(dataset[i].z, dataset[i].pos) - dataset[i].y[:, 2])) for i in test_index]
    assert sum(in_ev) / len(in_ev) == pytest.approx(result["mae"] / 1000, rel=1e-4)
    assert sum(again) / len(again) == pytest.approx(result["mae"], rel=1e-4)


def test_resume_equals_uninterrupted(qm9_root, t3_run, tmp_path):
    root, _ = qm9_root
    out = str(tmp_path / "resumed")
    args = ["train", "qm9", "--root", root, "--target", "homo", "--group", "T3", "--out", out] + TINY
    assert main(args + ["--epochs", "2", "--max-epochs", "1"]) == 0
    assert load_checkpoint(os.path.join(out, "checkpoint_last.pt"))["epoch"] == 1
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    straight = load_checkpoint(os.path.join(t3_run, "checkpoint_last.pt"))
    resumed = load_checkpoint(os.path.join(out, "checkpoint_last.pt"))
    for key, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=1e-5, atol=1e-6, equal_nan=True)
    losses = [r["train_loss"] for r in straight["history"]]
    assert [r["train_loss"] for r in resumed["history"]] == pytest.approx(losses)
    # a checkpoint from another configuration is refused with a one-line error
    assert main(args + ["--epochs", "2", "--resume", "--lr", "1e-3"]) == 2


# ----------------------------------------------------------------------------------------------- bad input
def _one_line_error(capsys, argv, match):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()  # PyG may print a processing notice first
    assert err and err[-1].startswith("lieconv ") and match in err[-1], err
    assert sum(line.startswith("lieconv ") for line in err) == 1 and "Traceback" not in "".join(err)


def test_bad_input_one_line_errors(qm9_root, t3_run, tmp_path, capsys, monkeypatch):
    root, _ = qm9_root
    base = ["train", "qm9", "--root", root, "--out", str(tmp_path / "x")] + TINY
    _one_line_error(capsys, base + ["--target", "enthalpy"], "unknown QM9 target")
    _one_line_error(capsys, base + ["--group", "SE2"], "unknown group")
    empty = str(tmp_path / "empty")
    _one_line_error(capsys, ["train", "qm9", "--root", empty, "--no-download"], "no QM9 data")

    from torch_geometric.datasets import QM9

    def offline(self):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(QM9, "download", offline)
    _one_line_error(capsys, ["train", "qm9", "--root", empty, "--out", str(tmp_path / "y")], "download failed")
    _one_line_error(capsys, ["evaluate", "qm9", "--run", t3_run, "--target", "gap"], "target='homo'")
    _one_line_error(capsys, ["evaluate", "qm9", "--run", str(tmp_path / "none")], "no checkpoint")
    # the run's own root whose data changed since training: its splits would differ, so it is refused
    own = str(tmp_path / "own_root")
    write_qm9_root(own, 20, seed=1)
    run = str(tmp_path / "own_run")
    assert main(["train", "qm9", "--root", own, "--target", "homo", "--epochs", "1", "--out", run] + TINY) == 0
    shutil.rmtree(os.path.join(own, "processed"))
    write_qm9_root(own, 25, seed=1)
    _one_line_error(capsys, ["evaluate", "qm9", "--run", run], "num_molecules")
    bad_config = tmp_path / "bad.json"
    bad_config.write_text(json.dumps({"hiden_channels": 3}))
    _one_line_error(capsys, base + ["--config", str(bad_config)], "unknown settings")


def test_config_file_and_presets(tmp_path):
    from torch_geometric_lieconv.experiments.qm9 import SETTINGS

    se3 = SETTINGS.resolve(flags={"group": "SE(3)"}).flat()
    assert (se3["group"], se3["alpha"], se3["fill"], se3["lift_samples"], se3["mc_samples"], se3["recenter"]) == \
        ("SE3", 0.2, 0.5, 4, 25, True)
    t3 = SETTINGS.resolve(flags={"group": "T3"}).flat()
    assert (t3["hidden_channels"], t3["num_layers"], t3["mc_samples"], t3["fill"], t3["lr"], t3["batch_size"],
            t3["epochs"]) == (1536, 6, 100, 1.0, 3e-3, 75, 500)
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"group": "SO3", "epochs": 7, "target": "gap"}))
    c = SETTINGS.resolve(preset="quick", config_file=str(path), flags={"epochs": 9, "lr": None})
    assert (c.model.group, c.trainer.epochs, c.data.target, c.preset, c.model.fill) == ("SO3", 9, "gap", "quick", 0.5)


# ----------------------------------------------------------------------------------------------- invariance
def _molecules_batch(dataset, index):
    from torch_geometric.data import Batch

    return Batch.from_data_list([dataset[int(i)] for i in index])


def _transform(batch, rotation, shift):
    return batch.pos @ rotation.T + shift


def test_trained_t3_model_is_translation_invariant(qm9_root, t3_run):
    from torch_geometric_lieconv.experiments.common import build_model
    from torch_geometric_lieconv.experiments.qm9 import SETTINGS, model_arguments
    from torch_geometric_lieconv.groups import random_rotations

    root, _ = qm9_root
    state = load_checkpoint(os.path.join(t3_run, "checkpoint_best.pt"))
    model = build_model(*model_arguments(SETTINGS.from_saved(state["config"])))
    model.load_state_dict(state["model"])
    model.eval()
    batch = _molecules_batch(load_qm9(root, download=False), range(8))
    with torch.no_grad():
        out = model(batch.z, batch.pos, batch.batch)
        shifted = model(batch.z, batch.pos + torch.tensor([3.0, -7.0, 11.0]), batch.batch)
        rotated = model(batch.z, _transform(batch, random_rotations((), 3), torch.zeros(3)), batch.batch)
    torch.testing.assert_close(shifted, out, atol=1e-4, rtol=1e-4)
    rotation_error = float((rotated - out).abs().max())
    print(f"T3 with SO(3) augmentation: rotation error {rotation_error:.3g} (normalised units)")
    assert rotation_error > 1e-6  # T(3) is not built to be rotation invariant: augmentation only


def test_trained_se3_model_is_rotation_and_translation_invariant(qm9_root, tmp_path):
    from torch_geometric_lieconv.experiments.common import build_model
    from torch_geometric_lieconv.experiments.qm9 import SETTINGS, model_arguments
    from torch_geometric_lieconv.groups import random_rotations

    root, _ = qm9_root
    out_dir = str(tmp_path / "se3")
    # mc_samples >= the lifted points of a molecule: no random subsampling, so with the lift's frames
    # rotated along with the molecule the invariance is exact
    assert main(["train", "qm9", "--root", root, "--group", "SE3", "--epochs", "1", "--out", out_dir,
                 "--mc-samples", "64", "--lift-samples", "2", "--train-size", "8"] + TINY) == 0
    state = load_checkpoint(os.path.join(out_dir, "checkpoint_best.pt"))
    model = build_model(*model_arguments(SETTINGS.from_saved(state["config"]))).double()
    model.load_state_dict(state["model"])
    model.eval()
    batch = _molecules_batch(load_qm9(root, download=False), range(8))
    pos = batch.pos.double()
    frames = random_rotations((pos.shape[0], 2), 3, dtype=torch.float64)
    rotation = random_rotations((), 3, dtype=torch.float64)
    shift = torch.tensor([2.0, 5.0, -1.0], dtype=torch.float64)
    with torch.no_grad():
        out = model(batch.z, pos, batch.batch, frames)
        moved = model(batch.z, pos @ rotation.T + shift, batch.batch, rotation @ frames)
        fresh = model(batch.z, pos @ rotation.T + shift, batch.batch)  # new random frames: in distribution only
    torch.testing.assert_close(moved, out, atol=1e-8, rtol=1e-8)
    assert out.abs().max() > 1e-3
    print(f"SE3 with fresh lift samples: error {float((fresh - out).abs().max()):.3g}")


def test_evaluate_on_another_root_uses_the_runs_own_normalisation(t3_run, tmp_path, capsys):
    """A checkpoint evaluated on other molecules (another QM9 root, every molecule): the MAE equals the
    model's own predictions there, with no re-split statistics check and no refusal."""
    other = str(tmp_path / "other")
    molecules = write_qm9_root(other, 12, seed=5)
    assert main(["evaluate", "qm9", "--run", t3_run, "--root", other, "--split", "all", "--checkpoint", "last",
                 "--threads", "1"]) == 0
    assert "all" in capsys.readouterr().out
    with open(os.path.join(t3_run, "results_all.json")) as f:
        result = json.load(f)
    assert result["num_molecules"] == 12 and result["root"] == os.path.abspath(other)
    from torch_geometric_lieconv import QM9LieConv

    model = QM9LieConv.from_checkpoint(t3_run, "last")
    with torch.no_grad():
        errors = [abs(1000 * float(model(torch.tensor(m["z"]), m["pos"])) - m["raw"]["homo"] * 1000 * HARTREE_EV)
                  for m in molecules]  # eV predictions, meV errors
    assert result["mae"] == pytest.approx(sum(errors) / len(errors), rel=1e-4)
    # a split of the other root follows the run's protocol
    assert main(["evaluate", "qm9", "--run", t3_run, "--root", other, "--split", "test"]) == 0


def test_bfloat16_autocast_run_keeps_float32_outputs(qm9_root, tmp_path):
    """``--precision bfloat16``: float32 weights, matmuls under autocast, predictions in float32 (a
    bfloat16 prediction of a HOMO near -6,500 meV would be rounded to steps of 32 meV)."""
    from torch_geometric_lieconv import QM9LieConv
    from torch_geometric_lieconv.experiments.qm9 import QM9Objective, get_target

    torch.manual_seed(0)
    model = QM9LieConv("T3", hidden_channels=16, num_layers=1, target_mean=-6547.0, target_std=318.0).eval()
    z = torch.tensor([6, 1, 1, 8, 1])
    pos = torch.randn(5, 3)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(z, pos)
    assert y.dtype == torch.float32
    with torch.no_grad():
        exact = model(z, pos)
    assert float((y - exact).abs().max()) < 0.05 * 318.0  # the normalised output to bf16's ~1e-2

    class Batch:
        pass

    batch = Batch()
    batch.z, batch.pos, batch.batch = z, pos, torch.zeros(5, dtype=torch.long)
    objective = QM9Objective(get_target("homo"), -6547.0, 318.0)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert objective.predict(model, batch).dtype == torch.float32
    root, _ = qm9_root
    out = str(tmp_path / "bf16")
    assert main(["train", "qm9", "--root", root, "--target", "homo", "--epochs", "1", "--out", out,
                 "--precision", "bfloat16"] + TINY) == 0
    state = load_checkpoint(os.path.join(out, "checkpoint_last.pt"))
    assert state["config"]["trainer"]["precision"] == "bfloat16"
    assert all(v.dtype == torch.float32 for v in state["model"].values() if v.is_floating_point())
    with open(os.path.join(out, "results_test.json")) as f:
        assert math.isfinite(json.load(f)["mae"])


def test_schnet_baseline_trains_and_is_invariant(qm9_root, tmp_path, capsys):
    from torch_geometric_lieconv.experiments.qm9 import SETTINGS
    from torch_geometric_lieconv.models import QM9SchNet

    config = SETTINGS.resolve(preset="quick", flags={"model": "schnet"}).model
    assert (config.hidden_channels, config.num_layers) == (128, 6)  # SchNet's own, not the quick LieConv's
    with pytest.raises(ValueError, match="model must be one of lieconv, schnet"):
        SETTINGS.resolve(flags={"model": "dimenet"})
    root, molecules = qm9_root
    out = str(tmp_path / "schnet")
    assert main(["train", "qm9", "--root", root, "--target", "homo", "--model", "schnet", "--epochs", "1",
                 "--out", out, "--hidden-channels", "16", "--num-layers", "2", "--batch-size", "4",
                 "--no-progress"]) == 0
    state = load_checkpoint(os.path.join(out, "checkpoint_last.pt"))
    assert state["config"]["model"]["model"] == "schnet"
    capsys.readouterr()
    assert main(["evaluate", "qm9", "--run", out, "--checkpoint", "last"]) == 0
    assert "SchNet" in capsys.readouterr().out
    with open(os.path.join(out, "results_test.json")) as f:
        assert math.isfinite(json.load(f)["mae"])
    # rotations and translations leave its prediction unchanged; other positions change it
    torch.manual_seed(0)
    model = QM9SchNet(16, 2, target_mean=-6547.0, target_std=318.0).double().eval()
    z, pos = torch.tensor(molecules[0]["z"]), molecules[0]["pos"].double()
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    with torch.no_grad():
        y, moved = model(z, pos), model(z, pos @ q.T + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
        other = model(z, pos + 0.3 * torch.randn_like(pos))
    assert float((y - moved).abs()) < 1e-9 * float((y - other).abs())
