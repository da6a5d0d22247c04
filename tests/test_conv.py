"""LieConv layer: agreement with the dense reference, neighbourhoods, radius adaptation, PyG conventions."""
import io

import pytest
import torch

from torch_geometric_lieconv.testing.dense_reference import dense_lieconv
from torch_geometric_lieconv import group_from_name, lift_points
from torch_geometric_lieconv.conv import LieConv
from torch_geometric_lieconv.graph import all_pairs_within_graphs, build_pair_graph

GROUPS = ["T3", "SE3", "SO3", "Trivial3", "T2", "SO2", "RxSO2", "SE2", "Rx", "Tx"]


def random_batch(group, sizes, channels=6, dtype=torch.float32, lift_samples=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    pos = torch.randn(sum(sizes), group.space_dim, generator=gen, dtype=dtype) * 2 + 0.5
    lifted = lift_points(group, pos, batch, lift_samples, generator=gen)
    x = torch.randn(lifted.num_nodes, channels, generator=gen, dtype=dtype)
    return x, lifted


@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_sparse_layer_equals_dense_reference(name, dtype, atol):
    group = group_from_name(name)
    conv = LieConv(6, 5, group, mc_samples=1000, fill=1.0).to(dtype)
    x, lifted = random_batch(group, [3, 7, 1, 5], dtype=dtype)
    graph = build_pair_graph(group, lifted)
    out = conv(x, graph.edge_index, graph.edge_attr, batch=graph.batch, candidate_radius=graph.candidate_radius)
    ref = dense_lieconv(conv, x, lifted.u, lifted.q, lifted.batch, None)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=atol, rtol=atol)


@pytest.mark.parametrize("name", ["T3", "SE3", "SO2", "SO3", "RxSO2"])
def test_ball_neighbourhood_equals_dense_reference(name):
    """fill < 1: candidates from the radius bound, then the ball d < r; the dense reference masks all pairs."""
    group = group_from_name(name)
    conv = LieConv(6, 4, group, mc_samples=1000, fill=0.3).to(torch.float64).eval()
    conv.radius.fill_(1.5)
    x, lifted = random_batch(group, [12, 9, 20], dtype=torch.float64)
    graph = build_pair_graph(group, lifted, candidate_radius=1.5)
    out = conv(x, graph.edge_index, graph.edge_attr, batch=graph.batch, candidate_radius=graph.candidate_radius)
    ref = dense_lieconv(conv, x, lifted.u, lifted.q, lifted.batch, 1.5)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-10)
    # and the bounded candidate graph is really sparser than all pairs here
    if group.euclidean_radius(1.5, 10.0) is not None and name in ("T3", "SE3"):
        assert graph.edge_index.shape[1] < all_pairs_within_graphs(lifted.batch).shape[1]


def test_bmm_and_scatter_aggregation_agree():
    group = group_from_name("SE3")
    x, lifted = random_batch(group, [4, 11, 6])
    graph = build_pair_graph(group, lifted)
    bmm = LieConv(6, 5, group, mc_samples=1000, fill=1.0, aggregation="bmm")
    scatter = LieConv(6, 5, group, mc_samples=1000, fill=1.0, aggregation="scatter")
    scatter.load_state_dict(bmm.state_dict())
    torch.testing.assert_close(bmm(x, graph.edge_index, graph.edge_attr, batch=graph.batch), scatter(x, graph.edge_index, graph.edge_attr, batch=graph.batch), atol=1e-5, rtol=1e-5)


def test_mc_sampling_draws_at_most_mc_samples_inside_the_ball():
    group = group_from_name("T2")
    x, lifted = random_batch(group, [30, 25], lift_samples=1)
    graph = build_pair_graph(group, lifted)
    conv = LieConv(6, 4, group, mc_samples=5, fill=0.5)
    conv.radius.fill_(1.0)
    from torch_geometric_lieconv.testing import select_neighborhood

    size = torch.bincount(graph.batch)[graph.batch]
    edges, fill = select_neighborhood(graph.dist, graph.edge_index[1], size, conv.radius, 5)
    counts = torch.bincount(graph.edge_index[1, edges], minlength=graph.num_nodes)
    inside = torch.bincount(graph.edge_index[1, graph.dist < 1.0], minlength=graph.num_nodes)
    assert torch.equal(counts, inside.clamp(max=5))
    assert bool((graph.dist[edges] < 1.0).all())
    expected_fill = (inside.float() / size.float()).mean()
    torch.testing.assert_close(fill, expected_fill)


