"""Atomic files: a write that crashes half way leaves the previous file intact and readable, nothing
partial under the final name and no stray temporary file.

Crashes are simulated three ways: a writer callback (or the serializer a caller uses: ``torch.save``,
``json.dump``, ``csv`` rows) that writes half its bytes and raises; ``os.fsync`` / ``os.replace``
raising; and a real "disk full" half way through the file (``RLIMIT_FSIZE``: every write beyond the
limit fails with EFBIG), which hits any writer, however it opens its file. The callers checked are
the checkpoint store, the metrics CSV and the dataset caches (QM9 split files, spring/gravity caches).
"""
import contextlib
import csv
import gc
import io
import json
import os

import pytest
import torch

from torch_geometric_lieconv import _files
from torch_geometric_lieconv._files import atomic_write, write_json
from torch_geometric_lieconv.datasets.qm9 import load_splits, save_splits
from torch_geometric_lieconv.datasets.springs import ParticleDynamics, SpringSystem
from torch_geometric_lieconv.training.checkpoints import CheckpointStore, load_checkpoint
from torch_geometric_lieconv.training.metrics import CSVSink

pytestmark = pytest.mark.usefixtures("single_thread")


class Crash(RuntimeError):
    pass


def listing(folder):
    return sorted(os.listdir(folder))


