"""The springs application's benchmark pieces: the original ``HLieResNet`` beside this project's
``HamiltonianLieConv`` on spring systems (training step of a short RK4 rollout).

Used by ``python -m benchmarks.side_by_side --sections springs``; it has no command of its own.
"""
from __future__ import annotations

import sys

import torch

from benchmarks.harness import Clock, adam_step, interleaved, ratio, reference_group, seconds, table
from torch_geometric_lieconv.datasets import SpringSystem, generate_systems
from torch_geometric_lieconv.dynamics import rollout
from torch_geometric_lieconv.groups import group_from_name
from torch_geometric_lieconv.models import HamiltonianLieConv
from torch_geometric_lieconv.training.optimisation import adam

SPRING_GROUPS = [("T2", "T", None), ("SO2", "SO2", 0.2), ("SE2", "SE2", 0.05)]  # the project's alphas


def side_by_side_section(reference, args, clock: Clock, device: torch.device) -> str:
    """The springs table of ``benchmarks.side_by_side``."""
    k, layers = (64, 2) if args.size == "quick" else (384, 4)
    systems, n, d = 50, 6, 2
    traj, params, t = generate_systems(SpringSystem(), systems, traj_len=5, dt=0.01, seed=0)
    traj, params, t = traj.float().to(device), params.float().to(device), t.float().to(device)
    batch = torch.arange(systems, device=device).repeat_interleave(n)
    z0 = traj[:, 0]
    # the original's layout: one row per system, positions then momenta flattened
    flat = traj.view(systems, n, 5, 2 * d)
    flat_z = torch.cat([flat[..., :d].permute(0, 2, 1, 3).reshape(systems, 5, n * d),
                        flat[..., d:].permute(0, 2, 1, 3).reshape(systems, 5, n * d)], dim=-1)
    sys_params = params.view(systems, n, -1)
    rows = []
    for name, ref_name, alpha in SPRING_GROUPS:
        torch.manual_seed(0)
        ours = HamiltonianLieConv(2, group_from_name(name, alpha), hidden_channels=k, num_layers=layers).to(device)
        steps = {"project": adam_step(ours, lambda: (rollout(lambda _, z: ours(_, z, params, batch, systems), z0, t)
                                                     - traj).pow(2).mean(), optimizer=adam)}
        if reference is not None:
            from torchdiffeq import odeint

            theirs = reference.HLieResNet(d=2, sys_dim=2, k=k, num_layers=layers,
                                          group=reference_group(reference, ref_name, alpha)).to(device)
            steps["original"] = adam_step(theirs, lambda: (
                odeint(lambda _, z: theirs(_, z, sys_params), flat_z[:, 0], t, method="rk4").transpose(0, 1)
                - flat_z).pow(2).mean())
        best = interleaved(steps, args.steps, args.warmup, clock)
        original = best.get("original")
        rows.append([name, seconds(original), seconds(best["project"]), ratio(original, best["project"])])
        print(f"  springs {name}: {best}", file=sys.stderr, flush=True)
    return (f"Springs, k={k}, {layers} layers, {systems} systems of {n} particles, 5-step RK4 rollout, "
            f"training step (s):\n\n" + table(["group", "original", "project", "speed-up"], rows))
