"""The neighbourhood contraction :math:`P_i = \\frac{1}{|N_i|}\\sum_j W_{ij} \\otimes f_j`, each fact against
a reference written out here.

* ``LieConv.aggregate`` with either aggregation equals an explicit per-target sum over each target's own
  edges, forward and backward in float64, at ragged rows (an empty row, a full row) padded to the widest,
  with the edges placed by their flat positions or given as full rows; without edges it is zero;
* the two aggregations agree through the whole layer on a batch of graphs of different sizes (ball
  selection, so padded rows);
* ``WeightedSegmentSum`` (``"scatter"``) passes gradcheck and gradgradcheck in float64 with padding slots;
* under CPU autocast the batched matmul runs in bfloat16 exactly where
  :data:`~torch_geometric_lieconv._contraction.CPU_BFLOAT16_BMM` says so (float32 otherwise, float64
  kept), that answer follows the CPU's AMX-BF16 capability and the kernel's permission, and a compiled
  layer under autocast reads it without a graph break.
"""
import pytest
import torch
from torch.overrides import TorchFunctionMode

from torch_geometric_lieconv import _contraction, group_from_name, lift_points
from torch_geometric_lieconv._contraction import WeightedSegmentSum, cpu_autocast_bmm_dtype
from torch_geometric_lieconv.conv import LieConv
from torch_geometric_lieconv.graph import build_pair_graph

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64
AGGREGATIONS = ["bmm", "scatter"]


def ragged_rows(counts, width, num_sources, c_m, c_in, seed=0):
    """Edges of targets with ``counts`` valid slots each, in target order: ``(x, w, source, position, valid)``."""
    gen = torch.Generator().manual_seed(seed)
    counts = torch.tensor(counts)
    valid = torch.arange(width) < counts.view(-1, 1)
    position = valid.flatten().nonzero().squeeze(1)
    source = torch.randint(0, num_sources, (position.numel(),), generator=gen)
    x = torch.randn(num_sources, c_in, generator=gen, dtype=F64)
    w = torch.randn(position.numel(), c_m, generator=gen, dtype=F64)
    return x, w, source, position, valid


def reference(x, w, source, position, width, num_targets, mean):
    """P_t, flattened (c_m, c_in), summed edge by edge over each target's own edges."""
    target = torch.div(position, width, rounding_mode="floor")
    rows = []
    for t in range(num_targets):
        mine = (target == t).nonzero().squeeze(1)
        p = torch.einsum("em,ec->mc", w[mine], x[source[mine]])
        rows.append((p / max(len(mine), 1) if mean else p).flatten())
    return torch.stack(rows)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("layout", ["positions", "full rows"])
@pytest.mark.parametrize("mean", [True, False])
def test_aggregate_equals_the_per_target_sum_forward_and_backward(aggregation, layout, mean):
    """Ragged rows [4, 0, 2, 1, 3] of width 4 (or full rows, position None); padding slots point at
    source 0 and must weigh nothing, in the output and in the gradients of x and w."""
    counts = [4, 0, 2, 1, 3] if layout == "positions" else [4, 4, 4]
    c_m, c_in, width = 3, 5, 4
    x, w, source, position, valid = ragged_rows(counts, width, 6, c_m, c_in)
    conv = LieConv(c_in, 2, "T2", kernel_channels=c_m, aggregation=aggregation, mean=mean).to(F64)
    norm = 1.0 / valid.sum(1, dtype=F64).clamp(min=1) if mean else None
    x.requires_grad_(True)
    w.requires_grad_(True)
    out = conv.aggregate(w, x, source, position if layout == "positions" else None, valid, norm)
    expected = reference(x, w, source, position, width, len(counts), mean)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(5), dtype=F64)
    grads = torch.autograd.grad((out * probe).sum(), (x, w))
    expected_grads = torch.autograd.grad((expected * probe).sum(), (x, w))
    for got, want in zip(grads, expected_grads):
        assert want.abs().max() > 0
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_aggregate_without_edges_is_zero_per_target(aggregation):
    """No selected edge (every row empty): P is zero for every target, [T, c_m c_in]."""
    x, w, source, position, valid = ragged_rows([0, 0, 0], 4, 6, 3, 5)
    conv = LieConv(5, 2, "T2", kernel_channels=3, aggregation=aggregation).to(F64)
    out = conv.aggregate(w, x, source, position, valid, torch.ones(3, dtype=F64))
    assert torch.equal(out, torch.zeros(3, 15, dtype=F64))


def test_the_aggregations_agree_through_the_layer_on_ragged_padded_graphs():
    """Graphs of 3, 9 and 5 lifted points with a ball (fill 1/2) and 6 samples: padded rows of ragged
    valid counts; bmm and scatter give the same outputs and gradients (features and kernel)."""
    group = group_from_name("SE2")
    gen = torch.Generator().manual_seed(4)
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate((3, 9, 5))])
    pos = torch.randn(len(batch), 2, generator=gen, dtype=F64)
    lifted = lift_points(group, pos, batch, 2, generator=gen)
    graph = build_pair_graph(group, lifted)
    x = torch.randn(lifted.num_nodes, 3, generator=gen, dtype=F64)
    results = []
    for aggregation in AGGREGATIONS:
        torch.manual_seed(0)
        conv = LieConv(3, 4, group, mc_samples=6, fill=0.5, aggregation=aggregation).to(F64).eval()
        xin = x.clone().requires_grad_(True)
        torch.manual_seed(1)  # the same random neighbourhoods
        out = conv(xin, graph.edge_index, graph.edge_attr, batch=graph.batch,
                   candidate_radius=graph.candidate_radius)
        probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=F64)
        results.append((out, torch.autograd.grad((out * probe).sum(), [xin, *conv.kernel.parameters()])))
    assert 0 < float(conv.observed_fill) < 1  # the ball cut the rows: ragged valid counts
    (out_b, grads_b), (out_s, grads_s) = results
    torch.testing.assert_close(out_s, out_b, atol=1e-12, rtol=1e-12)
    for gs, gb in zip(grads_s, grads_b):
        torch.testing.assert_close(gs, gb, atol=1e-12, rtol=1e-10)


