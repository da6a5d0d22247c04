"""Hand-written reference facts about the groups, independent of the package's closed forms.

Used by the group and lift tests and by ``benchmarks/group_precision.py``:

* :func:`generators`: a basis :math:`A_k` of each Lie algebra, written out as matrices, so that
  :math:`\\exp(a)` can be checked against ``torch.linalg.matrix_exp(sum_k a_k A_k)``;
* :func:`orbit_origin`: the representative :math:`o_q` of the orbit labelled :math:`q`, for which
  every lifted element must satisfy :math:`u\\,o_q = x`.
"""
from typing import List, Optional

import torch
from torch import Tensor

ALL = ["Trivial2", "Trivial3", "T2", "T3", "Tx", "Ty", "SO2", "RxSO2", "Rx", "SE2", "SO3", "SE3"]
WITH_ALGEBRA = [n for n in ALL if not n.startswith("Trivial")]
ROTATION_GROUPS = ["SO2", "RxSO2", "SE2", "SO3", "SE3"]
PLANAR_ROTATIONS = ["SO2", "RxSO2", "SE2"]

_F64 = torch.float64
_J = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=_F64)  # d/dtheta R(theta) at 0
_I2 = torch.eye(2, dtype=_F64)


def matrix_size(name: str) -> int:
    """Size n of the n x n matrices representing the group.

    Args:
        name (str): a group name of :data:`ALL`.
    """
    return {"Trivial2": 1, "Trivial3": 1, "T2": 3, "T3": 4, "Tx": 3, "Ty": 3, "SO2": 2, "RxSO2": 2,
            "Rx": 2, "SE2": 3, "SO3": 3, "SE3": 4}[name]


def _hat(k: int) -> Tensor:
    """The skew matrix of e_k: hat(e_k) v = e_k x v."""
    m = torch.zeros(3, 3, dtype=_F64)
    i, j = (k + 1) % 3, (k + 2) % 3
    m[j, i], m[i, j] = 1.0, -1.0
    return m


def _block(block: Tensor, n: int) -> Tensor:
    m = torch.zeros(n, n, dtype=_F64)
    m[: block.shape[0], : block.shape[1]] = block
    return m


def _translation(axis: int, n: int) -> Tensor:
    m = torch.zeros(n, n, dtype=_F64)
    m[axis, n - 1] = 1.0
    return m


def generators(name: str) -> List[Tensor]:
    """The Lie algebra basis, in the order of the package's coordinates ``a``.

    Args:
        name (str): a group name of :data:`ALL`.
    """
    n = matrix_size(name)
    if name.startswith("Trivial"):
        return []
    if name == "SO2":
        return [_J]
    if name == "RxSO2":
        return [_I2, _J]  # a = (log scale, angle)
    if name == "Rx":
        return [_I2]
    if name in ("T2", "T3"):
        return [_translation(k, n) for k in range(n - 1)]
    if name == "Tx":
        return [_translation(0, 3)]
    if name == "Ty":
        return [_translation(1, 3)]
    if name == "SE2":
        return [_block(_J, 3), _translation(0, 3), _translation(1, 3)]  # a = (theta, v1, v2)
    if name == "SO3":
        return [_hat(k) for k in range(3)]
    # SE3: the last name matrix_size accepts (any other raised KeyError there)
    return [_block(_hat(k), 4) for k in range(3)] + [_translation(k, 4) for k in range(3)]  # (w, v)


def algebra_matrix(name: str, a: Tensor) -> Tensor:
    """:math:`\\sum_k a_k A_k` for coordinates ``a`` ``[..., lie_dim]`` (float64).

    Args:
        name (str): a group name of :data:`ALL`.
        a (torch.Tensor): Lie algebra coordinates ``[..., lie_dim]``.
    """
    n = matrix_size(name)
    out = torch.zeros(*a.shape[:-1], n, n, dtype=_F64)
    for k, A in enumerate(generators(name)):
        out = out + a[..., k, None, None].to(_F64) * A
    return out


def reference_exp(name: str, a: Tensor) -> Tensor:
    """Float64 ``matrix_exp`` of the algebra element with coordinates ``a``.

    Args:
        name (str): a group name of :data:`ALL`.
        a (torch.Tensor): Lie algebra coordinates ``[..., lie_dim]``.
    """
    return torch.linalg.matrix_exp(algebra_matrix(name, a))


def rotation_coordinates(name: str) -> Optional[List[int]]:
    """Indices of the rotation coordinates in ``a`` (None for groups without rotations).

    Args:
        name (str): a group name of :data:`ALL`.
    """
    return {"SO2": [0], "RxSO2": [1], "SE2": [0], "SO3": [0, 1, 2], "SE3": [0, 1, 2]}.get(name)


def orbit_origin(name: str, q: Tensor) -> Tensor:
    """:math:`o_q` for orbit labels ``q`` ``[N, q_dim]``, ``[N, space_dim]``.

    Trivial: every point is its own orbit, o_q = x = q. T(d), SE(2), SE(3): one orbit, o = 0.
    Tx: the orbits are the horizontal lines y = q, o_q = (0, q); Ty: vertical lines, o_q = (q, 0).
    SO(2): circles of radius q, o_q = (q, 0). RxSO(2): one orbit R^2 minus 0, o = (1, 0).
    Rx: rays through the unit vector q, o_q = q. SO(3): spheres of radius q, o_q = q e_1.

    Args:
        name (str): a group name of :data:`ALL`.
        q (torch.Tensor): orbit labels ``[N, q_dim]``.
    """
    n = q.shape[0]
    zero = torch.zeros(n, dtype=q.dtype)
    if name.startswith("Trivial"):
        return q
    if name in ("T2", "SE2"):
        return torch.zeros(n, 2, dtype=q.dtype)
    if name in ("T3", "SE3"):
        return torch.zeros(n, 3, dtype=q.dtype)
    if name == "Tx":
        return torch.stack([zero, q[:, 0]], -1)
    if name in ("Ty", "SO2"):
        return torch.stack([q[:, 0], zero], -1)
    if name == "RxSO2":
        return torch.stack([zero + 1, zero], -1)
    if name == "Rx":
        return q
    if name == "SO3":
        return torch.stack([q[:, 0], zero, zero], -1)
    raise KeyError(name)


def planar_rotation(theta: float, dtype: torch.dtype = _F64) -> Tensor:
    r"""The rotation of the plane by ``theta`` radians, :math:`[[\cos\theta, -\sin\theta], [\sin\theta,
    \cos\theta]]`, written out (not through any group of the package).

    Args:
        theta (float): the angle in radians.
        dtype (torch.dtype, optional): the matrix's dtype. (default: :obj:`torch.float64`)
    """
    import math

    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s], [s, c]], dtype=dtype)
