"""Spring and gravity systems: the physics, the sampler, the cached dataset."""
import json
import math
import os

import pytest
import torch
from torch_geometric.loader import DataLoader

from torch_geometric_lieconv.datasets.springs import (
    GravitySystem,
    ParticleDynamics,
    ParticleSystem,
    SpringSystem,
    generate_systems,
    system_params,
)
from torch_geometric_lieconv.dynamics import conservation_metrics, split_state
from torch_geometric_lieconv.testing import spring_systems

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("single_thread")  # many tiny ops: one thread is much faster


def _rotation(angle: float) -> torch.Tensor:
    return torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=F64)


# ----------------------------------------------------------------------------------------------- the physics
def test_spring_potential_and_force_match_the_pair_sum_definition():
    system = SpringSystem()
    z, params, batch = spring_systems(3)
    q, _ = split_state(z)
    k = params[:, 1]
    brute = []
    for s in range(3):
        qs, ks = q[batch == s], k[batch == s]
        total = sum(0.5 * ks[i] * ks[j] * (qs[i] - qs[j]).pow(2).sum() for i in range(6) for j in range(6))
        brute.append(total)
    assert torch.allclose(system.potential(q, params, batch, 3), torch.stack(brute), rtol=1e-12)
    # the closed-form vector field equals the autograd one of the Hamiltonian
    assert torch.allclose(system.vector_field(z, params, batch, 3),
                          ParticleSystem.vector_field(system, z, params, batch, 3), atol=1e-12)


def test_gravity_potential_matches_the_pair_sum_and_sampler_matches_the_reference_setup():
    system = GravitySystem()
    z, params, batch = spring_systems(2, system=system)
    q, p = split_state(z)
    m = params[:, 0]
    brute = [-sum(m[s * 6 + i] * m[s * 6 + j] / (q[s * 6 + i] - q[s * 6 + j]).norm()
                  for i in range(6) for j in range(i + 1, 6)) for s in range(2)]
    assert torch.allclose(system.potential(q, params, batch, 2), torch.stack(brute), rtol=1e-12)
    star = m == 32.0
    assert int(star.sum()) == 2 and q[star].abs().max() == 0 and p[star].abs().max() == 0
    planets = ~star  # circular orbits around the star: |v| = sqrt(M / r), v perpendicular to q
    v = p[planets] / m[planets, None]
    r = q[planets].norm(dim=-1)
    assert torch.allclose(v.norm(dim=-1), (32.0 / r).sqrt(), rtol=1e-12)
    assert (v * q[planets]).sum(-1).abs().max() < 1e-12


@pytest.mark.parametrize("system,traj_len", [(SpringSystem(), 500), (GravitySystem(), 100)])
def test_generated_trajectories_conserve_energy_and_momenta(system, traj_len):
    num = 16
    traj, params, t = generate_systems(system, num, traj_len=traj_len, seed=3)
    assert traj.shape == (num * 6, traj_len, 4) and torch.allclose(t[1:] - t[:-1], torch.full((traj_len - 1,), 0.01, dtype=F64))
    batch = torch.arange(num).repeat_interleave(6)
    energy = lambda q, p: system.hamiltonian(q, p, params, batch, num)  # noqa: E731
    drift = conservation_metrics(traj, batch, num, energy)
    assert drift["linear_momentum"].max() < 1e-12  # linear invariant: RK4 keeps it to rounding
    assert drift["angular_momentum"].max() < 1e-5
    assert drift["energy"].max() < 1e-4
    # the errors are the integrator's: one RK4 step per sample instead of four loses much more energy
    coarse, _, _ = generate_systems(system, num, traj_len=traj_len, seed=3, substeps=1)
    coarse_drift = conservation_metrics(coarse, batch, num, energy)
    assert coarse_drift["energy"].max() > 30 * drift["energy"].max()
    assert coarse_drift["linear_momentum"].max() < 1e-12


def test_two_springs_follow_the_analytic_solution_at_the_sample_times():
    r"""The time scale: two particles with :math:`V = k_1 k_2 |q_1 - q_2|^2` (the pair sum of the
    definition) move as a free centre of mass plus a harmonic oscillation of :math:`r = q_1 - q_2` with
    :math:`\omega^2 = 2 k_1 k_2 / \mu`; the generated states at :math:`t = k\,dt` are that solution."""
    dt, steps = 0.05, 80
    traj, params, t = generate_systems(SpringSystem(num_particles=2), 3, traj_len=steps, dt=dt, seed=4)
    torch.testing.assert_close(t, dt * torch.arange(steps, dtype=torch.float64))
    q, p = split_state(traj)  # [6, T, 2]
    for s in range(3):
        (m1, k1), (m2, k2) = params[2 * s].tolist(), params[2 * s + 1].tolist()
        q1, q2, p1, p2 = q[2 * s], q[2 * s + 1], p[2 * s, 0], p[2 * s + 1, 0]
        mass, mu = m1 + m2, m1 * m2 / (m1 + m2)
        omega = math.sqrt(2 * k1 * k2 / mu)
        times = (dt * torch.arange(steps, dtype=torch.float64)).unsqueeze(-1)
        centre = (m1 * q1[0] + m2 * q2[0]) / mass + times * (p1 + p2) / mass
        r = (q1[0] - q2[0]) * torch.cos(omega * times) + (p1 / m1 - p2 / m2) / omega * torch.sin(omega * times)
        assert omega * dt * steps > 2 * math.pi  # at least one period: a wrong time scale cannot hide
        scale = float(r.abs().max())
        torch.testing.assert_close(q1, centre + m2 / mass * r, atol=1e-6 * scale, rtol=0)
        torch.testing.assert_close(q2, centre - m1 / mass * r, atol=1e-6 * scale, rtol=0)