def test_weighted_segment_sum_passes_gradcheck_and_gradgradcheck():
    """Twice differentiable (the Hamiltonian models differentiate through the layer), with padding slots
    (weight 0, source 0) in two of three rows."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(5, 3, generator=gen, dtype=F64, requires_grad=True)
    valid = torch.tensor([[True, True, True], [True, False, False], [True, True, False]])
    source = torch.randint(0, 5, (3, 3), generator=gen) * valid
    w = (torch.randn(3, 3, 2, generator=gen, dtype=F64) * valid.unsqueeze(-1)).requires_grad_(True)
    fn = lambda x, w: WeightedSegmentSum.apply(x, source, w)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w))
    assert torch.autograd.gradgradcheck(fn, (x, w))


# ---------------------------------------------------------------------------------------------- CPU bfloat16
@pytest.fixture
def capability(monkeypatch):
    """Set what torch reports: ``capability(amx_bf16, permitted)``; ``amx_bf16=None``: an older torch
    without ``torch.cpu.get_capabilities``."""

    def set_to(amx_bf16, permitted=True):
        if amx_bf16 is None:
            monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
        else:
            monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": amx_bf16})
        monkeypatch.setattr(torch._C._cpu, "_init_amx", lambda: permitted, raising=False)
        return _contraction.cpu_bfloat16_bmm_is_faster()

    return set_to


@pytest.mark.parametrize("amx_bf16,permitted,expected", [
    (True, True, True), (True, False, False), (False, True, False), (None, True, False),
])
def test_bfloat16_bmm_is_chosen_only_on_cpus_with_usable_amx(capability, amx_bf16, permitted, expected):
    """AMX-BF16 that the kernel lets the process use: bfloat16; no AMX, AMX refused, or a torch that cannot
    tell (no get_capabilities): float32, as measured on CPUs without AMX."""
    assert capability(amx_bf16, permitted) is expected


@pytest.mark.parametrize("faster", [True, False])
def test_autocast_bmm_dtype_follows_the_cpu(monkeypatch, faster):
    """Under bfloat16 autocast: bfloat16 for float32/bfloat16 features where it is faster, float32 where not;
    float64 features stay float64; float16 autocast computes in float32."""
    monkeypatch.setattr(_contraction, "CPU_BFLOAT16_BMM", faster)
    low = torch.bfloat16 if faster else torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cpu_autocast_bmm_dtype(torch.float32) == low
        assert cpu_autocast_bmm_dtype(torch.bfloat16) == low
        assert cpu_autocast_bmm_dtype(F64) == F64
    with torch.autocast("cpu", dtype=torch.float16):
        assert cpu_autocast_bmm_dtype(torch.float32) == torch.float32


class BmmDtypes(TorchFunctionMode):
    """Records the dtypes of every torch.bmm call."""

    def __init__(self):
        super().__init__()
        self.dtypes = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.bmm:
            self.dtypes.append((args[0].dtype, args[1].dtype))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("faster", [True, False])
def test_the_layer_runs_its_bmm_in_the_dtype_the_cpu_is_faster_in(monkeypatch, faster):
    """A LieConv under bfloat16 autocast: its one bmm takes bfloat16 operands where the CPU multiplies
    bfloat16 faster and float32 ones elsewhere; the output is the same layer's float32 output to
    bfloat16 accuracy either way."""
    monkeypatch.setattr(_contraction, "CPU_BFLOAT16_BMM", faster)
    group = group_from_name("T2")
    gen = torch.Generator().manual_seed(0)
    pos = torch.randn(12, 2, generator=gen)
    graph = build_pair_graph(group, lift_points(group, pos))
    x = torch.randn(12, 8, generator=gen)
    conv = LieConv(8, 6, group, mc_samples=12, fill=1.0).eval()
    mode = BmmDtypes()
    with torch.no_grad():
        full = conv(x, graph.edge_index, graph.edge_attr)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), mode:
        half = conv(x, graph.edge_index, graph.edge_attr)
    work = torch.bfloat16 if faster else torch.float32
    assert mode.dtypes == [(work, work)]
    assert float((half.float() - full).norm() / full.norm()) < 3e-2


def test_a_compiled_layer_under_autocast_has_no_graph_break_from_the_cpu_probe():
    """The CPU's answer is a constant read by the traced forward: torch._dynamo captures the layer under
    bfloat16 autocast in one graph (a probe traced inside the forward broke it at every call)."""
    import torch._dynamo

    group = group_from_name("T3")
    pos = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    graph = build_pair_graph(group, lift_points(group, pos))
    conv = LieConv(8, 6, group, mc_samples=100, fill=1.0).eval()

    def forward(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return conv(x, graph.edge_index, graph.edge_attr, table=graph.table)

    explanation = torch._dynamo.explain(forward)(torch.randn(10, 8))
    torch._dynamo.reset()
    assert explanation.graph_break_count == 0, [str(r.reason)[:200] for r in explanation.break_reasons]
