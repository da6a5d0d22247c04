"""Spring / gravity systems, the cached dataset, HLieConv's exact momentum conservation, baselines, training."""
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
from torch_geometric_lieconv.dynamics import conservation_metrics, join_state, rollout, rollout_mse, split_state
from torch_geometric_lieconv.models.baselines import FCNeuralODE, HamiltonianFC, HOGN, OGN
from torch_geometric_lieconv.models.hamiltonian import HamiltonianLieConv

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():  # these are many tiny ops: one thread is much faster, and fair to parallel tests
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _systems(num: int, seed: int = 0, system: ParticleSystem = None):
    system = system or SpringSystem()
    q, p, params = system.sample(num, torch.Generator().manual_seed(seed))
    batch = torch.arange(num).repeat_interleave(system.num_particles)
    return join_state(q, p), params, batch


def _rotation(angle: float) -> torch.Tensor:
    return torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=F64)


# ----------------------------------------------------------------------------------------------- the physics
def test_spring_potential_and_force_match_the_pair_sum_definition():
    system = SpringSystem()
    z, params, batch = _systems(3)
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
    z, params, batch = _systems(2, system=system)
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


def test_spring_samples_follow_the_paper_distributions():
    z, params, _ = _systems(400, seed=1)
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


# ----------------------------------------------------------------------------------------------- HLieConv symmetry
def _hlieconv(group: str, seed: int, center: bool = False, continuous: bool = False) -> HamiltonianLieConv:
    torch.manual_seed(seed)
    return HamiltonianLieConv(2, group, hidden_channels=32, num_layers=2, center=center,
                              continuous_kernel=continuous).to(F64).eval()


def _drifts(model, steps: int = 30):
    z0, params, batch = _systems(4, seed=5)
    t = 0.01 * torch.arange(steps, dtype=F64)
    with torch.no_grad():
        traj = rollout(lambda _, z: model(_, z, params, batch, 4), z0, t)
    d = conservation_metrics(traj, batch, 4)
    moved = (traj[:, -1] - traj[:, 0]).abs().max()
    assert moved > 0.05  # the systems really evolve
    return d["linear_momentum"].max().item(), d["angular_momentum"].max().item()


@pytest.mark.parametrize("seed", [0, 1])
def test_untrained_hlieconv_conserves_exactly_the_momentum_of_its_symmetry(seed):
    """The paper's Figure 7 claim, for any weights: T(2) -> linear, SO(2) -> angular, SE(2) -> both,
    Trivial -> neither (orders of magnitude larger drift). Positions are not centred here: centring
    would itself be a translation symmetry."""
    lin = {}
    ang = {}
    for group in ("Trivial2", "T2", "SO2", "SE2"):
        lin[group], ang[group] = _drifts(_hlieconv(group, seed))
    assert lin["T2"] < 1e-12 and lin["SE2"] < 1e-12
    assert ang["SO2"] < 1e-12 and ang["SE2"] < 1e-12
    assert lin["Trivial2"] > 1e4 * max(lin["T2"], 1e-16) and lin["Trivial2"] > 1e-9
    assert ang["Trivial2"] > 1e4 * max(ang["SO2"], 1e-16) and ang["Trivial2"] > 1e-9
    assert ang["T2"] > 1e-9 and lin["SO2"] > 1e-9  # each group gives only its own momentum


def _at_physical_force(model, z, params, batch, num):
    """Scale the model's potential (its head) so that its forces have the size of the true spring
    forces on these systems: conservation is then tested where drift would show, not near free flight."""
    system = SpringSystem()
    q, _ = split_state(z)
    q = q.detach().requires_grad_(True)
    true = torch.autograd.grad(system.potential(q, params, batch, num).sum(), q)[0].abs().mean()
    learned = torch.autograd.grad(model.potential(q, params, batch, num).sum(), q)[0].abs().mean()
    factor = float(true / learned)
    with torch.no_grad():
        head = model.net.head[-1]
        head.weight.mul_(factor)
        head.bias.mul_(factor)
    return model


