"""conv.py branches the other tests leave out, each stated as a fact about the layer.

* :class:`MaskedBatchNorm1d` without running statistics normalises by the masked rows' own statistics
  (training and eval alike), against the formula computed here;
* bad constructor arguments (``mc_samples``, ``chunk_size``) are refused with a message naming them;
* chunked evaluation without autograd (``torch.no_grad``) is the unchunked layer;
* an explainer switched on without an edge mask is refused by name;
* the ``"scatter"`` aggregation's custom backward gives the ``"bmm"`` gradients when only the features
  or only the kernel need a gradient (its two gated halves).
"""
import pytest
import torch

from torch_geometric_lieconv import group_from_name, lift_points
from torch_geometric_lieconv.conv import LieConv, MaskedBatchNorm1d
from torch_geometric_lieconv.graph import build_pair_graph

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64


def small_graph(name="SE2", sizes=(4, 7, 5), channels=3, seed=0):
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(seed)
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    pos = torch.randn(len(batch), group.space_dim, generator=gen, dtype=F64) + 0.3
    lifted = lift_points(group, pos, batch, 2, generator=gen)
    graph = build_pair_graph(group, lifted)
    x = torch.randn(lifted.num_nodes, channels, generator=gen, dtype=F64)
    return group, graph, x


# ---------------------------------------------------------------------------------------------- batch norm
@pytest.mark.parametrize("training", [True, False])
def test_masked_batch_norm_without_running_stats_uses_the_masked_rows_statistics(training):
    """track_running_stats=False: every call (train or eval) normalises by the mean and biased variance of
    the rows inside the mask, then applies the affine weight and bias (the formula, written out here)."""
    gen = torch.Generator().manual_seed(3)
    bn = MaskedBatchNorm1d(4, track_running_stats=False).double().train(training)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(4, generator=gen, dtype=F64))
        bn.bias.copy_(torch.randn(4, generator=gen, dtype=F64))
    x = torch.randn(11, 4, generator=gen, dtype=F64) * 3 + 1
    mask = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1], dtype=torch.bool)
    x[~mask] = 1e3  # padding rows: far off, they must not move the statistics
    out = bn(x, mask)
    rows = x[mask]
    mean = rows.mean(0)
    var = ((rows - mean) ** 2).mean(0)
    expected = (rows - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(out[mask], expected, atol=1e-12, rtol=1e-12)
    assert bn.running_mean is None and bn.running_var is None


# ---------------------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("kwargs,message", [
    (dict(mc_samples=0), "mc_samples must be >= 1, got 0"),
    (dict(chunk_size=0), "chunk_size must be None or >= 1, got 0"),
])
def test_bad_sampling_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LieConv(3, 2, "SE2", **kwargs)


# ---------------------------------------------------------------------------------------------- chunks
@pytest.mark.parametrize("fill", [1.0, 0.5])
def test_chunked_layer_without_autograd_equals_the_unchunked_layer(fill):
    """Under torch.no_grad the chunks are evaluated directly (no checkpointing): blocks of 5 targets (the
    last one partial) concatenate to the all-targets output, with the same neighbourhood draws."""
    group, graph, x = small_graph()
    whole = LieConv(3, 4, group, mc_samples=6, fill=fill).to(F64).eval()
    whole.radius.fill_(1.0)
    chunked = LieConv(3, 4, group, mc_samples=6, fill=fill, chunk_size=5).to(F64).eval()
    chunked.load_state_dict(whole.state_dict())
    assert graph.num_nodes % 5 != 0
    kwargs = dict(batch=graph.batch, candidate_radius=graph.candidate_radius)
    with torch.no_grad():
        torch.manual_seed(4)
        expected = whole(x, graph.edge_index, graph.edge_attr, **kwargs)
        torch.manual_seed(4)
        out = chunked(x, graph.edge_index, graph.edge_attr, **kwargs)
    assert not out.requires_grad
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)


# ---------------------------------------------------------------------------------------------- explain
def test_explain_without_an_edge_mask_is_refused_by_name():
    """An explainer's message scaling with selected edges (a ball) but no mask set: a ValueError naming
    the missing mask, not an AttributeError from inside."""
    group, graph, x = small_graph()
    conv = LieConv(3, 2, group, mc_samples=4, fill=0.5).to(F64).eval()
    conv.explain = True
    try:
        with pytest.raises(ValueError, match="no edge mask to explain"):
            conv(x, graph.edge_index, graph.edge_attr, batch=graph.batch, candidate_radius=graph.candidate_radius)
    finally:
        conv.explain = False


# ---------------------------------------------------------------------------------------------- scatter backward
def _grads(conv, x, graph, wrt):
    torch.manual_seed(2)
    out = conv(x, graph.edge_index, graph.edge_attr, batch=graph.batch, candidate_radius=graph.candidate_radius)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    return out, torch.autograd.grad((out * probe).sum(), wrt)


@pytest.mark.parametrize("needs", ["features only", "kernel only"])
def test_scatter_backward_with_one_input_needing_a_gradient_equals_bmm(needs):
    """The scatter aggregation computes the gradient of the features and of the kernel values only
    where autograd asks for it; each alone equals the bmm aggregation's gradient."""
    group, graph, x = small_graph("SE3", sizes=(6, 3, 8))
    bmm = LieConv(3, 4, group, mc_samples=5, fill=1.0, aggregation="bmm").to(F64).eval()
    scatter = LieConv(3, 4, group, mc_samples=5, fill=1.0, aggregation="scatter").to(F64).eval()
    scatter.load_state_dict(bmm.state_dict())
    results = []
    for conv in (bmm, scatter):
        if needs == "features only":
            conv.kernel.requires_grad_(False)
            xin = x.clone().requires_grad_(True)
            wrt = [xin]
        else:
            xin = x.clone()
            wrt = list(conv.kernel.parameters())
        results.append(_grads(conv, xin, graph, wrt))
    (out_b, grads_b), (out_s, grads_s) = results
    torch.testing.assert_close(out_s, out_b, atol=1e-12, rtol=1e-12)
    for gs, gb in zip(grads_s, grads_b):
        assert gb.abs().max() > 0
        torch.testing.assert_close(gs, gb, atol=1e-12, rtol=1e-10)
