"""The Lie group core: exp against matrix_exp, log near 0 and pi, gradients, left invariance of pair
logs, float32 pair logs at molecule scale, names and errors, user-defined groups.

Reference matrices come from ``torch.linalg.matrix_exp`` of the hand-written algebra bases in
``group_reference.py``, never from the package's own closed forms.
"""
import math
import re

import pytest
import torch
from torch.autograd import gradcheck
from torch.autograd.functional import jacobian

from torch_geometric_lieconv.testing.group_reference import (
    ALL,
    PLANAR_ROTATIONS,
    ROTATION_GROUPS,
    WITH_ALGEBRA,
    matrix_size,
    reference_exp,
    rotation_coordinates,
)
from torch_geometric_lieconv import group_from_name, lift_points
from torch_geometric_lieconv.groups import SE3, SO2, LieGroup
from torch_geometric_lieconv.groups import random_rotations
from torch_geometric_lieconv.groups.planar import BRANCH_CUT_SHIFT
from torch_geometric_lieconv.testing.user_groups import AFFINE1_GENERATORS, MATRIX_SO2_GENERATORS, USER_GROUPS, Affine1, MatrixSO2, make_group

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one thread is faster

F64 = torch.float64
#: stated tolerances (absolute, for unit-scale coordinates): float64 / float32
EXP_TOL = {torch.float64: 1e-12, torch.float32: 5e-6}
LOG_TOL = {torch.float64: 1e-12, torch.float32: 2e-6}


def with_angle(name, a, angle):
    """``a`` with its rotation part replaced by ``angle`` times the direction it had."""
    rot = rotation_coordinates(name)
    a = a.clone()
    direction = a[:, rot] / a[:, rot].norm(dim=-1, keepdim=True)
    a[:, rot] = direction * angle
    return a


def wrapped(theta):
    return torch.atan2(torch.sin(theta), torch.cos(theta))


# ---------------------------------------------------------------------------------------------- exp
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_exp_matches_matrix_exponential(name, dtype):
    """exp(a) == matrix_exp(sum a_k A_k), including angles beyond pi (exp has no branch cut)."""
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(300, group.lie_dim, generator=gen, dtype=F64) * 1.5
    expected = reference_exp(name, a)
    got = group.exp(a.to(dtype))
    assert got.dtype == dtype and got.shape == (300, matrix_size(name), matrix_size(name))
    scale = expected.abs().amax(dim=(-1, -2), keepdim=True).clamp_min(1.0)  # RxSO2/Rx scale exp(a_0)
    err = ((got.double() - expected) / scale).abs().max().item()
    assert err < EXP_TOL[dtype], f"{name} {dtype}: max |exp - matrix_exp| = {err:.1e}"


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_identity_exactly(name, dtype):
    group = group_from_name(name)
    n = matrix_size(name)
    eye = group.identity(5, dtype=dtype)
    assert torch.equal(eye, torch.eye(n, dtype=dtype).expand(5, n, n))
    assert torch.equal(group.log(eye), torch.zeros(5, group.lie_dim, dtype=dtype))


# ---------------------------------------------------------------------------------------------- log
TINY_TO_PI = [0.0] + torch.logspace(-6, 0, 13).tolist() + [2.0, 3.0, math.pi - 1e-2, math.pi - 1e-3, math.pi - 1e-4]


