"""Accuracy of exp, log and pair logs per group, near angle 0 and near pi, in float32 and float64.

    python -m benchmarks.group_precision

Coordinates ``a`` are drawn per band: "random" (all coordinates N(0, 1), rotations clipped to angle
< 3), "near 0" (rotation angle log-uniform in 1e-6..1e-3) and "near pi" (pi - angle log-uniform in
1e-7..1e-4; planar angles positive, since the planar cut sits at -pi + 1e-5); other coordinates
N(0, 1). References are float64 ``torch.linalg.matrix_exp`` of the hand-written algebra matrices in
``torch_geometric_lieconv.testing.group_reference`` (independent of the package's closed forms).
Columns (max abs errors):

* exp: ``|exp(a) - matrix_exp(A(a))|`` (a rounded to the dtype first);
* log: ``|log(matrix_exp(A(a))) - a|`` (the matrix rounded to the dtype);
* pair vs f64: float32 ``pair_log`` against the float64 evaluation of the same float32 inputs
  (the algorithm's own float32 error);
* pair vs exact: pairs are built as ``u = v exp(a_w)`` in float64, so ``log(v^-1 u) = a_w`` is
  known exactly; error of ``pair_log(a_u, a_v)`` with inputs rounded to the dtype. Near pi, input
  rounding can carry a relative rotation across the cut, where the log legitimately jumps to the
  other representative; such pairs are counted ("n cut") and left out of the maximum.

The last table compares float32 SE(3) pair logs at molecule scale computed in float64 internally
(the default, ``pair_dtype = float64``) with a pure float32 computation (``pair_dtype = None``).
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch

from benchmarks.harness import argument_parser
from torch_geometric_lieconv import group_from_name
from torch_geometric_lieconv.groups import SE3, random_rotations
from torch_geometric_lieconv.testing.group_reference import (ROTATION_GROUPS, WITH_ALGEBRA, reference_exp,
                                                             rotation_coordinates)

N = 4000
BANDS = {"random": None, "near 0": (1e-6, 1e-3), "near pi": (1e-7, 1e-4)}


def log_uniform(lo: float, hi: float, n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.exp(torch.empty(n, dtype=torch.float64).uniform_(math.log(lo), math.log(hi), generator=gen))


def sample(name: str, band: str, gen: torch.Generator) -> torch.Tensor:
    group = group_from_name(name)
    a = torch.randn(N, group.lie_dim, dtype=torch.float64, generator=gen)
    rot = rotation_coordinates(name)
    if rot is None:
        return a
    norm = a[:, rot].norm(dim=-1, keepdim=True)
    if band == "random":
        angle = norm.clamp(max=3.0)
    elif band == "near 0":
        angle = log_uniform(*BANDS[band], N, gen)[:, None]
    else:
        angle = math.pi - log_uniform(*BANDS[band], N, gen)[:, None]
    direction = a[:, rot] / norm
    if len(rot) == 1:
        direction = direction.abs()
    a[:, rot] = direction * angle
    return a


def crossed(name: str, err: torch.Tensor, out: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Pairs whose log jumped to the other side of the cut (rotation part changed by ~2 pi)."""
    rot = rotation_coordinates(name)
    if rot is None:
        return torch.zeros(len(err), dtype=torch.bool)
    return (out[:, rot] - truth[:, rot]).norm(dim=-1) > 1.0


def errors(name: str, band: str, dtype: torch.dtype):
    group = group_from_name(name)
    gen = torch.Generator().manual_seed(0)
    a = sample(name, band, gen)
    ref = reference_exp(name, a)
    exp_err = (group.exp(a.to(dtype)).double() - ref).abs().max().item()
    log_err = (group.log(ref.to(dtype)).double() - a).abs().max().item()
    # pairs u = v w with log(w) = a known exactly
    v = torch.randn(N, group.lie_dim, dtype=torch.float64, generator=gen)
    if rotation_coordinates(name) is not None:
        v[:, rotation_coordinates(name)] = v[:, rotation_coordinates(name)].clamp(-1.5, 1.5)
    a_u = group.log(reference_exp(name, v) @ ref)
    u_in, v_in = a_u.to(dtype), v.to(dtype)
    out = group.pair_log(u_in, v_in).double()
    vs_f64 = None
    if dtype != torch.float64:
        vs_f64 = (out - group.pair_log(u_in.double(), v_in.double())).abs().max().item()
    err = (out - a).abs().amax(-1)
    cut = crossed(name, err, out, a)
    vs_exact = err[~cut].max().item()
    return exp_err, log_err, vs_f64, vs_exact, int(cut.sum())


def fmt(x) -> str:
    return "-" if x is None else f"{x:.1e}"


def group_table() -> None:
    print(f"Max abs errors ({N} samples per row):")
    print()
    print("| group | band | dtype | exp | log | pair vs f64 | pair vs exact | n cut |")
    print("|---|---|---|---|---|---|---|---|")
    for name in WITH_ALGEBRA:
        bands = BANDS if name in ROTATION_GROUPS else ["random"]
        for band in bands:
            for dtype in (torch.float32, torch.float64):
                e, lg, p32, pe, n_cut = errors(name, band, dtype)
                cells = [name, band, str(dtype)[6:], fmt(e), fmt(lg), fmt(p32), fmt(pe), str(n_cut)]
                print("| " + " | ".join(cells) + " |")


def molecule_table() -> None:
    print()
    print("SE(3) float32 pair logs at molecule scale: 500 points N(0, 3^2) Angstrom shifted by an offset,")
    print("lifted from float32 positions (same frames as the float64 reference), 20000 random pairs;")
    print("errors against the float64 pipeline:")
    print()
    print("| offset (A) | float64 internally (default): max | median | pure float32: max | median |")
    print("|---|---|---|---|---|")
    gen = torch.Generator().manual_seed(1)
    default, pure = SE3(), SE3()
    pure.pair_dtype = None
    for offset in (0.0, 10.0, 30.0, 50.0):
        pos = torch.randn(500, 3, dtype=torch.float64, generator=gen) * 3
        pos[:, 0] += offset
        frames = random_rotations((500, 1), 3, dtype=torch.float64, generator=gen)
        a64 = default.lift(pos, 1, frames=frames)[0][:, 0]
        a32 = default.lift(pos.float(), 1, frames=frames.float())[0][:, 0]
        i, j = torch.randint(0, 500, (2, 20000), generator=gen)
        reference = default.pair_log(a64[i], a64[j])
        row = [f"{offset:g}"]
        for group in (default, pure):
            err = (group.pair_log(a32[i], a32[j]).double() - reference).abs().amax(-1)
            row += [f"{err.max():.1e}", f"{err.median():.1e}"]
        print("| " + " | ".join(row) + " |")


def main(argv: Optional[List[str]] = None) -> None:
    argument_parser(__spec__.name, __doc__).parse_args(argv)  # no options: --help only
    group_table()
    molecule_table()


if __name__ == "__main__":
    main()
