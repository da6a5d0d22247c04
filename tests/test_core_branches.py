"""Branches of the core modules (dynamics, equivariance, graph, groups, the version) that the other tests
leave out, each stated as a fact: an error that names the problem, or agreement with a reference
computed here (brute-force pairs, per-target counts, the pyproject.toml version)."""
import importlib.metadata
import itertools
import math
import os
import tomllib
from collections import Counter

import pytest
import torch

import torch_geometric_lieconv
from torch_geometric_lieconv import graph as graph_module
from torch_geometric_lieconv import group_from_name, lift_points
from torch_geometric_lieconv.dynamics import cross, hamiltonian_vector_field, join_state
from torch_geometric_lieconv.equivariance import assert_equivariant
from torch_geometric_lieconv.graph import GraphSizes, build_pair_graph, radius_candidates, segment_rank
from torch_geometric_lieconv.groups import SE2, SO2, T, group_spec, random_rotations

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------- dynamics
def test_join_state_refuses_q_and_p_of_different_shapes():
    with pytest.raises(ValueError, match=r"q and p must have the same shape, got \[3, 2\] and \[3, 3\]"):
        join_state(torch.zeros(3, 2), torch.zeros(3, 3))


def test_a_hamiltonian_with_more_than_one_energy_per_system_is_refused():
    """A Hamiltonian returning ``[B, 1]`` (a trailing dimension, the usual slip) is refused by name:
    its gradient would be the same, so the shape is the only place the mistake shows."""
    z = torch.randn(4, 4, dtype=F64)
    with pytest.raises(ValueError, match=r"one energy per system, shape \[B\], got \[1, 1\]"):
        hamiltonian_vector_field(lambda q, p: (q.square().sum() + p.square().sum()).view(1, 1), z)


def test_cross_is_defined_only_in_2d_and_3d():
    with pytest.raises(ValueError, match="2D and 3D positions, got dimension 4"):
        cross(torch.zeros(2, 4), torch.zeros(2, 4))


# ---------------------------------------------------------------------------------------------- equivariance
def test_assert_equivariant_raises_when_both_errors_exceed_their_tolerances():
    """T(2): the centroid moves with a translation (not invariant, errors of order 1: raises, naming
    the group and the errors); pairwise distances do not (passes)."""
    pos = torch.randn(6, 2, dtype=F64)
    group = T(2)
    with pytest.raises(AssertionError, match=r"not equivariant to T\(2\): equivariance error over 4 trials"):
        assert_equivariant(lambda p, frames: p.mean(0), group, pos)
    report = assert_equivariant(lambda p, frames: torch.cdist(p, p), group, pos)
    assert report.trials == 4 and report.max_abs_error < 1e-12


# ---------------------------------------------------------------------------------------------- graph
def test_graph_sizes_with_a_known_number_of_graphs_count_the_empty_trailing_graphs():
    """``num_graphs`` beyond the last graph in ``batch``: those graphs are empty (count 0), the totals
    are those of the counts (computed here with a Counter)."""
    batch = torch.tensor([0, 0, 1, 1, 1, 3])
    sizes = GraphSizes.read(batch, num_graphs=6)
    counted = Counter(batch.tolist())
    expected = [counted.get(g, 0) for g in range(6)]
    assert sizes.counts.tolist() == expected
    assert (sizes.max_count, sizes.num_pairs, sizes.total) == (max(expected), sum(n * n for n in expected), 6)


def _pairs_within(pos, batch, radius):
    return {(j, i) for i, j in itertools.product(range(len(pos)), repeat=2)
            if batch[i] == batch[j] and float((pos[i] - pos[j]).norm()) <= radius}


def test_radius_candidates_without_a_cap_are_every_pair_within_the_radius():
    """``max_num_neighbors=None`` sizes the search by the largest graph, so nothing is dropped: the
    pairs are exactly those of a brute-force search (self pairs included), in a graph dense enough that a
    small cap would cut it."""
    gen = torch.Generator().manual_seed(0)
    batch = torch.tensor([0] * 9 + [1] * 4)
    pos = torch.rand(13, 2, generator=gen, dtype=F64)
    edge_index = radius_candidates(pos, batch, 0.6)
    found = {tuple(e) for e in edge_index.t().tolist()}
    expected = _pairs_within(pos, batch, 0.6)
    assert found == expected and edge_index.shape[1] == len(expected)
    assert max(Counter(i for _, i in expected).values()) > 5


