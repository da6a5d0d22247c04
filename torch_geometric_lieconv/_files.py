"""Files replaced atomically: a reader or a crash sees the old file or the new one, never half."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Callable, Optional

__all__ = ["atomic_write", "write_json"]


def atomic_write(path: str, write: Callable[[Any], None], binary: bool = True) -> None:
    """Write ``path`` through ``write(file)`` on a unique temporary file, ``fsync`` it, then rename it."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_json(path: str, obj: Any, indent: Optional[int] = 2) -> None:
    """:func:`atomic_write` of ``obj`` as JSON."""
    atomic_write(path, lambda f: json.dump(obj, f, indent=indent), binary=False)
