"""Hamiltonian vector fields, odeint rollouts and conservation metrics (torch_geometric_lieconv.dynamics)."""
import math

import pytest
import torch

from torch_geometric_lieconv.dynamics import (
    center_positions,
    conservation_metrics,
    hamiltonian_vector_field,
    join_state,
    kinetic_energy,
    relative_energy_error,
    rollout,
    rollout_mse,
    split_state,
    total_angular_momentum,
    total_linear_momentum,
)


pytestmark = pytest.mark.usefixtures("single_thread")  # many tiny ops: one thread is much faster


def _oscillators(mass: torch.Tensor, stiffness: torch.Tensor):
    """Independent 1-particle systems in 1D: H = p^2/2m + k q^2/2 (one system per row)."""
    batch = torch.arange(mass.numel())

    def energy(q, p):
        return kinetic_energy(p, mass, batch, mass.numel()) + 0.5 * (stiffness.view(-1, *[1] * (q.dim() - 1)) * q**2).sum(-1)

    return energy, batch


def test_vector_field_of_harmonic_oscillator_is_p_over_m_and_minus_kq():
    m = torch.tensor([0.5, 2.0], dtype=torch.float64)
    k = torch.tensor([3.0, 0.25], dtype=torch.float64)
    energy, _ = _oscillators(m, k)
    z = torch.tensor([[0.3, -1.2], [-2.0, 0.7]], dtype=torch.float64)
    field = hamiltonian_vector_field(energy, z)
    q, p = split_state(z)
    assert torch.allclose(field, join_state(p / m[:, None], -k[:, None] * q), atol=1e-14)


def test_vector_field_keeps_the_graph_only_when_gradients_are_enabled():
    k = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    energy = lambda q, p: 0.5 * (p**2).sum(-1) + 0.5 * k * (q**2).sum(-1)  # noqa: E731
    z = torch.tensor([[1.5, 0.0]], dtype=torch.float64)
    field = hamiltonian_vector_field(energy, z)
    (dk,) = torch.autograd.grad(field[0, 1], k)  # d(-k q)/dk = -q
    assert dk.item() == pytest.approx(-1.5)
    with torch.no_grad():
        assert not hamiltonian_vector_field(energy, z).requires_grad


def test_rk4_rollout_matches_the_analytic_oscillator():
    m = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    k = torch.tensor([3.0, 0.25, 10.0], dtype=torch.float64)
    energy, _ = _oscillators(m, k)
    z0 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]], dtype=torch.float64)
    t = 0.01 * torch.arange(200, dtype=torch.float64)
    with torch.no_grad():
        traj = rollout(lambda _, z: hamiltonian_vector_field(energy, z), z0, t)
    assert traj.shape == (3, 200, 2)
    omega = (k / m).sqrt()[:, None]
    q0, p0 = z0[:, :1], z0[:, 1:]
    q_exact = q0 * torch.cos(omega * t) + p0 / (m[:, None] * omega) * torch.sin(omega * t)
    assert (traj[:, :, 0] - q_exact).abs().max() < 1e-7  # RK4: O(dt^4)
    # the energy error is the integrator's, and shrinks ~16x when the step halves (4th order)
    errs = []
    for step in (0.01, 0.005):
        with torch.no_grad():
            tr = rollout(lambda _, z: hamiltonian_vector_field(energy, z), z0, t, step_size=step)
        q, p = split_state(tr)
        errs.append(relative_energy_error(energy(q, p)).max())
    assert 8 < errs[0] / errs[1] < 64


def test_momentum_totals_on_a_hand_example():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    p = torch.tensor([[0.0, 2.0], [-3.0, 0.0], [1.0, 1.0]])
    batch = torch.tensor([0, 0, 1])
    assert torch.equal(total_linear_momentum(p, batch, 2), torch.tensor([[-3.0, 2.0], [1.0, 1.0]]))
    # L = q_x p_y - q_y p_x: system 0: 1*2 + 1*3 = 5; system 1: 2*1 - 2*1 = 0
    assert torch.equal(total_angular_momentum(q, p, batch, 2), torch.tensor([5.0, 0.0]))
    q3 = torch.tensor([[1.0, 0.0, 0.0]])
    p3 = torch.tensor([[0.0, 1.0, 0.0]])
    assert torch.equal(total_angular_momentum(q3, p3, torch.tensor([0]), 1), torch.tensor([[0.0, 0.0, 1.0]]))


def test_centring_is_per_system_and_commutes_with_rotation():
    q = torch.randn(7, 2, dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    c = center_positions(q, batch, 2)
    assert c[:3].sum(0).abs().max() < 1e-14 and c[3:].sum(0).abs().max() < 1e-14
    a = 0.7
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
    assert torch.allclose(center_positions(q @ rot.T, batch, 2), c @ rot.T, atol=1e-14)


def test_conservation_metrics_detect_a_kick_and_ignore_a_conserving_motion():
    batch = torch.tensor([0, 0])
    q0 = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    p0 = torch.tensor([[0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    # a rigid rotation of a symmetric pair (momenta rotate with positions): P = 0 and L = 2 throughout
    angles = torch.linspace(0, 1, 5, dtype=torch.float64)
    rot = torch.stack([torch.stack([angles.cos(), -angles.sin()], -1), torch.stack([angles.sin(), angles.cos()], -1)], -2)
    q = torch.einsum("tij,nj->nti", rot, q0)
    p = torch.einsum("tij,nj->nti", rot, p0)
    metrics = conservation_metrics(join_state(q, p), batch, 1)
    assert metrics["linear_momentum"].abs().max() < 1e-15 and metrics["angular_momentum"].abs().max() < 1e-15
    kicked = p.clone()
    kicked[0, 2:, 0] += 0.5  # P jumps by (0.5, 0): relative drift 0.5 / (|p_1| + |p_2|) = 0.25
    metrics = conservation_metrics(join_state(q, kicked), batch, 1)
    assert metrics["linear_momentum"][0, 2:].tolist() == pytest.approx([0.25] * 3)
    assert metrics["linear_momentum"][0, :2].abs().max() == 0


def test_rollout_mse_and_bad_input():
    a = torch.zeros(2, 5, 4)
    b = torch.ones(2, 5, 4)
    b[:, 3:] = 3
    assert rollout_mse(a, b).item() == pytest.approx((3 * 1 + 2 * 9) / 5)
    assert rollout_mse(a, b, steps=3).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        rollout_mse(a, b[:, :4])
    with pytest.raises(ValueError, match="even"):
        split_state(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="1-D"):
        rollout(lambda t, z: z, torch.zeros(2, 2), torch.zeros(2, 2))
