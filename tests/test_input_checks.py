"""Bad input gets a clear exception or a documented correct result, never a silent wrong answer."""
import pytest
import torch

from torch_geometric_lieconv import LieConv, LieResNet, QM9LieConv, group_from_name, lift_graph, lift_points
from torch_geometric_lieconv.graph import build_pair_graph

PLANAR = ["T2", "SO2", "RxSO2", "Rx", "SE2", "Tx", "Trivial2"]
SPATIAL = ["T3", "SO3", "SE3", "Trivial3"]


@pytest.mark.parametrize("name", PLANAR + SPATIAL)
@pytest.mark.parametrize("fill", [1.0, 0.3])
def test_an_empty_batch_gives_empty_outputs(name, fill):
    group = group_from_name(name)
    model = LieResNet(3, 2, group, hidden_channels=8, num_layers=2, fill=fill).train()
    out = model(torch.randn(0, 3), torch.randn(0, group.space_dim), torch.zeros(0, dtype=torch.long))
    assert out.shape == (0, 2)
    per_point = LieResNet(3, 2, group, hidden_channels=8, num_layers=1, pool=False).eval()
    assert per_point(torch.randn(0, 3), torch.randn(0, group.space_dim)).shape == (0, 2)


def test_an_unsorted_batch_vector_raises():
    pos = torch.randn(6, 3)
    with pytest.raises(ValueError, match="batch must be sorted"):
        lift_points(group_from_name("T3"), pos, torch.tensor([0, 1, 0, 1, 0, 1]))
    model = LieResNet(3, 1, "T3", hidden_channels=8, num_layers=1)
    with pytest.raises(ValueError, match="batch must be sorted"):
        model(torch.randn(6, 3), pos, torch.tensor([1, 1, 1, 0, 0, 0]))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_features_raise(bad):
    model = LieResNet(3, 1, "T3", hidden_channels=8, num_layers=1)
    x = torch.randn(5, 3)
    x[3, 1] = bad
    with pytest.raises(ValueError, match=r"x contains NaN or inf values \(rows \[3\]"):
        model(x, torch.randn(5, 3))
    graph = lift_graph("T3", torch.randn(5, 3))
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        model.forward_lifted(x, graph)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_positions_of_another_dtype_are_cast_to_the_models(dtype):
    torch.manual_seed(0)
    model = LieResNet(3, 2, "SE3", hidden_channels=8, num_layers=1, lift_samples=2).eval()
    x, pos = torch.randn(6, 3), torch.randn(6, 3)
    frames = torch.linalg.qr(torch.randn(6, 2, 3, 3)).Q
    frames = frames * torch.linalg.det(frames).sign()[..., None, None]  # proper rotations
    out = model(x.to(dtype), pos.to(dtype), None, frames)
    assert out.dtype == torch.float32
    reference = model(x.to(dtype).float(), pos.to(dtype).float(), None, frames)
    torch.testing.assert_close(out, reference, atol=1e-6, rtol=1e-6)


def test_integer_features_raise_a_type_error():
    with pytest.raises(TypeError, match="x must be a floating point tensor"):
        LieResNet(3, 1, "T3", hidden_channels=8, num_layers=1)(torch.ones(4, 3, dtype=torch.long), torch.randn(4, 3))


def test_invalid_layer_and_graph_settings_raise():
    with pytest.raises(ValueError, match="fill must be > 0"):
        LieConv(2, 2, "T2", fill=float("nan"))
    with pytest.raises(ValueError, match="fill must be > 0"):
        LieConv(2, 2, "T2", fill=-0.5)
    lifted = lift_points(group_from_name("T2"), torch.randn(5, 2))
    for radius in [-1.0, float("nan")]:
        with pytest.raises(ValueError, match="radius must be None or a non-negative number"):
            build_pair_graph(group_from_name("T2"), lifted, radius=radius)
        with pytest.raises(ValueError, match="radius must be None or a non-negative number"):
            lift_graph("T2", torch.randn(5, 2), radius=radius)


@pytest.mark.parametrize("name", ["SE2", "SE3", "SO3"])
def test_frames_that_are_not_rotations_raise(name):
    group = group_from_name(name)
    m = group.frame_dim
    pos = torch.randn(4, group.space_dim) + 2
    scaled = torch.eye(m).expand(4, 2, m, m) * 2.0
    reflected = torch.eye(m).expand(4, 2, m, m).clone()
    reflected[..., 0, 0] = -1
    for frames in (scaled, reflected):
        with pytest.raises(ValueError, match="frames must be rotation matrices"):
            lift_points(group, pos, None, 2, frames)


@pytest.mark.parametrize("group", ["T3", "SE3", "SO3"])
def test_qm9_model_with_mismatched_atoms_raises(group):
    model = QM9LieConv(group, hidden_channels=8, num_layers=1)
    z = torch.tensor([6, 1, 1, 8])
    with pytest.raises(ValueError, match="z \\[N\\] and pos \\[N, 3\\] must describe the same atoms"):
        model(z, torch.randn(5, 3))
    with pytest.raises(ValueError, match="batch must have one entry per atom"):
        model(z, torch.randn(4, 3), torch.zeros(3, dtype=torch.long))
