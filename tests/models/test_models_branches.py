"""Branches of the model modules (baselines, hamiltonian, hub, qm9) that the other tests leave out, each
stated as a fact: an error that names the problem, parameters re-drawn by ``reset_parameters``, or a
user's model rebuilt from its checkpoint with the arguments and buffers it was saved with."""
import math

import pytest
import torch
from torch import nn

from torch_geometric_lieconv.groups import SE3
from torch_geometric_lieconv.models import OGN, HamiltonianLieConv, QM9LieConv, QM9SchNet, Rebuildable
from torch_geometric_lieconv.models.baselines import GraphNetworkBlock
from torch_geometric_lieconv.models.hub import checkpoint_file
from torch_geometric_lieconv.models.lieresnet import NonFiniteInputError

pytestmark = pytest.mark.usefixtures("single_thread")


# ---------------------------------------------------------------------------------------------- baselines
def test_graph_network_block_reset_redraws_its_construction_weights():
    """reset_parameters re-initialises both MLPs (edge and node) exactly as construction did: under the
    same seed a reset block equals a freshly built one, whatever its weights were before."""
    torch.manual_seed(5)
    fresh = GraphNetworkBlock(3, 2, 4)
    block = GraphNetworkBlock(3, 2, 4)
    with torch.no_grad():
        for p in block.parameters():
            p.fill_(0.0)
    torch.manual_seed(5)
    block.reset_parameters()
    for (name, a), (_, b) in zip(fresh.state_dict().items(), block.state_dict().items()):
        assert torch.equal(a, b), name


def test_particle_graph_network_needs_a_layer():
    with pytest.raises(ValueError, match="num_layers must be >= 1, got 0"):
        OGN(2, 2, hidden_channels=4, num_layers=0)


# ---------------------------------------------------------------------------------------------- hamiltonian
def test_dynamics_model_reset_redraws_every_parameter_at_its_default_scale():
    """OGN's reset (the base class's: every submodule) leaves no parameter at its zeroed value, each
    within PyTorch's default Linear bound 1/sqrt(fan_in)."""
    model = OGN(2, 2, hidden_channels=6, num_layers=2)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.0)
    model.reset_parameters()
    for module in model.modules():
        if isinstance(module, nn.Linear):
            bound = 1 / math.sqrt(module.in_features)
            for p in (module.weight, module.bias):
                assert bool((p != 0).all()) and float(p.detach().abs().max()) <= bound


def test_dynamics_models_refuse_a_space_without_dimensions():
    with pytest.raises(ValueError, match=r"need dim >= 1 and param_channels >= 1 \(masses first\), got 0, 2"):
        OGN(0, 2, hidden_channels=4)


@pytest.mark.parametrize("z_shape,batch_shape,message", [
    ((5, 3), (5,), r"OGN: z must be \[N, 4\] \(q then p\), got \[5, 3\]"),
    ((5, 4), (4,), r"OGN: batch must be \[5\], got \[4\]"),
])
def test_dynamics_inputs_are_checked_by_name(z_shape, batch_shape, message):
    model = OGN(2, 2, hidden_channels=4)
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(()), torch.zeros(z_shape), torch.ones(z_shape[0], 2), torch.zeros(batch_shape, dtype=torch.long))


def test_hamiltonian_lieconv_refuses_3d_rotation_frames():
    with pytest.raises(ValueError, match="deterministic stabilizer frames only in 2D"):
        HamiltonianLieConv(2, "SE3", hidden_channels=8, num_layers=1)


# ---------------------------------------------------------------------------------------------- hub
class _WithOptions(Rebuildable):
    def __init__(self, width: int, options: dict):
        super().__init__()
        self.lin = nn.Linear(width, 1)


class _IntegerState(Rebuildable):
    def __init__(self, start: int = 0):
        super().__init__()
        self.register_buffer("count", torch.tensor(start))


class _Starred(Rebuildable):
    def __init__(self, width: int, *extra, scale: float = 1.0):
        super().__init__()
        self.lin = nn.Linear(width, 1)


