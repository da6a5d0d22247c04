"""The optimised code paths of LieConv agree with the plain ones (correctness only, no timings).

Paths: the two aggregations ("bmm" and "scatter"), the unpadded kernel evaluation when every
candidate is selected vs the padded one with masked BatchNorm, chunked (checkpointed) evaluation,
autocast (bfloat16 on CPU) vs float32 with the group math kept in float32, and torch.compile.
"""
import pytest
import torch
import torch._dynamo

from torch_geometric_lieconv.testing import amplify_weights

from torch_geometric_lieconv import group_from_name, lift_points
from torch_geometric_lieconv.conv import LieConv, MaskedBatchNorm1d
from torch_geometric_lieconv.graph import build_pair_graph, select_slots
from torch_geometric_lieconv.models import LieResNet


def molecule_graph(group_name="T3", sizes=(5, 12, 1, 9), lift_samples=1, seed=0, radius=None, dtype=torch.float64):
    group = group_from_name(group_name)
    gen = torch.Generator().manual_seed(seed)
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    pos = (torch.randn(len(batch), group.space_dim, generator=gen, dtype=torch.float64) * 1.5).to(dtype)
    lifted = lift_points(group, pos, batch, lift_samples, generator=gen)
    return group, build_pair_graph(group, lifted, candidate_radius=radius), pos, batch


def twin(conv: LieConv, **changes) -> LieConv:
    """A copy of ``conv`` (same weights and buffers, same mode) with some constructor arguments changed."""
    kwargs = dict(mc_samples=conv.mc_samples, fill=conv.fill, knn=conv.knn, mean=conv.mean,
                  kernel_channels=conv.kernel_channels, aggregation=conv.aggregation, chunk_size=conv.chunk_size,
                  kernel_batch_norm=any(isinstance(m, torch.nn.BatchNorm1d) for m in conv.kernel))
    kwargs.update(changes)
    other = LieConv(conv.in_channels, conv.out_channels, conv.group, **kwargs).to(conv.lin.weight.dtype)
    other.load_state_dict(conv.state_dict())
    return other.train(conv.training)


def output_and_grads(conv: LieConv, x: torch.Tensor, graph, seed: int = 0, **kwargs):
    """Output, and gradients of a fixed random loss w.r.t. x and every parameter (same neighbourhood draws via the seed)."""
    x = x.detach().clone().requires_grad_(True)
    torch.manual_seed(seed)
    kwargs.setdefault("candidate_radius", graph.candidate_radius)
    out = conv(x, graph.edge_index, graph.edge_attr, batch=graph.batch, **kwargs)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    grads = torch.autograd.grad((out * probe).sum(), [x] + list(conv.parameters()))
    return out, grads


def assert_same(a, b, atol, rtol):
    out_a, grads_a = a
    out_b, grads_b = b
    torch.testing.assert_close(out_a, out_b, atol=atol, rtol=rtol)
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(ga, gb, atol=atol, rtol=rtol)


# ---------------------------------------------------------------------------------------------- aggregation
@pytest.mark.parametrize("setting", [
    dict(group="T3", mc_samples=100, fill=1.0),  # every candidate: unpadded kernel rows
    dict(group="SE3", mc_samples=6, fill=0.5, lift=2),  # ball + random subset: padded rows, masked BatchNorm
    dict(group="SO3", mc_samples=5, knn=True, lift=2),  # k nearest
])
def test_bmm_and_scatter_aggregations_agree_with_gradients(setting):
    setting = dict(setting)
    group, graph, _, _ = molecule_graph(setting.pop("group"), lift_samples=setting.pop("lift", 1))
    conv = LieConv(7, 5, group, kernel_batch_norm=True, aggregation="bmm", **setting).to(torch.float64).train()
    x = torch.randn(graph.num_nodes, 7, dtype=torch.float64)
    scatter = twin(conv, aggregation="scatter")
    assert_same(output_and_grads(conv, x, graph), output_and_grads(scatter, x, graph), atol=1e-10, rtol=1e-10)
    # restricted targets (the path of equivariant subsampling)
    targets = torch.arange(0, graph.num_nodes, 3)
    rows = graph.table.rows(targets)
    assert_same(output_and_grads(conv, x, graph, table=rows),
                output_and_grads(scatter, x, graph, table=rows), atol=1e-10, rtol=1e-10)


