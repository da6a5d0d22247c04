"""Names renamed in 0.3 keep working for one release: keywords (:func:`renamed_keywords`) and
attributes (:func:`deprecated_alias`), each with a :class:`DeprecationWarning` naming the new name."""
from __future__ import annotations

import functools
import warnings
from typing import Callable, TypeVar

__all__ = ["renamed_keywords", "deprecated_alias"]

_Fn = TypeVar("_Fn", bound=Callable)


def renamed_keywords(**renames: str) -> Callable[[_Fn], _Fn]:
    """Decorator: keep the old keyword names ``old=new`` of a function working for one release.

    A call with an old name warns with a :class:`DeprecationWarning` and passes the value on under
    the new name; a call with both names raises a :class:`TypeError`. The one helper for every
    renamed keyword of this package (functions, methods and ``__init__``).

    Args:
        **renames (str): the new name of each old keyword.
    """

    def wrap(fn: _Fn) -> _Fn:
        @functools.wraps(fn)
        def renaming(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{fn.__qualname__}() got '{new}' and its deprecated name '{old}'")
                    warnings.warn(f"{fn.__qualname__}(): the keyword '{old}' is deprecated and will be removed "
                                  f"in 0.3; use '{new}'", DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return renaming  # type: ignore[return-value]

    return wrap


def deprecated_alias(old: str, new: str) -> property:
    """A property ``old`` that reads and writes the attribute ``new``, with a :class:`DeprecationWarning`.

    Args:
        old (str): the deprecated attribute name.
        new (str): the attribute it stands for.
    """

    def _warn(obj) -> None:
        warnings.warn(f"{type(obj).__name__}.{old} is deprecated and will be removed in 0.3; use .{new}",
                      DeprecationWarning, stacklevel=3)

    def getter(self):
        _warn(self)
        return getattr(self, new)

    def setter(self, value) -> None:
        _warn(self)
        setattr(self, new, value)

    return property(getter, setter, doc=f"Deprecated name of :attr:`{new}`.")
