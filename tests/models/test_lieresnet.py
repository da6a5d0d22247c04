"""Whole-model properties: invariance, exactness, edge cases, PyG batches, FPS subsampling."""
import io

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from torch_geometric_lieconv.testing.dense_reference import dense_model_forward
from torch_geometric_lieconv.testing import amplify_weights
from torch_geometric_lieconv import T, group_from_name, lift_points
from torch_geometric_lieconv.equivariance import assert_equivariant, equivariance_error
from torch_geometric_lieconv.graph import build_pair_graph
from torch_geometric_lieconv.groups import random_rotations
from torch_geometric_lieconv.models import LieResNet, QM9LieConv
from torch_geometric_lieconv.pool import farthest_point_subsample

SPECIES = torch.tensor([1, 6, 7, 8, 9])


def molecules(sizes, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    data = []
    for n in sizes:
        z = SPECIES[torch.randint(0, 5, (n,), generator=gen)]
        pos = (torch.randn(n, 3, generator=gen) * 1.5).to(dtype)
        data.append(Data(z=z, pos=pos))
    return Batch.from_data_list(data)


def small_qm9(group="T3", **kw):
    kw = {"hidden_channels": 32, "num_layers": 2, "mc_samples": 100, "fill": 1.0, **kw}
    return QM9LieConv(group, **kw).eval()


def test_t3_model_invariant_to_translating_each_molecule_differently():
    model = small_qm9("T3")
    batch = molecules([5, 12, 1, 29])
    shifts = torch.randn(4, 3) * 10
    out = model(batch.z, batch.pos, batch.batch)
    moved = model(batch.z, batch.pos + shifts[batch.batch], batch.batch)
    torch.testing.assert_close(moved, out, atol=1e-6, rtol=1e-5)
    # and not invariant to something it should not be: scaling the molecules
    translation_error = (moved - out).abs().max()
    assert (model(batch.z, 1.7 * batch.pos, batch.batch) - out).abs().max() > 100 * translation_error.clamp(min=1e-7)


def test_t3_model_exactly_invariant_to_atom_order_and_batching():
    model = small_qm9("T3")
    batch = molecules([7, 3, 11])
    out = model(batch.z, batch.pos, batch.batch)
    # permute atoms within every molecule (the batch vector stays sorted)
    perm = torch.cat([torch.randperm(n) + int(s) for n, s in zip([7, 3, 11], batch.ptr[:-1])])
    permuted = model(batch.z[perm], batch.pos[perm], batch.batch[perm])
    torch.testing.assert_close(permuted, out, atol=1e-6, rtol=1e-5)
    # each molecule alone gives the same value as inside the batch
    alone = torch.cat([model(d.z, d.pos, None) for d in batch.to_data_list()])
    torch.testing.assert_close(alone, out, atol=1e-6, rtol=1e-5)


def test_sparse_model_equals_dense_reference_model():
    model = LieResNet(15, 3, "SE3", hidden_channels=32, num_layers=2, mc_samples=1000, fill=1.0, lift_samples=2).eval()
    batch = molecules([4, 9, 1])
    x = torch.randn(batch.num_nodes, 15)
    frames = random_rotations((batch.num_nodes, 2), 3)
    out = model(x, batch.pos, batch.batch, frames)
    ref = dense_model_forward(model, x, batch.pos, batch.batch, frames)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 2e-5), (torch.float64, 1e-11)])
def test_se3_model_exactly_invariant_with_explicit_frames(dtype, atol):
    model = small_qm9("SE3", lift_samples=3, mc_samples=25, fill=0.5).to(dtype)
    batch = molecules([6, 9], dtype=dtype)

    def forward(pos, frames):
        torch.manual_seed(0)  # same neighbourhood samples on both calls
        return model(batch.z, pos, batch.batch, frames)

    report = assert_equivariant(forward, model.group, batch.pos, lift_samples=3, atol=atol, rtol=atol, trials=3,
                                scale=2.0)
    assert report.max_abs_error < atol
    # with fresh random frames the output changes, so the exact check is not vacuous
    loose = equivariance_error(forward, model.group, batch.pos, lift_samples=3, exact=False, trials=2)
    assert loose.max_abs_error > 20 * max(report.max_abs_error, torch.finfo(dtype).eps)


@pytest.mark.parametrize("name", ["SO2", "RxSO2", "SE2", "T2", "Trivial2"])
def test_planar_models_equivariance(name):
    """Errors relative to the model's geometric signal, in float64 (tests/test_equivariance.py does every group)."""
    group = group_from_name(name)
    model = amplify_weights(LieResNet(1, 4, group, hidden_channels=16, num_layers=2, mc_samples=100, fill=1.0,
                                lift_samples=2)).to(torch.float64).eval()
    gen = torch.Generator().manual_seed(0)
    pos = torch.randn(20, 2, generator=gen, dtype=torch.float64) + 0.3
    x = torch.randn(20, 1, generator=gen, dtype=torch.float64)
    report = equivariance_error(lambda p, f: model(x, p, None, f), group, pos, lift_samples=2, trials=3)
    frames = random_rotations((20, 2), 2, dtype=torch.float64) if group.frame_dim else None
    signal = (model(x, pos + 0.3 * torch.randn(pos.shape, generator=gen, dtype=torch.float64), None, frames)
              - model(x, pos, None, frames)).abs().max().item()
    assert signal > 1e-3
    if name == "Trivial2":
        assert report.max_abs_error == 0.0  # the trivial group's elements act as the identity
    else:
        assert report.max_abs_error < 1e-9 * signal
    # a symmetry the model does not have is seen by the checker: T(2) and rotations, SO(2) and translations
    other = {"T2": "SO2", "SO2": "T2", "RxSO2": "T2", "SE2": "RxSO2", "Trivial2": "T2"}[name]
    broken = equivariance_error(lambda p, f: model(x, p, None, f), group_from_name(other), pos, lift_samples=2,
                                trials=2, scale=2.0)
    assert broken.max_abs_error > 10 * max(report.max_abs_error, 1e-7)


