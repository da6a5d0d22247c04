"""The physics on hand-made systems: every energy and force below was worked out by hand (in the
comments) for particles at the corners of a 3-4-5 triangle, with unequal masses, spring constants and
two systems in one batch, so the per-system sums are tested too.

Conventions (``dynamics.py``, ``datasets/springs.py``): ``z = [q, p]`` per particle, ``params[:, 0]`` the
masses, springs' ``params[:, 1]`` the constants k_i with stiffness K_ij = k_i k_j and rest length 0, each
spring i < j counted once: V = sum_{i<j} K_ij |q_i - q_j|^2; gravity V = -G sum_{i<j} m_i m_j / r_ij.
"""
import pytest
import torch

from torch_geometric_lieconv.datasets.springs import GravitySystem, ParticleSystem, SpringSystem
from torch_geometric_lieconv.dynamics import hamiltonian_vector_field, join_state, kinetic_energy, split_state
from torch_geometric_lieconv.models.hamiltonian import HamiltonianLieConv, SeparableHamiltonian
from torch_geometric_lieconv.testing import at_physical_force

pytestmark = pytest.mark.usefixtures("single_thread")

F64 = torch.float64


def t(rows):
    return torch.tensor(rows, dtype=F64)


# system 0: three particles at (0, 0), (3, 0), (0, 4): |q1 - q2| = 3, |q1 - q3| = 4, |q2 - q3| = 5
# system 1: two particles at (1, 1), (1, -1): |q1 - q2| = 2
Q = t([[0, 0], [3, 0], [0, 4], [1, 1], [1, -1]])
P = t([[1, 2], [-2, 4], [4, -8], [1, 0], [0, 4]])
M = t([1, 2, 4, 0.5, 8])
K = t([1, 2, 0.5, 2, 1.5])
BATCH = torch.tensor([0, 0, 0, 1, 1])

# T = |p|^2 / 2m: 5/2 + 20/4 + 80/8 = 17.5 and 1/1 + 16/16 = 2
KINETIC = t([17.5, 2.0])
# dq/dt = p / m
VELOCITY = t([[1, 2], [-1, 2], [1, -2], [2, 0], [0, 0.5]])

# springs: K12 = 2, K13 = 0.5, K23 = 1: V = 2*9 + 0.5*16 + 1*25 = 51; system 1: K = 3, V = 3*4 = 12
SPRING_V = t([51.0, 12.0])
# -dV/dq_i = -2 sum_j K_ij (q_i - q_j):
#   1: -2 (2 (-3, 0) + 0.5 (0, -4)) = (12, 4)     2: -2 (2 (3, 0) + 1 (3, -4)) = (-18, 8)
#   3: -2 (0.5 (0, 4) + 1 (-3, 4)) = (6, -12)     system 1: -2*3 (0, 2) = (0, -12) and (0, 12)
SPRING_FORCE = t([[12, 4], [-18, 8], [6, -12], [0, -12], [0, 12]])

# gravity (G = 1) with masses M: V = -(1*2/3 + 1*4/4 + 2*4/5) = -(2/3 + 1 + 1.6); system 1: -0.5*8/2 = -2
GRAVITY_V = t([-(2 / 3 + 1 + 1.6), -2.0])
# -dV/dq_i = -sum_j m_i m_j (q_i - q_j) / r^3:
#   1: -(2 (-3, 0)/27 + 4 (0, -4)/64) = (2/9, 1/4)
#   2: -(2 (3, 0)/27 + 8 (3, -4)/125) = (-2/9 - 24/125, 32/125)
#   3: -(4 (0, 4)/64 + 8 (-3, 4)/125) = (24/125, -1/4 - 32/125)
#   system 1: -(4 (0, 2)/8) = (0, -1) and (0, 1)
GRAVITY_FORCE = t([[2 / 9, 1 / 4], [-2 / 9 - 24 / 125, 32 / 125], [24 / 125, -1 / 4 - 32 / 125], [0, -1], [0, 1]])


def spring_params():
    return torch.stack([M, K], dim=-1)


def relative(got, expected):
    return ((got - expected).abs().max() / expected.abs().max()).item()


def test_kinetic_energy_uses_each_particles_own_mass_and_sums_per_system():
    assert relative(kinetic_energy(P, M, BATCH, 2), KINETIC) < 1e-15
    # extra dimensions between particles and coordinates: momenta doubled -> energies x4
    both = torch.stack([P, 2 * P], dim=1)
    assert relative(kinetic_energy(both, M, BATCH, 2), torch.stack([KINETIC, 4 * KINETIC], -1)) < 1e-15


