"""A group written by a user with only the four required maps, to check the base class supplies the rest."""
import torch

from torch_geometric_lieconv.groups import LieGroup


class Affine1(LieGroup):
    r"""Scalings and translations of the line, :math:`x \mapsto e^{s} x + t`, as 2x2 matrices.

    Algebra coordinates (s, v): :math:`\exp = [[e^s, v (e^s - 1)/s], [0, 1]]`. A single orbit; the lift is
    :math:`u = [[1, x], [0, 1]]` times a random scaling (the stabilizer of 0 is the scalings).
    """

    space_dim, lie_dim, q_dim = 1, 2, 0

    def exp(self, a):
        s, v = a[..., 0], a[..., 1]
        small = s.abs() < 1e-6
        safe = torch.where(small, torch.ones_like(s), s)
        factor = torch.where(small, 1 + s / 2, torch.expm1(safe) / safe)
        g = torch.zeros(*a.shape[:-1], 2, 2, dtype=a.dtype, device=a.device)
        g[..., 0, 0], g[..., 0, 1], g[..., 1, 1] = torch.exp(s), v * factor, 1
        return g

    def log(self, g):
        s = torch.log(g[..., 0, 0])
        small = s.abs() < 1e-6
        safe = torch.where(small, torch.ones_like(s), s)
        factor = torch.where(small, 1 + s / 2, torch.expm1(safe) / safe)
        return torch.stack([s, g[..., 0, 1] / factor], dim=-1)

    def lift(self, pos, num_samples=1, frames=None, generator=None):
        n = pos.shape[0]
        scale = torch.randn(n, num_samples, dtype=pos.dtype, device=pos.device, generator=generator)
        g = torch.zeros(n, num_samples, 2, 2, dtype=pos.dtype, device=pos.device)
        g[..., 0, 0], g[..., 0, 1], g[..., 1, 1] = torch.exp(scale), pos, 1
        return self.log(g), pos.new_zeros(n, num_samples, 0)

    def distance(self, abq):
        return abq[..., :2].norm(dim=-1)
