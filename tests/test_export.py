"""torch.export and fullgraph torch.compile of the LieConv models through the custom operators of
``torch_geometric_lieconv.ops``: exported and compiled programs equal eager on new batches of other
sizes (the random draws made under the same seed: the traced graph draws what eager draws)."""
import pytest
import torch

from torch_geometric_lieconv import LieConv, LieResNet, QM9LieConv, ops, pool
from torch_geometric_lieconv import graph as graph_module
from torch_geometric_lieconv.graph import build_pair_graph, radius_candidates
from torch_geometric_lieconv.groups import group_from_name
from torch_geometric_lieconv.lift import lift_points

ATOMS = torch.export.Dim("atoms")
BY_ATOM = {0: ATOMS}


def molecules(sizes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    z = torch.tensor([1, 6, 7, 8, 9])[torch.randint(0, 5, (len(batch),), generator=gen)]
    pos = torch.randn(len(batch), 3, generator=gen) * 1.5
    return z, pos, batch


def operators(program) -> set:
    """The operators of an exported program, its nested graphs (e.g. autocast regions) included."""
    return {str(node.target) for module in program.graph_module.modules() if isinstance(module, torch.fx.GraphModule)
            for node in module.graph.nodes}


#: new batches: other atom counts and other numbers of molecules than the example (7, 12, 5, 9)
NEW_BATCHES = [(3, 20, 11), (15,), (4, 4, 4, 4, 4, 9, 2)]


def trained(model: torch.nn.Module, steps: int = 3) -> torch.nn.Module:
    """A few SGD steps on random targets (moves the weights, BatchNorm statistics and ball radii)."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(steps):
        z, pos, batch = molecules((6, 9, 4), seed=100 + step)
        loss = (model(z, pos, batch) - 1.0).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def assert_same_as_eager(run, model, sizes, seed):
    """``run(*inputs)`` and ``model(*inputs)`` on a new batch, both after ``torch.manual_seed(seed)``."""
    inputs = molecules(sizes, seed=seed)
    torch.manual_seed(seed)
    got = run(*inputs)
    torch.manual_seed(seed)
    want = model(*inputs)
    assert got.shape == want.shape == (len(sizes), 1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


# ---------------------------------------------------------------------------------------------- operators
def _pair_graph():
    group = group_from_name("T3")
    batch = torch.tensor([0] * 5 + [1] * 7)
    pos = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    return pos, batch, build_pair_graph(group, lift_points(group, pos, batch), 1.0)


def _op_samples():
    pos, batch, graph = _pair_graph()
    counts = torch.tensor([5, 7])
    return [
        (ops.graph_counts, (batch, -1, None)),
        (ops.graph_counts, (batch, 3, torch.zeros(4, dtype=torch.bool))),
        (graph_module.all_pairs_op, (batch, counts)),
        (graph_module.radius_pairs_op, (pos, batch, torch.tensor(1.0, dtype=torch.float64), -1)),
        (graph_module.radius_pairs_op, (pos, batch, torch.tensor(1.0), 2)),
        (graph_module.neighbor_table_op, (graph.edge_index[1].flip(0), 12)),
        (graph_module.subgraph_edges_op, (graph.edge_index, torch.tensor([0, 2, 3, 7, 8]), 12)),
        (pool.farthest_point_sample_op, (counts, batch, graph.edge_index[0], graph.dist, graph.slots, graph.slot_mask,
                                     torch.tensor([1, 3]), 0.5)),
    ]


def test_every_operator_of_the_package_has_an_opcheck_sample():
    every = {op._qualname for op in ops.OPS + graph_module.TRACED_OPS + pool.TRACED_OPS}
    assert every == {op._qualname for op, _ in _op_samples()}
    assert len(every) == 6


@pytest.mark.parametrize("index", range(len(_op_samples())))
def test_each_operator_has_a_fake_kernel_that_passes_opcheck(index):
    """Schema, fake kernel (shapes and dtypes of the real outputs) and AOT dispatch with dynamic shapes."""
    op, args = _op_samples()[index]
    assert torch._library.simple_registry.singleton.find(op._qualname).fake_impl.kernel is not None
    torch.library.opcheck(op, args)


def test_operators_compute_what_the_eager_code_computes():
    pos, batch, graph = _pair_graph()
    counts = ops.graph_counts(batch, -1, None)
    assert counts.tolist() == [5, 7]
    assert ops.graph_counts(batch, 4, None).tolist() == [5, 7, 0, 0]
    pairs = graph_module.all_pairs_op(batch, counts)
    assert pairs.shape == (2, 25 + 49) and bool((batch[pairs[0]] == batch[pairs[1]]).all())
    near = radius_candidates(pos, batch, 1.5, 12)
    radius = graph_module.radius_pairs_op(pos, batch, torch.tensor(1.5, dtype=torch.float64), -1)
    torch.testing.assert_close(radius, near[:, torch.argsort(near[1], stable=True)])
    slots, mask, position = graph_module.neighbor_table_op(graph.edge_index[1], 12)
    assert slots.shape[1] == max(graph.max_degree, 2)
    torch.testing.assert_close(slots[:, : graph.max_degree][mask[:, : graph.max_degree]], graph.slots[graph.slot_mask])
    torch.testing.assert_close(position, graph.table.position // graph.max_degree * slots.shape[1]
                               + graph.table.position % graph.max_degree)
    kept = torch.tensor([0, 2, 3, 7, 8])
    edges, edge_id = graph_module.subgraph_edges_op(graph.edge_index, kept, 12)
    sub = graph.subgraph(kept)
    torch.testing.assert_close(edges, sub.edge_index)
    torch.testing.assert_close(graph.dist[edge_id], sub.dist)
    assert graph_module.radius_pairs_op(pos[:0], batch[:0], torch.tensor(1.0), -1).shape == (2, 0)


@pytest.mark.parametrize("flag, error, match", [
    (0, ValueError, "NaN or inf coordinates"), (1, ValueError, "lift is undefined"),
    (2, ValueError, "batch must be sorted"), (3, ops.NonFiniteInputError, "x contains NaN"),
])
def test_graph_counts_raises_for_each_input_flag(flag, error, match):
    flags = torch.zeros(4, dtype=torch.bool)
    flags[flag] = True
    with pytest.raises(error, match=match):
        ops.graph_counts(torch.zeros(3, dtype=torch.long), -1, flags)


def test_eager_forwards_do_not_call_the_operators(monkeypatch):
    """The operators are the traced path only: eager keeps its one host read."""
    def refuse(*args, **kwargs):
        raise AssertionError("an operator ran in an eager forward")

    from torch_geometric_lieconv.models import lieresnet

    # every module's own name for each operator (they import them by name)
    for module, name in [(graph_module, "graph_counts"), (lieresnet, "graph_counts"),
                         (graph_module, "subgraph_edges_op"), (graph_module, "all_pairs_op"),
                         (graph_module, "radius_pairs_op"), (graph_module, "neighbor_table_op"),
                         (pool, "farthest_point_sample_op")]:
        monkeypatch.setattr(module, name, refuse)
    z, pos, batch = molecules((7, 12, 5, 9))
    for per_block in (True, False):  # one graph per block, or one graph and its subgraphs
        model = LieResNet(4, 1, "T3", hidden_channels=16, num_layers=2, mc_samples=8, fill=0.5, ds_frac=0.5,
                          graph_per_block=per_block).eval()
        model(torch.randn(len(z), 4), pos, batch)


# ---------------------------------------------------------------------------------------------- torch.export
def test_exported_qm9_model_equals_eager_on_new_molecules():
    """fill = 1 with mc_samples = 8 < the larger molecules: the neighbourhoods are random subsets, drawn
    the same under the same seed by the exported program and eager."""
    torch.manual_seed(0)
    model = trained(QM9LieConv("T3", hidden_channels=32, num_layers=2, mc_samples=8, fill=1.0, target_std=3.0))
    example = molecules((7, 12, 5, 9))
    program = torch.export.export(model, example, dynamic_shapes={"z": BY_ATOM, "pos": BY_ATOM, "batch": BY_ATOM})
    targets = operators(program)
    assert {"lieconv.graph_counts.default", "lieconv.all_pairs.default", "lieconv.neighbor_table.default"} <= targets
    for seed, sizes in enumerate(NEW_BATCHES):
        assert_same_as_eager(program.module(), model, sizes, seed)
    z, pos, batch = molecules((4, 5))
    with pytest.raises(ValueError, match="batch must be sorted"):
        program.module()(z, pos, batch.flip(0))


@pytest.mark.parametrize("ds_frac, graph_per_block", [(1.0, False), (0.5, False), (0.5, True)])
def test_exported_ball_model_equals_eager(ds_frac, graph_per_block):
    """fill < 1: the candidates by the radius search operator, the ball on the device; with ds_frac < 1
    also farthest point sampling and the kept points' graph (induced, or searched again per block).
    Random subsets of the ball (mc_samples = 6) and random starts, the same under the same seed."""
    torch.manual_seed(1)
    model = trained(QM9LieConv("T3", hidden_channels=16, num_layers=2, mc_samples=6, fill=0.5, ds_frac=ds_frac,
                               graph_per_block=graph_per_block))
    program = torch.export.export(model, molecules((7, 12, 5, 9)),
                                  dynamic_shapes={"z": BY_ATOM, "pos": BY_ATOM, "batch": BY_ATOM})
    targets = operators(program)
    assert "lieconv.radius_pairs.default" in targets
    assert ("lieconv.farthest_point_sample.default" in targets) == (ds_frac < 1)
    for seed, sizes in enumerate(NEW_BATCHES):
        assert_same_as_eager(program.module(), model, sizes, seed)


def test_exported_lieconv_on_given_edges_equals_eager():
    """A bare layer on an edge_index / edge_attr given as inputs (E and N dynamic)."""
    torch.manual_seed(2)
    conv = LieConv(4, 6, "T3", mc_samples=5, fill=0.5, initial_radius=1.0).eval()

    class OnEdges(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x, edge_index, edge_attr, batch):
            return self.conv(x, edge_index, edge_attr, batch=batch, candidate_radius=float("inf"))

    def inputs(n, seed):
        gen = torch.Generator().manual_seed(seed)
        pos = torch.randn(n, 3, generator=gen)
        batch = (torch.arange(n) >= n // 2).long()
        graph = build_pair_graph(conv.group, lift_points(conv.group, pos, batch), 4.0)
        return torch.randn(n, 4, generator=gen), graph.edge_index, graph.edge_attr, batch

    nodes, edges = torch.export.Dim("nodes"), torch.export.Dim("edges")
    program = torch.export.export(OnEdges(), inputs(12, 0), dynamic_shapes={
        "x": {0: nodes}, "edge_index": {1: edges}, "edge_attr": {0: edges}, "batch": {0: nodes}})
    for n in (9, 23):
        args = inputs(n, n)
        torch.manual_seed(n)
        got = program.module()(*args)
        torch.manual_seed(n)
        torch.testing.assert_close(got, OnEdges()(*args), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("group", ["T3", "SO2"])
def test_exported_lift_graph_and_layer_equal_eager(group):
    """lift_points, build_pair_graph (no sizes given) and a ball layer traced as one program. T(3): the
    radius search operator; SO(2) bounds its search radius by its own formula, so the traced graph
    takes all pairs of each graph, a superset whose ball is the same (mc_samples above every ball)."""
    torch.manual_seed(3)
    conv = LieConv(4, 6, group, mc_samples=100, fill=0.5, initial_radius=0.6).eval()
    dim = conv.group.space_dim

    class Lifted(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x, pos, batch):
            lifted = lift_points(conv.group, pos, batch)
            graph = build_pair_graph(conv.group, lifted, 0.8)
            return self.conv(x, graph.edge_index, graph.edge_attr, table=graph.table,
                             candidate_radius=graph.candidate_radius_tensor)

    def inputs(sizes, seed):
        _, pos, batch = molecules(sizes, seed)
        return torch.randn(len(batch), 4), pos[:, :dim], batch

    program = torch.export.export(Lifted(), inputs((7, 12, 5, 9), 0),
                                  dynamic_shapes={"x": BY_ATOM, "pos": BY_ATOM, "batch": BY_ATOM})
    assert ("lieconv.radius_pairs.default" in operators(program)) == (group == "T3")
    for seed, sizes in enumerate(NEW_BATCHES):
        x, pos, batch = inputs(sizes, seed)
        got = program.module()(x, pos, batch)
        torch.testing.assert_close(got, Lifted()(x, pos, batch), rtol=1e-5, atol=1e-6)
    pos[0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="lift_points"):
        program.module()(x, pos, batch)


# ---------------------------------------------------------------------------------------------- torch.compile
def _compiled_ball_model_equals_eager(backend: str, batches):
    """A ball model (mc_samples above every ball, so the neighbourhoods are the balls whatever the random
    keys: inductor draws its own random numbers) compiled with fullgraph=True and dynamic shapes."""
    torch.manual_seed(4)
    model = trained(QM9LieConv("T3", hidden_channels=16, num_layers=2, mc_samples=1000, fill=0.5))
    compiled = torch.compile(model, fullgraph=True, backend=backend, dynamic=True)
    for seed, sizes in enumerate(batches):
        assert_same_as_eager(compiled, model, sizes, seed)
    torch._dynamo.reset()


def test_fullgraph_aot_eager_compile_of_a_ball_model_equals_eager():
    _compiled_ball_model_equals_eager("aot_eager", [(7, 12, 5, 9)] + NEW_BATCHES)


@pytest.mark.slow
def test_fullgraph_inductor_compile_of_a_ball_model_equals_eager():
    """Batches of 17 or more atoms: inductor's matmul lowering guards on 17 <= N (smaller recompiles)."""
    _compiled_ball_model_equals_eager("inductor", [(7, 12, 5, 9), (3, 20, 11), (17,), (4, 4, 4, 4, 4, 9, 2)])


def test_a_traced_forward_without_a_batch_vector_is_one_graph_and_a_wrong_batch_raises():
    torch.manual_seed(0)
    model = LieResNet(4, 1, "T3", hidden_channels=16, num_layers=1, mc_samples=16, fill=1.0).eval()
    x, pos = torch.randn(9, 4), torch.randn(9, 3)
    program = torch.export.export(model, (x, pos))  # batch None: one graph of every point
    torch.testing.assert_close(program.module()(x, pos), model(x, pos), rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="batch must have shape"):
        torch.export.export(model, (x, pos, torch.zeros(5, dtype=torch.long)))
