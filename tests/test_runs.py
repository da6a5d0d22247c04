"""Runs and files: refusals leave every file untouched, one run per folder, crashes lose nothing,
and data files never unpickle code."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.error
import zipfile

import pytest
import torch

from toy_training import make_trainer
from torch_geometric_lieconv import runs
from torch_geometric_lieconv.cli import main
from torch_geometric_lieconv.testing import one_pixel_image, write_qm9_root, write_rotmnist_root
from torch_geometric_lieconv.testing.rotmnist_fixture import TRAIN_VALID
from torch_geometric_lieconv.datasets.qm9 import _raw_digest, load_qm9
from torch_geometric_lieconv.datasets.rotmnist import RotMNIST
from torch_geometric_lieconv.datasets.springs import ParticleDynamics
from torch_geometric_lieconv.training import load_checkpoint

TINY_QM9 = ["--target", "homo", "--group", "T3", "--epochs", "1", "--hidden-channels", "8", "--num-layers", "1",
            "--batch-size", "4", "--no-progress"]


def snapshot(folder):
    """``{relative path: sha256}`` of every file under ``folder``."""
    out = {}
    for base, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def comparable(history):
    return [{k: v for k, v in row.items() if k not in ("time_s", "cpu_s")} for row in history]


# ---------------------------------------------------------------------------------------------- refusals
@pytest.fixture(scope="module")
def qm9_run(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("qm9"))
    write_qm9_root(root, 24, seed=0)
    out = str(tmp_path_factory.mktemp("run") / "t3")
    assert main(["train", "qm9", "--root", root, "--out", out] + TINY_QM9) == 0
    return root, out


@pytest.mark.parametrize("extra", [[], ["--resume", "--lr", "0.1"]])
def test_a_refused_run_leaves_every_file_byte_identical(qm9_run, extra, capsys):
    root, out = qm9_run
    before = snapshot(out)
    assert main(["train", "qm9", "--root", root, "--out", out] + TINY_QM9 + extra) == 2
    message = capsys.readouterr().err
    assert ("exists; pass --resume" in message) if not extra else ("lr" in message)
    assert snapshot(out) == before


def test_a_second_run_into_a_busy_folder_is_refused(tmp_path):
    """Another process holds the folder's lock (as a running training does): a trainer is refused clearly."""
    out = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom torch_geometric_lieconv.runs import run_folder\n"
         f"with run_folder({str(out)!r}):\n    print('locked', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        trainer = make_trainer(str(out), epochs=1)
        with pytest.raises(runs.RunFolderBusy, match="another run is writing to"):
            trainer.fit()
        assert not os.path.exists(out / "checkpoint_last.pt")
    finally:
        holder.kill()
        holder.wait()
    make_trainer(str(out), epochs=1).fit()  # free again once the other process is gone
    assert os.path.exists(out / "checkpoint_last.pt")


def test_unusable_output_folders_and_empty_checkpoints_give_one_line_errors(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="a file is in the way"):
        make_trainer(str(blocker / "run"), epochs=1).fit()
    with pytest.raises(ValueError, match="a file is in the way"):
        make_trainer(str(blocker), epochs=1).fit()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "checkpoint_last.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="is not a readable checkpoint"):
        load_checkpoint(str(empty / "checkpoint_last.pt"))
    with pytest.raises(ValueError, match="is not a readable checkpoint"):
        make_trainer(str(empty), epochs=1).fit(resume=True)


# ---------------------------------------------------------------------------------------------- crashes
class Crash(RuntimeError):
    pass