def test_mapping_arguments_are_recorded_as_plain_data_and_bad_entries_named():
    model = _WithOptions(2, {"group": SE3(), "sizes": (1, 2), "scale": torch.tensor([0.5])})
    assert model.arguments == {"width": 2, "options": {"group": "SE3", "sizes": [1, 2], "scale": [0.5]}}
    with pytest.raises(ValueError, match="the model argument options.bad is a object"):
        _WithOptions(2, {"bad": object()}).arguments


def test_checkpoint_file_names_the_two_checkpoints():
    assert checkpoint_file("run", "last").endswith("checkpoint_last.pt")
    with pytest.raises(ValueError, match="checkpoint must be one of best, last, got 'worst'"):
        checkpoint_file("run", "worst")


def test_a_model_without_floating_weights_comes_back_with_its_integer_buffers(tmp_path):
    model = _IntegerState(3)
    model.count.add_(4)
    path = str(tmp_path / "checkpoint_best.pt")
    torch.save(model.checkpoint_entries(), path)
    rebuilt = Rebuildable.from_checkpoint(path)
    assert type(rebuilt) is _IntegerState and rebuilt.arguments == {"start": 3}
    assert rebuilt.count.dtype == torch.int64 and int(rebuilt.count) == 7


def test_a_starred_constructor_records_its_named_arguments_and_refuses_extra_positionals(tmp_path):
    model = _Starred(3, scale=2.0)
    assert model.arguments == {"width": 3, "scale": 2.0}
    path = str(tmp_path / "checkpoint_best.pt")
    torch.save(model.checkpoint_entries(), path)
    assert Rebuildable.from_checkpoint(path).arguments == {"width": 3, "scale": 2.0}
    with pytest.raises(TypeError, match="_Starred takes no extra positional arguments"):
        _Starred(3, 4)


# ---------------------------------------------------------------------------------------------- qm9
@pytest.mark.parametrize("cls", [QM9LieConv, QM9SchNet])
@pytest.mark.parametrize("name", ["target_std", "target_scale"])
def test_qm9_models_refuse_a_non_positive_target_scale(cls, name):
    size = dict(num_layers=1) if cls is QM9LieConv else dict(num_interactions=1)
    args = ("T3",) if cls is QM9LieConv else ()
    with pytest.raises(ValueError, match=f"{name} must be positive, got 0"):
        cls(*args, hidden_channels=8, **size, **{name: 0.0})


@pytest.mark.parametrize("species,message", [
    ("most", "species must be a sequence of atomic numbers or 'all', got 'most'"),
    ([1, 6, 6], r"species must be distinct atomic numbers in 1..100, got \[1, 6, 6\]"),
    ([0, 1], r"distinct atomic numbers in 1..100, got \[0, 1\]"),
    ([], r"distinct atomic numbers in 1..100, got \[\]"),
])
def test_qm9_model_species_are_checked_by_name(species, message):
    with pytest.raises(ValueError, match=message):
        QM9LieConv("T3", hidden_channels=8, num_layers=1, species=species)


def test_forward_lifted_refuses_a_tensor():
    model = QM9LieConv("T3", hidden_channels=8, num_layers=1)
    with pytest.raises(TypeError, match=r"forward_lifted takes the lifted graph: forward_lifted\(data\)"):
        model.forward_lifted(torch.zeros(3, dtype=torch.long))


def test_a_non_finite_input_of_known_species_is_not_blamed_on_the_species():
    """The network's non-finite-input error becomes a species error only when some atom's species is
    unknown; with known species it passes through unchanged (the species are not the cause)."""
    model = QM9LieConv("T3", hidden_channels=8, num_layers=1)

    def fails():
        raise NonFiniteInputError("x contains NaN or inf values (rows [0] ...)")

    with pytest.raises(NonFiniteInputError, match=r"x contains NaN or inf values \(rows \[0\]"):
        model._checked_species(torch.tensor([1, 6, 8]), fails)
    with pytest.raises(ValueError, match=r"knows the atomic numbers \[1, 6, 7, 8, 9\], got \[3\]"):
        model._checked_species(torch.tensor([1, 3, 8]), fails)
