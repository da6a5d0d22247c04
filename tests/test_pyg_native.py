"""LieConv as a PyG layer: edge_index in, propagate inside, lifted graphs as Data, PyG tooling on top."""
import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GATConv, Sequential, TransformerConv, global_mean_pool

from torch_geometric_lieconv.testing.dense_reference import dense_model_forward
from torch_geometric_lieconv.testing import amplify_weights
from torch_geometric_lieconv import LieConv, LieResNet, QM9LieConv, group_from_name, lift_graph
from torch_geometric_lieconv.groups import random_rotations
from torch_geometric_lieconv.transforms import LiftGraph

F64 = torch.float64


def direct_lieconv(conv: LieConv, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                   num_targets: int) -> torch.Tensor:
    """The layer written out per target: mean over its edges of f_j (x) k(abq_ij), then the Linear."""
    w = conv.kernel(edge_attr)
    rows = []
    for i in range(num_targets):
        mine = edge_index[1] == i
        outer = torch.einsum("ec,em->ecm", x[edge_index[0, mine]], w[mine]).sum(0)
        if conv.mean:
            outer = outer / max(int(mine.sum()), 1)
        rows.append(outer.flatten())
    return conv.lin(torch.stack(rows))


# ---------------------------------------------------------------------------------------------- the layer
@pytest.mark.parametrize("name", ["T3", "SE3", "SO2", "RxSO2", "Trivial2"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (F64, 1e-10)])
def test_layer_on_edge_index_equals_direct_computation(name, dtype, tol):
    gen = torch.Generator().manual_seed(0)
    group = group_from_name(name)
    pos = (torch.randn(9, group.space_dim, generator=gen) + 0.3).to(dtype)
    graph = lift_graph(group, pos, lift_samples=2, generator=gen)
    conv = LieConv(5, 4, group, mc_samples=1000, fill=1.0).to(dtype)
    x = torch.randn(graph.num_nodes, 5, generator=gen, dtype=dtype)
    # any edge order: PyG graphs are not sorted by target in general
    perm = torch.randperm(graph.num_edges, generator=gen)
    edge_index, edge_attr = graph.edge_index[:, perm], graph.edge_attr[perm]
    out = conv(x, edge_index, edge_attr)
    ref = direct_lieconv(conv, x, edge_index, edge_attr, graph.num_nodes)
    torch.testing.assert_close(out, ref, atol=tol, rtol=tol)
    assert (out - ref).abs().max() < tol * ref.abs().max()


@pytest.mark.parametrize("fill", [1.0, 0.6])
def test_sampled_neighbourhoods_equal_direct_computation_over_the_propagated_edges(fill):
    """mc_samples below the degree: the layer equals the direct mean over exactly the edges it propagated
    (random subsets of the ball; with fill 1 every row is full, the layer's no-padding path)."""
    gen = torch.Generator().manual_seed(7)
    group = group_from_name("SE2")
    graph = lift_graph(group, torch.randn(20, 2, generator=gen, dtype=F64), lift_samples=2, generator=gen)
    conv = LieConv(3, 4, group, mc_samples=5, fill=fill).to(F64).eval()
    conv.radius.fill_(1.0)
    x = torch.randn(graph.num_nodes, 3, generator=gen, dtype=F64)
    propagated = {}
    conv.register_propagate_forward_pre_hook(lambda m, inp: propagated.update(edge_index=inp[0], kw=inp[2]))
    out = conv(x, graph.edge_index, graph.edge_attr, candidate_radius=graph.candidate_radius)
    edge_index, edge_attr = propagated["edge_index"], propagated["kw"]["edge_attr"]
    degree = torch.bincount(edge_index[1], minlength=graph.num_nodes)
    assert int(degree.max()) == 5 and (fill < 1) == bool((degree < 5).any())
    ref = direct_lieconv(conv, x, edge_index, edge_attr, graph.num_nodes)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-10)


def test_bipartite_targets_equal_the_rows_of_the_full_layer():
    """``size=(M, T)`` with targets 0..T-1: the outputs of those targets in the full graph."""
    gen = torch.Generator().manual_seed(1)
    group = group_from_name("SE3")
    graph = lift_graph(group, torch.randn(12, 3, generator=gen, dtype=F64), lift_samples=2, generator=gen)
    conv = LieConv(3, 4, group, mc_samples=1000, fill=1.0).to(F64)
    x = torch.randn(graph.num_nodes, 3, generator=gen, dtype=F64)
    full = conv(x, graph.edge_index, graph.edge_attr, candidate_radius=graph.candidate_radius)
    targets = torch.tensor([2, 5, 6, 17])
    relabel = torch.full((graph.num_nodes,), -1)
    relabel[targets] = torch.arange(targets.numel())
    keep = relabel[graph.edge_index[1]] >= 0
    bipartite = torch.stack([graph.edge_index[0, keep], relabel[graph.edge_index[1, keep]]])
    out = conv((x, None), bipartite, graph.edge_attr[keep], size=(graph.num_nodes, targets.numel()))
    torch.testing.assert_close(out, full[targets], atol=1e-12, rtol=1e-12)


