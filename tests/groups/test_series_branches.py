"""Every numeric branch of the groups' exp and log, at its own scale and on both sides of its switch.

The switches (found in the code, read from it here so that the test points follow them):

* ``_series.SERIES_THRESHOLD`` = 0.25 on :math:`\\theta^2` (:math:`\\theta = 0.5`): every scalar function
  of ``_series`` (sinc, cosc, sincc, half_cot, the SE(3) :math:`V^{-1}` coefficient) switches from its
  Taylor series to its closed form; they make SO(3)/SE(3) exp, SE(3) log and SE(2) exp/log.
* ``spatial._SMALL_SIN2`` = 1e-8 on :math:`\\sin^2\\theta` (:math:`\\theta \\approx 10^{-4}`): the SO(3) log's
  series :math:`w = s(1 + s^2/6 + \\dots)` against its generic ``atan2`` form;
* :math:`\\cos\\theta = 0` (:math:`\\theta = \\pi/2`): the SO(3) log's generic form against its near-pi form;
* ``planar.BRANCH_CUT_SHIFT`` :math:`\\delta`: planar logs and angle differences jump by :math:`2\\pi` at
  :math:`-\\pi + \\delta` and :math:`\\pi + \\delta`.

References are independent of the package: the scalar closed forms evaluated in 60-digit
``decimal`` arithmetic (sin and cos summed to convergence), and float64 ``torch.linalg.matrix_exp`` of
the algebra matrices of ``group_reference``. Tolerances are a few float64 roundings *relative to the
quantity tested* (the angle, the translation), so a wrong series coefficient, a truncated series or a
cancelling closed form used where it loses digits (errors of 1e-13..1e-9 at small angles) is caught.
"""
import math
from decimal import Decimal, localcontext

import pytest
import torch

from torch_geometric_lieconv import group_from_name
from torch_geometric_lieconv.groups import _series, planar, spatial
from torch_geometric_lieconv.testing.group_reference import reference_exp, rotation_coordinates

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64
EPS = torch.finfo(F64).eps
DIGITS = 60


# ------------------------------------------------------------------------------ 60-digit references
def _dsin_dcos(x: Decimal):
    """sin x and cos x to DIGITS digits (Taylor sums to convergence; |x| <= 4 here)."""
    with localcontext() as ctx:
        ctx.prec = DIGITS + 10
        s, c, term_s, term_c, k = Decimal(0), Decimal(0), x, Decimal(1), 0
        while True:
            s_new, c_new = s + term_s, c + term_c
            if s_new == s and c_new == c:
                break
            s, c = s_new, c_new
            term_s = -term_s * x * x / ((2 * k + 2) * (2 * k + 3))
            term_c = -term_c * x * x / ((2 * k + 1) * (2 * k + 2))
            k += 1
        return s, c


def _closed_forms(t: Decimal):
    """The closed forms of ``_series``'s functions at theta = t, in DIGITS-digit arithmetic."""
    with localcontext() as ctx:
        ctx.prec = DIGITS
        s, c = _dsin_dcos(t)
        s2, c2 = _dsin_dcos(t / 2)
        half_cot = (t / 2) * c2 / s2
        return {
            "sinc": s / t,
            "cosc": (1 - c) / (t * t),
            "sincc": (t - s) / t**3,
            "half_cot": half_cot,
            "se3_left_jacobian_inverse_coefficient": (1 - half_cot) / (t * t),
        }


def reference(name: str, t2: torch.Tensor) -> torch.Tensor:
    """float64 rounding of the closed form ``name`` at the float64 inputs theta^2 = ``t2``."""
    with localcontext() as ctx:
        ctx.prec = DIGITS
        return torch.tensor([float(_closed_forms(Decimal(x).sqrt())[name]) for x in t2.tolist()], dtype=F64)


#: below this angle the functions must be as exact as their series: no cancellation is accepted there
#: (a fixed requirement, not read from the code: a switch moved lower would lose digits)
EXACT_BELOW = 0.5


