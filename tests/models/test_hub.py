"""Models rebuild themselves: recorded plain arguments, one from_checkpoint, old checkpoints converted."""
import json
import os

import pytest
import torch

from torch_geometric_lieconv import SE3, LieResNet, QM9LieConv
from torch_geometric_lieconv.groups import T
from torch_geometric_lieconv.models import (FCNeuralODE, HamiltonianLieConv, HOGN, ImageLieResNet, OGN,
                                            QM9SchNet, Rebuildable)
from torch_geometric_lieconv.models.hub import ARGUMENTS_KEY, CLASS_KEY

from torch_geometric_lieconv.testing.user_groups import Affine1

MODELS = [
    lambda: LieResNet(3, 2, SE3(alpha=0.4), hidden_channels=[8, 12], num_layers=1, mc_samples=8, lift_samples=2),
    lambda: QM9LieConv("T3", hidden_channels=8, num_layers=1, target_mean=-3.0, target_std=2.0,
                       atomref=torch.arange(100.0), readout="add"),
    lambda: QM9SchNet(16, 1, target_mean=1.0, target_std=3.0, target_scale=1000.0),
    lambda: ImageLieResNet("T2", hidden_channels=8, num_layers=1, mc_samples=8, fill=0.5),
    lambda: HamiltonianLieConv(2, "T2", hidden_channels=8, num_layers=1, mc_samples=8),
    lambda: FCNeuralODE(3, 2, 2, hidden_channels=8, num_layers=1),
    lambda: OGN(2, 2, hidden_channels=8, num_layers=1),
    lambda: HOGN(2, 2, hidden_channels=8, num_layers=1),
]


def _perturbed(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    return model


@pytest.mark.parametrize("make", MODELS)
def test_every_model_rebuilds_itself_from_its_checkpoint(make, tmp_path):
    model = _perturbed(make()).eval()
    json.dumps(model.arguments)  # plain data
    path = str(tmp_path / "checkpoint_best.pt")
    torch.save(model.checkpoint_entries(), path)
    for loader, where in ((type(model), path), (Rebuildable, str(tmp_path))):
        rebuilt = loader.from_checkpoint(where)
        assert type(rebuilt) is type(model) and not rebuilt.training
        assert rebuilt.arguments == model.arguments
        for (name, a), (_, b) in zip(model.state_dict().items(), rebuilt.state_dict().items()):
            assert torch.equal(a, b) or (a.isnan().all() and b.isnan().all()), name


def test_a_float64_model_comes_back_in_float64_with_the_same_outputs(tmp_path):
    torch.manual_seed(1)
    model = _perturbed(QM9LieConv("T3", hidden_channels=8, num_layers=1)).double().eval()
    torch.save(model.checkpoint_entries(), tmp_path / "m.pt")
    rebuilt = QM9LieConv.from_checkpoint(str(tmp_path / "m.pt"))
    z, pos = torch.tensor([6, 1, 1, 8]), torch.randn(4, 3, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(z, pos), model(z, pos), rtol=0, atol=0)


def test_refusals_name_the_problem(tmp_path):
    model = QM9LieConv("T3", hidden_channels=8, num_layers=1)
    torch.save(model.checkpoint_entries(), tmp_path / "qm9.pt")
    with pytest.raises(ValueError, match="holds a QM9LieConv, not a HamiltonianLieConv"):
        HamiltonianLieConv.from_checkpoint(str(tmp_path / "qm9.pt"))
    torch.save({**model.checkpoint_entries(), CLASS_KEY: "os.system"}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a model of this package"):
        Rebuildable.from_checkpoint(str(tmp_path / "foreign.pt"))
    old = model.checkpoint_entries()
    del old[CLASS_KEY], old[ARGUMENTS_KEY]
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="lieconv upgrade"):
        QM9LieConv.from_checkpoint(str(tmp_path / "old.pt"))
    # a user's own group has no name that rebuilds it
    custom = LieResNet(2, 1, Affine1(), hidden_channels=8, num_layers=1)
    with pytest.raises(ValueError, match="not a built-in group"):
        custom.arguments


def test_the_group_spec_round_trip_keeps_alpha():
    from torch_geometric_lieconv.groups import SO2, group_from_name, group_spec

    for group in (SE3(alpha=0.4), T(3), SO2(alpha=0.5), SE3()):
        assert group_from_name(group_spec(group)) == group
    assert group_from_name(group_spec(SO2(alpha=0.5))) != SO2()


def test_old_qm9_checkpoints_load_in_evaluate_and_upgrade(tmp_path, capsys):
    """A run written before 0.2 (no model arguments, buffers called mean/std) still evaluates, and
    ``lieconv upgrade`` makes it loadable by from_checkpoint with the same outputs."""
    from torch_geometric_lieconv.testing.qm9_fixture import write_qm9_root

    from torch_geometric_lieconv.cli import main

    root = str(tmp_path / "QM9")
    write_qm9_root(root, 24)
    run = str(tmp_path / "run")
    assert main(["train", "qm9", "--root", root, "--epochs", "1", "--out", run, "--hidden-channels", "8",
                 "--num-layers", "1", "--mc-samples", "8", "--batch-size", "8", "--no-download",
                 "--no-progress"]) == 0
    new = QM9LieConv.from_checkpoint(run, "last")
    for kind in ("best", "last"):  # back to the 0.1 format
        path = os.path.join(run, f"checkpoint_{kind}.pt")
        state = torch.load(path, weights_only=True)
        del state[CLASS_KEY], state[ARGUMENTS_KEY]
        saved = state["config"]  # the flat settings of 0.1
        state["config"] = {"task": "qm9", "preset": saved["preset"], **saved["model"], **saved["data"],
                           **saved["trainer"], **saved["measured"], "root": saved["runtime"]["root"]}
        weights = state["model"]
        weights["mean"], weights["std"] = weights.pop("target_mean"), weights.pop("target_std")
        torch.save(state, path)
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump(state["config"], f)
    with pytest.raises(ValueError, match="lieconv upgrade"):
        QM9LieConv.from_checkpoint(run, "last")
    capsys.readouterr()
    assert main(["evaluate", "qm9", "--run", run, "--checkpoint", "last", "--no-download"]) == 0
    assert main(["upgrade", "qm9", "--run", run]) == 0
    assert capsys.readouterr().out.count("upgraded") == 2
    upgraded = QM9LieConv.from_checkpoint(run, "last")
    for (name, a), (_, b) in zip(new.state_dict().items(), upgraded.state_dict().items()):
        assert torch.equal(a, b) or (a.isnan().all() and b.isnan().all()), name
    # the upgraded run has today's settings: resuming it with the same flags is not refused
    assert main(["train", "qm9", "--root", root, "--epochs", "1", "--out", run, "--hidden-channels", "8",
                 "--num-layers", "1", "--mc-samples", "8", "--batch-size", "8", "--no-download",
                 "--no-progress", "--resume"]) == 0
    assert json.load(open(os.path.join(run, "config.json")))["model"]["hidden_channels"] == 8
    assert main(["upgrade", "springs", "--run", run]) == 2  # another task's checkpoint is refused
