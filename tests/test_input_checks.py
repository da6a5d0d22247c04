"""Bad input gets a clear exception or a documented correct result, never a silent wrong answer."""
import pytest
import torch

from torch_geometric_lieconv import LieConv, LieResNet, QM9LieConv, group_from_name, lift_graph, lift_points
from torch_geometric_lieconv.graph import build_pair_graph
from torch_geometric_lieconv.testing import MatrixSO2

PLANAR = ["T2", "SO2", "RxSO2", "Rx", "SE2", "Tx", "Trivial2"]
SPATIAL = ["T3", "SO3", "SE3", "Trivial3"]


@pytest.mark.parametrize("name", PLANAR + SPATIAL)
@pytest.mark.parametrize("fill", [1.0, 0.3])
def test_an_empty_batch_gives_empty_outputs(name, fill):
    group = group_from_name(name)
    model = LieResNet(3, 2, group, hidden_channels=8, num_layers=2, fill=fill).train()
    out = model(torch.randn(0, 3), torch.randn(0, group.space_dim), torch.zeros(0, dtype=torch.long))
    assert out.shape == (0, 2)
    per_point = LieResNet(3, 2, group, hidden_channels=8, num_layers=1, pool=False).eval()
    assert per_point(torch.randn(0, 3), torch.randn(0, group.space_dim)).shape == (0, 2)


def test_an_unsorted_batch_vector_raises():
    pos = torch.randn(6, 3)
    with pytest.raises(ValueError, match="batch must be sorted"):
        lift_points(group_from_name("T3"), pos, torch.tensor([0, 1, 0, 1, 0, 1]))
    model = LieResNet(3, 1, "T3", hidden_channels=8, num_layers=1)
    with pytest.raises(ValueError, match="batch must be sorted"):
        model(torch.randn(6, 3), pos, torch.tensor([1, 1, 1, 0, 0, 0]))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_features_raise(bad):
    model = LieResNet(3, 1, "T3", hidden_channels=8, num_layers=1)
    x = torch.randn(5, 3)
    x[3, 1] = bad
    with pytest.raises(ValueError, match=r"x contains NaN or inf values \(rows \[3\]"):
        model(x, torch.randn(5, 3))
    graph = lift_graph("T3", torch.randn(5, 3))
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        model.forward_lifted(graph, x)


class ThreeFlagSO2(MatrixSO2):
    """A user group whose ``pos_flags`` breaks its contract: three flags, not two."""

    def pos_flags(self, pos):
        return torch.cat([super().pos_flags(pos), torch.zeros(1, dtype=torch.bool)])


class ListFlagSO2(MatrixSO2):
    """A user group whose ``pos_flags`` returns a list, not a tensor."""

    def pos_flags(self, pos):
        return [False, False]


