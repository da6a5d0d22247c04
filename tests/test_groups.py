"""The Lie group core: exp/log identities, lifts, invariance of pair embeddings, numerics, errors."""
import math

import pytest
import torch

from torch_geometric_lieconv import group_from_name, lift_points
from torch_geometric_lieconv.groups import SE2, SE3, SO3, LieGroup, T
from torch_geometric_lieconv.groups._rotations import hat3, random_rotations
from user_groups import Affine1

ALL = ["Trivial2", "Trivial3", "T2", "T3", "Tx", "Ty", "SO2", "RxSO2", "Rx", "SE2", "SO3", "SE3"]
WITH_ALGEBRA = [n for n in ALL if not n.startswith("Trivial")]


def generators(name):
    """Lie algebra bases written out by hand, independently of the package."""
    J = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    I2 = torch.eye(2, dtype=torch.float64)

    def embed(block, size, col=None):
        m = torch.zeros(size, size, dtype=torch.float64)
        if col is None:
            m[: block.shape[0], : block.shape[1]] = block
        else:
            m[col, -1] = 1.0
        return m

    if name == "SO2":
        return [J]
    if name == "RxSO2":
        return [I2, J]
    if name == "Rx":
        return [I2]
    if name in ("T2", "T3"):
        d = int(name[1])
        return [embed(None, d + 1, col=k) for k in range(d)]
    if name == "Tx":
        return [embed(None, 3, col=0)]
    if name == "Ty":
        return [embed(None, 3, col=1)]
    if name == "SE2":
        return [embed(J, 3), embed(None, 3, col=0), embed(None, 3, col=1)]
    rot = [hat3(torch.eye(3, dtype=torch.float64)[k]) for k in range(3)]
    if name == "SO3":
        return rot
    if name == "SE3":
        return [embed(r, 4) for r in rot] + [embed(None, 4, col=k) for k in range(3)]
    raise KeyError(name)


def algebra_matrix(name, a):
    return sum(a[..., k, None, None] * A for k, A in enumerate(generators(name)))


def rotation_part(name, a):
    """Indices of the rotation coordinates (to build angle sweeps)."""
    return {"SO2": [0], "RxSO2": [1], "SE2": [0], "SO3": [0, 1, 2], "SE3": [0, 1, 2]}.get(name)


@pytest.mark.parametrize("name", WITH_ALGEBRA)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 5e-6)])
def test_exp_matches_matrix_exponential(name, dtype, tol):
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(200, group.lie_dim, generator=gen, dtype=torch.float64) * 1.2
    expected = torch.linalg.matrix_exp(algebra_matrix(name, a))
    got = group.exp(a.to(dtype)).double()
    assert (got - expected).abs().max() < tol * max(1.0, expected.abs().max().item())


ANGLES = [1e-6, 1e-4, 1e-2, 0.3, 1.0, 2.0, 3.0, math.pi - 1e-2, math.pi - 1e-3, math.pi - 1e-4]