def test_knn_smaller_than_graph_single_atom_and_mixed_batches_have_no_nan():
    batch = molecules([1, 29, 1, 29, 5])
    for kwargs in [dict(group="SE3", knn=True, mc_samples=4, lift_samples=2),
                   dict(group="T3", fill=0.3, mc_samples=6),
                   dict(group="SO3", knn=True, mc_samples=3, lift_samples=2)]:
        model = QM9LieConv(hidden_channels=32, num_layers=2, **kwargs).train()
        pos = batch.pos.clone().requires_grad_(True)
        out = model(batch.z, pos, batch.batch)
        assert out.shape == (5, 1) and torch.isfinite(out).all()
        out.sum().backward()
        assert torch.isfinite(pos.grad).all()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_knn_uses_only_mc_samples_neighbours():
    """With knn and mc_samples=1 every point sees only itself (d=0), so the output ignores other atoms' features."""
    model = LieResNet(2, 1, "T3", hidden_channels=16, num_layers=1, knn=True, mc_samples=1, batch_norm=False)
    pos = torch.randn(10, 3) * 3
    x = torch.randn(10, 2)
    out = model(x, pos)
    expected = torch.stack([model(x[i:i + 1], pos[i:i + 1]) for i in range(10)]).mean()
    torch.testing.assert_close(out.squeeze(), expected, atol=1e-5, rtol=1e-5)


def test_pyg_dataloader_state_dict_and_double():
    data = [Data(z=b.z, pos=b.pos, y=torch.randn(1)) for b in molecules([3, 8, 5, 2]).to_data_list()]
    loader = DataLoader(data, batch_size=2)
    model = small_qm9("T3")
    outs = [model(b.z, b.pos, b.batch) for b in loader]
    assert [o.shape for o in outs] == [(2, 1), (2, 1)]
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    clone = small_qm9("T3")
    clone.load_state_dict(torch.load(buffer))
    batch = next(iter(loader))
    torch.testing.assert_close(clone(batch.z, batch.pos, batch.batch), outs[0])
    double = clone.double()
    out64 = double(batch.z, batch.pos.double(), batch.batch)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), outs[0], atol=1e-5, rtol=1e-4)


def test_farthest_point_subsample_counts_spread_and_equivariance():
    group = T(2)
    gen = torch.Generator().manual_seed(0)
    pos = torch.randn(70, 2, generator=gen)
    batch = torch.tensor([0] * 30 + [1] * 40)
    graph = build_pair_graph(group, lift_points(group, pos, batch))
    kept = farthest_point_subsample(graph, 0.25, generator=torch.Generator().manual_seed(5))
    assert torch.bincount(batch[kept]).tolist() == [8, 10]
    # farthest points are spread out: the min pairwise distance among the kept points of a graph
    # beats that of random subsets of the same size
    def min_gap(idx):
        p = pos[idx]
        d = torch.cdist(p, p) + torch.eye(len(idx)) * 1e9
        return d.min()
    fps_gap = min_gap(kept[batch[kept] == 1])
    random_gaps = torch.stack([min_gap(torch.randperm(40, generator=gen)[:10] + 30) for _ in range(20)])
    assert fps_gap > random_gaps.median()
    # equivariance: translated input, same seed -> same selection
    moved = build_pair_graph(group, lift_points(group, pos + torch.tensor([3.0, -7.0]), batch))
    kept2 = farthest_point_subsample(moved, 0.25, generator=torch.Generator().manual_seed(5))
    assert torch.equal(kept, kept2)


def test_subsampling_model_runs_and_is_invariant():
    model = LieResNet(1, 3, "T2", hidden_channels=16, num_layers=3, mc_samples=8, fill=0.3, ds_frac=0.5).eval()
    pos = torch.randn(40, 2)
    x = torch.randn(40, 1)
    batch = torch.tensor([0] * 15 + [1] * 25)
    torch.manual_seed(0)
    out = model(x, pos, batch)
    torch.manual_seed(0)
    moved = model(x, pos + torch.tensor([5.0, 1.0]), batch)
    torch.testing.assert_close(moved, out, atol=1e-5, rtol=1e-5)


def test_model_repr_and_reset():
    model = small_qm9("SE3")
    assert "\n" not in repr(model) and "SE3" in repr(model)
    before = model.net.lin_in.weight.clone()
    model.reset_parameters()
    assert not torch.equal(before, model.net.lin_in.weight)


def test_model_bad_input():
    model = small_qm9("SO3")
    with pytest.raises(ValueError, match="atomic numbers"):
        model(torch.tensor([6, 17]), torch.randn(2, 3), None)
    with pytest.raises(ValueError, match=r"shape \[N, 3\]"):
        model(torch.tensor([6, 1]), torch.randn(2, 2), None)
    with pytest.raises(ValueError, match="NaN"):
        model(torch.tensor([6, 1]), torch.tensor([[0.0, float("nan"), 1.0], [1.0, 0.0, 0.0]]), None)
    with pytest.raises(ValueError, match="origin"):
        LieResNet(1, 1, "SO2", hidden_channels=8, num_layers=1)(torch.ones(2, 1), torch.tensor([[0.0, 0], [1.0, 0]]))
