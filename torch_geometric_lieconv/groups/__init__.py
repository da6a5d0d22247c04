r"""Lie groups for LieConv: each defines exp, log, lift and distance (see :class:`LieGroup`)."""
from __future__ import annotations

import re
from typing import Dict, Optional, Type

from .base import LieGroup
from .planar import SE2, SO2, Rx, RxSO2
from .spatial import SE3, SO3
from .translation import T, Trivial, Tx, Ty

__all__ = ["LieGroup", "Trivial", "T", "Tx", "Ty", "SO2", "RxSO2", "Rx", "SE2", "SO3", "SE3", "group_from_name"]

_FIXED: Dict[str, Type[LieGroup]] = {
    "tx": Tx, "ty": Ty, "so2": SO2, "rxso2": RxSO2, "rx": Rx, "se2": SE2, "so3": SO3, "se3": SE3,
}
_SIZED: Dict[str, Type[LieGroup]] = {"t": T, "trivial": Trivial}


def group_from_name(name: str, alpha: Optional[float] = None) -> LieGroup:
    """Build a group from its name: ``"SE3"``, ``"SE(3)"``, ``"T3"``, ``"T(2)"``, ``"Trivial(3)"``, ``"RxSO2"``...

    Raises ``ValueError`` naming the accepted names for anything else.
    """
    key = re.sub(r"[\s_()]", "", str(name)).lower()
    if key in _FIXED:
        return _FIXED[key](alpha=alpha)
    match = re.fullmatch(r"(t|trivial)(\d+)", key)
    if match and int(match.group(2)) > 0:
        return _SIZED[match.group(1)](int(match.group(2)), alpha=alpha)
    known = "Trivial(d), T(d), Tx, Ty, SO2, RxSO2, Rx, SE2, SO3, SE3"
    raise ValueError(f"unknown group name {name!r}; known groups: {known} (e.g. 'SE3', 'T3', 'Trivial2')")
