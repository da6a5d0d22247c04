"""Groups written as a user would: only ``exp``, ``log``, ``lift`` and ``distance``.

Everything else (pair logs through matrices, inverses, the action on lifted elements and on points,
input checks) must come from :class:`~torch_geometric_lieconv.groups.LieGroup`. Reusable by any test:

* :class:`Affine1`: scalings and translations of the line (non-abelian, non-compact stabilizer);
* :class:`MatrixSO2`: SO(2) re-implemented as plain 2x2 matrices, to compare with the built-in ``SO2``.
"""
import torch

from ..groups import LieGroup, group_from_name


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


#: the algebra basis of Affine1 in its coordinates (s, v), written by hand
AFFINE1_GENERATORS = [torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 0.0]])]


class MatrixSO2(LieGroup):
    r"""SO(2) as 2x2 rotation matrices, written without the package's helpers.

    :math:`u = R(\theta)` with :math:`\theta = \mathrm{atan2}(y, x)`, :math:`q = \|x\|`,
    :math:`d = \alpha|\Delta\theta| + (1-\alpha)|\Delta q|` (the base class's generic distance).
    """

    space_dim, lie_dim, q_dim = 2, 1, 1
    undefined_at_origin = True

    def exp(self, a):
        c, s = torch.cos(a[..., 0]), torch.sin(a[..., 0])
        return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)

    def log(self, g):
        return torch.atan2(g[..., 1, 0], g[..., 0, 0]).unsqueeze(-1)

    def lift(self, pos, num_samples=1, frames=None, generator=None):
        theta = torch.atan2(pos[:, 1], pos[:, 0])
        r = pos.norm(dim=-1)
        return (theta[:, None, None].expand(-1, num_samples, 1), r[:, None, None].expand(-1, num_samples, 1))

    def distance(self, abq):
        return super().distance(abq)


#: the algebra basis of MatrixSO2, written by hand
MATRIX_SO2_GENERATORS = [torch.tensor([[0.0, -1.0], [1.0, 0.0]])]


USER_GROUPS = {"Affine1": Affine1, "MatrixSO2": MatrixSO2}


def make_group(name: str) -> LieGroup:
    """A user group of :data:`USER_GROUPS` by class name, else ``group_from_name(name)``.

    Args:
        name (str): a key of :data:`USER_GROUPS` or a built-in group's name.
    """
    return USER_GROUPS[name]() if name in USER_GROUPS else group_from_name(name)