@pytest.mark.parametrize("system", [SpringSystem(), GravitySystem()])
def test_positions_move_at_p_over_m_along_generated_trajectories(system):
    """dq/dt = p/m by the five-point difference of the stored samples (error O(dt^4))."""
    dt = 0.002
    traj, params, _ = generate_systems(system, 4, traj_len=40, dt=dt, seed=2)
    q, p = split_state(traj)
    difference = (-q[:, 4:] + 8 * q[:, 3:-1] - 8 * q[:, 1:-3] + q[:, :-4]) / 12
    expected = p[:, 2:-2] / params[:, :1, None]
    scale = expected.abs().max()
    assert (difference / dt - expected).abs().max() / scale < 1e-4
    # a sample interval off by a factor of 2 shows as a velocity off by 2
    assert (difference / (2 * dt) - expected).abs().max() / scale > 0.3


def test_spring_samples_follow_the_paper_distributions():
    z, params, _ = spring_systems(400, seed=1)
    q, p = split_state(z)
    m, k = params[:, 0], params[:, 1]
    assert 0.1 <= m.min() and m.max() <= 3.1 and abs(m.mean().item() - 1.6) < 0.05
    assert 0.0 <= k.min() and k.max() <= 5.0 and abs(k.mean().item() - 2.5) < 0.1
    assert abs(q.std().item() - 0.4) < 0.02 and abs(p.std().item() - 0.6) < 0.03


# ----------------------------------------------------------------------------------------------- the dataset
def test_dataset_is_cached_by_its_parameters_and_deterministic(tmp_path):
    root = str(tmp_path)
    a = ParticleDynamics(root, "springs", "train", num_systems=5, traj_len=20, seed=1)
    b = ParticleDynamics(root, "springs", "train", num_systems=5, traj_len=20, seed=1)
    files = sorted(f for f in os.listdir(os.path.join(root, "processed")) if f.startswith("springs"))
    assert len(files) == 2  # the .pt and its .json
    assert torch.equal(a[3].traj, b[3].traj)
    c = ParticleDynamics(root, "springs", "train", num_systems=5, traj_len=20, seed=2)
    d = ParticleDynamics(root, "springs", "test", num_systems=5, traj_len=20, seed=1)
    files = [f for f in os.listdir(os.path.join(root, "processed")) if f.endswith(".pt") and f.startswith("springs")]
    assert len(files) == 3
    assert not torch.equal(a[0].traj, c[0].traj) and not torch.equal(a[0].traj, d[0].traj)
    meta = json.load(open(os.path.join(root, "processed", [f for f in files if "test" in f][0][:-3] + ".json")))
    assert meta["split"] == "test" and meta["traj_len"] == 20 and meta["dt"] == 0.01
    item = a[2]
    assert torch.equal(item.q, item.traj[:, 0, :2]) and torch.equal(item.p, item.traj[:, 0, 2:])
    assert item.m.shape == (6,) and item.k.shape == (6,)


def test_chunked_items_are_seeded_aligned_windows_and_batch_like_pyg(tmp_path):
    root = str(tmp_path)
    full = ParticleDynamics(root, "springs", "train", num_systems=8, traj_len=20, seed=0)
    chunked = ParticleDynamics(root, "springs", "train", num_systems=8, traj_len=20, seed=0, chunk_len=5)
    again = ParticleDynamics(root, "springs", "train", num_systems=8, traj_len=20, seed=0, chunk_len=5)
    assert torch.equal(chunked.chunk_starts, again.chunk_starts)
    assert set(chunked.chunk_starts.tolist()) <= {0, 5, 10, 15} and len(set(chunked.chunk_starts.tolist())) > 1
    for i in range(8):
        s = int(chunked.chunk_starts[i])
        assert torch.equal(chunked[i].traj, full[i].traj[:, s:s + 5])
        assert torch.equal(chunked[i].q, full[i].traj[:, s, :2])
        assert chunked[i].t[0, 0].item() == pytest.approx(0.01 * s)
    subset = chunked[2:6]  # index_select keeps the per-system windows
    assert torch.equal(subset[0].traj, chunked[2].traj)
    batch = next(iter(DataLoader(chunked, batch_size=3)))
    assert batch.traj.shape == (18, 5, 4) and batch.t.shape == (3, 5) and batch.num_graphs == 3
    assert system_params(batch, chunked.param_keys).shape == (18, 2)
    with pytest.raises(ValueError, match="chunk_len"):
        ParticleDynamics(root, "springs", "train", num_systems=8, traj_len=20, chunk_len=30)
    with pytest.raises(ValueError, match="split"):
        ParticleDynamics(root, "springs", "valid", num_systems=8, traj_len=20)