def test_scatter_aggregation_is_twice_differentiable_like_bmm():
    """The custom backward of the segment sum is itself differentiable (the dynamics models need d2/dx2)."""
    group, graph, _, _ = molecule_graph("T2", sizes=(6, 4))
    conv = LieConv(3, 2, group, mc_samples=100, fill=1.0).to(torch.float64)
    scatter = twin(conv, aggregation="scatter")
    x = torch.randn(graph.num_nodes, 3, dtype=torch.float64)

    def second_order(module):
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(module(xg, graph.edge_index, graph.edge_attr, batch=graph.batch).square().sum(), xg, create_graph=True)
        return torch.autograd.grad(g.sin().sum(), [xg, module.lin.weight])

    for a, b in zip(second_order(conv), second_order(scatter)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
    assert torch.autograd.gradcheck(lambda xx: scatter(xx, graph.edge_index, graph.edge_attr, batch=graph.batch), (x.clone().requires_grad_(True),))


def test_every_edge_path_equals_the_selected_subset_path():
    """fill=1, every candidate: the layer propagates over the input edges as they are; a table of the same
    rows that is not marked complete forces the general path (the selected edges gathered into a new
    edge list, kernel BatchNorm over exactly them). Same outputs, gradients and running statistics."""
    group, graph, _, _ = molecule_graph("T3", sizes=(3, 17, 1, 8))
    assert bool((~graph.slot_mask).any())  # there is padding to ignore
    conv = LieConv(6, 4, group, mc_samples=100, fill=1.0, kernel_batch_norm=True).to(torch.float64).train()
    general = twin(conv)
    x = torch.randn(graph.num_nodes, 6, dtype=torch.float64)
    every = graph.table.rows(torch.arange(graph.num_nodes))
    assert not every.complete
    assert_same(output_and_grads(conv, x, graph), output_and_grads(general, x, graph, table=every),
                atol=1e-10, rtol=1e-10)
    for name, buffer in conv.kernel.state_dict().items():
        torch.testing.assert_close(buffer, general.kernel.state_dict()[name], atol=1e-12, rtol=1e-12)


def test_masked_batchnorm_equals_batchnorm_on_the_valid_rows():
    torch.manual_seed(0)
    x = torch.randn(40, 5, dtype=torch.float64) * 3 + 1
    mask = torch.rand(40) < 0.6
    x[~mask] = 1e6  # padding rows with wild values must not leak into the statistics
    masked = MaskedBatchNorm1d(5).double().train()
    plain = torch.nn.BatchNorm1d(5).double().train()
    with torch.no_grad():
        masked.weight.uniform_(0.5, 2), masked.bias.uniform_(-1, 1)
    plain.load_state_dict(masked.state_dict())
    xm = x.clone().requires_grad_(True)
    xp = x[mask].clone().requires_grad_(True)
    out_m, out_p = masked(xm, mask), plain(xp)
    torch.testing.assert_close(out_m[mask], out_p, atol=1e-10, rtol=1e-10)
    probe = torch.randn(out_p.shape, dtype=torch.float64)
    (out_m[mask] * probe).sum().backward()
    (out_p * probe).sum().backward()
    torch.testing.assert_close(xm.grad[mask], xp.grad, atol=1e-10, rtol=1e-10)
    assert float(xm.grad[~mask].abs().max()) == 0.0
    torch.testing.assert_close(masked.weight.grad, plain.weight.grad, atol=1e-10, rtol=1e-10)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(masked, name), getattr(plain, name), atol=1e-12, rtol=1e-12)
    # eval mode uses the running statistics row by row, so the mask is irrelevant
    masked.eval(), plain.eval()
    torch.testing.assert_close(masked(x, mask)[mask], plain(x[mask]))


def test_random_neighbourhood_is_a_uniform_subset_of_the_ball():
    """Each of the 10 points in the ball is drawn with probability mc/10; the 2 outside never."""
    dist = torch.tensor([0.1, 0.5, 0.2, 0.9, 0.3, 0.4, 0.8, 0.7, 0.6, 0.05, 1.5, 2.0])
    slots = torch.arange(12).unsqueeze(0)
    mask = torch.ones(1, 12, dtype=torch.bool)
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(12)
    draws = 3000
    for _ in range(draws):
        edges, valid, fill = select_slots(slots, mask, dist, torch.tensor([12]), torch.tensor(1.0), 3, generator=gen)
        counts.index_add_(0, edges[valid], torch.ones(int(valid.sum())))
        assert int(valid.sum()) == 3
    freq = counts / draws
    sigma = (0.3 * 0.7 / draws) ** 0.5
    assert bool(((freq[:10] - 0.3).abs() < 5 * sigma).all()), freq
    assert float(freq[10:].sum()) == 0.0
    torch.testing.assert_close(fill, torch.tensor(10 / 12))


# ---------------------------------------------------------------------------------------------- chunking
@pytest.mark.parametrize("aggregation", ["bmm", "scatter"])
def test_chunked_layer_equals_unchunked(aggregation):
    group = group_from_name("T3")
    gen = torch.Generator().manual_seed(0)
    pos = torch.rand(600, 3, generator=gen, dtype=torch.float64) * 600 ** (1 / 3)
    graph = build_pair_graph(group, lift_points(group, pos), candidate_radius=1.6)
    conv = LieConv(5, 4, group, mc_samples=8, fill=0.1, aggregation=aggregation).to(torch.float64).eval()
    conv.radius.fill_(1.6)
    chunked = twin(conv, chunk_size=97)
    x = torch.randn(600, 5, dtype=torch.float64)
    assert_same(output_and_grads(conv, x, graph), output_and_grads(chunked, x, graph), atol=1e-10, rtol=1e-10)


