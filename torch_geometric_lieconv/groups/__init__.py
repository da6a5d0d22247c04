r"""Lie groups for LieConv: each defines exp, log, lift and distance (see :class:`LieGroup`)."""
from __future__ import annotations

import re
from typing import Dict, Optional, Type

from ._rotations import random_rotations
from .base import LieGroup
from .planar import SE2, SO2, Rx, RxSO2
from .spatial import SE3, SO3
from .translation import T, Trivial, Tx, Ty

__all__ = ["LieGroup", "Trivial", "T", "Tx", "Ty", "SO2", "RxSO2", "Rx", "SE2", "SO3", "SE3", "group_from_name",
           "group_spec", "random_rotations"]

_FIXED: Dict[str, Type[LieGroup]] = {
    "tx": Tx, "ty": Ty, "so2": SO2, "rxso2": RxSO2, "rx": Rx, "se2": SE2, "so3": SO3, "se3": SE3,
}
_SIZED: Dict[str, Type[LieGroup]] = {"t": T, "trivial": Trivial}


def group_from_name(name: str, alpha: Optional[float] = None) -> LieGroup:
    """Build a group from its name: ``"SE3"``, ``"SE(3)"``, ``"T3"``, ``"T(2)"``, ``"Trivial(3)"``, ``"RxSO2"``...

    A name may end in ``"(alpha=0.5)"`` (as :func:`group_spec` writes it) to set :math:`\alpha`.
    Raises ``ValueError`` naming the accepted names for anything else.
    """
    match = re.fullmatch(r"\s*(.*?)\s*\(\s*alpha\s*=\s*([-+0-9.eE]+)\s*\)\s*", str(name))
    if match:
        if alpha is not None:
            raise ValueError(f"group name {name!r} sets alpha; do not pass alpha={alpha} as well")
        name, alpha = match.group(1), float(match.group(2))
    key = re.sub(r"[\s_()]", "", str(name)).lower()
    if key in _FIXED:
        return _FIXED[key](alpha=alpha)
    match = re.fullmatch(r"(t|trivial)(\d+)", key)
    if match and int(match.group(2)) > 0:
        return _SIZED[match.group(1)](int(match.group(2)), alpha=alpha)
    known = "Trivial(d), T(d), Tx, Ty, SO2, RxSO2, Rx, SE2, SO3, SE3"
    raise ValueError(f"unknown group name {name!r}; known groups: {known} (e.g. 'SE3', 'T3', 'Trivial2')")


def group_spec(group: LieGroup) -> str:
    """The name that rebuilds ``group`` with :func:`group_from_name`, its :math:`\alpha` included
    (``"SE3"``, ``"T3"``, ``"SO2(alpha=0.5)"``): the plain form a checkpoint stores.

    Raises ``ValueError`` for a group that is not built in (a user's own :class:`LieGroup`), since
    no name rebuilds it.
    """
    if not isinstance(group, LieGroup):
        raise TypeError(f"group must be a LieGroup, got {type(group).__name__}")
    base = type(group).__name__
    if isinstance(group, (T, Trivial)):
        base = f"{base}{group.space_dim}"
    spec = base if group.alpha == group.default_alpha else f"{base}(alpha={group.alpha!r})"
    try:
        rebuilt = group_from_name(spec)
    except ValueError:
        rebuilt = None
    if rebuilt != group:
        raise ValueError(f"{group!r} is not a built-in group, so no name rebuilds it; save the model's "
                         f"state_dict and build the model with the group yourself")
    return spec
