"""Renamed keywords and attributes keep working for one release, with a DeprecationWarning and the same
result; objects pickled under the old names load; the package's version is pyproject's."""
import pickle
import re
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

import torch_geometric_lieconv
from torch_geometric_lieconv import SE3, group_from_name, lift_graph, lift_points
from torch_geometric_lieconv.equivariance import equivariance_error
from torch_geometric_lieconv.graph import PairGraph, build_pair_graph
from torch_geometric_lieconv.groups import random_rotations
from torch_geometric_lieconv.models.shared_geometry import LiftedGraphCache
from torch_geometric_lieconv.transforms import LiftGraph

F64 = torch.float64
ROOT = Path(__file__).resolve().parents[1]


def deprecated(*names):
    """``pytest.warns`` for one DeprecationWarning naming each old name and its replacement."""
    return pytest.warns(DeprecationWarning, match="|".join(rf"'{old}' is deprecated.*'{new}'" for old, new in names))


def points(n=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, 3, generator=gen, dtype=F64)
    return pos, torch.tensor([0] * 3 + [1] * (n - 3)), random_rotations((n, 2), 3, dtype=F64, generator=gen)


def test_num_samples_is_now_lift_samples_with_the_same_result():
    pos, batch, frames = points()
    with deprecated(("num_samples", "lift_samples")):
        old = lift_points(SE3(), pos, batch, num_samples=2, frames=frames)
    new = lift_points(SE3(), pos, batch, lift_samples=2, frames=frames)
    assert torch.equal(old.u, new.u) and torch.equal(old.node_index, new.node_index) and old.lift_samples == 2
    with pytest.warns(DeprecationWarning, match=r"LiftedPoints\.num_samples is deprecated.*\.lift_samples"):
        assert new.num_samples == 2
    with pytest.raises(TypeError, match="'lift_samples' and its deprecated name 'num_samples'"):
        lift_points(SE3(), pos, batch, num_samples=2, lift_samples=2)

    model = lambda p, f: p.norm(dim=-1).sum(0, keepdim=True)  # noqa: E731
    with deprecated(("num_samples", "lift_samples")):
        old = equivariance_error(model, SE3(), pos, num_samples=3, generator=torch.Generator().manual_seed(1))
    new = equivariance_error(model, SE3(), pos, lift_samples=3, generator=torch.Generator().manual_seed(1))
    assert old == new


def test_radius_of_the_candidate_graph_is_now_candidate_radius_with_the_same_result():
    pos, batch, frames = points(9)
    with pytest.warns(DeprecationWarning) as caught:
        old = lift_graph("SE3", pos, batch, num_samples=2, radius=0.9, frames=frames)
    assert {re.search(r"keyword '(\w+)'", str(w.message)).group(1) for w in caught} == {"num_samples", "radius"}
    new = lift_graph("SE3", pos, batch, lift_samples=2, candidate_radius=0.9, frames=frames)
    assert old.candidate_radius == new.candidate_radius == 0.9 and old.lift_samples == new.lift_samples == 2
    assert torch.equal(old.edge_index, new.edge_index) and torch.equal(old.edge_attr, new.edge_attr)
    assert new.edge_index.shape[1] < (2 * 3) ** 2 + (2 * 6) ** 2  # the radius did cut pairs

    group = group_from_name("SE3")
    lifted = lift_points(group, pos, batch, 2, frames)
    with deprecated(("radius", "candidate_radius")):
        old = build_pair_graph(group, lifted, radius=0.9)
    new = build_pair_graph(group, lifted, candidate_radius=0.9)
    assert torch.equal(old.edge_index, new.edge_index) and new.candidate_radius == 0.9
    with pytest.warns(DeprecationWarning, match=r"PairGraph\.radius_bound is deprecated.*candidate_radius_tensor"):
        assert new.radius_bound is new.candidate_radius_tensor and float(new.radius_bound) == 0.9
    with pytest.warns(DeprecationWarning, match=r"PairGraph\.radius is deprecated"):
        assert new.radius == 0.9 and build_pair_graph(group, lifted).radius is None  # its old meaning
    everything = build_pair_graph(group, lifted, candidate_radius=float("inf"))
    assert everything.candidate_radius == float("inf") and everything.covers_all_pairs
    with deprecated(("radius", "candidate_radius")):
        again = PairGraph(new.edge_index, new.edge_attr, new.dist, new.batch, new.num_nodes, radius=0.9)
    assert again.candidate_radius == 0.9

    cache = LiftedGraphCache()
    with deprecated(("radius", "candidate_radius")):
        cache.put(pos, batch, radius=0.9, value=(lifted, new))
    assert cache.get(pos, batch, candidate_radius=0.9)[1] is new and cache.get(pos, batch, 1.0) is None


def test_the_lift_graph_transform_takes_the_new_names_and_old_pickles_load():
    data = Data(pos=points()[0], x=torch.randn(7, 2, dtype=F64))
    with pytest.warns(DeprecationWarning) as caught:
        old = LiftGraph("T3", num_samples=2, radius=0.9)
    assert len(caught) == 2
    new = LiftGraph("T3", lift_samples=2, candidate_radius=0.9)
    assert old.lift_samples == 2 and old.candidate_radius == 0.9 and repr(old) == repr(new)
    assert "lift_samples=2, candidate_radius=0.9" in repr(new)
    a, b = old(data), new(data)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x) and b.candidate_radius == 0.9
    with pytest.warns(DeprecationWarning, match=r"LiftGraph\.radius is deprecated"):
        assert new.radius == 0.9

    # a transform pickled before the rename (e.g. inside a saved dataset object) has the old attributes
    before = LiftGraph.__new__(LiftGraph)
    before.__dict__.update({"group": new.group, "num_samples": 2, "radius": 0.9, "max_num_neighbors": None})
    loaded = pickle.loads(pickle.dumps(before))
    assert loaded.lift_samples == 2 and loaded.candidate_radius == 0.9 and repr(loaded) == repr(new)
    assert torch.equal(loaded(data).edge_index, b.edge_index)


def test_the_version_is_pyprojects():
    found = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert found and torch_geometric_lieconv.__version__ == found.group(1)