def _physical_drifts(group: str, substeps: int, steps: int = 50, continuous: bool = False):
    z0, params, batch = _systems(4, seed=5)
    model = _at_physical_force(_hlieconv(group, 0, continuous=continuous), z0, params, batch, 4)
    t = 0.01 * torch.arange(steps, dtype=F64)
    with torch.no_grad():
        traj = rollout(lambda _, z: model(_, z, params, batch, 4), z0, t, step_size=0.01 / substeps)
    d = conservation_metrics(traj, batch, 4)
    return d["linear_momentum"].max().item(), d["angular_momentum"].max().item()


def test_momentum_conservation_at_the_physical_force_scale():
    """With forces as large as the true springs': RK4 keeps linear momentum (a linear invariant) to
    rounding for T(2) and SE(2) at any step, while Trivial(2) drifts by more than 1e-3; SO(2)'s angular
    momentum (quadratic) is kept to the integrator's error, far below Trivial(2)'s drift, and it falls
    with substeps (measured: 8.2e-4, 8.6e-5, 3.0e-7 at 1, 4, 16 substeps; the first step falls by less
    than h^4 because the kernel's angle input jumps where a pair's relative angle crosses +-pi)."""
    lin_trivial, ang_trivial = _physical_drifts("Trivial2", 1)
    assert lin_trivial > 1e-3 and ang_trivial > 1e-3
    for group in ("T2", "SE2"):
        lin, _ = _physical_drifts(group, 1)
        assert lin < 1e-12, group
    _, ang_coarse = _physical_drifts("SO2", 1)
    _, ang_medium = _physical_drifts("SO2", 4)
    _, ang_fine = _physical_drifts("SO2", 16)
    assert ang_coarse < 1e-3 * ang_trivial
    assert ang_medium < ang_coarse / 4
    assert ang_fine < ang_medium / 30  # RK4's O(h^4) once steps are fine: 4x finer -> ~256x smaller


def test_continuous_kernel_conserves_angular_momentum_to_the_integrators_order():
    """With kernels of the matrix v^-1 u (no jump at the angle cut) an SO(2) Hamiltonian's angular
    momentum error falls as RK4's h^4 from the first refinement (measured: 6.4e-6 -> 2.4e-8, 271x, for
    1 -> 4 substeps; with the log's angle the same refinement gains 9.6x)."""
    _, coarse = _physical_drifts("SO2", 1, continuous=True)
    _, fine = _physical_drifts("SO2", 4, continuous=True)
    _, cut_coarse = _physical_drifts("SO2", 1)
    assert fine < coarse / 100
    assert coarse < cut_coarse / 10


def test_centring_adds_translation_invariance_and_keeps_rotation_invariance_about_the_origin():
    lin, ang = _drifts(_hlieconv("SO2", 0, center=True))
    assert lin < 1e-12 and ang < 1e-12  # centring commutes with rotations about the origin
    lin, ang = _drifts(_hlieconv("Trivial2", 0, center=True))
    assert lin < 1e-12 and ang > 1e-9


def test_hlieconv_potential_is_invariant_under_its_group():
    z, params, batch = _systems(3, seed=2)
    q, _ = split_state(z)
    rot, shift = _rotation(1.1), torch.tensor([0.7, -1.3], dtype=F64)
    for group, moved in (("T2", q + shift), ("SO2", q @ rot.T), ("SE2", q @ rot.T + shift)):
        model = _hlieconv(group, 0)
        with torch.no_grad():
            v0, v1 = model.potential(q, params, batch, 3), model.potential(moved, params, batch, 3)
        assert torch.allclose(v0, v1, rtol=1e-10, atol=1e-12), group
    model = _hlieconv("Trivial2", 0)
    with torch.no_grad():
        assert not torch.allclose(model.potential(q, params, batch, 3), model.potential(q + shift, params, batch, 3))


def test_polar_lifts_reject_a_particle_at_the_origin_or_centroid():
    z, params, batch = _systems(1)
    q, p = split_state(z)
    q_origin = q.clone()
    q_origin[2] = 0.0
    with pytest.raises(ValueError, match="origin"):
        _hlieconv("SO2", 0)(0.0, join_state(q_origin, p), params, batch)
    q_centroid = q.clone()
    q_centroid[0] = q[1:].mean(0)  # then particle 0 is the centroid of all six
    with pytest.raises(ValueError, match="centroid"):
        _hlieconv("SE2", 0)(0.0, join_state(q_centroid, p), params, batch)


