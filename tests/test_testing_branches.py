"""Branches of the ``testing`` helpers (the references other tests trust) that the other tests leave out,
each stated as a fact: the dense reference agrees with the layer for a sum, the reference radius graph
is the brute-force one sorted by target (also from an unsorted search), unknown group names are a
KeyError, and the fixtures refuse what they cannot do by name."""
import itertools

import pytest
import torch

from torch_geometric_lieconv import group_from_name, lift_points
from torch_geometric_lieconv.conv import LieConv
from torch_geometric_lieconv.graph import build_pair_graph
from torch_geometric_lieconv.testing import reference_graphs
from torch_geometric_lieconv.testing.dense_reference import dense_lieconv
from torch_geometric_lieconv.testing.group_reference import WITH_ALGEBRA, generators, orbit_origin
from torch_geometric_lieconv.testing.qm9_fixture import _place
from torch_geometric_lieconv.testing.springs_fixture import frame_turn_per_step

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64


def test_dense_reference_of_a_sum_layer_equals_the_layer():
    """mean=False: the dense reference sums over each target's pairs (no division), as the layer does;
    the sums differ from the means by the graph sizes, so the two cannot agree by accident."""
    group = group_from_name("SE2")
    gen = torch.Generator().manual_seed(0)
    batch = torch.tensor([0] * 4 + [1] * 7)
    lifted = lift_points(group, torch.randn(11, 2, generator=gen, dtype=F64) + 0.3, batch, 2, generator=gen)
    graph = build_pair_graph(group, lifted)
    x = torch.randn(lifted.num_nodes, 3, generator=gen, dtype=F64)
    conv = LieConv(3, 4, group, mc_samples=1000, fill=1.0, mean=False).to(F64)
    out = conv(x, graph.edge_index, graph.edge_attr, batch=graph.batch)
    ref = dense_lieconv(conv, x, lifted.u, lifted.q, lifted.batch, None)
    torch.testing.assert_close(ref, out, atol=1e-10, rtol=1e-10)
    conv.mean = True
    assert (dense_lieconv(conv, x, lifted.u, lifted.q, lifted.batch, None) - ref).abs().max() > 1e-3


def _brute_pairs(pos, batch, radius):
    pairs = [(j, i) for i, j in itertools.product(range(len(pos)), repeat=2)
             if batch[i] == batch[j] and float((pos[i] - pos[j]).norm()) <= radius]
    return sorted(pairs, key=lambda e: e[1])


@pytest.mark.parametrize("shuffle", [False, True])
def test_radius_pairs_are_every_pair_within_the_radius_sorted_by_target(shuffle, monkeypatch):
    """The reference radius graph: the brute-force pairs, sorted by target, also when the search
    returns them in another order (its order is not promised)."""
    gen = torch.Generator().manual_seed(3)
    batch = torch.tensor([0] * 7 + [1] * 5)
    pos = torch.rand(12, 3, generator=gen, dtype=F64)
    if shuffle:
        search = reference_graphs.radius_candidates

        def shuffled(*args, **kwargs):
            edges = search(*args, **kwargs)
            return edges[:, torch.randperm(edges.shape[1], generator=torch.Generator().manual_seed(4))]

        monkeypatch.setattr(reference_graphs, "radius_candidates", shuffled)
    edge_index = reference_graphs.radius_pairs(pos, batch, 0.7)
    target = edge_index[1]
    assert bool((target[1:] >= target[:-1]).all())
    expected = _brute_pairs(pos, batch, 0.7)
    assert sorted(map(tuple, edge_index.t().tolist())) == sorted(expected)
    assert target.tolist() == [i for _, i in expected]


def test_group_references_cover_every_group_and_refuse_unknown_names():
    """Every group with an algebra has one generator per algebra coordinate and an orbit origin per
    point; a name that is not a group is a KeyError (never an empty basis or a silent default)."""
    q_rows = 3
    for name in WITH_ALGEBRA:
        group = group_from_name(name)
        assert len(generators(name)) == group.lie_dim, name
        assert orbit_origin(name, torch.ones(q_rows, group.q_dim, dtype=F64)).shape == (q_rows, group.space_dim)
    with pytest.raises(KeyError, match="SE4"):
        generators("SE4")
    with pytest.raises(KeyError, match="SE4"):
        orbit_origin("SE4", torch.ones(q_rows, 3, dtype=F64))


def test_qm9_fixture_gives_up_on_an_atom_that_cannot_be_placed():
    """An atom at bond length 1.0 from an anchor that is itself a placed atom is always within 1.25 of
    it: the placement fails by name after its tries, instead of looping or overlapping atoms."""
    anchor = torch.zeros(3, dtype=F64)
    with pytest.raises(RuntimeError, match="could not place an atom"):
        _place(anchor, 1.0, [anchor], torch.Generator().manual_seed(0))
    placed = _place(anchor, 1.5, [anchor], torch.Generator().manual_seed(0))
    assert abs(float(placed.norm()) - 1.5) < 1e-12


def test_frame_turn_refuses_an_unknown_centre():
    traj = torch.ones(4, 3, 4, dtype=F64)
    with pytest.raises(ValueError, match="about must be 'origin' or 'centroid', got 'star'"):
        frame_turn_per_step(traj, torch.ones(4, 1, dtype=F64), torch.zeros(4, dtype=torch.long), 1, 0.1, about="star")
