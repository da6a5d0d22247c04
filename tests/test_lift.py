"""Lifting (Algorithm 1): u o_q = x, exact equivariance with transformed frames, Haar stabilizer
samples, the SO(3) lift's special points, gradients w.r.t. pos, ``lift_points`` bookkeeping and
errors, and the Euclidean radius bounds used to build candidate neighbourhoods.

Orbit origins o_q are written by hand in ``group_reference.py``.
"""
import math

import pytest
import torch
from torch.autograd import gradcheck

from torch_geometric_lieconv.testing.group_reference import ALL, orbit_origin
from torch_geometric_lieconv import group_from_name, lift_points
from torch_geometric_lieconv.groups import SE2, SE3, SO3
from torch_geometric_lieconv.groups import random_rotations
from torch_geometric_lieconv.testing.user_groups import USER_GROUPS, Affine1, make_group

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one thread is faster

F64 = torch.float64
TOL = {torch.float64: 1e-10, torch.float32: 2e-5}


def points(group, n, gen, dtype=F64, scale=3.0):
    """Random points including awkward ones: on the negative first axis (the atan2 cut in 2D, the
    antipode of the SO(3) orbit origin in 3D) and on the positive first axis."""
    pos = torch.randn(n, group.space_dim, generator=gen, dtype=F64) * scale
    pos[0] = 0
    pos[0, 0] = -2.5
    pos[1] = 0
    pos[1, 0] = 0.7
    return pos.to(dtype)


def origin_of(name, q):
    if name == "Affine1":
        return torch.zeros(q.shape[0], 1, dtype=q.dtype)
    return orbit_origin("SO2" if name == "MatrixSO2" else name, q)