def test_gradients_flow_through_odeint_and_match_finite_differences():
    model = _hlieconv("T2", 0, center=True).train()
    z0, params, batch = _systems(2, seed=4)
    t = 0.01 * torch.arange(4, dtype=F64)
    with torch.no_grad():
        target = rollout(lambda _, z: SpringSystem().vector_field(z, params, batch, 2), z0, t)

    def loss_fn():
        return rollout_mse(rollout(lambda _, z: model(_, z, params, batch, 2), z0, t), target)

    loss = loss_fn()
    loss.backward()
    weight = model.net.head[-1].weight  # scales the potential: a large, well-conditioned derivative
    assert weight.grad is not None and weight.grad.abs().max() > 0
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    eps = 1e-5
    with torch.no_grad():
        weight[0, 0] += eps
        up = loss_fn()
        weight[0, 0] -= 2 * eps
        down = loss_fn()
        weight[0, 0] += eps
    fd = (up - down) / (2 * eps)
    assert fd.abs() > 1e-9
    assert weight.grad[0, 0].item() == pytest.approx(fd.item(), rel=1e-4)
    assert model.net.lin_in.weight.grad.abs().max() > 0  # the first layer too


# ----------------------------------------------------------------------------------------------- baselines
def test_baselines_have_the_symmetries_of_their_construction():
    z0, params, batch = _systems(3, seed=6)
    t = 0.01 * torch.arange(30, dtype=F64)
    drifts = {}
    for cls in (FCNeuralODE, HamiltonianFC, OGN, HOGN):
        torch.manual_seed(0)
        model = cls(hidden_channels=32).to(F64).eval()
        with torch.no_grad():
            traj = rollout(lambda _, z: model(_, z, params, batch), z0, t)
        drifts[cls.__name__] = conservation_metrics(traj, batch, 3)["linear_momentum"].max().item()
    # Hamiltonians of centred positions / relative positions: translation invariant -> P conserved
    assert drifts["HamiltonianFC"] < 1e-12 and drifts["HOGN"] < 1e-12
    # models of the vector field itself have no such guarantee
    assert drifts["FCNeuralODE"] > 1e-6 and drifts["OGN"] > 1e-6


def test_fc_models_reject_systems_of_another_size():
    model = FCNeuralODE(num_particles=6)
    z = torch.zeros(10, 4)
    with pytest.raises(ValueError, match="exactly 6 particles"):
        model(0.0, z, torch.ones(10, 2), torch.tensor([0] * 5 + [1] * 5))
    with pytest.raises(ValueError, match="params"):
        model(0.0, torch.zeros(12, 4), torch.ones(12, 3), torch.zeros(12, dtype=torch.long))


# ----------------------------------------------------------------------------------------------- training
def test_a_few_training_steps_reduce_the_rollout_loss(tmp_path):
    from torch_geometric_lieconv.experiments.springs import RolloutObjective

    data = ParticleDynamics(str(tmp_path), "springs", "train", num_systems=8, traj_len=20, seed=0, chunk_len=5)
    batch = next(iter(DataLoader(data, batch_size=8)))
    torch.manual_seed(0)
    model = HamiltonianLieConv(2, "T2", hidden_channels=32, num_layers=1).to(F64)
    objective = RolloutObjective(data.param_keys)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(16):
        loss = objective.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_cli_train_resume_and_evaluate(tmp_path, capsys):
    from torch_geometric_lieconv.cli import main

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"n_train": 6, "n_val": 3, "n_test": 3, "traj_len": 20, "hidden_channels": 16,
                                  "num_layers": 1, "batch_size": 3, "lr": 3e-3}))
    out, root = str(tmp_path / "run"), str(tmp_path / "data")
    common = ["--config", str(config), "--root", root, "--out", out, "--no-progress", "--epochs", "2"]
    assert main(["train", "springs", "--model", "HLieConv", "--group", "SO2", *common, "--max-epochs", "1"]) == 0
    assert main(["train", "springs", "--model", "HLieConv", "--group", "SO2", *common, "--resume"]) == 0
    for name in ("checkpoint_best.pt", "checkpoint_last.pt", "metrics.csv", "config.json", "results_test.json"):
        assert os.path.isfile(os.path.join(out, name)), name
    capsys.readouterr()
    assert main(["evaluate", "springs", "--run", out, "--horizons", "5", "20"]) == 0
    printed = capsys.readouterr().out
    assert "MSE@20" in printed and "HLieConv" in printed
    row = json.load(open(os.path.join(out, "results_test.json")))
    assert row["epoch"] == 2 and row["group"] == "SO2"
    # another test-data seed draws other systems: another error, recorded with its seed
    assert main(["evaluate", "springs", "--run", out, "--horizons", "5", "20", "--seed", "7"]) == 0
    other = json.load(open(os.path.join(out, "results_test.json")))
    assert other["data_seed"] == 7 and other["data_seed"] != row["data_seed"]
    assert other["test_mse"] != row["test_mse"]
    # SO(2) with centred positions (the default): both momenta conserved, in the float64 evaluation
    assert row["angular_momentum_drift"] < 1e-12 and row["linear_momentum_drift"] < 1e-12