def test_a_crash_between_any_two_writes_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """Every file write of a 3-epoch run (best checkpoint, last checkpoint, metrics.csv per epoch) is a
    crash point: the run, resumed, ends with the same model, history and files as an uninterrupted one."""
    real_write, count, crash_at = runs.atomic_write, [0], [None]

    def counting_write(path, write, binary=True):
        count[0] += 1
        if count[0] == crash_at[0]:
            raise Crash(f"crash before writing {os.path.basename(path)}")
        real_write(path, write, binary)

    from torch_geometric_lieconv.training import checkpoints, metrics

    for writer in (checkpoints, metrics):  # the two modules that write a run's files
        monkeypatch.setattr(writer, "atomic_write", counting_write)
    straight = make_trainer(str(tmp_path / "straight"), epochs=3)
    straight.fit()
    num_writes = count[0]
    assert num_writes >= 7  # 3 x (last checkpoint, metrics.csv) + at least one best checkpoint
    for point in range(1, num_writes + 1):
        out = str(tmp_path / f"crashed-{point}")
        count[0], crash_at[0] = 0, point
        with pytest.raises(Crash):
            make_trainer(out, epochs=3).fit()
        crash_at[0] = None
        resumed = make_trainer(out, epochs=3)
        resumed.fit(resume=True)
        assert comparable(resumed.history) == comparable(straight.history), f"crash at write {point}"
        for key, value in straight.model.state_dict().items():
            torch.testing.assert_close(resumed.model.state_dict()[key], value, atol=0, rtol=0)
        with open(os.path.join(out, "metrics.csv")) as f:
            assert len(f.read().strip().splitlines()) == 1 + 3, f"crash at write {point}: a row was lost"
        best = load_checkpoint(os.path.join(out, "checkpoint_best.pt"))
        assert best["epoch"] == resumed.best["epoch"], f"crash at write {point}: best names another epoch"
        assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