def test_an_unsorted_radius_search_is_sorted_by_target_with_the_same_edges(monkeypatch):
    """The radius search's order is not promised (it is by target on CPU): a search that returns its
    pairs shuffled gives a pair graph sorted by target, with the same edges and embeddings."""
    gen = torch.Generator().manual_seed(1)
    group = group_from_name("T2")
    batch = torch.tensor([0] * 8 + [1] * 6)
    lifted = lift_points(group, torch.randn(14, 2, generator=gen, dtype=F64), batch)
    plain = build_pair_graph(group, lifted, candidate_radius=1.2)
    original = graph_module.radius_candidates

    def shuffled(*args, **kwargs):
        edges = original(*args, **kwargs)
        return edges[:, torch.randperm(edges.shape[1], generator=torch.Generator().manual_seed(2))]

    monkeypatch.setattr(graph_module, "radius_candidates", shuffled)
    graph = build_pair_graph(group, lifted, candidate_radius=1.2)
    target = graph.edge_index[1]
    assert bool((target[1:] >= target[:-1]).all())
    key = lambda g: {tuple(e): a for e, a in zip(g.edge_index.t().tolist(), g.edge_attr.tolist())}  # noqa: E731
    assert key(graph) == key(plain) and graph.edge_index.shape[1] < 14 * 14 / 2 + 14


def test_segment_rank_counts_each_targets_edges_from_zero():
    target = torch.tensor([0, 0, 0, 2, 2, 3, 5, 5, 5, 5])
    expected, seen = [], Counter()
    for t in target.tolist():
        expected.append(seen[t])
        seen[t] += 1
    assert segment_rank(target, 7).tolist() == expected


# ---------------------------------------------------------------------------------------------- groups
def test_a_group_name_that_sets_alpha_refuses_a_second_alpha():
    with pytest.raises(ValueError, match=r"sets alpha; do not pass alpha=0.3 as well"):
        group_from_name("SO2(alpha=0.5)", alpha=0.3)
    assert group_from_name("SO2(alpha=0.5)").alpha == 0.5


def test_group_spec_of_a_name_is_a_type_error():
    with pytest.raises(TypeError, match="group must be a LieGroup, got str"):
        group_spec("SE3")


def test_random_rotations_only_in_2d_and_3d():
    with pytest.raises(ValueError, match="dim 2 or 3, got 4"):
        random_rotations((2,), 4)


def test_act_of_matrices_of_a_foreign_size_is_refused_not_misread():
    """SE(2) acts by 3x3 homogeneous matrices on R^2 (R x + t, checked against the formula); a 4x4
    matrix is neither linear nor affine on R^2 and is refused."""
    pos = torch.randn(5, 2, dtype=F64)
    theta, t = 0.7, torch.tensor([0.3, -1.2], dtype=F64)
    rot = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=F64)
    g = torch.eye(3, dtype=F64)
    g[:2, :2], g[:2, 2] = rot, t
    torch.testing.assert_close(SE2().act(g, pos), pos @ rot.T + t)
    with pytest.raises(NotImplementedError, match=r"define act\(\) for 4x4 matrices acting on R\^2"):
        SE2().act(torch.eye(4, dtype=F64), pos)


def test_check_pos_passes_liftable_points_and_names_the_bad_ones():
    group = SO2()
    pos = torch.tensor([[1.0, 0.5], [-0.3, 2.0], [0.2, -0.1]], dtype=F64)
    assert group.check_pos(pos) is None
    nan = pos.clone()
    nan[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf coordinates \(points \[1\]"):
        group.check_pos(nan)
    origin = pos.clone()
    origin[2] = 0.0
    with pytest.raises(ValueError, match=r"undefined at the origin .* points \[2\] lie there"):
        group.check_pos(origin)
    T(2).check_pos(origin)  # a translation lifts the origin like any point


# ---------------------------------------------------------------------------------------------- version
def test_a_source_checkout_reads_its_version_from_pyproject(monkeypatch):
    """Not installed (no distribution metadata): the version is pyproject.toml's ``project.version``."""
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        expected = tomllib.load(f)["project"]["version"]
    assert torch_geometric_lieconv._version() == expected
