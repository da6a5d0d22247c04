r"""Run folders: one training run per folder, locked while it runs, files replaced atomically.

* :func:`run_folder` creates the folder (a clear error when it cannot) and holds an exclusive lock on
  ``.lock`` inside it while the block runs, so a second run into the same folder is refused instead of
  interleaving checkpoints; the lock is re-entrant within one process (an experiment and its
  :class:`~torch_geometric_lieconv.training.Trainer` both take it) and released when the process dies.
* :func:`refuse_early` runs the refusals (an existing checkpoint without ``--resume``; a resume with
  other settings than the folder's ``config.json``) before any file of the run is written.
* :func:`atomic_write` writes a file through a unique temporary file in the same folder, ``fsync`` and
  ``os.replace``: a reader or a crash sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional

import torch

from ._files import atomic_write, write_json
from .models.hub import checkpoint_file

try:
    import fcntl
except ImportError:  # not POSIX: no lock, everything else works
    fcntl = None

__all__ = ["run_folder", "refuse_early", "check_config", "atomic_write", "write_json", "default_run_folder",
           "RunFolderBusy", "RUNTIME_KEYS"]

#: config keys that may differ between a checkpoint and the run resuming/evaluating it
RUNTIME_KEYS = frozenset({"runtime", "device", "resume", "out", "out_dir", "num_workers", "progress", "tensorboard",
                          "root", "config", "command", "task", "run", "traceback", "checkpoint", "world_size"})

#: locks this process holds: real path -> [file descriptor, nesting depth]
_HELD: Dict[str, List[int]] = {}


class RunFolderBusy(ValueError):
    """Another process is running in the folder."""


def make_folder(path: str) -> str:
    """Create ``path`` (and its parents); a ``ValueError`` naming the problem when it cannot.

    Args:
        path (str): the folder.
    """
    try:
        os.makedirs(path, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-")
        probe.close()
    except (NotADirectoryError, FileExistsError) as error:
        raise ValueError(f"cannot use {path!r} as the run folder: a file is in the way ({error})") from None
    except OSError as error:
        raise ValueError(f"cannot write to the run folder {path!r}: {error.strerror or error}") from None
    return path


@contextlib.contextmanager
def run_folder(path: str) -> Iterator[str]:
    """Create ``path`` and hold its lock for the block; :class:`RunFolderBusy` if another process does.

    Args:
        path (str): the run folder.
    """
    make_folder(path)
    key = os.path.realpath(path)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield path
        finally:
            _HELD[key][1] -= 1
        return
    fd = os.open(os.path.join(path, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunFolderBusy(f"another run is writing to {path}; wait for it to finish or choose another --out")
    _HELD[key] = [fd, 1]
    try:
        yield path
    finally:
        _HELD[key][1] -= 1
        if _HELD[key][1] == 0:
            del _HELD[key]
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def default_run_folder(base: str, resume: bool) -> str:
    """The folder of a run started without ``--out``: ``base`` itself when it holds no run yet (or to
    resume it), else the first free ``base-2``, ``base-3``, ... so that a repeated command starts afresh.

    Args:
        base (str): the folder the task names, e.g. ``runs/qm9-homo-T3``.
        resume (bool): whether the run resumes (then ``base`` itself).
    """
    if resume or not os.path.exists(checkpoint_file(base, "last")):
        return base
    index = 2
    while os.path.exists(checkpoint_file(f"{base}-{index}", "last")):
        index += 1
    return f"{base}-{index}"


def refuse_early(path: str, resume: bool, config: Mapping[str, Any], ignore: Iterable[str]) -> None:
    """Raise before anything is written when the run in ``path`` must not start.

    Without ``resume`` an existing ``checkpoint_last.pt`` is refused; with it, a ``config.json`` whose
    settings (outside ``ignore``) differ from ``config``.

    Args:
        path (str): the run folder.
        resume (bool): whether the run resumes.
        config (Mapping[str, Any]): the run's settings as saved.
        ignore (Iterable[str]): settings that may differ on resume.
    """
    last = checkpoint_file(path, "last")
    if not resume and os.path.exists(last):
        raise ValueError(f"{last} exists; pass --resume to continue it or choose another --out")
    saved = os.path.join(path, "config.json")
    if resume and os.path.isfile(saved):
        try:
            with open(saved) as f:
                previous = json.load(f)
        except (OSError, ValueError) as error:
            raise ValueError(f"{saved} is not readable JSON ({error}); move it away to start afresh") from None
        check_config(previous, json.loads(json.dumps(dict(config))), ignore=set(ignore), what=f"run in {path}")


def _plain(value: Any) -> Any:
    """Make config values comparable (tuples -> lists, dtypes -> str)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    return value


def _first_difference(saved: Any, current: Any, prefix: str, ignore: set) -> Optional[str]:
    if isinstance(saved, Mapping) and isinstance(current, Mapping):
        for key in sorted(set(saved) | set(current), key=str):
            if key in ignore:
                continue
            found = _first_difference(saved.get(key, "<unset>"), current.get(key, "<unset>"),
                                      f"{prefix}{key}.", ignore)
            if found is not None:
                return found
        return None
    a, b = _plain(saved), _plain(current)
    return None if a == b else f"{prefix[:-1]}={a!r} but this run has {prefix[:-1]}={b!r}"


def check_config(saved: Mapping[str, Any], current: Mapping[str, Any], *, ignore: Iterable[str] = RUNTIME_KEYS,
                 what: str = "checkpoint") -> None:
    """Raise a one-line ``ValueError`` naming the first setting where ``saved`` and ``current`` differ.

    Nested dicts are compared key by key; keys in ``ignore`` (device, output folder, ...) may differ;
    a key present on one side only counts as a difference.

    Args:
        saved (Mapping[str, Any]): the settings a checkpoint or folder holds.
        current (Mapping[str, Any]): this run's settings.
        ignore (Iterable[str], optional): keys that may differ. (default: :data:`RUNTIME_KEYS`)
        what (str, optional): what ``saved`` belongs to, for the error. (default: :obj:`"checkpoint"`)
    """
    found = _first_difference(saved, current, "", set(ignore))
    if found is not None:
        raise ValueError(f"the {what} was made with {found}; use the same settings or another output folder")
