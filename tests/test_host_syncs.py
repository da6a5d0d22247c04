"""torch.compile of whole models and the host-sync budget of a forward pass."""
import pytest
import torch

from torch_geometric_lieconv import LieConv, LieResNet, QM9LieConv
from torch_geometric_lieconv.graph import build_pair_graph
from torch_geometric_lieconv.groups import random_rotations
from torch_geometric_lieconv.host_syncs import HostSyncCounter
from torch_geometric_lieconv.lift import lift_points


def molecules(sizes=(7, 12, 5, 9), seed=0):
    gen = torch.Generator().manual_seed(seed)
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    z = torch.tensor([1, 6, 7, 8, 9])[torch.randint(0, 5, (len(batch),), generator=gen)]
    pos = torch.randn(len(batch), 3, generator=gen) * 1.5
    return z, pos, batch


class GraphRecorder:
    """A torch.compile backend that runs the captured graphs as they are and counts them."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        return gm.forward


def syncs_per_forward(model, *args) -> int:
    model(*args)  # warm-up: lazy buffers, first-call work
    with HostSyncCounter() as counter:
        model(*args)
    return counter.count


# ---------------------------------------------------------------------------------------------- host syncs
def test_counter_sees_scalar_reads_data_dependent_shapes_and_deliberate_reads():
    from torch_geometric_lieconv.host_syncs import read_to_host

    t = torch.tensor([0.0, 2.0, 3.0])
    with HostSyncCounter() as counter:
        float(t.sum()), t[t > 1], (t > 1).nonzero(), torch.bincount(t.long())
        torch.arange(3).repeat_interleave(t.long()), read_to_host(t)
        torch.arange(3).repeat_interleave(t.long(), output_size=5), t * 2  # none of these
    assert counter.by_kind == {"_local_scalar_dense": 1, "boolean index": 1, "nonzero": 1, "bincount": 1,
                               "repeat_interleave": 1, "read_to_host": 1}


@pytest.mark.parametrize("group", ["T3", "SE3"])
def test_fill_one_models_sync_at_most_four_times_whatever_their_depth(group):
    z, pos, batch = molecules()
    counts = []
    for layers in (2, 5):
        model = QM9LieConv(group, hidden_channels=8, num_layers=layers, lift_samples=2).eval()
        counts.append(syncs_per_forward(model, z, pos, batch))
    assert counts[0] == counts[1] <= 4, counts


def test_ball_models_sync_once_more_per_ball_block():
    """Each ball block reads one number, the count of its selected edges."""
    z, pos, batch = molecules()
    counts = []
    for layers in (2, 5):
        model = QM9LieConv("SE3", hidden_channels=8, num_layers=layers, fill=0.5, mc_samples=10,
                           lift_samples=2).train()
        counts.append(syncs_per_forward(model, z, pos, batch))
    assert counts[1] - counts[0] == 3 and counts[0] - 2 <= 4, counts


# ---------------------------------------------------------------------------------------------- torch.compile
def test_fill_one_model_compiles_into_one_graph_equal_to_eager_with_gradients():
    """``model(x, pos, batch)``: the lift and the graph run eagerly, the rest is one captured graph; the
    compiled model gives the eager outputs and gradients (aot_eager: the captured graphs as they are)."""
    torch.manual_seed(0)
    z, pos, batch = molecules()
    x = torch.randn(len(z), 4)
    model = LieResNet(4, 2, "T3", hidden_channels=16, num_layers=3, fill=1.0, mc_samples=100)
    twin = LieResNet(4, 2, "T3", hidden_channels=16, num_layers=3, fill=1.0, mc_samples=100)
    twin.load_state_dict(model.state_dict())
    recorder = GraphRecorder()
    compiled = torch.compile(twin, backend=recorder)
    for step in range(2):  # the second call reuses the graph
        eager_out, compiled_out = model(x, pos + step, batch), compiled(x, pos + step, batch)
        torch.testing.assert_close(compiled_out, eager_out, atol=1e-6, rtol=1e-6)
        eager_grad = torch.autograd.grad(eager_out.square().sum(), model.lin_in.weight)[0]
        compiled_grad = torch.autograd.grad(compiled_out.square().sum(), twin.lin_in.weight)[0]
        torch.testing.assert_close(compiled_grad, eager_grad, atol=1e-6, rtol=1e-6)
    assert recorder.graphs <= 2, recorder.graphs
    torch._dynamo.reset()


def test_ball_model_compiles_and_equals_eager():
    """fill < 1 with SE(3) lifts: the radius search runs eagerly and the layers break at their edge
    count, but the compiled model computes the eager one, radius adaptation included."""
    z, pos, batch = molecules()
    frames = random_rotations((len(z), 2), 3, generator=torch.Generator().manual_seed(1))
    model = QM9LieConv("SE3", hidden_channels=8, num_layers=2, fill=0.5, mc_samples=1000, lift_samples=2).train()
    twin = QM9LieConv("SE3", hidden_channels=8, num_layers=2, fill=0.5, mc_samples=1000, lift_samples=2).train()
    twin.load_state_dict(model.state_dict())
    compiled = torch.compile(twin, backend="aot_eager")
    for _ in range(2):
        torch.testing.assert_close(compiled(z, pos, batch, frames), model(z, pos, batch, frames),
                                   atol=1e-5, rtol=1e-5)
    for a, b in zip(model.net.convs, twin.net.convs):
        torch.testing.assert_close(a.radius, b.radius)
    torch._dynamo.reset()


def test_layer_with_a_precomputed_table_compiles_with_fullgraph():
    z, pos, batch = molecules()
    conv = LieConv(4, 6, "SE3", fill=1.0, mc_samples=100, kernel_batch_norm=True).train()
    lifted = lift_points(conv.group, pos, batch, 2, generator=torch.Generator().manual_seed(2))
    graph = build_pair_graph(conv.group, lifted)
    x = torch.randn(graph.num_nodes, 4)
    eager = conv(x, graph.edge_index, graph.edge_attr, table=graph.table)
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, graph.edge_index, graph.edge_attr, table=graph.table), eager,
                               atol=1e-5, rtol=1e-5)
    torch._dynamo.reset()


def test_inductor_compiled_qm9_model_matches_eager():
    """The default backend (inductor, generated kernels) to rounding, a fill=1 QM9 model."""
    z, pos, batch = molecules()
    model = QM9LieConv("T3", hidden_channels=8, num_layers=2).eval()
    compiled = torch.compile(model)
    eager = model(z, pos, batch)
    torch.testing.assert_close(compiled(z, pos, batch), eager, atol=1e-4 * float(eager.detach().abs().max()), rtol=1e-4)
    torch._dynamo.reset()
