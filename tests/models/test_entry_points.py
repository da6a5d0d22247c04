"""Every entry point of every model computes one function: ``forward(x, pos, batch)``,
``forward_lifted(lift_graph(...))`` and ``forward_images(...)`` agree, Monte Carlo draws included."""
import pytest
import torch

import torch_geometric_lieconv.models as models
from torch_geometric_lieconv import lift_graph
from torch_geometric_lieconv.models import (FCNeuralODE, HamiltonianFC, HamiltonianLieConv, HOGN, ImageLieResNet,
                                            LieResNet, OGN, QM9LieConv, QM9SchNet, Rebuildable)
from torch_geometric_lieconv.testing import amplify_weights
from torch_geometric_lieconv.transforms import ImageToPointSet

F64 = torch.float64
#: the bases that only define an interface: no entry point computes anything
INTERFACES = {"Rebuildable", "DynamicsModel", "HamiltonianModel", "SeparableHamiltonian"}
MODEL_CLASSES = [getattr(models, name) for name in models.__all__
                 if name not in INTERFACES and issubclass(getattr(models, name), Rebuildable)]
#: entry points that must agree with ``forward`` wherever a model class has them
ALTERNATIVE_ENTRY_POINTS = ("forward_lifted", "forward_images")


def point_clouds(sizes, dim, seed=0):
    gen = torch.Generator().manual_seed(seed)
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    return torch.randn(len(batch), dim, generator=gen, dtype=F64) * 1.5, batch, gen


def centred(pos, batch):
    mean = torch.zeros(int(batch.max()) + 1, pos.shape[1], dtype=pos.dtype).index_add_(0, batch, pos)
    return pos - (mean / torch.bincount(batch).unsqueeze(-1).to(pos.dtype))[batch]


def lieresnet_calls():
    # random lift (SE(3), 2 samples), balls (fill < 1), random neighbourhoods and farthest point subsampling
    model = LieResNet(3, 2, "SE3", hidden_channels=8, num_layers=2, mc_samples=6, fill=0.6, lift_samples=2,
                      ds_frac=0.6)
    pos, batch, gen = point_clouds([7, 11, 9], 3)
    x = torch.randn(len(batch), 3, generator=gen, dtype=F64)

    def lifted():
        graph = lift_graph(model.group, pos, batch, model.lift_samples, model.candidate_radius())
        graph.x = x[graph.node_index]
        return model.forward_lifted(graph)

    return model, {"forward": lambda: model(x, pos, batch), "forward_lifted": lifted}


def image_calls():
    model = ImageLieResNet("SE2", hidden_channels=8, num_layers=2, total_ds=0.5, fill=0.3, mc_samples=10)
    images = torch.rand(3, 1, 9, 9, generator=torch.Generator().manual_seed(1), dtype=F64)
    points = ImageToPointSet(9, 9).batch(images)

    def lifted():
        graph = lift_graph(model.group, points.pos, points.batch, model.lift_samples, model.candidate_radius())
        graph.x = points.x[graph.node_index]
        return model.forward_lifted(graph)

    return model, {"forward": lambda: model(points.x, points.pos, points.batch), "forward_lifted": lifted,
                   "forward_images": lambda: model.forward_images(images)}


def qm9_calls():
    # centring (SE(3)), pos_scale, two lifts per atom, an extensive readout and per-atom references
    model = QM9LieConv("SE3", hidden_channels=8, num_layers=2, mc_samples=9, lift_samples=2, pos_scale=1.3,
                       readout="add", atomref=torch.linspace(-2.0, 3.0, 100), target_mean=0.5, target_std=2.0)
    pos, batch, gen = point_clouds([5, 8, 6], 3)
    z = torch.tensor([1, 6, 7, 8, 9])[torch.randint(0, 5, (len(batch),), generator=gen)]

    def lifted():  # forward_lifted takes the graph as lifted: centring and pos_scale are the caller's
        graph = lift_graph(model.group, centred(pos, batch) * model.pos_scale, batch, model.net.lift_samples)
        graph.z = z[graph.node_index]
        return model.forward_lifted(graph)

    return model, {"forward": lambda: model(z, pos, batch), "forward_lifted": lifted}


def hamiltonian_calls():
    # HLieConv's potential is its LieResNet on the lifted graph of the centred particles and its frames
    model = HamiltonianLieConv(2, "SE2", hidden_channels=8, num_layers=2, mc_samples=4, fill=0.7, lift_samples=2)
    q, batch, gen = point_clouds([4, 6], 2)
    params = torch.rand(len(batch), 2, generator=gen, dtype=F64) + 0.5

    def lifted():
        graph = lift_graph(model.group, centred(q, batch), batch, model.lift_samples, model.net.candidate_radius(),
                           frames=model.frames(q, batch, 2))
        graph.x = params[graph.node_index]
        return model.net.forward_lifted(graph).squeeze(-1)

    return model, {"forward": lambda: model.potential(q, params, batch, 2), "forward_lifted": lifted}


def dynamics_calls(build):
    def make():
        model = build()
        z, batch, gen = point_clouds([3, 3], 4)
        params = torch.rand(len(batch), 2, generator=gen, dtype=F64) + 0.5
        return model, {"forward": lambda: model(torch.tensor(0.0), z, params, batch)}

    return make


def schnet_calls():
    model = QM9SchNet(16, 2, cutoff=5.0)
    pos, batch, _ = point_clouds([5, 8], 3)
    z = torch.tensor([1, 6, 7, 8, 6, 1, 1, 8, 9, 6, 6, 7, 1])
    return model, {"forward": lambda: model(z, pos, batch)}


CASES = {
    LieResNet: lieresnet_calls, ImageLieResNet: image_calls, QM9LieConv: qm9_calls,
    HamiltonianLieConv: hamiltonian_calls, QM9SchNet: schnet_calls,
    FCNeuralODE: dynamics_calls(lambda: FCNeuralODE(3, 2, 2, hidden_channels=8, num_layers=1)),
    HamiltonianFC: dynamics_calls(lambda: HamiltonianFC(3, 2, 2, hidden_channels=8, num_layers=1)),
    OGN: dynamics_calls(lambda: OGN(2, 2, hidden_channels=8, num_layers=1)),
    HOGN: dynamics_calls(lambda: HOGN(2, 2, hidden_channels=8, num_layers=1)),
}


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda cls: cls.__name__)
def test_every_entry_point_of_every_model_computes_the_same_function(cls):
    assert cls in CASES, f"a new model class: add {cls.__name__}'s entry points to CASES"
    torch.manual_seed(0)
    model, calls = CASES[cls]()
    missing = [name for name in ALTERNATIVE_ENTRY_POINTS if hasattr(cls, name) and name not in calls]
    assert not missing, f"{cls.__name__}.{missing} not compared with forward"
    amplify_weights(model.double().eval(), 2.0)
    outputs = {}
    for name, call in calls.items():
        torch.manual_seed(7)  # the same Monte Carlo draws (lift, neighbourhoods, subsampling) for each
        outputs[name] = call().detach()
    reference = outputs["forward"]
    assert reference.dtype == F64 and bool(torch.isfinite(reference).all())
    spread = float(reference.max() - reference.min())
    assert spread > 1e-3, f"{cls.__name__}: outputs barely depend on the input (spread {spread:.3g})"
    for name, out in outputs.items():
        assert out.shape == reference.shape, name
        error = float((out - reference).abs().max())
        assert error <= 1e-10 * spread, (f"{cls.__name__}.{name} differs from forward by {error:.3g} "
                                         f"(spread {spread:.3g})")