@pytest.mark.parametrize("name", ROTATION_GROUPS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_log_inverts_exp_from_tiny_angles_to_near_pi(name, dtype):
    """|log(exp(a)) - a| is small in *absolute* terms: float32 cannot resolve a 1e-6 rotation to
    relative precision (the matrix entries are 1 +- 1e-12), but must stay within LOG_TOL of it.

    Angles run from exactly 0 over log-spaced values to pi - 1e-4, with random signs/axes, and the
    other coordinates (translations, log-scale) N(0, 1). 3D rotations go to pi - 1e-6 as well.
    """
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(1)
    angles = TINY_TO_PI + ([math.pi - 1e-5, math.pi - 1e-6] if name in ("SO3", "SE3") else [])
    for angle in angles:
        a = with_angle(name, torch.randn(64, group.lie_dim, generator=gen, dtype=F64), angle)
        g = reference_exp(name, a).to(dtype)
        back = group.log(g)
        assert back.dtype == dtype
        err = (back.double() - a).abs().max().item()
        assert err < LOG_TOL[dtype], f"{name} {dtype} angle {angle}: |log(exp(a)) - a| = {err:.1e}"
        again = group.exp(back).double()
        assert (again - g.double()).abs().max().item() < 2 * EXP_TOL[dtype]


@pytest.mark.parametrize("name", PLANAR_ROTATIONS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_planar_log_range_and_branch_cut(name, dtype):
    """Planar logs take angles in (-pi + delta, pi + delta]: exactly pi and its neighbours map to +pi."""
    group = group_from_name(name)
    rot = rotation_coordinates(name)[0]
    delta = BRANCH_CUT_SHIFT
    angles = torch.tensor([math.pi, -math.pi, math.pi - 1e-7, math.pi + delta / 2, -math.pi + delta / 2,
                           -math.pi + 2 * delta, math.pi - 1e-4, -(math.pi - 1e-4)], dtype=F64)
    expected = torch.where(angles <= -math.pi + delta, angles + 2 * math.pi, angles)
    a = torch.randn(len(angles), group.lie_dim, generator=torch.Generator().manual_seed(9), dtype=F64)
    a[:, rot] = angles
    back = group.log(reference_exp(name, a).to(dtype)).double()
    theta = back[:, rot]
    assert (theta > -math.pi + delta - 1e-6).all() and (theta <= math.pi + delta + 1e-6).all()
    assert (theta - expected).abs().max() < LOG_TOL[dtype] + 2e-7 * (dtype == torch.float32)
    if name == "RxSO2":
        assert (back[:, 0] - a[:, 0]).abs().max() < LOG_TOL[dtype]


@pytest.mark.parametrize("name", ["SO3", "SE3"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_so3_log_at_exactly_pi(name, dtype):
    """A rotation by exactly pi: the log is one of +-pi n (both valid), finite, and exp(log g) == g."""
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(10)
    a = with_angle(name, torch.randn(50, group.lie_dim, generator=gen, dtype=F64), math.pi)
    g = reference_exp(name, a)
    back = group.log(g.to(dtype)).double()
    assert torch.isfinite(back).all()
    assert (back[:, :3].norm(dim=-1) - math.pi).abs().max() < 10 * LOG_TOL[dtype]
    axis = a[:, :3] / math.pi
    assert ((back[:, :3] / math.pi * axis).sum(-1).abs() - 1).abs().max() < 10 * LOG_TOL[dtype]  # +- the axis
    assert (group.exp(back.to(dtype)).double() - g).abs().max() < 10 * EXP_TOL[dtype]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_exp_log_round_trip_random_elements(name, dtype):
    group = group_from_name(name)
    g = group.sample(200, scale=1.5, dtype=F64, generator=torch.Generator().manual_seed(2)).to(dtype)
    tol = 1e-12 if dtype == F64 else 2e-5
    torch.testing.assert_close(group.exp(group.log(g)), g, atol=tol, rtol=tol)


# ---------------------------------------------------------------------------------------- gradients
def angle_sample(name, where, n=3, dtype=F64, gap=1e-4, seed=0):
    """Coordinates at the identity, or with a rotation angle pi - gap (planar: positive angles)."""
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(seed)
    if where == "identity":
        return torch.zeros(n, group.lie_dim, dtype=dtype)
    a = torch.randn(n, group.lie_dim, generator=gen, dtype=F64) * 0.5
    if where == "near_pi":
        a = with_angle(name, a, math.pi - gap)
        if name in PLANAR_ROTATIONS:
            a[:, rotation_coordinates(name)] = math.pi - gap
    return a.to(dtype)


CASES = [(n, w) for n in WITH_ALGEBRA for w in ("identity", "random")] + [(n, "near_pi") for n in ROTATION_GROUPS]


@pytest.mark.parametrize("name,where", CASES)
def test_log_of_exp_has_identity_jacobian(name, where):
    """d log(exp(a)) / da == I, also at a == 0 and at angle pi - 1e-4 (float64)."""
    group = group_from_name(name)
    a = angle_sample(name, where, n=1)[0]
    J = jacobian(lambda x: group.log(group.exp(x)), a)
    torch.testing.assert_close(J, torch.eye(group.lie_dim, dtype=F64), atol=1e-9, rtol=0)


@pytest.mark.parametrize("name,where", CASES)
def test_exp_and_pair_log_gradients_are_correct(name, where):
    """gradcheck (analytic vs finite differences) of exp and of pair_log for identity pairs (i, i)
    and for pairs whose relative element is the sampled one (angle near pi)."""
    group = group_from_name(name)
    a = angle_sample(name, where, n=2)
    check = lambda f, *x: gradcheck(f, tuple(t.clone().requires_grad_(True) for t in x), fast_mode=True)  # noqa: E731
    assert check(group.exp, a)
    assert check(lambda u: group.pair_log(u, u), a)
    assert check(group.pair_log, a, a)
    v = torch.randn(2, group.lie_dim, generator=torch.Generator().manual_seed(3), dtype=F64) * 0.5
    u = group.log(group.exp(v) @ group.exp(a))  # v^-1 u = exp(a)
    torch.testing.assert_close(group.pair_log(u, v), a, atol=1e-10, rtol=0)
    assert check(group.pair_log, u, v)


@pytest.mark.parametrize("name", ROTATION_GROUPS + ["T3", "Tx", "Rx", "Trivial3"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_finite_at_identity_pairs_and_extremely_near_pi(name, dtype):
    """Finite gradients of log(exp(a)), pair_log and the distance at (i, i) pairs and at pi - 1e-7, pi - 1e-9."""
    group = group_from_name(name)
    for where, gap in [("identity", 0.0), ("near_pi", 1e-7), ("near_pi", 1e-9)]:
        if where == "near_pi" and name not in ROTATION_GROUPS:
            continue
        a = angle_sample(name, where, n=3, dtype=dtype, gap=gap).requires_grad_(True)
        z = torch.zeros_like(a, requires_grad=True)
        q = torch.randn(3, group.q_dim, dtype=dtype)
        self_pairs = torch.cat([group.pair_log(a, a), q, q], -1)
        out = (group.log(group.exp(a)).sum() + group.pair_log(a, z).sum() + group.pair_log(z, a).sum()
               + group.pair_log(z, z).sum() + group.distance(self_pairs).sum())
        grads = torch.autograd.grad(out, (a, z), allow_unused=True)
        for g in grads:
            assert g is None or torch.isfinite(g).all(), f"{name} {dtype} {where} {gap}"


# ------------------------------------------------------------------------------- left invariance
@pytest.mark.parametrize("name", WITH_ALGEBRA + list(USER_GROUPS))
def test_pair_logs_are_left_invariant(name):
    r""":math:`\log((w v)^{-1}(w u)) = \log(v^{-1} u)` for lifted u, v and a random w (via act_on_lift)."""
    group = make_group(name)
    gen = torch.Generator().manual_seed(3)
    pos = torch.randn(12, group.space_dim, generator=gen, dtype=F64) * 2 + 0.3
    a, _ = group.lift(pos, 2, generator=gen)
    a = a.reshape(-1, group.lie_dim)
    i, j = torch.randint(0, a.shape[0], (2, 60), generator=gen)
    for _ in range(3):
        w = group.sample(1, dtype=F64, generator=gen)[0]
        moved = group.act_on_lift(w, a)
        before, after = group.pair_log(a[i], a[j]), group.pair_log(moved[i], moved[j])
        torch.testing.assert_close(after, before, atol=1e-9, rtol=0)
        # not vacuous: the lifted elements moved, and moving only one side changes the pair log
        assert (moved - a).abs().max() > 1e-2
        assert (group.pair_log(moved[i], a[j]) - before).abs().max() > 1e-2


@pytest.mark.parametrize("name", ALL + list(USER_GROUPS))
def test_pair_embedding_layout_against_explicit_inverse(name):
    """Row e of pair_embedding is [log(v_j^-1 u_i), q_i, q_j] for edge_index[:, e] = (j, i)."""
    group = make_group(name)
    gen = torch.Generator().manual_seed(4)
    pos = torch.randn(7, group.space_dim, generator=gen, dtype=F64) + 0.5
    a, q = group.lift(pos, 1, generator=gen)
    a, q = a[:, 0], q[:, 0]
    src, dst = torch.randint(0, 7, (2, 30), generator=gen)
    abq = group.pair_embedding(a, q, torch.stack([src, dst]))
    assert abq.shape == (30, group.embedding_dim)
    if group.lie_dim:
        expected = group.log(torch.linalg.inv(group.exp(a[src])) @ group.exp(a[dst]))
        torch.testing.assert_close(abq[:, : group.lie_dim], expected, atol=1e-10, rtol=0)
    torch.testing.assert_close(abq[:, group.lie_dim : group.lie_dim + group.q_dim], q[dst])
    torch.testing.assert_close(abq[:, group.lie_dim + group.q_dim :], q[src])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_se2_closed_form_pair_embedding_matches_the_matrix_path(dtype):
    """SE(2) overrides pair_embedding with a closed form; it must equal log(exp(-a_v) exp(a_u)) through
    3x3 matrices (the base class's path), at relative angles near 0, exactly pi (antipodal lifts) and
    across the branch cut, and its gradients must be right."""
    group = group_from_name("SE2")
    gen = torch.Generator().manual_seed(7)
    n = 64
    theta = torch.rand(n, generator=gen, dtype=F64) * 2 * math.pi - math.pi + 2 * BRANCH_CUT_SHIFT
    theta[:8] = math.pi / 2  # pairs (i, i + 8) differ by exactly pi, both ways
    theta[8:16] = -math.pi / 2
    theta[16:24] = torch.pi + BRANCH_CUT_SHIFT / 2  # the top of the branch
    theta[24:32] = -torch.pi + 2 * BRANCH_CUT_SHIFT
    a = torch.cat([theta.unsqueeze(-1), torch.randn(n, 2, generator=gen, dtype=F64) * 8], dim=-1).to(dtype)
    q = a.new_zeros(n, 0)
    src, dst = torch.randint(0, n, (2, 400), generator=gen)
    src[:16], dst[:16] = torch.arange(16), (torch.arange(16) + 8) % 16
    src[16:32], dst[16:32] = torch.arange(16, 32), torch.arange(31, 15, -1)
    edge_index = torch.stack([src, dst])
    fast = group.pair_embedding(a, q, edge_index)
    matrices = LieGroup.pair_embedding(group, a, q, edge_index)
    assert fast.dtype == dtype
    # float32: the edge arithmetic runs in float32, so its rounding is relative to the size of the values
    scale = float(matrices.abs().max())
    torch.testing.assert_close(fast, matrices, atol=(1e-12 if dtype == F64 else 2e-7 * scale), rtol=0)
    torch.testing.assert_close(fast[:16, 0], torch.full((16,), math.pi, dtype=dtype))  # antipodes: +pi, never -pi
    a64 = a.to(F64).clone().requires_grad_(True)
    assert gradcheck(lambda x: group.pair_embedding(x, q.to(F64), edge_index[:, 32:60]), (a64,), fast_mode=True)


@pytest.mark.parametrize("name", ALL + list(USER_GROUPS))
def test_distance_is_symmetric_nonnegative_and_zero_on_self_pairs(name):
    group = make_group(name)
    gen = torch.Generator().manual_seed(5)
    pos = torch.randn(20, group.space_dim, generator=gen, dtype=F64) + 0.5
    lifted = lift_points(group, pos, None, 2, generator=gen)
    i, j = torch.randint(0, lifted.num_nodes, (2, 200), generator=gen)
    d_ij = group.distance(group.pair_embedding(lifted.u, lifted.q, torch.stack([j, i])))
    d_ji = group.distance(group.pair_embedding(lifted.u, lifted.q, torch.stack([i, j])))
    torch.testing.assert_close(d_ij, d_ji, atol=1e-10, rtol=0)
    assert (d_ij >= 0).all() and (d_ij[i != j] > 0).any()
    self_idx = torch.arange(lifted.num_nodes)
    d_self = group.distance(group.pair_embedding(lifted.u, lifted.q, torch.stack([self_idx, self_idx])))
    assert d_self.abs().max() < 1e-12


@pytest.mark.parametrize("name", WITH_ALGEBRA + list(USER_GROUPS))
def test_act_is_a_group_action(name):
    """act(g h, x) == act(g, act(h, x)), act(e, x) == x, and inv from the base class is the inverse."""
    group = make_group(name)
    gen = torch.Generator().manual_seed(6)
    g, h = group.sample(2, dtype=F64, generator=gen)
    x = torch.randn(10, group.space_dim, generator=gen, dtype=F64)
    torch.testing.assert_close(group.act(g @ h, x), group.act(g, group.act(h, x)), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(group.act(group.identity(dtype=F64), x), x)
    torch.testing.assert_close(group.inv(g) @ g, group.identity(dtype=F64), atol=1e-12, rtol=0)


# ------------------------------------------------------------------- float32 pair logs, molecules
OFFSETS = (0.0, 10.0, 30.0, 50.0)


def test_se3_float32_pair_logs_at_molecule_scale():
    """Points N(0, 3^2) Angstrom shifted by 0, 10, 30 or 50 Angstrom (pairs within one shift): float32
    pair logs (from float32 lifts, and from float64 lifts rounded to float32) agree with the float64
    pipeline to 2e-5 absolute.

    Pure float32 matrix products reach ~3e-5 at offset 50 (benchmarks/group_precision.py); the
    float64 evaluation of pair logs (``pair_dtype``) keeps the error at input rounding, ~1e-5.
    """
    gen = torch.Generator().manual_seed(7)
    n = 100
    pos = torch.randn(len(OFFSETS), n, 3, generator=gen, dtype=F64) * 3
    pos[:, :, 0] += torch.tensor(OFFSETS, dtype=F64)[:, None]
    pos = pos.reshape(-1, 3)
    frames = random_rotations((pos.shape[0], 1), 3, dtype=F64, generator=gen)
    group = SE3()
    a64 = group.lift(pos, 1, frames=frames)[0][:, 0]
    a32 = group.lift(pos.float(), 1, frames=frames.float())[0][:, 0]
    assert a32.dtype == torch.float32
    block = torch.arange(len(OFFSETS)).repeat_interleave(500) * n
    i, j = torch.randint(0, n, (2, block.numel()), generator=gen) + block
    reference = group.pair_log(a64[i], a64[j])
    assert reference[:, 3:].norm(dim=-1).max() > 10  # molecule-sized relative translations
    for a in (a32, a64.float()):
        got = group.pair_log(a[i], a[j])
        assert got.dtype == torch.float32
        err = (got.double() - reference).abs().amax(-1).reshape(len(OFFSETS), -1).amax(-1)
        assert (err < 2e-5).all(), f"float32 pair log errors per offset {OFFSETS}: {err.tolist()}"


# ------------------------------------------------------------------------------- names, errors
@pytest.mark.parametrize("name,cls,dim", [
    ("SE3", "SE3", 3), ("SE(3)", "SE3", 3), ("se3", "SE3", 3), ("T3", "T", 3), ("T(2)", "T", 2),
    ("Trivial(3)", "Trivial", 3), ("Trivial2", "Trivial", 2), ("RxSO2", "RxSO2", 2), ("Tx", "Tx", 2),
    ("ty", "Ty", 2), ("SO(2)", "SO2", 2), ("so3", "SO3", 3), ("SE2", "SE2", 2), ("Rx", "Rx", 2),
])
def test_group_from_name_accepts(name, cls, dim):
    group = group_from_name(name)
    assert type(group).__name__ == cls and group.space_dim == dim
    assert group_from_name(name, alpha=0.7).alpha == 0.7


@pytest.mark.parametrize("name", ["XYZ", "SE4", "SE(4)", "T0", "T", "Trivial", "", "SO(3)x"])
def test_group_from_name_rejects(name):
    with pytest.raises(ValueError, match=re.escape(f"unknown group name {name!r}") + ".*known groups"):
        group_from_name(name)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_outside_unit_interval_is_rejected(alpha):
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        SE3(alpha=alpha)
    with pytest.raises(ValueError, match="alpha"):
        group_from_name("SO2", alpha=alpha)


def test_base_class_requires_the_four_maps():
    class Incomplete(LieGroup):
        space_dim, lie_dim, q_dim = 1, 1, 0

        def exp(self, a):
            return a

    with pytest.raises(TypeError):
        Incomplete()


# --------------------------------------------------------------------------------- user groups
@pytest.mark.parametrize("cls,generators", [(Affine1, AFFINE1_GENERATORS), (MatrixSO2, MATRIX_SO2_GENERATORS)])
def test_user_group_exp_log(cls, generators):
    group = cls()
    a = torch.randn(100, group.lie_dim, generator=torch.Generator().manual_seed(8), dtype=F64)
    a[:5] *= 1e-8  # the series branch of Affine1
    A = sum(a[:, k, None, None] * G.double() for k, G in enumerate(generators))
    torch.testing.assert_close(group.exp(a), torch.linalg.matrix_exp(A), atol=1e-12, rtol=1e-12)
    a = a.clamp(-3, 3)
    torch.testing.assert_close(group.log(group.exp(a)), a, atol=1e-12, rtol=0)


def test_user_matrix_so2_matches_builtin_so2():
    """The base-class pair embedding (through matrices) of a user's SO(2) equals the built-in one."""
    gen = torch.Generator().manual_seed(11)
    pos = torch.randn(30, 2, generator=gen, dtype=F64)
    edges = torch.randint(0, 30, (2, 300), generator=gen)
    user, builtin = MatrixSO2(), SO2()
    lu, lb = lift_points(user, pos), lift_points(builtin, pos)
    eu, eb = user.pair_embedding(lu.u, lu.q, edges), builtin.pair_embedding(lb.u, lb.q, edges)
    # the user's atan2 log cuts at -pi, the built-in one at -pi + 1e-5: compare the angle modulo 2 pi
    torch.testing.assert_close(wrapped(eu[:, 0] - eb[:, 0]), torch.zeros(300, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(eu[:, 1:], eb[:, 1:])
    with pytest.raises(ValueError, match="undefined at the origin"):
        lift_points(user, torch.zeros(2, 2))


def test_user_defined_group_end_to_end():
    """A user group (Affine1) runs through LieResNet; the model is exactly invariant to its translations."""
    from torch_geometric_lieconv.models import LieResNet

    group = Affine1()
    pos = torch.randn(14, 1, dtype=F64)
    batch = torch.tensor([0] * 6 + [1] * 8)
    lifted = lift_points(group, pos, batch, 2)
    assert lifted.u.shape == (28, 2)
    model = LieResNet(1, 2, group, hidden_channels=16, num_layers=2, mc_samples=100, fill=1.0, lift_samples=2)
    model = model.double().eval()
    x = torch.randn(14, 1, dtype=F64)
    # the lift draws random scalings; a translation leaves them as they are (same seed), so the
    # model must be exactly invariant to translations, and not to scalings
    g = group.exp(torch.tensor([[0.0, 2.5]], dtype=F64))[0]
    torch.manual_seed(1)
    out = model(x, pos, batch)
    torch.manual_seed(1)
    moved = model(x, group.act(g, pos), batch)
    torch.testing.assert_close(moved, out, atol=1e-10, rtol=1e-10)
    torch.manual_seed(1)
    scaled = model(x, 3.0 * pos, batch)
    assert (scaled - out).abs().max() > 1e3 * (moved - out).abs().max().clamp(min=1e-14)