def test_geometric_interval_is_the_t_interval_of_the_logs():
    from statistics import mean, stdev

    from torch_geometric_lieconv.experiments.springs.statistics import geometric_interval

    values = [0.02, 0.005, 0.011, 0.04, 0.007]
    logs = [math.log(v) for v in values]
    half = 2.776 * stdev(logs) / math.sqrt(5)  # t_{0.975} with 4 degrees of freedom
    assert geometric_interval(values) == pytest.approx(
        (math.exp(mean(logs)), math.exp(mean(logs) - half), math.exp(mean(logs) + half)), rel=1e-12)
    assert geometric_interval([0.3, float("nan"), -1.0]) == pytest.approx((0.3, 0.3, 0.3))


def test_study_momentum_part_over_seeds_and_kept_rows(tmp_path, monkeypatch, capsys):
    from torch_geometric_lieconv.cli import main
    from torch_geometric_lieconv.experiments.springs import study as springs

    tiny = {"sizes": [4], "seeds": [0, 1], "n_val": 2, "n_test": 2, "epoch_scale": 16, "batch_size": 2,
            "momentum_n_train": 4, "momentum_epochs": 1, "momentum_n_test": 2,
            "widths": {m: (16, 1) for m in ("HLieConv", "FC", "HFC", "OGN", "HOGN")}, "lr_scale": {},
            "trajectory_steps": 10, "momentum_lr": {}, "traj_len": 12}
    monkeypatch.setitem(springs.STUDY_SCALES, "small", tiny)
    monkeypatch.setattr(springs, "MOMENTUM_MODELS", (("Trivial2", False, "Trivial"), ("T2", False, "T(2)"),
                                                     ("SO2", True, "SO(2) cont.")))
    out, root = str(tmp_path / "study"), str(tmp_path / "data")
    assert main(["study", "springs", "--parts", "momentum", "--out", out, "--root", root]) == 0
    printed = capsys.readouterr().out
    rows = json.load(open(os.path.join(out, "results.json")))
    assert sorted((r["label"], r["seed"]) for r in rows) == sorted(
        (label, seed) for label in ("Trivial", "T(2)", "SO(2) cont.") for seed in (0, 1))
    for row in rows:  # T(2) keeps linear momentum to rounding whatever its weights; Trivial does not
        if row["label"] == "T(2)":
            assert row["linear_momentum_drift"] < 1e-12
        if row["label"] == "Trivial":
            assert row["linear_momentum_drift"] > 1e-8
    assert "SO(2) cont." in printed and "angular drift" in printed
    assert os.path.isfile(os.path.join(out, "springs_momentum.png"))
    # a second call reuses the runs and their cached curves: the same numbers
    assert main(["study", "springs", "--parts", "momentum", "--out", out, "--root", root]) == 0
    again = json.load(open(os.path.join(out, "results.json")))
    assert [r["angular_momentum_drift"] for r in again] == [r["angular_momentum_drift"] for r in rows]
    # another part keeps the momentum rows
    assert main(["study", "springs", "--parts", "data", "--models", "HOGN", "--out", out, "--root", root]) == 0
    parts = [r["part"] for r in json.load(open(os.path.join(out, "results.json")))]
    assert parts.count("momentum") == 6 and parts.count("data") == 2