def test_knn_takes_the_nearest_under_the_group_distance():
    group = group_from_name("SE3")
    x, lifted = random_batch(group, [29, 3])
    graph = build_pair_graph(group, lifted)
    from torch_geometric_lieconv.testing import select_neighborhood

    size = torch.bincount(graph.batch)[graph.batch]
    edges, _ = select_neighborhood(graph.dist, graph.edge_index[1], size, None, 7, knn=True)
    target = graph.edge_index[1]
    for i in [0, 17, 60]:
        mine = graph.dist[edges][target[edges] == i].sort().values
        all_d = graph.dist[target == i].sort().values
        torch.testing.assert_close(mine, all_d[:7])


def test_radius_adapts_towards_fill():
    group = group_from_name("T3")
    conv = LieConv(4, 4, group, mc_samples=64, fill=0.25).train()
    gen = torch.Generator().manual_seed(1)
    pos = torch.randn(200, 3, generator=gen) * 3
    batch = torch.arange(4).repeat_interleave(50)
    lifted = lift_points(group, pos, batch)
    graph = build_pair_graph(group, lifted)  # all pairs: any radius is covered
    x = torch.randn(200, 4, generator=gen)
    fills = []
    for _ in range(150):
        conv(x, graph.edge_index, graph.edge_attr, batch=graph.batch, candidate_radius=graph.candidate_radius)
        fills.append(float(conv.observed_fill))
    assert abs(fills[0] - 0.25) > 0.1
    assert abs(fills[-1] - 0.25) < 0.02
    assert abs(fills[-1] - 0.25) < abs(fills[20] - 0.25) < abs(fills[0] - 0.25)
    # eval mode freezes the radius
    conv.eval()
    r = float(conv.radius)
    conv(x, graph.edge_index, graph.edge_attr, batch=graph.batch, candidate_radius=graph.candidate_radius)
    assert float(conv.radius) == r


def test_radius_is_saved_in_state_dict_and_round_trips():
    group = group_from_name("SE2")
    conv = LieConv(4, 3, group, fill=0.2)
    conv.radius.fill_(0.77)
    buffer = io.BytesIO()
    torch.save(conv.state_dict(), buffer)
    buffer.seek(0)
    other = LieConv(4, 3, group, fill=0.2)
    other.load_state_dict(torch.load(buffer))
    assert float(other.radius) == pytest.approx(0.77)
    x, lifted = random_batch(group, [5, 6], channels=4)
    graph = build_pair_graph(group, lifted)
    conv.eval(), other.eval()
    torch.manual_seed(3)
    a = conv(x, graph.edge_index, graph.edge_attr, batch=graph.batch, candidate_radius=graph.candidate_radius)
    torch.manual_seed(3)
    torch.testing.assert_close(a, other(x, graph.edge_index, graph.edge_attr, batch=graph.batch,
                                               candidate_radius=graph.candidate_radius))


def test_reset_parameters_and_repr():
    conv = LieConv(4, 3, "SO2", mc_samples=9, fill=0.2)
    w = conv.lin.weight.clone()
    conv.radius.fill_(5.0)
    conv.reset_parameters()
    assert not torch.equal(w, conv.lin.weight)
    assert float(conv.radius) == 2.0
    text = repr(conv)
    assert "\n" not in text and "SO2" in text and "mc_samples=9" in text


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="aggregation"):
        LieConv(2, 2, "T2", aggregation="dense")
    with pytest.raises(ValueError, match="unknown group"):
        LieConv(2, 2, "SU7")
    conv = LieConv(3, 2, "T2")
    x, lifted = random_batch(group_from_name("T2"), [4], channels=5)
    with pytest.raises(ValueError, match="x must have shape"):
        graph = build_pair_graph(conv.group, lifted)
        conv(x, graph.edge_index, graph.edge_attr)