@pytest.mark.parametrize("group,got", [(ThreeFlagSO2(), r"shape \[3\]"), (ListFlagSO2(), "list")])
def test_a_user_groups_pos_flags_of_the_wrong_form_raise_naming_the_group_and_method(group, got):
    pos, x = torch.randn(5, 2) + 4.0, torch.randn(5, 3)
    message = rf"{type(group).__name__}\.pos_flags\(pos\) must return a tensor of 2 booleans .* got {got}"
    with pytest.raises(TypeError, match=message):
        lift_points(group, pos)
    with pytest.raises(TypeError, match=message):
        LieResNet(3, 1, group, hidden_channels=8, num_layers=1)(x, pos)
    # within the contract the model's named checks tell the point problems from the feature problems
    model = LieResNet(3, 1, MatrixSO2(), hidden_channels=8, num_layers=1)
    with pytest.raises(ValueError, match="undefined at the origin"):
        model(x, torch.cat([pos[:4], torch.zeros(1, 2)]))
    with pytest.raises(ValueError, match=r"x contains NaN or inf values \(rows \[2\]"):
        model(torch.cat([x[:2], torch.full((1, 3), float("nan")), x[3:]]), pos)
    assert model(x, pos).shape == (1, 1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_positions_of_another_dtype_are_cast_to_the_models(dtype):
    torch.manual_seed(0)
    model = LieResNet(3, 2, "SE3", hidden_channels=8, num_layers=1, lift_samples=2).eval()
    x, pos = torch.randn(6, 3), torch.randn(6, 3)
    frames = torch.linalg.qr(torch.randn(6, 2, 3, 3)).Q
    frames = frames * torch.linalg.det(frames).sign()[..., None, None]  # proper rotations
    out = model(x.to(dtype), pos.to(dtype), None, frames)
    assert out.dtype == torch.float32
    reference = model(x.to(dtype).float(), pos.to(dtype).float(), None, frames)
    torch.testing.assert_close(out, reference, atol=1e-6, rtol=1e-6)


def test_integer_features_raise_a_type_error():
    with pytest.raises(TypeError, match="x must be a floating point tensor"):
        LieResNet(3, 1, "T3", hidden_channels=8, num_layers=1)(torch.ones(4, 3, dtype=torch.long), torch.randn(4, 3))


def test_invalid_layer_and_graph_settings_raise():
    with pytest.raises(ValueError, match="fill must be > 0"):
        LieConv(2, 2, "T2", fill=float("nan"))
    with pytest.raises(ValueError, match="fill must be > 0"):
        LieConv(2, 2, "T2", fill=-0.5)
    lifted = lift_points(group_from_name("T2"), torch.randn(5, 2))
    for radius in [-1.0, float("nan")]:
        with pytest.raises(ValueError, match="radius must be None or a non-negative number"):
            build_pair_graph(group_from_name("T2"), lifted, candidate_radius=radius)
        with pytest.raises(ValueError, match="radius must be None or a non-negative number"):
            lift_graph("T2", torch.randn(5, 2), candidate_radius=radius)


@pytest.mark.parametrize("name", ["SE2", "SE3", "SO3"])
def test_frames_that_are_not_rotations_raise(name):
    group = group_from_name(name)
    m = group.frame_dim
    pos = torch.randn(4, group.space_dim) + 2
    scaled = torch.eye(m).expand(4, 2, m, m) * 2.0
    reflected = torch.eye(m).expand(4, 2, m, m).clone()
    reflected[..., 0, 0] = -1
    for frames in (scaled, reflected):
        with pytest.raises(ValueError, match="frames must be rotation matrices"):
            lift_points(group, pos, None, 2, frames)


@pytest.mark.parametrize("group", ["T3", "SE3", "SO3"])
def test_qm9_model_with_mismatched_atoms_raises(group):
    model = QM9LieConv(group, hidden_channels=8, num_layers=1)
    z = torch.tensor([6, 1, 1, 8])
    with pytest.raises(ValueError, match="z \\[N\\] and pos \\[N, 3\\] must describe the same atoms"):
        model(z, torch.randn(5, 3))
    with pytest.raises(ValueError, match="batch must have one entry per atom"):
        model(z, torch.randn(4, 3), torch.zeros(3, dtype=torch.long))


# ---------------------------------------------------------------------------------------------- packaging
BLOCK_EXTRAS = """
import importlib.abc, importlib.machinery, sys
class Missing(importlib.abc.Loader):
    def create_module(self, spec):
        raise ImportError(f'No module named {spec.name!r} (blocked for the test)')
    def exec_module(self, module):
        pass
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torchdiffeq', 'matplotlib'):
            return importlib.machinery.ModuleSpec(name, Missing())
sys.meta_path.insert(0, Block())
"""


def test_the_core_works_without_the_experiment_extras(tmp_path):
    """Without torchdiffeq and matplotlib (tqdm comes with PyG itself): the layer, the models (also the Hamiltonian one) and the
    trainer work; a CLI task that needs them says so in one line."""
    import subprocess
    import sys

    script = BLOCK_EXTRAS + f"""
import torch
from torch_geometric_lieconv import LieConv, LieResNet, QM9LieConv, lift_graph
from torch_geometric_lieconv.models import HamiltonianLieConv
from torch_geometric_lieconv.training import Trainer
from torch_geometric.data import Data
model = QM9LieConv('SE3', hidden_channels=8, num_layers=1, lift_samples=2)
print('qm9', tuple(model(torch.tensor([6, 1, 1]), torch.randn(3, 3)).shape))
data = [Data(x=torch.randn(4, 3), pos=torch.randn(4, 3), y=torch.randn(1)) for _ in range(4)]
net = LieResNet(3, 1, 'T3', hidden_channels=8, num_layers=1)
trainer = Trainer(net, data, batch_size=2, loss_fn=lambda m, b: (m(b.x, b.pos, b.batch).squeeze(-1) - b.y).abs().mean(),
                  out_dir={str(tmp_path / 'run')!r}, epochs=1, progress=True)
trainer.fit()
print('trained', len(trainer.history))
from torch_geometric_lieconv.cli import main
print('cli', main(['train', 'springs']))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "qm9 (1, 1)" in done.stdout and "trained 1" in done.stdout and "cli 2" in done.stdout
    assert "learning_curve.png skipped: matplotlib is not installed" in done.stdout
    assert "rollouts need torchdiffeq" in done.stderr and "[experiments]" in done.stderr


def test_the_cli_lists_a_task_whose_module_fails_to_import_and_says_why(monkeypatch, capsys):
    from torch_geometric_lieconv import cli

    real = cli._task_module

    def broken(task):
        if task == "rotmnist":
            raise ImportError("No module named 'some_dependency'")
        return real(task)

    monkeypatch.setattr(cli, "_task_module", broken)
    assert cli.main(["train", "rotmnist", "--root", "x"]) == 2
    err = capsys.readouterr().err
    assert "the rotmnist task cannot be loaded" in err and "some_dependency" in err
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    listing = capsys.readouterr().out
    assert "rotmnist" in listing and "unavailable" in listing


#: the options every task offers for a command (issue: one option set across the tasks)
COMMON_OPTIONS = {
    "train": {"--threads", "--config", "--out", "--seed", "--device", "--resume"},
    "evaluate": {"--threads", "--run", "--seed", "--device"},
    "check": {"--threads", "--run", "--seed", "--device"},
    "study": {"--threads", "--out", "--seeds", "--device"},
    "upgrade": {"--run"},
}


def test_every_task_offers_the_common_options_of_each_command():
    import argparse

    from torch_geometric_lieconv.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    seen = 0
    for command, command_parser in commands.choices.items():
        tasks = next(a for a in command_parser._actions if isinstance(a, argparse._SubParsersAction))
        for task, task_parser in tasks.choices.items():
            options = {flag for action in task_parser._actions for flag in action.option_strings}
            missing = COMMON_OPTIONS[command] - options
            assert not missing, f"lieconv {command} {task} lacks {sorted(missing)}"
            seen += 1
    assert seen == 11  # train x 3, evaluate x 3, study springs, check rotmnist, upgrade x 3