# ------------------------------------------------------------------------------------ u o_q = x
@pytest.mark.parametrize("name", ALL + list(USER_GROUPS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lifted_element_maps_orbit_origin_to_the_point(name, dtype):
    """For every point and every stabilizer sample, act(exp(a), o_q) == x."""
    group = make_group(name)
    gen = torch.Generator().manual_seed(4)
    pos = points(group, 25, gen, dtype)
    k = 5
    a, q = group.lift(pos, k, generator=gen)
    assert a.shape == (25, k, group.lie_dim) and q.shape == (25, k, group.q_dim)
    assert a.dtype == dtype and q.dtype == dtype
    for s in range(k):
        x = group.act(group.exp(a[:, s]), origin_of(name, q[:, s]))
        torch.testing.assert_close(x, pos, atol=TOL[dtype] * 3, rtol=TOL[dtype])
    if group.lie_dim and group.frame_dim:  # the K samples differ (a stabilizer is sampled)
        assert (a[:, 0] - a[:, 1]).abs().max() > 1e-2


@pytest.mark.parametrize("name", ["SO3", "SE3"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_so3_lift_along_minus_and_plus_e1_and_batches_of_three(name, dtype):
    """Along -e1 every rotation with u e1 = x/|x| is a rotation by pi (a fixed section breaks down
    there); a batch of exactly 3 points must not be mistaken for a 3-vector (torch.cross's dim)."""
    group = group_from_name(name)
    cases = [
        torch.tensor([[-1.0, 0, 0], [1.0, 0, 0], [0, 0, 2.0]]),
        torch.tensor([[-3.0, 0, 0]]),
        torch.tensor([[-1e-3, 0, 0], [5.0, 0, 0], [-2.0, 1e-9, 0]]),
    ]
    for pos in cases:
        pos = pos.to(dtype)
        for k in (1, 3):
            a, q = group.lift(pos, k)
            assert torch.isfinite(a).all() and a.shape == (pos.shape[0], k, group.lie_dim)
            u = group.exp(a.flatten(0, 1))
            x = group.act(u, orbit_origin(name, q.flatten(0, 1)))
            torch.testing.assert_close(x, pos.repeat_interleave(k, 0), atol=TOL[dtype] * 10, rtol=TOL[dtype])
            R = u[:, :3, :3].double()
            torch.testing.assert_close(R.transpose(-1, -2) @ R, torch.eye(3, dtype=F64).expand_as(R), atol=1e-5, rtol=0)
            assert (torch.linalg.det(R) - 1).abs().max() < 1e-5


@pytest.mark.parametrize("column", [0, 1, 2])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_so3_lift_for_points_along_the_frame_axes(column, sign):
    """Points along +-F e_k of their own frame F: the lift must stay exact (a construction that
    projects the wrong frame column out of x/|x| would divide by zero here)."""
    frames = random_rotations((6, 2), 3, dtype=F64, generator=torch.Generator().manual_seed(3))
    pos = sign * 2.0 * frames[:, 0, :, column]
    a, q = SO3().lift(pos, 2, frames=frames)
    assert torch.isfinite(a).all()
    x = SO3().act(SO3().exp(a.flatten(0, 1)), orbit_origin("SO3", q.flatten(0, 1)))
    torch.testing.assert_close(x, pos.repeat_interleave(2, 0), atol=1e-12, rtol=0)


def test_so3_lifts_the_origin_to_a_haar_random_rotation():
    """The origin is an orbit of its own (q = 0) with stabilizer SO(3): u is the frame itself."""
    frames = random_rotations((1, 4), 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    pos = torch.zeros(1, 3, dtype=F64, requires_grad=True)
    a, q = SO3().lift(pos, 4, frames=frames)
    assert (q == 0).all()
    torch.testing.assert_close(SO3().exp(a), frames, atol=1e-12, rtol=0)
    (grad,) = torch.autograd.grad(a.sum() + q.sum(), pos)
    assert torch.isfinite(grad).all()
    # rotating the frames rotates the lift exactly (no dependence on rounding noise)
    R = random_rotations((), 3, dtype=F64, generator=torch.Generator().manual_seed(1))
    a2, _ = SO3().lift(pos.detach(), 4, frames=R @ frames)
    torch.testing.assert_close(SO3().exp(a2), R @ SO3().exp(a), atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------- exact equivariance
@pytest.mark.parametrize("name", ALL + list(USER_GROUPS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lift_is_exactly_equivariant_with_transformed_frames(name, dtype):
    r"""lift(g x, frames=rotate_frames(g, F)) == act_on_lift(g, lift(x, F)) as matrices, q invariant.

    For groups without frames the lift is deterministic; g.x means ``group.act(g, x)`` (the identity
    action of Trivial). Affine1 draws its stabilizer (scalings) without frames: equal seeds and a
    translation g give equal samples.
    """
    group = make_group(name)
    gen = torch.Generator().manual_seed(5)
    pos = points(group, 15, gen, F64)
    pos[0] *= -1  # keep off the SO(2)-family cut at angle pi, where the *coordinates* may wrap
    if name == "Affine1":
        g = group.exp(torch.tensor([[0.0, 1.7]], dtype=F64))[0]
    else:
        g = group.sample(1, scale=1.5, dtype=F64, generator=gen)[0]
    frames = moved_frames = None
    if group.frame_dim:
        frames = random_rotations((15, 3), group.frame_dim, dtype=F64, generator=gen)
        moved_frames = group.rotate_frames(g, frames).to(dtype)
        frames = frames.to(dtype)
    moved = group.act(g, pos).to(dtype)
    a, q = group.lift(pos.to(dtype), 3, frames=frames, generator=torch.Generator().manual_seed(1))
    a2, q2 = group.lift(moved, 3, frames=moved_frames, generator=torch.Generator().manual_seed(1))
    tol = TOL[dtype] * (10 if dtype == torch.float32 else 1)
    expected = group.exp(group.act_on_lift(g.to(dtype), a)).double()  # g exp(a), compared as matrices
    torch.testing.assert_close(group.exp(a2).double(), expected, atol=tol, rtol=tol)
    torch.testing.assert_close(expected, g @ group.exp(a).double(), atol=tol, rtol=tol)
    torch.testing.assert_close(q2, q, atol=tol, rtol=tol)
    if name not in ("Trivial2", "Trivial3"):
        assert (moved.double() - pos).abs().max() > 1e-2  # g really moved the points


# ------------------------------------------------------------------------------------ Haar measure
def test_se3_lift_rotations_have_haar_moments():
    """Rotation parts of SE(3) lifts: E[R] = 0 and E[R_ij R_kl] = delta_ik delta_jl / 3 (Haar)."""
    gen = torch.Generator().manual_seed(6)
    pos = torch.randn(1500, 3, generator=gen, dtype=F64)
    a, _ = SE3().lift(pos, 8, generator=gen)
    R = SE3().exp(a.flatten(0, 1))[:, :3, :3]
    n = R.shape[0]
    # standard errors: sqrt(1/3 / n) ~ 0.005 for E[R_ij], a bit less for the second moments
    assert R.mean(0).abs().max() < 0.02
    second = torch.einsum("nij,nkl->ijkl", R, R) / n
    expected = torch.einsum("ik,jl->ijkl", torch.eye(3, dtype=F64), torch.eye(3, dtype=F64)) / 3
    assert (second - expected).abs().max() < 0.02
    # translations are exactly the points
    torch.testing.assert_close(SE3().exp(a)[..., :3, 3], pos[:, None].expand(-1, 8, -1), atol=1e-12, rtol=0)


def test_so3_lift_stabilizer_samples_are_uniform_about_e1():
    """u_ref^-1 u over samples of one point is a rotation about e1 with a uniform angle."""
    gen = torch.Generator().manual_seed(6)
    x = torch.tensor([[0.3, -1.2, 2.0], [-4.0, 0.0, 0.0]], dtype=F64)
    a, _ = SO3().lift(x, 6000, generator=gen)
    for p in range(2):
        u = SO3().exp(a[p])
        rel = u[0].T @ u
        e1 = torch.tensor([1.0, 0, 0], dtype=F64).expand(6000, 3)
        torch.testing.assert_close(rel[:, :, 0], e1, atol=1e-12, rtol=0)
        angle = torch.atan2(rel[:, 2, 1], rel[:, 1, 1])
        for m in (1, 2, 3):  # Fourier moments of the uniform distribution on the circle vanish
            assert (m * angle).cos().mean().abs() < 0.05 and (m * angle).sin().mean().abs() < 0.05
        counts = torch.histc(angle, bins=8, min=-math.pi, max=math.pi)
        assert ((counts - 750).abs() < 150).all(), counts  # 750 +- 5 standard deviations


def test_se2_lift_angles_are_uniform_and_stratified():
    gen = torch.Generator().manual_seed(7)
    k = 4
    a, _ = SE2().lift(torch.randn(3000, 2, generator=gen, dtype=F64), k, generator=gen)
    theta = a[..., 0]
    for s in range(k):  # each sample is marginally uniform
        for m in (1, 2):
            assert (m * theta[:, s]).cos().mean().abs() < 0.06 and (m * theta[:, s]).sin().mean().abs() < 0.06
    # the K samples of a point are spread evenly over the circle (2 pi / K apart)
    step = torch.atan2(torch.sin(theta[:, 1:] - theta[:, :-1]), torch.cos(theta[:, 1:] - theta[:, :-1]))
    torch.testing.assert_close(step, torch.full_like(step, 2 * math.pi / k), atol=1e-10, rtol=0)


# ----------------------------------------------------------------------------------- gradients
GRAD_GROUPS = ALL + list(USER_GROUPS)


@pytest.mark.parametrize("name", GRAD_GROUPS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lift_gradient_is_finite(name, dtype):
    group = make_group(name)
    pos = points(group, 8, torch.Generator().manual_seed(8), dtype).requires_grad_(True)
    a, q = group.lift(pos, 3, generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad(a.sum() + q.sum() + group.exp(a).sum(), pos)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0


@pytest.mark.parametrize("name", [n for n in ALL if n not in ("Trivial2", "Trivial3")] + ["Affine1"])
def test_lift_gradient_is_correct(name):
    """gradcheck of x -> (exp(a(x)), q(x)) with fixed frames, including points on the negative first
    axis. (The coordinates a themselves jump there for SO(2)/SO(3): the log is at angle pi.)"""
    group = make_group(name)
    pos = points(group, 4, torch.Generator().manual_seed(9), F64)
    frames = None
    if group.frame_dim:
        frames = random_rotations((4, 2), group.frame_dim, dtype=F64, generator=torch.Generator().manual_seed(1))

    def lifted(x):
        a, q = group.lift(x, 2, frames=frames, generator=torch.Generator().manual_seed(2))
        return group.exp(a), q

    assert gradcheck(lifted, (pos.requires_grad_(True),), fast_mode=True)


# --------------------------------------------------------------------------------- lift_points
@pytest.mark.parametrize("name", ["SE3", "SO2", "Trivial2", "Tx"])
def test_lift_points_is_point_major_and_keeps_dtype(name):
    group = group_from_name(name)
    gen_pos = torch.Generator().manual_seed(10)
    pos = torch.randn(7, group.space_dim, generator=gen_pos) + 0.5
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    lifted = lift_points(group, pos, batch, 3, generator=torch.Generator().manual_seed(3))
    a, q = group.lift(pos, 3, generator=torch.Generator().manual_seed(3))
    assert lifted.num_nodes == 21 and lifted.lift_samples == 3
    torch.testing.assert_close(lifted.u, a.reshape(21, -1))
    torch.testing.assert_close(lifted.q, q.reshape(21, -1))
    assert lifted.u.dtype == lifted.q.dtype == torch.float32
    assert torch.equal(lifted.node_index, torch.arange(7).repeat_interleave(3))
    assert torch.equal(lifted.batch, batch.repeat_interleave(3))
    assert torch.equal(lifted.pos, pos.repeat_interleave(3, 0))
    sub = lifted.index_select(torch.tensor([5, 0]))
    assert torch.equal(sub.node_index, torch.tensor([1, 0])) and torch.equal(sub.u, lifted.u[[5, 0]])
    default_batch = lift_points(group, pos, None, 1)
    assert torch.equal(default_batch.batch, torch.zeros(7, dtype=torch.long))


# -------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bad,match", [
    (torch.randn(5, 2), r"SE3 acts on R\^3: pos must have shape \[N, 3\], got \[5, 2\]"),
    (torch.randn(5), r"pos must have shape \[N, 3\], got \[5\]"),
    (torch.randn(2, 5, 3), r"pos must have shape \[N, 3\], got \[2, 5, 3\]"),
    (torch.tensor([[0.0, float("nan"), 1.0]]), r"NaN or inf coordinates \(points \[0\]"),
    (torch.tensor([[0.0, 1.0, 1.0], [0.0, float("-inf"), 1.0]]), r"NaN or inf coordinates \(points \[1\]"),
    (torch.tensor([[1, 2, 3]]), "floating point"),
])
def test_bad_positions_raise_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        lift_points(SE3(), bad)


def test_non_tensor_inputs_raise():
    with pytest.raises(TypeError, match="pos must be a torch.Tensor"):
        lift_points(SE3(), [[0.0, 1.0, 2.0]])
    with pytest.raises(TypeError, match="group must be a LieGroup"):
        lift_points("SE3", torch.randn(3, 3))


@pytest.mark.parametrize("name", ["SO2", "RxSO2", "Rx"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_origin_raises_for_polar_lifts(name, dtype):
    with pytest.raises(ValueError, match=r"undefined at the origin.*points \[1\]"):
        lift_points(group_from_name(name), torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=dtype))
    lift_points(group_from_name(name), torch.tensor([[1e-6, 0.0]], dtype=dtype))  # near it is fine


@pytest.mark.parametrize("name,m", [("SE3", 3), ("SO3", 3), ("SE2", 2)])
def test_wrong_frames_shape_is_rejected(name, m):
    group = group_from_name(name)
    pos = torch.randn(4, group.space_dim)
    with pytest.raises(ValueError, match=rf"frames must have shape \[4, 2, {m}, {m}\], got \[4, 3, {m}, {m}\]"):
        lift_points(group, pos, None, 2, frames=torch.eye(m).expand(4, 3, m, m))
    with pytest.raises(ValueError, match="frames must have shape"):
        lift_points(group, pos, None, 2, frames=torch.eye(m).expand(4, 2, m, m)[..., :1])


def test_bad_lift_samples_and_batch_are_rejected():
    with pytest.raises(ValueError, match="lift_samples must be >= 1, got 0"):
        lift_points(SE3(), torch.randn(4, 3), None, 0)
    with pytest.raises(ValueError, match=r"batch must have shape \[4\] to match pos, got \[3\]"):
        lift_points(SE3(), torch.randn(4, 3), torch.zeros(3, dtype=torch.long))


# ----------------------------------------------------------------------------- euclidean_radius
BOUNDED = ["Trivial2", "Trivial3", "T2", "T3", "Tx", "Ty", "SO2", "RxSO2", "Rx", "SE2", "SO3", "SE3"]


def clustered_points(dim, scale, gen, n=16):
    """``3 n`` points at ``scale``: ``n`` centres, ``n`` points near them (offsets 1e-3 .. 1 times
    ``scale``), and ``n`` close points on the sphere of the largest norm (where the polar-type bounds,
    proportional to max |x|, are nearly attained)."""
    centres = torch.randn(n, dim, generator=gen, dtype=F64) * scale
    spread = torch.logspace(-3, 0, n, dtype=F64)[:, None] * scale
    near = centres + torch.randn(n, dim, generator=gen, dtype=F64) * spread
    radius = max(centres.norm(dim=-1).max(), near.norm(dim=-1).max())
    shell = torch.randn(dim, generator=gen, dtype=F64) + torch.randn(n, dim, generator=gen, dtype=F64) * spread / scale
    shell = shell / shell.norm(dim=-1, keepdim=True) * radius
    return torch.cat([centres, near, shell])


@pytest.mark.parametrize("name", BOUNDED)
def test_euclidean_radius_bounds_the_group_distance(name):
    """Whenever d(abq_ij) < r, |x_i - x_j| < euclidean_radius(r, max |x|), over all pairs, for several
    alphas, point scales and radii; lifts use random frames and shared frames (then the rotation part
    of log(v^-1 u) vanishes and the SE(2)/SE(3) bound r/(1-alpha) is attained)."""
    gen = torch.Generator().manual_seed(11)
    base = group_from_name(name)
    for scale in (0.1, 1.0, 10.0):
        pos = clustered_points(base.space_dim, scale, gen)
        n = pos.shape[0]
        max_norm = float(pos.norm(dim=-1).max())
        frames = [None]
        if base.frame_dim:
            eye = torch.eye(base.frame_dim, dtype=F64)
            frames.append(eye.expand(n, 2, *eye.shape))
        for fr in frames:
            lifted = lift_points(base, pos, None, 2, frames=fr, generator=gen)
            m = lifted.num_nodes
            i, j = torch.arange(m).repeat_interleave(m), torch.arange(m).repeat(m)
            abq = base.pair_embedding(lifted.u, lifted.q, torch.stack([j, i]))  # independent of alpha
            gap = (lifted.pos[i] - lifted.pos[j]).norm(dim=-1)
            for alpha in (None, 0.1, 0.5, 0.9):
                group = group_from_name(name, alpha=alpha)
                d = group.distance(abq)
                for r in (0.01, 0.1, 0.5, 2.0):
                    rho = group.euclidean_radius(r, max_norm)
                    assert rho is not None
                    worst = gap[d < r].max().item()
                    assert worst < rho, f"{name} alpha={group.alpha} scale={scale} r={r}: {worst} >= {rho}"


@pytest.mark.parametrize("name", ["T3", "Trivial3", "SE2", "SE3"])
def test_euclidean_radius_is_attained_where_it_is_exact(name):
    """T, Trivial: d = |x_i - x_j|; SE(2)/SE(3) with shared frames: d = (1 - alpha)|R^T(x_i - x_j)|.
    The bound must not be loose there (a loose bound costs candidate edges)."""
    gen = torch.Generator().manual_seed(12)
    group = group_from_name(name, alpha=0.3 if name.startswith("SE") else None)
    pos = torch.randn(300, group.space_dim, generator=gen, dtype=F64)
    frames = None
    if group.frame_dim:
        frames = torch.eye(group.frame_dim, dtype=F64).expand(300, 1, group.frame_dim, group.frame_dim)
    lifted = lift_points(group, pos, None, 1, frames=frames)
    i, j = torch.randint(0, 300, (2, 20000), generator=gen)
    d = group.distance(group.pair_embedding(lifted.u, lifted.q, torch.stack([j, i])))
    gap = (pos[i] - pos[j]).norm(dim=-1)
    r = 0.5
    assert gap[d < r].max() > 0.95 * group.euclidean_radius(r, float(pos.norm(dim=-1).max()))


def test_euclidean_radius_is_none_without_a_bound():
    assert SE3(alpha=1.0).euclidean_radius(1.0, 5.0) is None
    for name in ("SO2", "RxSO2", "Rx", "SO3", "Tx"):
        assert group_from_name(name, alpha=0.0).euclidean_radius(1.0, 5.0) is None
    assert Affine1().euclidean_radius(1.0, 5.0) is None  # the base class default