def half_then_crash(data):
    """A writer callback that writes the first half of ``data`` and raises."""

    def write(f):
        f.write(data[: len(data) // 2])
        f.flush()
        raise Crash("half way")

    return write


# ------------------------------------------------------------------------------------------ atomic_write
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("error", [Crash, KeyboardInterrupt])
def test_a_writer_crashing_half_way_leaves_the_old_file_and_no_temp_file(tmp_path, binary, error):
    path = str(tmp_path / "file.dat")
    old, new = ("old content " * 50, "new content " * 80)
    old, new = (old.encode(), new.encode()) if binary else (old, new)
    atomic_write(path, lambda f: f.write(old), binary=binary)
    before = listing(tmp_path)

    def crash(f):
        f.write(new[: len(new) // 2])
        f.flush()
        raise error("half way")

    with pytest.raises(error):
        atomic_write(path, crash, binary=binary)
    with open(path, "rb" if binary else "r", **({} if binary else {"newline": ""})) as f:
        assert f.read() == old
    assert listing(tmp_path) == before == ["file.dat"]
    # a first write that crashes leaves no file at all
    with pytest.raises(error):
        atomic_write(str(tmp_path / "fresh.dat"), crash, binary=binary)
    assert listing(tmp_path) == before


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_fsync_or_rename_failing_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, failing):
    path = str(tmp_path / "config.json")
    write_json(path, {"epoch": 1})

    def fail(*args, **kwargs):
        raise OSError(f"{failing} failed")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match=failing):
        write_json(path, {"epoch": 2, "padding": list(range(100))})
    monkeypatch.undo()
    with open(path) as f:
        assert json.load(f) == {"epoch": 1}
    assert listing(tmp_path) == ["config.json"]


def test_a_completed_write_replaces_the_whole_file_and_cleans_up(tmp_path):
    path = str(tmp_path / "config.json")
    write_json(path, {"a": list(range(200))})
    write_json(path, {"b": 1})  # shorter: no tail of the old file may survive
    with open(path) as f:
        assert json.load(f) == {"b": 1}
    atomic_write(path, lambda f: f.write(b"\x00\x01"), binary=True)
    with open(path, "rb") as f:
        assert f.read() == b"\x00\x01"
    assert listing(tmp_path) == ["config.json"]


# ------------------------------------------------------------------ the callers, through their serializers
def _half_torch_save(real_save):
    def save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        if isinstance(f, (str, os.PathLike)):
            with open(f, "wb") as out:
                out.write(data[: len(data) // 2])
        else:
            f.write(data[: len(data) // 2])
            f.flush()
        raise Crash("torch.save crashed half way")

    return save


def test_a_checkpoint_save_crashing_half_way_keeps_the_previous_checkpoints(tmp_path, monkeypatch):
    store = CheckpointStore(str(tmp_path))
    first = {"epoch": 1, "model": {"w": torch.arange(500.0)}}
    store.save(first, best=True)
    before = listing(tmp_path)
    monkeypatch.setattr(torch, "save", _half_torch_save(torch.save))
    for best in (True, False):
        with pytest.raises(Crash):
            store.save({"epoch": 2, "model": {"w": -torch.arange(900.0)}}, best=best)
    monkeypatch.undo()
    for path in (store.last_path, store.best_path):
        state = load_checkpoint(path)
        assert state["epoch"] == 1 and torch.equal(state["model"]["w"], first["model"]["w"])
    assert listing(tmp_path) == before == ["checkpoint_best.pt", "checkpoint_last.pt"]


class _HalfRowsWriter(csv.DictWriter):
    def writerows(self, rows):
        rows = list(rows)
        super().writerows(rows[: len(rows) // 2])
        raise Crash("csv rows crashed half way")


def test_a_metrics_csv_write_crashing_half_way_keeps_the_previous_rows(tmp_path, monkeypatch):
    sink = CSVSink(str(tmp_path / "metrics.csv"))
    history = [{"epoch": e, "train_loss": 1.0 / e} for e in range(1, 4)]
    sink.write(history)
    with open(tmp_path / "metrics.csv", newline="") as f:
        before = f.read()
    monkeypatch.setattr(csv, "DictWriter", _HalfRowsWriter)
    with pytest.raises(Crash):
        sink.write(history + [{"epoch": e, "train_loss": 1.0 / e} for e in range(4, 10)])
    monkeypatch.undo()
    with open(tmp_path / "metrics.csv", newline="") as f:
        assert f.read() == before
        f.seek(0)
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]
    assert listing(tmp_path) == ["metrics.csv"]


def test_a_qm9_split_file_write_crashing_half_way_keeps_the_previous_splits(tmp_path, monkeypatch):
    path = str(tmp_path / "splits.json")
    splits = {"train": torch.arange(0, 50), "valid": torch.arange(50, 60), "test": torch.arange(60, 70)}
    save_splits(path, splits)
    real_dump = json.dump

    def half_dump(obj, f, **kwargs):
        text = json.dumps(obj, **kwargs)
        f.write(text[: len(text) // 2])
        f.flush()
        raise Crash("json.dump crashed half way")

    monkeypatch.setattr(json, "dump", half_dump)
    with pytest.raises(Crash):
        save_splits(path, {k: v + 1000 for k, v in splits.items()})
    monkeypatch.setattr(json, "dump", real_dump)
    back = load_splits(path)
    assert all(torch.equal(back[k], splits[k]) for k in splits)
    assert listing(tmp_path) == ["splits.json"]


SPRINGS = dict(system=SpringSystem(num_particles=3), num_systems=4, traj_len=5)


def test_a_spring_cache_write_crashing_half_way_keeps_the_previous_cache(tmp_path, monkeypatch):
    reference = ParticleDynamics(str(tmp_path / "ref"), **SPRINGS)
    root = str(tmp_path / "data")
    ParticleDynamics(root, **SPRINGS)
    processed = os.path.join(root, "processed")
    before = {name: open(os.path.join(processed, name), "rb").read() for name in listing(processed)}
    monkeypatch.setattr(torch, "save", _half_torch_save(torch.save))
    with pytest.raises(Crash):
        ParticleDynamics(root, force_reload=True, **SPRINGS)
    monkeypatch.undo()
    assert {name: open(os.path.join(processed, name), "rb").read() for name in listing(processed)} == before
    again = ParticleDynamics(root, **SPRINGS)
    assert torch.equal(again._data.traj, reference._data.traj)


# ---------------------------------------------------------------------------- disk full half way
@contextlib.contextmanager
def disk_full_after(num_bytes):
    """Every write to a regular file beyond offset ``num_bytes`` fails with EFBIG (as on a full disk)."""
    resource = pytest.importorskip("resource")
    import signal

    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the default action kills the process
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (num_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def _checkpoint(root, version):
    CheckpointStore(root).save({"epoch": version, "w": torch.full((4000,), float(version))}, best=True)


def _metrics(root, version):
    CSVSink(os.path.join(root, "metrics.csv")).write([{"epoch": e, "loss": 0.5 * e} for e in range(40 * version)])


def _splits(root, version):
    save_splits(os.path.join(root, "splits.json"), {"train": torch.arange(300 * version)})


def _springs(root, version):
    ParticleDynamics(root, force_reload=version > 1, **SPRINGS)  # the same cache file, built again


def _rotmnist(root, version):
    from torch_geometric_lieconv.datasets.rotmnist import RotMNIST
    from torch_geometric_lieconv.testing.rotmnist_fixture import write_rotmnist_root

    folder = os.path.join(root, "rotmnist")
    if not os.path.isdir(folder):
        gen = torch.Generator().manual_seed(0)
        images = [torch.rand(28, 28, generator=gen) for _ in range(24)]
        write_rotmnist_root(root, images, [k % 10 for k in range(24)], images[:6], list(range(6)))
    RotMNIST(folder, "train", force_reload=version > 1, log=False, download=False)  # the same caches, again


def _snapshot(root):
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                out[os.path.relpath(os.path.join(folder, name), root)] = f.read()
    return out


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # a buffer's last flush fails
@pytest.mark.parametrize("writer", [_checkpoint, _metrics, _splits, _springs, _rotmnist])
def test_a_disk_full_half_way_through_any_cache_or_run_file_keeps_the_previous_files(tmp_path, writer):
    """Version 1 is written; version 2 fails half way through its bytes: every file is the version 1
    file, byte for byte, and no other file appeared. Then version 2 is written completely, as it is
    when written elsewhere without a crash."""
    root = str(tmp_path / "run")
    os.makedirs(root)
    writer(root, 1)
    before = _snapshot(root)
    probe = str(tmp_path / "probe")  # the size of a complete version 2, written elsewhere
    os.makedirs(probe)
    writer(probe, 2)
    size = max(len(v) for k, v in _snapshot(probe).items() if not k.endswith(".amat"))  # outputs, not inputs
    with disk_full_after(size // 2):
        try:
            writer(root, 2)
        except (OSError, RuntimeError):
            crashed = True
        else:
            crashed = False
        gc.collect()  # the failed write's objects are finalised while the disk is still full
    assert crashed
    assert _snapshot(root) == before
    writer(root, 2)
    assert _snapshot(root) == _snapshot(probe)