def test_spring_energy_and_forces_match_the_hand_computation():
    system, params = SpringSystem(num_particles=3), spring_params()
    assert relative(system.potential(Q, params, BATCH, 2), SPRING_V) < 1e-15
    assert relative(system.hamiltonian(Q, P, params, BATCH, 2), KINETIC + SPRING_V) < 1e-15
    expected = join_state(VELOCITY, SPRING_FORCE)
    z = join_state(Q, P)
    assert relative(system.vector_field(z, params, BATCH, 2), expected) < 1e-15  # the closed form
    assert relative(ParticleSystem.vector_field(system, z, params, BATCH, 2), expected) < 1e-15  # autograd
    # quadratic: positions doubled (time dimension) -> energies x4
    both = torch.stack([Q, 2 * Q], dim=1)
    assert relative(system.potential(both, params, BATCH, 2), torch.stack([SPRING_V, 4 * SPRING_V], -1)) < 1e-15


@pytest.mark.parametrize("dim", [2, 3])
def test_gravity_energy_and_forces_match_the_hand_computation(dim):
    """In 3D the same triangle lies in the (x, z) plane; G = 2 doubles energies and forces."""
    embed = (lambda x: x) if dim == 2 else (lambda x: torch.stack([x[:, 0], torch.zeros_like(x[:, 0]), x[:, 1]], -1))
    q, p = embed(Q), embed(P)
    params = M.unsqueeze(-1)
    for gravity in (1.0, 2.0):
        system = GravitySystem(num_particles=3, dim=dim, gravity=gravity)
        assert relative(system.potential(q, params, BATCH, 2), gravity * GRAVITY_V) < 1e-15
        assert relative(system.hamiltonian(q, p, params, BATCH, 2), KINETIC + gravity * GRAVITY_V) < 1e-15
        field = system.vector_field(join_state(q, p), params, BATCH, 2)
        assert relative(field, join_state(embed(VELOCITY), gravity * embed(GRAVITY_FORCE))) < 1e-15
    # 1/r: positions doubled -> energies halved
    both = torch.stack([q, 2 * q], dim=1)
    assert relative(GravitySystem(dim=dim).potential(both, params, BATCH, 2),
                    torch.stack([GRAVITY_V, GRAVITY_V / 2], -1)) < 1e-15


def test_hamiltonian_vector_field_is_dh_dp_then_minus_dh_dq():
    """H = sum_i |p_i|^2 / 2 m_i + sum_i c_i (q_i . a)^3 (not symmetric in q and p, odd in q): its
    field is (p_i / m_i, -3 c_i (q_i . a)^2 a), derived by hand."""
    a, c = t([0.5, -2.0]), t([1, -1, 0.25, 2, 3])

    def energy(q, p):
        return kinetic_energy(p, M, BATCH, 2) + torch.zeros(2, dtype=F64).index_add(0, BATCH, c * (q @ a) ** 3)

    field = hamiltonian_vector_field(energy, join_state(Q, P))
    expected = join_state(VELOCITY, -3 * (c * (Q @ a) ** 2).unsqueeze(-1) * a)
    assert relative(field, expected) < 1e-15


class _SpringModel(SeparableHamiltonian):
    """The known spring potential as a 'learned' one: the model must add the kinetic energy of the
    masses in params[:, 0] and differentiate H into (p/m, -dV/dq)."""

    def __init__(self):
        super().__init__(2, 2)
        self.system = SpringSystem(num_particles=3)

    def potential(self, q, params, batch, num_systems):
        return self.system.potential(q, params, batch, num_systems)


def test_separable_hamiltonian_model_is_kinetic_plus_potential_and_its_field():
    model, params = _SpringModel(), spring_params()
    assert relative(model.hamiltonian(Q, P, params, BATCH, 2), KINETIC + SPRING_V) < 1e-15
    out = model(torch.tensor(0.0), join_state(Q, P), params, BATCH)
    assert relative(out, join_state(VELOCITY, SPRING_FORCE)) < 1e-15


def test_hamiltonian_lieconv_moves_positions_at_p_over_m_and_momenta_down_its_energy():
    """dq/dt = p / m exactly, for any weights (the learned potential depends on q only), with the
    spring constants in params[:, 1] distinct from the masses; dp/dt = -dH/dq by central differences."""
    torch.manual_seed(0)
    model = HamiltonianLieConv(2, "T2", hidden_channels=8, num_layers=1, mc_samples=8).double()
    params = spring_params()
    z = join_state(Q, P)
    at_physical_force(model, z, params, BATCH, 2)  # forces of the size of the true spring forces
    out = model(torch.tensor(0.0), z, params, BATCH)
    assert relative(split_state(out)[0], VELOCITY) < 1e-15
    h, force = 1e-4, torch.zeros_like(Q)
    with torch.no_grad():
        for i in range(Q.shape[0]):
            for d in range(2):
                e = torch.zeros_like(Q)
                e[i, d] = h
                up = model.hamiltonian(Q + e, P, params, BATCH, 2)[BATCH[i]]
                down = model.hamiltonian(Q - e, P, params, BATCH, 2)[BATCH[i]]
                force[i, d] = -(up - down) / (2 * h)
    assert force.abs().max() > 1.0  # the network is not flat
    assert relative(split_state(out)[1], force) < 1e-7