def test_model_forward_equals_forward_lifted_and_the_dense_reference():
    """Points in (lift inside the model) == the model on lift_graph's Data == all-pairs reference."""
    gen = torch.Generator().manual_seed(2)
    model = amplify_weights(LieResNet(4, 2, "SE3", hidden_channels=16, num_layers=2, mc_samples=1000, fill=1.0,
                                lift_samples=2)).to(F64).eval()
    pos = torch.randn(14, 3, generator=gen, dtype=F64) * 2
    batch = torch.tensor([0] * 6 + [1] * 8)
    x = torch.randn(14, 4, generator=gen, dtype=F64)
    frames = random_rotations((14, 2), 3, generator=gen, dtype=F64)
    points_in = model(x, pos, batch, frames)
    graph = lift_graph("SE3", pos, batch, lift_samples=2, frames=frames)
    lifted_in = model.forward_lifted(graph, x[graph.node_index])
    dense = dense_model_forward(model, x, pos, batch, frames)
    torch.testing.assert_close(points_in, lifted_in, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(points_in, dense, atol=1e-10, rtol=1e-10)


# ---------------------------------------------------------------------------------------------- PyG tooling
def small_graph(name="T3", n=10, seed=3, samples=1):
    gen = torch.Generator().manual_seed(seed)
    group = group_from_name(name)
    graph = lift_graph(group, torch.randn(n, group.space_dim, generator=gen, dtype=F64) * 1.5, lift_samples=samples,
                       generator=gen)
    x = torch.randn(graph.num_nodes, 4, generator=gen, dtype=F64)
    return group, graph, x


@pytest.mark.parametrize("fill", [1.0, 0.4])
def test_message_and_aggregate_hooks_fire_and_can_change_the_output(fill):
    group, graph, x = small_graph("SE3", samples=2)
    conv = LieConv(4, 3, group, mc_samples=6, fill=fill).to(F64).eval()
    conv.radius.fill_(1.2)
    seen = {}

    def record(key, value):
        seen[key] = value  # returns None: the hook observes, it does not replace

    handles = [
        conv.register_propagate_forward_pre_hook(lambda m, inp: record("propagate", inp[0].shape[1])),
        conv.register_message_forward_hook(lambda m, inp, out: record("message", out.shape)),
        conv.register_aggregate_forward_hook(lambda m, inp, out: record("aggregate", out.shape)),
    ]
    out = conv(x, graph.edge_index, graph.edge_attr, candidate_radius=graph.candidate_radius)
    num_messages = seen["propagate"]
    assert seen["message"] == (num_messages, conv.kernel_channels)
    assert seen["aggregate"] == (graph.num_nodes, conv.kernel_channels * conv.in_channels)
    assert num_messages <= min(graph.num_edges, 6 * graph.num_nodes)
    for handle in handles:
        handle.remove()
    # a message hook that silences every edge leaves only the bias
    conv.register_message_forward_hook(lambda m, inp, msg: torch.zeros_like(msg))
    silenced = conv(x, graph.edge_index, graph.edge_attr, candidate_radius=graph.candidate_radius)
    torch.testing.assert_close(silenced, conv.lin.bias.expand_as(silenced))
    assert (out - silenced).abs().max() > 1e-3


@pytest.mark.parametrize("fill", [1.0, 0.4])
def test_explain_edge_mask_receives_gradient_on_the_used_edges(fill):
    group, graph, x = small_graph("SE3", samples=2)
    conv = LieConv(4, 3, group, mc_samples=1000, fill=fill).to(F64).eval()
    conv.radius.fill_(1.2)
    mask = torch.zeros(graph.num_edges, dtype=F64, requires_grad=True)
    set_masks(conv, mask, graph.edge_index, apply_sigmoid=True)
    out = conv(x, graph.edge_index, graph.edge_attr, candidate_radius=graph.candidate_radius)
    out.square().sum().backward()
    clear_masks(conv)
    used = torch.ones(graph.num_edges, dtype=torch.bool)
    if fill < 1:
        used = group.distance(graph.edge_attr) < 1.2
        assert 0 < int(used.sum()) < graph.num_edges
    assert (mask.grad[used] != 0).float().mean() > 0.9
    assert bool((mask.grad[~used] == 0).all())
    # the masked layer at sigmoid(0) = 1/2 on every edge is the plain layer at half the messages
    set_masks(conv, torch.zeros(graph.num_edges, dtype=F64), graph.edge_index, apply_sigmoid=True)
    half = conv(x, graph.edge_index, graph.edge_attr, candidate_radius=graph.candidate_radius)
    clear_masks(conv)
    plain = conv(x, graph.edge_index, graph.edge_attr, candidate_radius=graph.candidate_radius)
    torch.testing.assert_close(half - conv.lin.bias, (plain - conv.lin.bias) / 2)


def unequal_shuffled_batch(name="SE2", sizes=(5, 11, 8), seed=11):
    """A batch of graphs of unequal size, its edges in random order (edge ids are not slot positions)."""
    gen = torch.Generator().manual_seed(seed)
    group = group_from_name(name)
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    graph = lift_graph(group, torch.randn(len(batch), group.space_dim, generator=gen, dtype=F64) + 0.2, batch,
                       lift_samples=2, generator=gen)
    perm = torch.randperm(graph.num_edges, generator=gen)
    x = torch.randn(graph.num_nodes, 3, generator=gen, dtype=F64)
    return group, graph, graph.edge_index[:, perm], graph.edge_attr[perm], x


def masked(conv, x, edge_index, edge_attr, mask, **kwargs):
    set_masks(conv, mask, edge_index, apply_sigmoid=False)
    try:
        return conv(x, edge_index, edge_attr, **kwargs)
    finally:
        clear_masks(conv)


def test_an_edge_masked_to_zero_is_the_edge_deleted_on_a_batch_of_unequal_graphs():
    """Every candidate used (no subsampling), sum aggregation: an explainer mask of zero on edge e gives
    exactly the layer on ``edge_index`` without e."""
    group, graph, edge_index, edge_attr, x = unequal_shuffled_batch()
    conv = LieConv(3, 4, group, mc_samples=1000, fill=1.0, mean=False).to(F64).eval()
    kwargs = dict(batch=graph.batch, candidate_radius=graph.candidate_radius)
    for e in (0, 7, graph.num_edges // 2, graph.num_edges - 1):
        mask = torch.ones(graph.num_edges, dtype=F64)
        mask[e] = 0
        keep = torch.arange(graph.num_edges) != e
        deleted = conv(x, edge_index[:, keep], edge_attr[keep], **kwargs)
        torch.testing.assert_close(masked(conv, x, edge_index, edge_attr, mask, **kwargs), deleted,
                                   atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("fill", [1.0, 0.5])
def test_explainer_masks_under_subsampling_hit_the_sampled_edge(fill):
    """mc_samples below the degree (random subsets of the ball), unequal graphs, shuffled edges: with the
    same draw, a mask of zero on a sampled edge removes exactly that edge's message, and a mask of zero
    on an edge that was not sampled changes nothing."""
    group, graph, edge_index, edge_attr, x = unequal_shuffled_batch()
    conv = LieConv(3, 4, group, mc_samples=4, fill=fill, mean=False).to(F64).eval()
    conv.radius.fill_(1.0)
    kwargs = dict(batch=graph.batch, candidate_radius=graph.candidate_radius)
    seen = {}
    conv.register_propagate_forward_pre_hook(lambda m, inp: seen.update(edge_index=inp[0], kw=inp[2]))
    torch.manual_seed(5)
    plain = conv(x, edge_index, edge_attr, **kwargs)
    sampled_ids, sampled_edges, sampled_attr = seen["kw"]["edge_id"], seen["edge_index"], seen["kw"]["edge_attr"]
    assert sampled_ids is not None and sampled_ids.numel() < graph.num_edges
    torch.testing.assert_close(plain, direct_lieconv(conv, x, sampled_edges, sampled_attr, graph.num_nodes))
    for k in (0, sampled_ids.numel() // 2, sampled_ids.numel() - 1):
        mask = torch.ones(graph.num_edges, dtype=F64)
        mask[sampled_ids[k]] = 0
        torch.manual_seed(5)
        out = masked(conv, x, edge_index, edge_attr, mask, **kwargs)
        rest = torch.arange(sampled_ids.numel()) != k
        expected = direct_lieconv(conv, x, sampled_edges[:, rest], sampled_attr[rest], graph.num_nodes)
        torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    unsampled = torch.ones(graph.num_edges, dtype=torch.bool)
    unsampled[sampled_ids] = False
    mask = torch.where(unsampled, 0.0, 1.0).to(F64)
    torch.manual_seed(5)
    torch.testing.assert_close(masked(conv, x, edge_index, edge_attr, mask, **kwargs), plain, atol=1e-12, rtol=1e-12)


def test_explainer_runs_on_a_lieconv_model():
    from torch_geometric.explain import Explainer, GNNExplainer

    group, graph, x = small_graph("T3")

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = LieConv(4, 8, group, fill=1.0, mc_samples=100)
            self.out = nn.Linear(8, 1)

        def forward(self, x, edge_index, edge_attr):
            return self.out(self.conv(x, edge_index, edge_attr).tanh()).mean(0, keepdim=True)

    model = Model().to(F64)
    explainer = Explainer(model, algorithm=GNNExplainer(epochs=3), explanation_type="model", edge_mask_type="object",
                          model_config=dict(mode="regression", task_level="graph", return_type="raw"))
    explanation = explainer(x, graph.edge_index, edge_attr=graph.edge_attr)
    assert explanation.edge_mask.shape == (graph.num_edges,)
    assert explanation.edge_mask.std() > 0  # the mask was trained, not left at its initial value


def pyg_sequential(group, channels=8):
    return Sequential("x, edge_index, edge_attr, batch", [
        (LieConv(4, channels, group, mc_samples=1000, fill=1.0), "x, edge_index, edge_attr -> x"),
        nn.SiLU(),
        (GATConv(channels, channels, heads=2, concat=False, edge_dim=group.embedding_dim),
         "x, edge_index, edge_attr -> x"),
        nn.SiLU(),
        (TransformerConv(channels, channels, edge_dim=group.embedding_dim), "x, edge_index, edge_attr -> x"),
        (global_mean_pool, "x, batch -> x"),
        nn.Linear(channels, 1),
    ])


@pytest.mark.parametrize("name", ["T3", "SE3"])
def test_pyg_sequential_with_gat_is_invariant(name):
    """LieConv + GATConv(edge_dim) + TransformerConv + pooling on one lifted graph: exactly invariant
    (T(3): translations; SE(3): rotations + translations with the frames moved along), error far below
    the output's change under new positions."""
    gen = torch.Generator().manual_seed(4)
    group = group_from_name(name)
    model = amplify_weights(pyg_sequential(group)).to(F64).eval()
    n, k = 16, 2 if name == "SE3" else 1
    pos = torch.randn(n, 3, generator=gen, dtype=F64) * 2
    batch = torch.tensor([0] * 7 + [1] * 9)
    x = torch.randn(n, 4, generator=gen, dtype=F64)
    frames = random_rotations((n, k), 3, generator=gen, dtype=F64) if name == "SE3" else None

    def run(p, f):
        graph = lift_graph(group, p, batch, lift_samples=k, frames=f)
        return model(x[graph.node_index], graph.edge_index, graph.edge_attr, graph.batch)

    base = run(pos, frames)
    shift = torch.randn(3, generator=gen, dtype=F64) * 5
    if name == "SE3":
        rot = random_rotations((), 3, generator=gen, dtype=F64)
        moved = run(pos @ rot.T + shift, rot @ frames)
    else:
        moved = run(pos + shift, None)
    other = run(torch.randn(n, 3, generator=gen, dtype=F64) * 2, frames)
    signal = (other - base).abs().max()
    assert signal > 1e-2
    assert (moved - base).abs().max() < 1e-9 * signal


# ---------------------------------------------------------------------------------------------- Data and transform
def point_clouds(num=5, seed=5):
    gen = torch.Generator().manual_seed(seed)
    return [Data(x=torch.randn(n, 4, generator=gen, dtype=F64), pos=torch.randn(n, 3, generator=gen, dtype=F64) * 2,
                 y=torch.randn(1, generator=gen)) for n in (3, 8, 1, 6, 11)[:num]]


def test_lift_graph_transform_gathers_node_attributes_and_keeps_graph_ones():
    data = point_clouds(2)[1]
    data.z = torch.arange(8)
    data.edge_index = torch.tensor([[0, 1], [1, 0]])  # the input's own edges are replaced
    lifted = LiftGraph("SE3", lift_samples=3)(data)
    assert lifted.num_nodes == 24 and lifted.num_points == 8
    assert torch.equal(lifted.node_index, torch.arange(8).repeat_interleave(3))
    torch.testing.assert_close(lifted.x, data.x[lifted.node_index])
    assert torch.equal(lifted.z, data.z[lifted.node_index])
    torch.testing.assert_close(lifted.y, data.y)
    assert lifted.edge_index.shape[1] == 24 * 24  # all pairs of the one graph
    assert "SE3" in repr(LiftGraph("SE3", 3))


def test_random_lift_is_redrawn_on_every_call():
    data = point_clouds(2)[1]
    transform = LiftGraph("SE3", lift_samples=2)
    a, b = transform(data), transform(data)
    assert not torch.allclose(a.edge_attr, b.edge_attr)
    c, d = LiftGraph("T3")(data), LiftGraph("T3")(data)  # a deterministic lift is the same
    assert torch.equal(c.edge_attr, d.edge_attr)


@pytest.mark.parametrize("name,fill", [("T3", 1.0), ("SO3", 1.0), ("T3", 0.5)])
def test_dataloader_batches_give_the_outputs_of_the_graphs_one_by_one(name, fill):
    torch.manual_seed(0)
    model = amplify_weights(LieResNet(4, 3, name, hidden_channels=16, num_layers=2, mc_samples=1000, fill=fill,
                                pool=True)).to(F64).eval()
    for conv in model.convs:
        conv.radius.fill_(1.5)
    radius = None if fill >= 1 else 1.5
    frames = torch.Generator().manual_seed(9)
    clouds = point_clouds()
    transform = LiftGraph(name, candidate_radius=radius)
    lifted = []
    for data in clouds:  # SO(3) lifts draw a random frame: fix them once, then batch the same graphs
        torch.manual_seed(int(torch.randint(0, 1000, (1,), generator=frames)))
        lifted.append(transform(data))
    one_by_one = torch.cat([model.forward_lifted(g) for g in lifted])
    loader = DataLoader(lifted, batch_size=5)
    (batch,) = list(loader)
    batched = model.forward_lifted(batch)
    torch.testing.assert_close(batched, one_by_one, atol=1e-12, rtol=1e-12)
    # node_index is offset by the input points of the graphs before
    offsets = torch.tensor([0, 3, 11, 12, 18]).repeat_interleave(torch.tensor([g.num_nodes for g in lifted]))
    assert torch.equal(batch.node_index, torch.cat([g.node_index for g in lifted]) + offsets)
    # per-point outputs come back to the batched input points
    per_point = LieResNet(4, 3, name, hidden_channels=16, num_layers=1, fill=1.0, mc_samples=1000, pool=False)
    assert per_point.to(F64).eval().forward_lifted(batch).shape == (29, 3)


def test_batched_node_index_points_to_the_batched_input_points():
    clouds = point_clouds()
    lifted = Batch.from_data_list([LiftGraph("SE3", lift_samples=2)(d) for d in clouds])
    plain = Batch.from_data_list(clouds)
    assert torch.equal(lifted.pos, plain.pos[lifted.node_index])
    assert torch.equal(lifted.batch, plain.batch[lifted.node_index])


def test_qm9_model_on_lifted_graphs_equals_its_point_forward():
    """QM9LieConv.forward_lifted on a LiftGraph-transformed batch == QM9LieConv(z, pos, batch) (T(3))."""
    torch.manual_seed(0)
    model = QM9LieConv("T3", hidden_channels=16, num_layers=2).to(F64).eval()
    gen = torch.Generator().manual_seed(6)
    mols = [Data(z=torch.tensor([6, 1, 1, 8][:n]), pos=torch.randn(n, 3, generator=gen, dtype=F64) * 1.4)
            for n in (4, 2, 3)]
    batch = Batch.from_data_list([LiftGraph("T3")(m) for m in mols])
    plain = Batch.from_data_list(mols)
    torch.testing.assert_close(model.forward_lifted(batch), model(plain.z, plain.pos, plain.batch),
                               atol=1e-12, rtol=1e-12)


# ---------------------------------------------------------------------------------------------- the radius guard
def test_a_ball_needs_the_radius_its_edges_were_built_for():
    group, graph, x = small_graph("SE3", samples=2)
    conv = LieConv(4, 3, group, fill=0.3).to(F64)
    with pytest.raises(ValueError, match="candidate_radius"):
        conv(x, graph.edge_index, graph.edge_attr)
    for needs_none in (LieConv(4, 3, group, fill=1.0), LieConv(4, 3, group, fill=0.3, knn=True)):
        needs_none.to(F64)(x, graph.edge_index, graph.edge_attr)


@pytest.mark.parametrize("name", ["SE3", "SO2"])
def test_a_ball_wider_than_its_graph_is_capped_at_the_graph_radius(name):
    """Ball r = 2 on a graph built for R = 0.5: the layer is the same layer with r = 0.5 on every pair
    (SE(3)/SO(2): the candidates are a strict superset of the ball, so an uncapped ball would take
    more of them), one warning per layer, the fill it reaches recorded."""
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(4)
    pos = torch.randn(14, group.space_dim, generator=gen, dtype=F64) * 1.5
    frames = random_rotations((14, 2), 3, generator=gen, dtype=F64) if name == "SE3" else None
    samples = 2 if name == "SE3" else 1
    narrow = lift_graph(group, pos, lift_samples=samples, candidate_radius=0.5, frames=frames)
    full = lift_graph(group, pos, lift_samples=samples, frames=frames)
    x = torch.randn(full.num_nodes, 4, generator=gen, dtype=F64)
    dist = group.distance(narrow.edge_attr)
    assert bool((dist >= 0.5).any()), "the candidates must reach beyond the ball for the test to bite"
    conv = LieConv(4, 3, group, fill=0.3, mc_samples=1000).to(F64).eval()  # initial radius 2
    reference = LieConv(4, 3, group, fill=0.3, mc_samples=1000).to(F64).eval()
    reference.load_state_dict(conv.state_dict())
    reference.radius.fill_(0.5)
    with pytest.warns(UserWarning, match="capped at 0.5") as record:
        out = conv(x, narrow.edge_index, narrow.edge_attr, candidate_radius=narrow.candidate_radius)
        again = conv(x, narrow.edge_index, narrow.edge_attr, candidate_radius=narrow.candidate_radius)
    assert sum("capped" in str(w.message) for w in record) == 1
    expected = reference(x, full.edge_index, full.edge_attr, candidate_radius=full.candidate_radius)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(again, expected, atol=1e-12, rtol=1e-12)
    assert float(conv.observed_fill) == pytest.approx(float(reference.observed_fill))
    assert float(conv.radius) == 2.0  # eval mode: the radius itself is kept


def test_fixed_radius_graphs_train_with_the_ball_capped():
    """A dataset lifted once at R = 1.5 and a model whose balls start at 2: training runs, the model warns
    once per layer, and the adapted radii stay within R plus one adaptation step."""
    gen = torch.Generator().manual_seed(8)
    graphs = [lift_graph("T3", torch.randn(n, 3, generator=gen) * 2, candidate_radius=1.5) for n in (9, 13, 11)]
    for g in graphs:
        g.x, g.y = torch.randn(g.num_nodes, 4, generator=gen), torch.randn(1, 1, generator=gen)
    model = LieResNet(4, 1, "T3", hidden_channels=8, num_layers=2, fill=0.9, mc_samples=8)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    with pytest.warns(UserWarning, match="capped at 1.5") as record:
        for _ in range(4):
            for data in DataLoader(graphs, batch_size=2):
                loss = (model.forward_lifted(data) - data.y).square().mean()
                optimizer.zero_grad(), loss.backward(), optimizer.step()
    assert sum("capped" in str(w.message) for w in record) == len(model.convs)
    for conv in model.convs:
        assert float(conv.radius) <= 1.5 + conv.radius_step * conv.fill
        assert 0 < float(conv.observed_fill) < 0.9


def test_bad_edge_inputs_raise_clear_errors():
    group, graph, x = small_graph("SE3")
    conv = LieConv(4, 3, group).to(F64)
    with pytest.raises(ValueError, match="edge_attr must hold the SE3"):
        conv(x, graph.edge_index, graph.edge_attr[:, :3])
    with pytest.raises(ValueError, match=r"edge_index must have shape \[2, E\]"):
        conv(x, graph.edge_index.T, graph.edge_attr)
    with pytest.raises(ValueError, match="x must have shape"):
        conv(x[:, :2], graph.edge_index, graph.edge_attr)


# ---------------------------------------------------------------------------------------------- examples
def _example(name):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_qm9_workflow_example_runs_on_a_qm9_root(tmp_path):
    """The example's own code on a QM9 root written in PyG's raw format (PyG's QM9 processes it)."""
    from torch_geometric_lieconv.testing.qm9_fixture import write_qm9_root

    write_qm9_root(str(tmp_path), num_molecules=20)
    mae = _example("qm9_pyg_workflow").main(["--root", str(tmp_path), "--molecules", "20", "--epochs", "1",
                                             "--hidden", "8", "--batch-size", "8"])
    assert mae == mae and 0 < mae < 1e5


# ---------------------------------------------------------------------------------------------- QM9 model
def test_qm9_model_returns_physical_units_with_atomref_and_sum_readout():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(8)
    z = torch.tensor([6, 1, 1, 8, 1, 7, 1, 1, 1])
    pos = torch.randn(9, 3, generator=gen, dtype=F64) * 1.3
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1])
    atomref = torch.randn(100, generator=gen, dtype=F64)
    plain = QM9LieConv("T3", hidden_channels=8, num_layers=1).to(F64).eval()
    scaled = QM9LieConv("T3", hidden_channels=8, num_layers=1, target_mean=-250.0, target_std=40.0, atomref=atomref,
                        readout="add").to(F64).eval()
    scaled.load_state_dict(plain.state_dict() | {"target_mean": scaled.target_mean, "target_std": scaled.target_std,
                                                  "atomref": scaled.atomref})
    h = plain(z, pos, batch)
    assert h.shape == (2, 1)  # one row per molecule, as SchNet
    atoms = torch.tensor([[4.0], [5.0]], dtype=F64)
    reference = atoms * (h * 40.0 - 250.0) + torch.stack([atomref[z[:4]].sum(), atomref[z[4:]].sum()]).unsqueeze(-1)
    torch.testing.assert_close(scaled(z, pos, batch), reference)
    # statistics in meV, outputs in eV: the same values divided by 1000
    in_ev = QM9LieConv("T3", hidden_channels=8, num_layers=1, target_mean=-250.0, target_std=40.0, atomref=atomref,
                       readout="add", target_scale=1000.0).to(F64).eval()
    in_ev.load_state_dict(scaled.state_dict())
    torch.testing.assert_close(in_ev(z, pos, batch), reference / 1000)
    # the lifted-graph path gives the same physical values (2 lift samples per atom for SE(3))
    graphs = Batch.from_data_list([LiftGraph("T3", lift_samples=1)(Data(z=z[:4], pos=pos[:4])),
                                   LiftGraph("T3", lift_samples=1)(Data(z=z[4:], pos=pos[4:]))])
    torch.testing.assert_close(scaled.forward_lifted(graphs), reference)
    with pytest.raises(ValueError, match="readout must be 'mean' or 'add'"):
        QM9LieConv("T3", readout="max")


def test_forces_from_the_qm9_model_sum_to_zero_and_rotate_with_the_molecule():
    """Forces -dE/dpos of a translation invariant energy sum to zero (Noether); with SE(3) and fixed
    frames they rotate with the molecule."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(9)
    model = amplify_weights(QM9LieConv("SE3", hidden_channels=8, num_layers=2, mc_samples=100, lift_samples=2,
                                 target_std=30.0)).to(F64).eval()
    z = torch.tensor([6, 1, 1, 8, 1])
    pos = (torch.randn(5, 3, generator=gen, dtype=F64) * 1.3).requires_grad_(True)
    frames = random_rotations((5, 2), 3, generator=gen, dtype=F64)

    def forces(p, f):
        p = p.detach().requires_grad_(True)
        return -torch.autograd.grad(model(z, p, None, f).sum(), p)[0]

    f = forces(pos, frames)
    assert f.abs().max() > 1e-2
    assert f.sum(0).abs().max() < 1e-10 * f.abs().max()
    rot = random_rotations((), 3, generator=gen, dtype=F64)
    rotated = forces(pos @ rot.T + 1.5, rot @ frames)
    torch.testing.assert_close(rotated, f @ rot.T, atol=1e-9 * float(f.abs().max()), rtol=0)


def test_to_hetero_runs_lieconv_per_edge_type():
    """PyG's ``to_hetero`` on a model with a LieConv: one copy of the layer per edge type, and on a
    single node and edge type it computes what the homogeneous model computes."""
    from torch_geometric.nn import to_hetero

    group, graph, x = small_graph("T3")

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = LieConv(4, 6, group, fill=1.0, mc_samples=100)

        def forward(self, x, edge_index, edge_attr):
            return self.conv(x, edge_index, edge_attr)

    model = Model().to(F64)
    key = ("atom", "near", "atom")
    hetero = to_hetero(model, (["atom"], [key]), aggr="sum").to(F64)
    hetero.load_state_dict({k.replace("conv.", "conv.atom__near__atom.", 1): v
                            for k, v in model.state_dict().items()})
    out = hetero({"atom": x}, {key: graph.edge_index}, {key: graph.edge_attr})["atom"]
    torch.testing.assert_close(out, model(x, graph.edge_index, graph.edge_attr))


def test_compare_runs_example_tables_and_plots_run_histories(tmp_path, capsys):
    runs = []
    for name, errors in (("a", [50.0, 40.0, 30.0]), ("b", [60.0, 20.0])):
        run = tmp_path / name
        run.mkdir()
        lines = ["epoch,train_loss,lr,valid_error,time_s,cpu_s"]
        lines += [f"{e + 1},1.0,0.001,{v},9.0,{2.0 * (e + 1)}" for e, v in enumerate(errors)]
        (run / "metrics.csv").write_text("\n".join(lines) + "\n")
        runs.append(str(run))
    out = tmp_path / "curves.png"
    _example("compare_runs").main(runs + ["--metric", "valid_error", "--out", str(out)])
    table = capsys.readouterr().out
    assert "| a | 4.0 | 50 | 40 | 30 |" in table  # CPU s/epoch is the mean of cpu_s, not time_s
    assert "| b | 3.0 | 60 | 20 |  |" in table
    assert out.stat().st_size > 1000
    with pytest.raises(SystemExit):
        _example("compare_runs").main(runs + ["--metric", "valid_mae"])


# ---------------------------------------------------------------------------------------------- PyG conv conventions
def test_lazy_and_bipartite_in_channels_like_a_pyg_conv():
    group, graph, x = small_graph("SE3", samples=2)
    torch.manual_seed(0)
    eager = LieConv(4, 3, group, fill=1.0, mc_samples=1000).to(F64)
    torch.manual_seed(0)
    lazy = LieConv(-1, 3, group, fill=1.0, mc_samples=1000).to(F64)
    assert "LieConv(-1, 3" in repr(lazy)
    out = lazy(x, graph.edge_index, graph.edge_attr)
    assert lazy.in_channels == 4 and lazy.lin.weight.shape == (3, 4 * lazy.kernel_channels)
    lazy.load_state_dict(eager.state_dict())
    torch.testing.assert_close(lazy(x, graph.edge_index, graph.edge_attr), eager(x, graph.edge_index, graph.edge_attr))
    assert out.shape == (graph.num_nodes, 3)
    # a lazy layer loads a trained state dict before any forward pass
    fresh = LieConv(-1, 3, group, fill=1.0, mc_samples=1000).to(F64)
    fresh.load_state_dict(eager.state_dict())
    torch.testing.assert_close(fresh(x, graph.edge_index, graph.edge_attr), eager(x, graph.edge_index, graph.edge_attr))
    # (source, target) channels: the targets' features are not used
    pair = LieConv((4, 7), 3, group, fill=1.0, mc_samples=1000).to(F64)
    pair.load_state_dict(eager.state_dict())
    torch.testing.assert_close(pair((x, torch.randn(graph.num_nodes, 7, dtype=F64)), graph.edge_index,
                                    graph.edge_attr), eager(x, graph.edge_index, graph.edge_attr))


def test_message_passing_arguments_pass_through_or_raise_clearly():
    group, graph, x = small_graph("T3")
    conv = LieConv(4, 3, group, fill=1.0, mc_samples=1000).to(F64)
    flipped = LieConv(4, 3, group, fill=1.0, mc_samples=1000, flow="target_to_source", node_dim=0).to(F64)
    flipped.load_state_dict(conv.state_dict())
    assert flipped.flow == "target_to_source"
    torch.testing.assert_close(flipped(x, graph.edge_index.flip(0), graph.edge_attr),
                               conv(x, graph.edge_index, graph.edge_attr), atol=1e-12, rtol=1e-12)
    with pytest.raises(ValueError, match="'aggr' cannot be set"):
        LieConv(4, 3, group, aggr="max")
    with pytest.raises(ValueError, match="node_dim"):
        LieConv(4, 3, group, node_dim=1)
    with pytest.raises(ValueError, match="decomposed_layers"):
        LieConv(4, 3, group, decomposed_layers=2)
    with pytest.raises(ValueError, match="flow"):
        LieConv(4, 3, group, flow="sideways")


def test_size_is_the_fourth_argument_and_batch_a_keyword():
    group, graph, x = small_graph("T3")
    conv = LieConv(4, 3, group, fill=1.0, mc_samples=1000).to(F64)
    n = graph.num_nodes
    torch.testing.assert_close(conv(x, graph.edge_index, graph.edge_attr, (n, n)),
                               conv(x, graph.edge_index, graph.edge_attr))
    with pytest.raises(TypeError, match="batch="):
        conv(x, graph.edge_index, graph.edge_attr, torch.zeros(n, dtype=torch.long))
