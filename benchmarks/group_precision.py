"""Accuracy of exp, log and pair logs per group near angle 0 and near pi, in float32 and float64.

    python benchmarks/group_precision.py

For each group with rotations, Lie algebra coordinates with a rotation angle in a band (near 0:
1e-6..1e-3; near pi: pi-1e-4..pi-1e-7) and unit-scale other coordinates are drawn; the reference
matrices come from float64 `torch.linalg.matrix_exp` of the hand-written algebra matrix. Reported:
max |exp(a) - ref|, max |log(ref) - a| and, for pairs u = v exp(a), max |exp(pair_log(a_u, a_v)) - ref|
(a matrix error: near pi, input rounding may legitimately move the log across the cut). The last table compares float32 SE(3) pair logs at
molecule scale computed in float64 internally (the default) with a pure float32 computation.
"""
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_groups import algebra_matrix, rotation_part  # noqa: E402  (the tests' hand-written generators)

from torch_geometric_lieconv import group_from_name  # noqa: E402
from torch_geometric_lieconv.groups import SE3  # noqa: E402

BANDS = {"near 0": (1e-6, 1e-3), "near pi": (math.pi - 1e-4, math.pi - 1e-7)}


def sample(name: str, band, n: int, gen: torch.Generator) -> torch.Tensor:
    group = group_from_name(name)
    a = torch.randn(n, group.lie_dim, dtype=torch.float64, generator=gen)
    rot = rotation_part(name, None)
    lo, hi = band
    angle = torch.exp(torch.empty(n, 1, dtype=torch.float64).uniform_(math.log(lo), math.log(hi), generator=gen))
    if hi > 3:
        angle = math.pi - torch.exp(torch.empty(n, 1, dtype=torch.float64).uniform_(
            math.log(math.pi - hi), math.log(math.pi - lo), generator=gen))
    axis = a[:, rot] / a[:, rot].norm(dim=-1, keepdim=True)
    if len(rot) == 1:
        axis = axis.abs()  # planar: positive angles, away from the branch cut at -pi (see wrap_angle)
    a[:, rot] = axis * angle
    return a


def errors(name: str, band, dtype: torch.dtype):
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(0)
    a = sample(name, band, 2000, gen)
    ref = torch.linalg.matrix_exp(algebra_matrix(name, a))
    exp_err = (group.exp(a.to(dtype)).double() - ref).abs().max().item()
    log_err = (group.log(ref.to(dtype)).double() - a).abs().max().item()
    # pairs u = v w with w of the band: log(v^-1 u) = a_w
    v = torch.randn(2000, group.lie_dim, dtype=torch.float64, generator=gen)
    a_u = group.log(group.exp(v) @ ref)
    # compared on the group: within 1e-7 of pi, float32 rounding of the inputs may carry the relative
    # rotation across pi, where log jumps to the equivalent coordinates on the other side
    pair = group.pair_log(a_u.to(dtype), v.to(dtype)).double()
    pair_err = (group.exp(pair) - ref).abs().max().item()
    return exp_err, log_err, pair_err


def main() -> None:
    print("| group | band | dtype | exp | log | pair log |")
    print("|---|---|---|---|---|---|")
    for name in ["SO2", "RxSO2", "SE2", "SO3", "SE3"]:
        for band_name, band in BANDS.items():
            for dtype in (torch.float32, torch.float64):
                e, l, p = errors(name, band, dtype)
                print(f"| {name} | {band_name} | {str(dtype)[6:]} | {e:.1e} | {l:.1e} | {p:.1e} |")
    print()
    print("SE(3) float32 pair logs, molecule scale (positions N(0, 3^2) + 10 Angstrom), vs float64:")
    print("| computation | max abs error | median abs error |")
    print("|---|---|---|")
    gen = torch.Generator().manual_seed(1)
    group = SE3()
    pos = torch.randn(500, 3, dtype=torch.float64, generator=gen) * 3 + 10
    a, _ = group.lift(pos, 1, generator=gen)
    a = a[:, 0]
    i, j = torch.randint(0, 500, (2, 20000), generator=gen)
    reference = group.pair_log(a[i], a[j])
    for label, pair_dtype in [("float64 internally (default)", torch.float64), ("pure float32", None)]:
        fast = SE3()
        fast.pair_dtype = pair_dtype
        err = (fast.pair_log(a.float()[i], a.float()[j]).double() - reference).abs()
        print(f"| {label} | {err.max():.1e} | {err.median():.1e} |")


if __name__ == "__main__":
    main()