def test_chunking_refuses_batchnorm_statistics():
    group, graph, _, _ = molecule_graph("T3", dtype=torch.float32)
    conv = LieConv(4, 4, group, mc_samples=100, fill=1.0, kernel_batch_norm=True, chunk_size=5).train()
    with pytest.raises(ValueError, match="chunk_size"):
        conv(torch.randn(graph.num_nodes, 4), graph.edge_index, graph.edge_attr, batch=graph.batch)
    conv.eval()
    assert torch.isfinite(conv(torch.randn(graph.num_nodes, 4), graph.edge_index, graph.edge_attr, batch=graph.batch)).all()


# ---------------------------------------------------------------------------------------------- autocast
@pytest.mark.parametrize("name", ["T3", "SE3"])
def test_group_math_stays_in_float32_under_autocast(name):
    group, _, pos, batch = molecule_graph(name, lift_samples=2, dtype=torch.float32)
    frames = None
    if group.frame_dim:
        from torch_geometric_lieconv.groups import random_rotations

        frames = random_rotations((pos.shape[0], 2), 3)
    plain = build_pair_graph(group, lift_points(group, pos, batch, 2, frames))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = build_pair_graph(group, lift_points(group, pos, batch, 2, frames))
    assert amp.edge_attr.dtype == torch.float32 and amp.dist.dtype == torch.float32
    assert torch.equal(amp.edge_attr, plain.edge_attr) and torch.equal(amp.dist, plain.dist)


def test_bfloat16_autocast_model_matches_float32():
    """bf16 keeps 8 mantissa bits (relative rounding 2^-9 per operation): under CPU autocast the model's
    output stays within 20% of its geometric signal (the change of its float32 output when the points
    move), and the bf16 path really ran (it differs). A bf16 path that lost the geometry (e.g. zeroed
    kernel input) is off by about the whole signal."""
    torch.manual_seed(0)
    model = amplify_weights(LieResNet(4, 3, "T3", hidden_channels=32, num_layers=2, mc_samples=100, fill=1.0), 2.0).eval()
    _, _, pos, batch = molecule_graph("T3", sizes=(7, 11, 4), dtype=torch.float32)
    x = torch.randn(pos.shape[0], 4)
    with torch.no_grad():
        ref = model(x, pos, batch)
        moved = model(x, pos + 0.5 * torch.randn(pos.shape, generator=torch.Generator().manual_seed(1)), batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x, pos, batch)
    signal = float((moved - ref).abs().max())
    error = float((low.float() - ref).abs().max())
    assert signal > 1e-2
    assert error < 0.2 * signal  # measured: 0.04
    assert error > 1e-6 * signal
    # and it trains: gradients flow and are finite
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, pos, batch)
    out.float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ---------------------------------------------------------------------------------------------- torch.compile
def test_layer_traces_in_one_graph_when_every_edge_is_used():
    """fill=1 with a shared neighbour table (the models' path): torch._dynamo captures propagate, kernel
    BatchNorm and aggregation in one graph, with no break."""
    group, graph, _, _ = molecule_graph("T3", dtype=torch.float32)
    conv = LieConv(6, 5, group, mc_samples=100, fill=1.0, kernel_batch_norm=True).train()
    x = torch.randn(graph.num_nodes, 6)
    explanation = torch._dynamo.explain(twin(conv))(x, graph.edge_index, graph.edge_attr, table=graph.table,
                                                       candidate_radius=graph.candidate_radius_tensor)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    torch._dynamo.reset()


def test_ball_layer_breaks_only_at_the_selected_edge_count_and_compiled_graph_matches():
    """Ball + random subset: the one data-dependent shape is the number of selected edges (a single
    ``nonzero``); the traced graphs (aot_eager: forward and backward, no inductor) match eager."""
    group, graph, _, _ = molecule_graph("SE3", lift_samples=2, dtype=torch.float32)
    conv = LieConv(6, 5, group, mc_samples=6, fill=0.5, kernel_batch_norm=True).train()
    x = torch.randn(graph.num_nodes, 6)
    explanation = torch._dynamo.explain(twin(conv))(x, graph.edge_index, graph.edge_attr, table=graph.table,
                                                       candidate_radius=graph.candidate_radius_tensor)
    assert explanation.graph_break_count >= 1
    for reason in explanation.break_reasons:
        assert "nonzero" in str(reason.reason)
    torch._dynamo.reset()
    traced = twin(conv)
    compiled = torch.compile(traced, backend="aot_eager")
    assert_same(output_and_grads(conv, x, graph), output_and_grads(compiled, x, graph), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(traced.radius, conv.radius)  # the in-place radius adaptation ran once in each
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.parametrize("aggregation", ["bmm", "scatter"])
def test_inductor_compiled_layer_matches_eager(aggregation):
    group, graph, _, _ = molecule_graph("T3", sizes=(9, 14, 3), dtype=torch.float32)
    conv = LieConv(8, 6, group, mc_samples=100, fill=1.0, kernel_batch_norm=True, aggregation=aggregation).train()
    x = torch.randn(graph.num_nodes, 8)
    torch._dynamo.reset()
    compiled = torch.compile(twin(conv))
    assert_same(output_and_grads(conv, x, graph), output_and_grads(compiled, x, graph), atol=1e-4, rtol=1e-4)
    torch._dynamo.reset()