def condition(name: str, t2: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """How many roundings the float64 closed form may lose to cancellation: theta / (theta - sin theta)
    for sincc, 1 / (1 - h) for V^-1's coefficient, at angles from EXACT_BELOW on; 1 elsewhere."""
    series = t2 < EXACT_BELOW**2
    if name == "sincc":
        kappa = 1 / (t2 * value)
    elif name == "se3_left_jacobian_inverse_coefficient":
        kappa = 1 / (t2 * value)
    else:
        kappa = torch.ones_like(t2)
    return torch.where(series, torch.ones_like(t2), kappa)


def angle_grid():
    """Angles from 1e-8 to 3, log spaced, plus points at relative distance 1e-12 and 1e-6 on both
    sides of every switch of the groups."""
    t = torch.logspace(-8, math.log10(3.0), 97, dtype=F64)
    switch = [math.sqrt(_series.SERIES_THRESHOLD), math.asin(math.sqrt(spatial._SMALL_SIN2)), math.pi / 2]
    near = [s * (1 + e) for s in switch for e in (-1e-6, -1e-12, 0.0, 1e-12, 1e-6)]
    return torch.cat([t, torch.tensor(near, dtype=F64)]).sort().values


SCALARS = ["sinc", "cosc", "sincc", "half_cot", "se3_left_jacobian_inverse_coefficient"]


# ---------------------------------------------------------------------------------- scalar series
@pytest.mark.parametrize("name", SCALARS)
def test_series_and_closed_form_match_60_digit_closed_form_from_1e8_to_3(name):
    """Each function of ``_series`` equals its closed form to 4 roundings below theta = 0.5 (the series'
    precision) and to 4 roundings times the closed form's own cancellation above, on both sides of
    SERIES_THRESHOLD and at every scale down to theta = 1e-8."""
    t2 = angle_grid() ** 2
    bound = math.sqrt(_series.SERIES_THRESHOLD)
    t2 = torch.cat([t2, torch.tensor([bound**2 * (1 + e) for e in (-4 * EPS, -EPS, EPS, 4 * EPS)], dtype=F64)])
    series = t2 < _series.SERIES_THRESHOLD
    assert series.any() and (~series).any()
    got = getattr(_series, name)(t2)
    expected = reference(name, t2)
    rel = ((got - expected) / expected).abs() / (EPS * condition(name, t2, expected))
    worst = int(rel.argmax())
    assert rel.max() < 4, (f"{name}: {rel.max():.1f} roundings at theta = {t2[worst].sqrt():.6g} "
                           f"({'series' if series[worst] else 'closed form'})")


def test_series_threshold_is_continuous_to_rounding():
    """Just below and just above the switch the two branches agree to the rounding of the values (the
    series is not truncated early and the closed form not used where it cancels)."""
    t2 = torch.tensor([_series.SERIES_THRESHOLD * (1 - 1e-15), _series.SERIES_THRESHOLD], dtype=F64)
    assert bool(t2[0] < _series.SERIES_THRESHOLD) and not bool(t2[1] < _series.SERIES_THRESHOLD)
    for name in SCALARS:
        below, above = getattr(_series, name)(t2).tolist()
        slope_allowance = 1e-15 * abs(below)  # the functions change by ~1e-16 relative over this step
        kappa = float(condition(name, t2[1:], torch.tensor([above], dtype=F64)))
        assert abs(below - above) <= 4 * EPS * kappa * abs(above) + slope_allowance, name


# ------------------------------------------------------------------------------ group exp and log
def _elements(name: str, angles: torch.Tensor, per_angle: int = 8, seed: int = 0) -> torch.Tensor:
    """Algebra coordinates with rotation angle ``angles`` (random axis / sign), the rest N(0, 1)."""
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(len(angles), per_angle, group.lie_dim, generator=gen, dtype=F64)
    rot = rotation_coordinates(name)
    axis = a[..., rot] / a[..., rot].norm(dim=-1, keepdim=True)
    a[..., rot] = axis * angles[:, None, None]
    return a.reshape(-1, group.lie_dim)


def _relative_errors(name: str, got: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """|got - a| per part, relative to the part's own size: the angle for the rotation part, the
    translation's norm for SE(d), 1 for RxSO(2)'s log-scale (exp(a_0) is O(1): known to eps absolute)."""
    rot = rotation_coordinates(name)
    rest = [k for k in range(a.shape[-1]) if k not in rot]
    errors = [(got[:, rot] - a[:, rot]).norm(dim=-1) / a[:, rot].norm(dim=-1)]
    if rest:
        scale = a[:, rest].norm(dim=-1) if name.startswith("SE") else torch.ones(len(a), dtype=F64)
        errors.append((got[:, rest] - a[:, rest]).norm(dim=-1) / scale)
    return torch.stack(errors, -1)


GROUPS = ["SO2", "RxSO2", "SE2", "SO3", "SE3"]


@pytest.mark.parametrize("name", GROUPS)
def test_log_of_matrix_exp_recovers_a_relative_to_its_size(name):
    """log(matrix_exp(A)) = a, rotation to 32 roundings *of the angle* (not of 1) from 1e-8 to 3 and on
    both sides of every switch: each branch of the log is exercised where it is chosen."""
    angles = angle_grid()
    a = _elements(name, angles)
    group = group_from_name(name)
    back = group.log(reference_exp(name, a))
    rel = _relative_errors(name, back, a) / EPS
    worst = int(rel.amax(-1).argmax())
    assert rel.max() < 32, f"{name}: {rel.max():.1f} roundings at {a[worst].tolist()}"


@pytest.mark.parametrize("name", GROUPS)
def test_exp_matches_matrix_exp_and_round_trips_relative_to_its_size(name):
    """exp(a) equals float64 matrix_exp to 16 roundings of the matrix's scale, and log(exp(a)) = a to
    32 roundings of each part's size: exp's series are as exact as its closed forms at every angle."""
    angles = angle_grid()
    a = _elements(name, angles, seed=1)
    group = group_from_name(name)
    got, expected = group.exp(a), reference_exp(name, a)
    scale = expected.abs().amax(dim=(-1, -2))
    assert ((got - expected).abs().amax(dim=(-1, -2)) / scale).max() < 16 * EPS
    rel = _relative_errors(name, group.log(got), a) / EPS
    worst = int(rel.amax(-1).argmax())
    assert rel.max() < 32, f"{name}: {rel.max():.1f} roundings at {a[worst].tolist()}"


def test_so3_log_switches_are_exercised_on_both_sides():
    """The test angles above straddle the SO(3) log's switches as the log itself computes them."""
    angles = angle_grid()
    R = reference_exp("SO3", _elements("SO3", angles, per_angle=1))
    s2 = (spatial.vee3(R) ** 2).sum(-1)
    cos = (R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    small = (s2 < spatial._SMALL_SIN2) & (cos > 0)
    assert small.sum() >= 10 and ((~small) & (cos > 0)).sum() >= 10 and (cos < 0).sum() >= 5
    near_switch = (angles / math.asin(math.sqrt(spatial._SMALL_SIN2)) - 1).abs() < 2e-6
    assert small[near_switch].any() and (~small[near_switch]).any()
    near_half_pi = (angles / (math.pi / 2) - 1).abs() < 2e-6
    assert (cos[near_half_pi] < 0).any() and (cos[near_half_pi] > 0).any()


def _rotation_z(theta: float):
    s, c = _dsin_dcos(Decimal(theta))
    return float(s), float(c)


def test_se2_and_se3_left_jacobians_against_60_digit_closed_forms():
    r"""In the rotation plane, V(theta) e_1 = (sin t / t, (1 - cos t) / t) and V(theta)^{-1} e_1 =
    ((t/2) cot(t/2), -t/2) for both SE(2) and SE(3) (w = t e_3), and V e_3 = V^{-1} e_3 = e_3 in 3D:
    each entry to 8 roundings of itself, on both sides of SERIES_THRESHOLD and down to 1e-8."""
    angles = angle_grid()
    ref = [_closed_forms(Decimal(float(t))) for t in angles.tolist()]
    sinc = torch.tensor([float(r["sinc"]) for r in ref], dtype=F64)
    one_minus_cos_over_t = angles * torch.tensor([float(r["cosc"]) for r in ref], dtype=F64)
    half_cot = torch.tensor([float(r["half_cot"]) for r in ref], dtype=F64)
    n = len(angles)
    zero, one = torch.zeros(n, dtype=F64), torch.ones(n, dtype=F64)

    def check(got, expected, what):
        rel = ((got - expected) / expected).abs() / EPS
        worst = int(rel.argmax())
        assert rel.max() < 8, f"{what}: {rel.max():.1f} roundings at theta = {angles[worst]:.6g}"

    se2, se3 = group_from_name("SE2"), group_from_name("SE3")
    t2 = se2.exp(torch.stack([angles, one, zero], -1))[:, :2, 2]
    t3 = se3.exp(torch.stack([zero, zero, angles, one, zero, zero], -1))[:, :3, 3]
    for t, what in ((t2, "SE(2) V"), (t3, "SE(3) V")):
        check(t[:, 0], sinc, f"{what} e1 . e1")
        check(t[:, 1], one_minus_cos_over_t, f"{what} e1 . e2")
    assert (t3[:, 2] == 0).all()
    assert torch.equal(se3.exp(torch.stack([zero, zero, angles, zero, zero, one], -1))[:, :3, 3],
                       torch.stack([zero, zero, one], -1))

    # V^-1 from the logs of [R_z(theta), e_1] with R_z rounded from 60 digits
    sc = torch.tensor([_rotation_z(t) for t in angles.tolist()], dtype=F64)
    g2 = torch.eye(3, dtype=F64).repeat(n, 1, 1)
    g2[:, 0, 0], g2[:, 0, 1], g2[:, 1, 0], g2[:, 1, 1] = sc[:, 1], -sc[:, 0], sc[:, 0], sc[:, 1]
    g2[:, 0, 2] = 1.0
    g3 = torch.eye(4, dtype=F64).repeat(n, 1, 1)
    g3[:, :2, :2], g3[:, :2, 3] = g2[:, :2, :2], g2[:, :2, 2]
    v2, v3 = se2.log(g2)[:, 1:], se3.log(g3)[:, 3:]
    for v, what in ((v2, "SE(2) V^-1"), (v3, "SE(3) V^-1")):
        check(v[:, 0], half_cot, f"{what} e1 . e1")
        check(v[:, 1], -angles / 2, f"{what} e1 . e2")
    assert (v3[:, 2].abs() <= EPS * angles).all()


# -------------------------------------------------------------------------------- planar branch cuts
@pytest.mark.parametrize("name", ["SO2", "RxSO2", "SE2"])
def test_planar_log_and_angle_difference_on_both_sides_of_the_cut(name):
    """log's angle is theta + 2 pi just below the cut -pi + delta and theta just above; angle
    differences d move into the same branch at both of its ends, -pi + delta and pi + delta."""
    delta = planar.BRANCH_CUT_SHIFT
    group = group_from_name(name)
    rot = rotation_coordinates(name)[0]
    cut = -math.pi + delta
    angles = torch.tensor([cut - 1e-3 * delta, cut - 1e-9, cut + 1e-9, cut + 1e-3 * delta,
                           math.pi + delta - 1e-9, math.pi - 1e-9], dtype=F64)
    wrapped = torch.tensor([cut - 1e-3 * delta + 2 * math.pi, cut - 1e-9 + 2 * math.pi, cut + 1e-9,
                            cut + 1e-3 * delta, math.pi + delta - 1e-9, math.pi - 1e-9], dtype=F64)
    a = torch.randn(len(angles), group.lie_dim, generator=torch.Generator().manual_seed(3), dtype=F64)
    a[:, rot] = angles
    back = group.log(reference_exp(name, a))[:, rot]
    assert (back - wrapped).abs().max() < 8 * EPS * math.pi

    # angle differences: the cut of the difference sits where the log's does, at both ends
    d = torch.tensor([math.pi + delta + 1e-9, math.pi + delta - 1e-9, cut + 1e-9, cut - 1e-9,
                      2 * math.pi - 1e-3, -2 * math.pi + 1e-3], dtype=F64)
    expected = torch.tensor([cut + 1e-9, math.pi + delta - 1e-9, cut + 1e-9, cut - 1e-9 + 2 * math.pi,
                             -1e-3, 1e-3], dtype=F64)
    theta_v = torch.full_like(d, -0.25)
    got = planar.angle_difference(theta_v + d, theta_v)
    assert (got - expected).abs().max() < 16 * EPS * math.pi