# ---------------------------------------------------------------------------------------------- data files
class _Payload:
    """Unpickling this creates a marker file: proof that code from a data file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant(path, marker):
    torch.save({"innocent": torch.zeros(2), "payload": _Payload(str(marker))}, path)


def test_tampered_rotmnist_and_springs_files_are_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    root = write_rotmnist_root(str(tmp_path), [one_pixel_image(3, 5)] * 12, list(range(10)) + [0, 1],
                               [one_pixel_image(9, 9)], [2])
    RotMNIST(root, "train", log=False)
    plant(os.path.join(root, "processed", "train.pt"), marker)
    with pytest.raises(ValueError, match="refused to load .*train.pt"):
        RotMNIST(root, "train", log=False)
    springs = ParticleDynamics(str(tmp_path / "springs"), num_systems=2, traj_len=4)
    plant(springs.processed_paths[0], marker)
    with pytest.raises(ValueError, match="refused to load"):
        ParticleDynamics(str(tmp_path / "springs"), num_systems=2, traj_len=4)
    assert not marker.exists()


@pytest.mark.parametrize("tampered", ["raw", "processed"])
def test_tampered_qm9_files_are_refused_without_running(tmp_path, tampered):
    marker = tmp_path / "pwned"
    root = str(tmp_path / "qm9")
    write_qm9_root(root, 6, seed=1)
    if tampered == "processed":
        load_qm9(root, download=False)
        plant(os.path.join(root, "processed", "data_v3.pt"), marker)
    else:
        plant(os.path.join(root, "raw", "qm9_v3.pt"), marker)
    with pytest.raises(ValueError, match="refused to load"):
        load_qm9(root, download=False)
    assert not marker.exists()


def test_read_only_qm9_cache_key_changes_with_the_raw_data(tmp_path):
    root = str(tmp_path / "qm9")
    write_qm9_root(root, 6, seed=1)
    key = _raw_digest(root)
    assert _raw_digest(root) == key
    write_qm9_root(root, 7, seed=2)
    assert _raw_digest(root) != key


def test_an_explicit_qm9_cache_dir_is_keyed_by_the_raw_data_too(tmp_path, monkeypatch):
    """A read-only root processed into ``cache_dir``, then its raw files replaced: the next load sees
    the new molecules (a cache keyed by the folder alone would serve the old ones)."""
    from torch_geometric_lieconv.datasets import qm9

    root, cache = str(tmp_path / "qm9"), str(tmp_path / "cache")
    monkeypatch.setattr(qm9, "_writable", lambda path: False)  # the tests run as a user who can write anywhere
    write_qm9_root(root, 6, seed=1)
    first = load_qm9(root, download=False, cache_dir=cache)
    assert len(first) == 6 and not os.path.exists(os.path.join(root, "processed"))
    assert os.listdir(cache) == [f"qm9-{_raw_digest(root)}"]
    write_qm9_root(root, 7, seed=2)
    assert len(load_qm9(root, download=False, cache_dir=cache)) == 7
    assert len(os.listdir(cache)) == 2


def test_a_failed_rotmnist_download_says_so_and_leaves_no_empty_folder(tmp_path, monkeypatch):
    from torch_geometric_lieconv.datasets import rotmnist

    def offline(url, folder, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(rotmnist, "download_url", offline)
    with pytest.raises(OSError, match="could not download RotMNIST .*put the two .amat files in"):
        RotMNIST(str(tmp_path / "root"), "test", log=False)
    assert not (tmp_path / "root" / "raw").exists()

    def foreign_archive(url, folder, *args, **kwargs):
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "mnist_rotation_new.zip")
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(TRAIN_VALID, "1 2 3")
            archive.writestr("../escape.txt", "outside")
        return path

    monkeypatch.setattr(rotmnist, "download_url", foreign_archive)
    monkeypatch.setattr(RotMNIST, "archive_md5", None)  # past the checksum (a repacking mirror): the members
    with pytest.raises(OSError, match="unexpected archive members"):
        RotMNIST(str(tmp_path / "root2"), "test", log=False)
    assert not (tmp_path / "root2" / "raw").exists() and not (tmp_path / "escape.txt").exists()


# ---------------------------------------------------------------------------------------------- rerunning
def test_a_repeated_command_without_out_starts_a_fresh_run_folder(qm9_run, tmp_path, monkeypatch, capsys):
    root, _ = qm9_run
    monkeypatch.chdir(tmp_path)
    assert runs.default_run_folder("runs/x", resume=False) == "runs/x"
    for expected in ["runs/qm9-homo-T3", "runs/qm9-homo-T3-2", "runs/qm9-homo-T3-3"]:
        assert main(["train", "qm9", "--root", root] + TINY_QM9) == 0
        assert os.path.isfile(os.path.join(expected, "checkpoint_last.pt"))
        assert f"out {expected}" in capsys.readouterr().out
    assert runs.default_run_folder("runs/qm9-homo-T3", resume=True) == "runs/qm9-homo-T3"


def test_learning_curves_use_a_log_axis_only_over_more_than_a_decade(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from torch_geometric_lieconv.training.metrics import LearningCurvePlot

    plot = LearningCurvePlot(str(tmp_path / "learning_curve.png"))
    scales = {}
    real_savefig = matplotlib.figure.Figure.savefig

    def record(fig, *args, **kwargs):
        scales["axes"] = [ax.get_yscale() for ax in fig.axes]
        return real_savefig(fig, *args, **kwargs)

    matplotlib.figure.Figure.savefig = record
    try:
        plot.close([{"epoch": 1, "train_loss": 0.1717, "valid": 2.0}, {"epoch": 2, "train_loss": 0.1716,
                                                                        "valid": 1.9}])
        assert scales["axes"] == ["linear", "linear"]
        plot.close([{"epoch": 1, "train_loss": 1.0, "valid": 2.0}, {"epoch": 2, "train_loss": 0.01,
                                                                   "valid": 1.9}])
        assert scales["axes"] == ["log", "linear"]
    finally:
        matplotlib.figure.Figure.savefig = real_savefig


def test_readme_line_one_can_be_run_twice(tmp_path, monkeypatch, capsys):
    """`lieconv train springs --preset quick` (tiny settings here) run twice: the second trains afresh."""
    import json

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"n_train": 6, "n_val": 3, "n_test": 3, "traj_len": 20, "hidden_channels": 16,
                                  "num_layers": 1, "batch_size": 3, "epochs": 1}))
    for expected in ["runs/springs-HLieConv-T2-quick", "runs/springs-HLieConv-T2-quick-2"]:
        assert main(["train", "springs", "--preset", "quick", "--config", str(config), "--no-progress"]) == 0
        assert f"out {expected}" in capsys.readouterr().out
        assert os.path.isfile(os.path.join(expected, "results_test.json"))


def test_cli_jobs_keep_freed_memory_for_reuse():
    """After keep_freed_memory() a freed 400-MB tensor stays resident for the next step (no fresh mmap
    and page faults per step); without it glibc unmaps it at once. Each case in its own process."""
    import subprocess
    import sys

    script = """
import os, sys, torch
from torch_geometric_lieconv._memory import keep_freed_memory
if sys.argv[1] == 'keep':
    assert keep_freed_memory()


def resident_mb():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
before = resident_mb()
block = torch.ones(100_000_000)
del block
print(resident_mb() - before)
"""
    grown = {mode: float(subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                                        check=True).stdout.split()[-1]) for mode in ("keep", "default")}
    assert grown["keep"] > 300 and grown["default"] < 50
