"""Synthetic inputs of the benchmarks: QM9-sized molecules and uniform point clouds.

Only torch is imported here, so a worker that loads another revision of the package
(``benchmarks.compare_revisions``) builds exactly the same inputs for both trees.
"""
from __future__ import annotations

import math

import torch

QM9_SPECIES_FREQ = {1: 0.51, 6: 0.35, 7: 0.056, 8: 0.078, 9: 0.006}  # atom fractions in QM9
LAYER_BALL_POINTS = 48  # expected points in the ball of the scaling layer (unit density)
LAYER_CHANNELS = 32
LAYER_MC = 32


def qm9_like_batch(num_molecules: int = 75, seed: int = 0):
    """``(z, pos, batch)`` of molecules with QM9's size distribution and species, synthetic geometry.

    Sizes ~ N(18, 3) clipped to 1-29 atoms. Heavy atoms grow as a random tree with 1.45 A bonds, each
    hydrogen sits 1.09 A from a random heavy atom, so distances look molecular (the model's cost
    depends on sizes, not on chemistry).
    """
    gen = torch.Generator().manual_seed(seed)
    sizes = (torch.randn(num_molecules, generator=gen) * 3 + 18).round().clamp(1, 29).long()
    species = torch.tensor(list(QM9_SPECIES_FREQ))
    probs = torch.tensor(list(QM9_SPECIES_FREQ.values()))
    zs, positions = [], []
    for n in sizes.tolist():
        z = species[torch.multinomial(probs, n, replacement=True, generator=gen)]
        if not (z > 1).any():
            z[0] = 6
        z = torch.cat([z[z > 1], z[z == 1]])  # heavy atoms first
        heavy = int((z > 1).sum())
        pos = torch.zeros(n, 3)
        for i in range(1, n):
            anchor = int(torch.randint(0, min(i, heavy), (1,), generator=gen))
            bond = 1.45 if i < heavy else 1.09
            step = torch.randn(3, generator=gen)
            pos[i] = pos[anchor] + bond * step / step.norm()
        zs.append(z)
        positions.append(pos + torch.randn(3, generator=gen) * 5)
    batch = torch.repeat_interleave(torch.arange(num_molecules), sizes)
    return torch.cat(zs), torch.cat(positions), batch


def uniform_cloud(num_points: int, seed: int = 0) -> torch.Tensor:
    """``num_points`` uniform points at unit density (a cube of side ``num_points ** (1/3)``)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(num_points, 3, generator=gen) * num_points ** (1 / 3)


def layer_radius() -> float:
    """Ball radius holding ``LAYER_BALL_POINTS`` points on average at unit density."""
    return (3 * LAYER_BALL_POINTS / (4 * math.pi)) ** (1 / 3)
