"""Every task trains under ``torchrun`` (2 processes, gloo, CPU): one run folder, one set of
checkpoints and metrics written by rank 0, both ranks' RNG states saved, and a resume under torchrun
that finishes the schedule. Before the one driver, RotMNIST and springs failed here: every rank took
the run folder's lock and rank 1 exited with "another run is writing to RUN"."""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from torch_geometric_lieconv.testing.rotmnist_fixture import write_rotmnist_root
from torch_geometric_lieconv.training import load_checkpoint

pytestmark = pytest.mark.usefixtures("single_thread")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args, cwd, expect: int = 0) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 -m torch_geometric_lieconv.cli ARGS`` from ``cwd``; its exit code
    must be ``expect`` (0: success, else any failure)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), "-m", "torch_geometric_lieconv.cli", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert (done.returncode == 0) == (expect == 0), done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _train_twice(task_args, tmp_path, epochs=2):
    """An interrupted run (``--max-epochs 1``) and its resume, both under torchrun, into ``tmp_path/run``."""
    out = tmp_path / "run"
    common = ["train", *task_args, "--out", str(out), "--epochs", str(epochs), "--no-progress", "--device", "cpu"]
    first = _torchrun([*common, "--max-epochs", "1"], tmp_path)
    second = _torchrun([*common, "--resume"], tmp_path)
    return out, first.stdout + first.stderr + second.stdout + second.stderr


def _check_one_run(out, epochs, printed):
    assert sorted(p for p in os.listdir(out.parent) if p.startswith("run")) == ["run"]  # no run-2 and no lock race
    for name in ("checkpoint_best.pt", "checkpoint_last.pt", "config.json", "metrics.csv", "results_test.json"):
        assert (out / name).is_file(), name
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))  # each epoch once: rank 0 alone writes
    state = load_checkpoint(str(out / "checkpoint_last.pt"))
    assert state["epoch"] == epochs and len(state["rng"]) == 2  # both ranks' RNG states, for an exact resume
    assert [row["epoch"] for row in state["history"]] == list(range(1, epochs + 1))
    assert "another run is writing" not in printed
    assert printed.count("out " + str(out)) == 2  # the start line, printed by rank 0 only, once per call
    return state


def test_qm9_trains_and_resumes_under_torchrun(qm9_root, tmp_path):
    root, _ = qm9_root
    out, printed = _train_twice(["qm9", "--root", root, "--hidden-channels", "16", "--num-layers", "1",
                                 "--batch-size", "4"], tmp_path)
    state = _check_one_run(out, 2, printed)
    assert os.path.isfile(out / "splits.json") and state["config"]["task"] == "qm9"


def test_rotmnist_trains_and_resumes_under_torchrun(tmp_path):
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(28, 28, generator=gen) for _ in range(12)]
    root = write_rotmnist_root(str(tmp_path / "data"), images, [k % 2 for k in range(12)], images[:4], [0, 1, 0, 1])
    out, printed = _train_twice(["rotmnist", "--root", root, "--no-download", "--group", "SO2", "--preset", "quick",
                                 "--hidden-channels", "8", "--num-layers", "1", "--mc-samples", "8",
                                 "--batch-size", "4"], tmp_path)
    _check_one_run(out, 2, printed)
    with open(out / "results_test.json") as f:
        assert json.load(f)["images"] == 4
    # a refusal on rank 0 (the run exists, no --resume) stops every rank with its reason, none waits
    before = (out / "checkpoint_last.pt").read_bytes()
    refused = _torchrun(["train", "rotmnist", "--root", root, "--no-download", "--group", "SO2", "--preset", "quick",
                         "--out", str(out), "--epochs", "2", "--no-progress"], tmp_path, expect=2)
    text = refused.stdout + refused.stderr
    assert "pass --resume" in text and "rank 0 stopped the run" in text  # rank 1 says why too
    assert (out / "checkpoint_last.pt").read_bytes() == before


def test_springs_trains_and_resumes_under_torchrun(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"n_train": 8, "n_val": 2, "n_test": 2, "traj_len": 12, "hidden_channels": 8,
                                  "num_layers": 1, "batch_size": 4}))
    out, printed = _train_twice(["springs", "--config", str(config), "--root", str(tmp_path / "data"),
                                 "--group", "T2"], tmp_path)
    _check_one_run(out, 2, printed)
