"""How smooth a LieConv Hamiltonian is along fresh spring trajectories: the order of RK4's
angular-momentum error, binned by how fast the lift's frame turns.

    python -m benchmarks.hamiltonian_smoothness                      # SO(2), SE(2); both kernel inputs
    python -m benchmarks.hamiltonian_smoothness --systems 96 --seed 7

An untrained ``HamiltonianLieConv`` (float64, 2 layers, 32 channels, not centred) whose forces are
scaled to the true springs' (``testing.at_physical_force``) is integrated from ``--systems`` fresh
six-particle systems for ``--steps`` steps of 0.01 with 1, 4 and 16 RK4 substeps. SO(2) and SE(2)
conserve angular momentum exactly, so its drift is the integrator's error: for a smooth potential
RK4's error falls as h^4, 256x per 4x refinement. The table bins the systems by the fastest turn of
their lifted frame in one step (``testing.frame_turn_per_step``: about the origin for SO(2)'s polar
lift, about the system's centroid for SE(2)'s), and gives the min / median of the drift ratio per
refinement. Two kernel inputs: ``continuous`` (the matrix v^-1 u, no branch cut) and ``log`` (the
angle of log(v^-1 u), which jumps at +-pi).
"""
from __future__ import annotations

import statistics
import sys
from typing import List, Optional

import torch

from benchmarks.harness import Clock, argument_parser, command, table
from torch_geometric_lieconv.models import HamiltonianLieConv
from torch_geometric_lieconv.testing import (at_physical_force, drifts_per_substeps, frame_turn_per_step,
                                             spring_systems)

#: upper edges of the frame-turn bins (rad per step)
TURN_BINS = (0.5, 1.0, float("inf"))
SUBSTEPS = (1, 4, 16)


def drift_ratios(group: str, continuous: bool, args) -> List[tuple]:
    """Per system: (frame turn per step, drift ratio 1 -> 4 substeps, drift ratio 4 -> 16)."""
    z0, params, batch = spring_systems(args.systems, seed=args.seed)
    torch.manual_seed(0)
    model = HamiltonianLieConv(2, group, hidden_channels=32, num_layers=2, center=False,
                               continuous_kernel=continuous).to(torch.float64).eval()
    model = at_physical_force(model, z0, params, batch, args.systems)
    drifts, traj = drifts_per_substeps(model, z0, params, batch, args.systems, args.steps, args.dt, SUBSTEPS)
    turn = frame_turn_per_step(traj, params, batch, args.systems, args.dt,
                               "centroid" if group == "SE2" else "origin")
    tiny = torch.finfo(torch.float64).tiny
    return list(zip(turn.tolist(), (drifts[0] / drifts[1].clamp_min(tiny)).tolist(),
                    (drifts[1] / drifts[2].clamp_min(tiny)).tolist()))


def summary(values: List[float]) -> str:
    return "-" if not values else f"{min(values):.0f} / {statistics.median(values):.0f}"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--systems", type=int, default=48)
    parser.add_argument("--seed", type=int, default=100, help="the spring sampler's seed")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--dt", type=float, default=0.01)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"Command: `{command(__spec__.name, argv)}`  ")
    print(f"{args.systems} systems (sampler seed {args.seed}), {args.steps} steps of {args.dt}, RK4 with "
          f"{'/'.join(map(str, SUBSTEPS))} substeps; drift ratio per 4x refinement (h^4: 256), min / median:\n")
    rows, clock = [], Clock()
    for group in ("SO2", "SE2"):
        for continuous in (True, False):
            start = clock()
            systems = drift_ratios(group, continuous, args)
            low = 0.0
            for high in TURN_BINS:
                chosen = [s for s in systems if low <= s[0] < high]
                label = f">= {low:g}" if high == float("inf") else f"{low:g} - {high:g}"
                rows.append([group, "continuous" if continuous else "log", label, str(len(chosen)),
                             summary([s[1] for s in chosen]), summary([s[2] for s in chosen])])
                low = high
            print(f"  {group} {'continuous' if continuous else 'log'}: {clock() - start:.0f} CPU s",
                  file=sys.stderr, flush=True)
    print(table(["group", "kernel input", "frame turn (rad/step)", "systems", "1 -> 4 substeps",
                 "4 -> 16 substeps"], rows))


if __name__ == "__main__":
    main()