@pytest.mark.parametrize("name", ["SO2", "RxSO2", "SE2", "SO3", "SE3"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_log_inverts_exp_from_tiny_angles_to_near_pi(name, dtype, tol):
    """Absolute tolerance: float32 cannot resolve a 1e-6 rotation relatively, but must stay that close."""
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(1)
    rot = rotation_part(name, None)
    for angle in ANGLES:
        a = torch.randn(64, group.lie_dim, generator=gen, dtype=torch.float64)
        axis = a[:, rot] / a[:, rot].norm(dim=-1, keepdim=True)
        a[:, rot] = axis * angle
        g = torch.linalg.matrix_exp(algebra_matrix(name, a)).to(dtype)
        back = group.log(g).double()
        assert torch.isfinite(back).all()
        err = (back - a).abs().max().item()
        assert err < tol * 10, f"{name} angle {angle}: |log(exp(a)) - a| = {err}"
        # and exp(log(g)) = g
        assert (group.exp(group.log(g)).double() - g.double()).abs().max() < tol * 10


@pytest.mark.parametrize("name", WITH_ALGEBRA)
def test_exp_log_round_trip_random(name):
    group = group_from_name(name)
    g = group.sample(100, scale=1.0, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(group.exp(group.log(g)), g, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", ["SO2", "RxSO2", "SE2", "SO3", "SE3", "T3", "Rx"])
@pytest.mark.parametrize("where", ["identity", "near_pi"])
def test_gradients_through_exp_log_pairs_are_finite(name, where):
    group = group_from_name(name)
    a = torch.zeros(4, group.lie_dim, dtype=torch.float64)
    if where == "near_pi" and rotation_part(name, None):
        rot = rotation_part(name, None)
        a[:, rot[0]] = math.pi - 1e-7
    a.requires_grad_(True)
    out = group.log(group.exp(a)).sum() + group.pair_log(a, a).sum() + group.distance(
        torch.cat([group.pair_log(a, a.detach()), torch.zeros(4, 2 * group.q_dim, dtype=a.dtype)], -1)).sum()
    (grad,) = torch.autograd.grad(out, a)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", ["T3", "SO2", "RxSO2", "Rx", "SE2", "SO3", "SE3", "Tx"])
def test_lift_gradient_finite(name):
    group = group_from_name(name)
    pos = (torch.randn(6, group.space_dim, dtype=torch.float64) + 0.5).requires_grad_(True)
    a, q = group.lift(pos, 3, generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad(a.sum() + q.sum(), pos)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", [n for n in WITH_ALGEBRA] + ["affine"])
def test_pair_embeddings_are_left_invariant(name):
    group = Affine1() if name == "affine" else group_from_name(name)
    gen = torch.Generator().manual_seed(3)
    pos = torch.randn(12, group.space_dim, generator=gen, dtype=torch.float64) + 0.3
    a, _ = group.lift(pos, 2, generator=gen)
    a = a.reshape(-1, group.lie_dim)
    i, j = torch.randint(0, a.shape[0], (2, 40), generator=gen)
    w = group.sample(1, dtype=torch.float64, generator=gen)[0]
    moved = group.act_on_lift(w, a)
    before = group.exp(group.pair_log(a[i], a[j]))
    after = group.exp(group.pair_log(moved[i], moved[j]))
    torch.testing.assert_close(after, before, atol=1e-10, rtol=1e-10)
    # not vacuous: the pair log does change when only one element moves
    assert (group.exp(group.pair_log(moved[i], a[j])) - before).abs().max() > 1e-3


def orbit_origin(name, q):
    """o_q: the representative of the orbit labelled q, written from the group table."""
    if name.startswith("Trivial"):
        return q
    if name in ("T2", "T3", "SE2", "SE3"):
        return torch.zeros(q.shape[0], int(name[-1]), dtype=q.dtype)
    if name == "Tx":
        return torch.stack([torch.zeros_like(q[:, 0]), q[:, 0]], -1)
    if name == "Ty":
        return torch.stack([q[:, 0], torch.zeros_like(q[:, 0])], -1)
    if name == "SO2":
        return torch.stack([q[:, 0], torch.zeros_like(q[:, 0])], -1)
    if name == "RxSO2":
        return torch.tensor([[1.0, 0.0]], dtype=q.dtype).expand(q.shape[0], 2)
    if name == "Rx":
        return q
    if name == "SO3":
        return q[:, :1] * torch.tensor([[1.0, 0.0, 0.0]], dtype=q.dtype)
    raise KeyError(name)


@pytest.mark.parametrize("name", ALL)
def test_lifted_element_maps_orbit_origin_to_the_point(name):
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(4)
    pos = torch.randn(20, group.space_dim, generator=gen, dtype=torch.float64) * 3
    pos[0] = -torch.eye(group.space_dim, dtype=torch.float64)[0] * 2.5  # along -e1
    a, q = group.lift(pos, 5, generator=gen)
    for k in range(5):
        x = group.act(group.exp(a[:, k]), orbit_origin(name, q[:, k]))
        torch.testing.assert_close(x, pos, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", ["SO3", "SE3"])
def test_so3_lift_along_minus_e1_and_batches_of_three(name):
    group = group_from_name(name)
    for pos in [torch.tensor([[-1.0, 0, 0], [1.0, 0, 0], [0, 0, 2.0]]), torch.tensor([[-3.0, 0, 0]])]:
        a, q = group.lift(pos.double(), 4)
        assert torch.isfinite(a).all() and a.shape == (pos.shape[0], 4, group.lie_dim)
        x = group.act(group.exp(a.flatten(0, 1)), orbit_origin(name, q.flatten(0, 1)))
        torch.testing.assert_close(x, pos.double().repeat_interleave(4, 0), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["T3", "T2", "Tx", "Ty", "SO2", "RxSO2", "Rx", "SE2", "SO3", "SE3"])
def test_lift_is_exactly_equivariant_with_transformed_frames(name):
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(5)
    pos = torch.randn(15, group.space_dim, generator=gen, dtype=torch.float64) + 0.2
    g = group.sample(1, scale=1.5, dtype=torch.float64, generator=gen)[0]
    frames = moved_frames = None
    if group.frame_dim:
        frames = random_rotations((15, 3), group.frame_dim, dtype=torch.float64, generator=gen)
        moved_frames = group.rotate_frames(g, frames)
    a, q = group.lift(pos, 3, frames=frames)
    a2, q2 = group.lift(group.act(g, pos), 3, frames=moved_frames)
    torch.testing.assert_close(group.exp(a2), g @ group.exp(a), atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(q2, q, atol=1e-10, rtol=1e-10)


def test_stabilizer_samples_are_haar_uniform():
    gen = torch.Generator().manual_seed(6)
    R = random_rotations((20000,), 3, dtype=torch.float64, generator=gen)
    # first and second moments of the Haar measure: E[R] = 0, E[R_ij R_kl] = delta_ik delta_jl / 3
    assert R.mean(0).abs().max() < 0.02
    second = torch.einsum("nij,nkl->ijkl", R, R) / R.shape[0]
    expected = torch.einsum("ik,jl->ijkl", torch.eye(3), torch.eye(3)).double() / 3
    assert (second - expected).abs().max() < 0.02
    # SO(3) lift: the random part is a rotation about e1, uniform in angle
    x = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64)
    a, _ = SO3().lift(x, 5000, generator=gen)
    u = SO3().exp(a[0])
    rel = u[0].T @ u  # stabilizer elements relative to the first sample
    angle = torch.atan2(rel[:, 2, 1], rel[:, 1, 1])
    assert torch.allclose(rel[:, :, 0], torch.tensor([1.0, 0, 0], dtype=torch.float64).expand(5000, 3), atol=1e-12)
    assert angle.cos().mean().abs() < 0.05 and angle.sin().mean().abs() < 0.05
    # SE(2): stratified angles, each marginally uniform
    a, _ = SE2().lift(torch.zeros(4000, 2, dtype=torch.float64), 1, generator=gen)
    assert a[:, 0, 0].cos().mean().abs() < 0.05 and a[:, 0, 0].sin().mean().abs() < 0.05


def test_se3_float32_pair_logs_at_molecule_scale():
    gen = torch.Generator().manual_seed(7)
    pos = torch.randn(200, 3, generator=gen, dtype=torch.float64) * 3 + 30.0  # far from the origin
    a64, _ = SE3().lift(pos, 1, generator=gen)
    a64 = a64[:, 0]
    i, j = torch.randint(0, 200, (2, 2000), generator=gen)
    reference = SE3().pair_log(a64[i], a64[j])
    got = SE3().pair_log(a64.float()[i], a64.float()[j]).double()
    assert (got - reference).abs().max() < 5e-5


def test_user_defined_group_end_to_end():
    from torch_geometric_lieconv.models import LieResNet

    group = Affine1()
    pos = torch.randn(14, 1, dtype=torch.float64)
    batch = torch.tensor([0] * 6 + [1] * 8)
    lifted = lift_points(group, pos, batch, 2)
    assert lifted.a.shape == (28, 2)
    model = LieResNet(1, 2, group, hidden_channels=16, num_layers=2, mc_samples=100, fill=1.0, lift_samples=2).double().eval()
    x = torch.randn(14, 1, dtype=torch.float64)
    # the lift draws random scalings; a translation leaves them as they are (same seed), so the
    # model must be exactly invariant to translations, and not to scalings
    g = group.exp(torch.tensor([[0.0, 2.5]], dtype=torch.float64))[0]
    torch.manual_seed(1)
    out = model(x, pos, batch)
    torch.manual_seed(1)
    moved = model(x, group.act(g, pos), batch)
    torch.testing.assert_close(moved, out, atol=1e-10, rtol=1e-10)
    torch.manual_seed(1)
    scaled = model(x, 3.0 * pos, batch)
    assert (scaled - out).abs().max() > 1e3 * (moved - out).abs().max().clamp(min=1e-14)


@pytest.mark.parametrize("name", ["T3", "SE3", "SE2", "Tx", "SO2", "RxSO2", "Rx", "SO3", "Trivial3"])
def test_euclidean_radius_bounds_the_group_distance(name):
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(8)
    for scale in (0.3, 3.0):
        pos = torch.randn(300, group.space_dim, generator=gen, dtype=torch.float64) * scale
        lifted = lift_points(group, pos, None, 2, generator=gen)
        i, j = torch.randint(0, lifted.num_nodes, (2, 20000), generator=gen)
        abq = group.pair_embedding(lifted.a, lifted.q, torch.stack([j, i]))
        d = group.distance(abq)
        gap = (lifted.pos[i] - lifted.pos[j]).norm(dim=-1)
        max_norm = float(pos.norm(dim=-1).max())
        for r in (0.1, 0.5, 1.5):
            inside = d < r
            assert inside.any()
            assert gap[inside].max() <= group.euclidean_radius(r, max_norm)


@pytest.mark.parametrize("bad,match", [
    (torch.randn(5, 2), r"shape \[N, 3\]"),
    (torch.randn(5), r"shape \[N, 3\]"),
    (torch.tensor([[0.0, float("nan"), 1.0]]), "NaN"),
    (torch.tensor([[0.0, float("inf"), 1.0]]), "NaN or inf"),
    (torch.tensor([[1, 2, 3]]), "floating point"),
])
def test_bad_positions_raise_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        lift_points(SE3(), bad)


@pytest.mark.parametrize("name", ["SO2", "RxSO2", "Rx"])
def test_origin_raises_for_polar_lifts(name):
    with pytest.raises(ValueError, match="undefined at the origin"):
        lift_points(group_from_name(name), torch.tensor([[1.0, 2.0], [0.0, 0.0]]))


def test_so3_lifts_the_origin_to_a_random_rotation():
    a, q = SO3().lift(torch.zeros(1, 3, dtype=torch.float64), 3)
    assert torch.isfinite(a).all() and (q == 0).all()


def test_group_names_and_errors():
    for name, expected in [("SE3", "SE3"), ("SE(3)", "SE3"), ("se3", "SE3"), ("T3", "T"), ("T(2)", "T"),
                           ("Trivial(3)", "Trivial"), ("RxSO2", "RxSO2"), ("Tx", "Tx")]:
        assert type(group_from_name(name)).__name__ == expected
    assert group_from_name("T(2)").space_dim == 2
    with pytest.raises(ValueError, match="unknown group name 'XYZ'"):
        group_from_name("XYZ")
    with pytest.raises(ValueError, match="alpha"):
        SE3(alpha=1.5)
    with pytest.raises(ValueError, match="frames must have shape"):
        SE3().lift(torch.randn(4, 3), 2, frames=torch.eye(3).expand(4, 3, 3, 3))


def test_base_class_requires_the_four_maps():
    class Incomplete(LieGroup):
        space_dim, lie_dim, q_dim = 1, 1, 0

        def exp(self, a):
            return a

    with pytest.raises(TypeError):
        Incomplete()
