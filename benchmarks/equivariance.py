"""Equivariance errors of whole LieResNet models, per group, in float32 and float64.

    python -m benchmarks.equivariance [--trials 5]

Each model (untrained, k=64, 3 blocks, fill 1 so every point of a graph is in the neighbourhood)
is checked in exact mode: the stabilizer samples are transformed along with the input, so the
error is float rounding only. Relative error = max |F(gx) - F(x)| / max |F(x)|. The last column,
the change of the output when the points are perturbed, shows the errors are not vacuous.
"""
from __future__ import annotations

from typing import List, Optional

import torch

from benchmarks.harness import argument_parser
from torch_geometric_lieconv import group_from_name
from torch_geometric_lieconv.equivariance import equivariance_error
from torch_geometric_lieconv.models import LieResNet

GROUPS = ["T3", "SE3", "SO3", "T2", "SO2", "RxSO2", "Rx", "SE2", "Tx", "Ty"]


def measure(name: str, dtype: torch.dtype, trials: int) -> tuple:
    group = group_from_name(name)
    torch.manual_seed(0)
    samples = 4 if group.frame_dim else 1
    model = LieResNet(4, 8, group, hidden_channels=64, num_layers=3, mc_samples=10_000, fill=1.0,
                      lift_samples=samples).to(dtype).eval()
    sizes = [29, 17, 5, 1]
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    pos = (torch.randn(sum(sizes), group.space_dim) * 2 + 0.5).to(dtype)
    x = torch.randn(sum(sizes), 4, dtype=dtype)
    report = equivariance_error(lambda p, f: model(x, p, batch, f), group, pos, lift_samples=samples,
                                trials=trials, scale=1.5)
    # how much the output moves when the geometry really changes (so the errors are not vacuous)
    frames = None
    if group.frame_dim:
        from torch_geometric_lieconv.groups import random_rotations

        frames = random_rotations((pos.shape[0], samples), group.frame_dim, dtype=dtype)
    out = model(x, pos, batch, frames)
    sensitivity = (model(x, pos + 0.1 * torch.randn_like(pos), batch, frames) - out).abs().max().item()
    return report.max_abs_error, report.max_rel_error, sensitivity


def main(argv: Optional[List[str]] = None) -> None:
    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args(argv)
    print("| group | float32 abs | float32 rel | float64 abs | float64 rel | output change, pos + N(0, 0.1^2) |")
    print("|---|---|---|---|---|---|")
    for name in GROUPS:
        a32, r32, _ = measure(name, torch.float32, args.trials)
        a64, r64, sensitivity = measure(name, torch.float64, args.trials)
        print(f"| {name} | {a32:.1e} | {r32:.1e} | {a64:.1e} | {r64:.1e} | {sensitivity:.1e} |")


if __name__ == "__main__":
    main()
