"""Tests of the generic trainer: schedule, exact resume, best checkpoint, files, DDP == one process."""
from __future__ import annotations

import csv
import gc
import math
import os
import shutil
import socket
import time

import pytest
import torch

from toy_training import ToyNet, make_trainer, mse_loss, toy_graphs

from torch_geometric_lieconv.training import Trainer, cosine_warmup_lambda, load_checkpoint, seed_everything


# ----------------------------------------------------------------------------------------------- schedule
def test_cosine_warmup_shape():
    total, warm = 1000, 0.05
    f = cosine_warmup_lambda(total, warm)
    values = [f(s) for s in range(total)]
    w = int(warm * total)
    # warm-up: strictly increasing, linear with slope 1/w (the cosine factor is ~1 there)
    assert all(b > a for a, b in zip(values[:w - 1], values[1:w]))
    assert values[0] == pytest.approx(1 / w * 0.5 * (1 + math.cos(0)), rel=1e-12)
    for s in (w // 4, w // 2, w - 2):
        assert values[s] == pytest.approx((s + 1) / w * 0.5 * (1 + math.cos(math.pi * s / total)), rel=1e-12)
    # after warm-up: the cosine 0.5 (1 + cos(pi s / S)), derived here independently
    for s in (w, 300, 500, 800, total - 1):
        assert values[s] == pytest.approx(0.5 * (1 + math.cos(math.pi * s / total)), rel=1e-12, abs=1e-15)
    assert all(b <= a for a, b in zip(values[w:], values[w + 1:]))
    assert max(values) <= 1.0 and values[-1] < 1e-4
    # no warm-up
    assert cosine_warmup_lambda(10, 0.0)(0) == 1.0
    with pytest.raises(ValueError):
        cosine_warmup_lambda(0)


def test_learning_rate_follows_schedule(tmp_path):
    seen = []

    def recording_loss(model, batch):  # called before each optimizer step
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        return mse_loss(model, batch)

    trainer = make_trainer(tmp_path, epochs=2, evaluate=False, warmup_frac=0.25)
    trainer.loss_fn = recording_loss
    steps = trainer.steps_per_epoch * 2
    trainer.fit()
    f = cosine_warmup_lambda(steps, 0.25)
    assert seen == pytest.approx([1e-2 * f(s) for s in range(steps)], rel=1e-12)


# ----------------------------------------------------------------------------------------------- resume
def _final_state(out_dir):
    return load_checkpoint(os.path.join(out_dir, "checkpoint_last.pt"))


def test_resume_equals_straight_run(tmp_path):
    straight = make_trainer(tmp_path / "a", epochs=4)
    straight.fit()
    interrupted = make_trainer(tmp_path / "b", epochs=4)
    interrupted.fit(max_epochs=2)
    assert _final_state(tmp_path / "b")["epoch"] == 2
    resumed = make_trainer(tmp_path / "b", epochs=4)  # a new process would rebuild everything
    resumed.fit(resume=True)
    a, b = _final_state(tmp_path / "a"), _final_state(tmp_path / "b")
    assert b["epoch"] == 4
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-6, atol=1e-7)
    assert float(a["model"]["seen"]) == 4 * len(toy_graphs())
    for row_a, row_b in zip(a["history"], b["history"]):
        assert row_a["train_loss"] == pytest.approx(row_b["train_loss"], rel=1e-6)
        assert row_a["valid_mae"] == pytest.approx(row_b["valid_mae"], rel=1e-6)
    # the dropout RNG matters: without restoring it the result would differ
    assert len(b["history"]) == 4


def test_resume_refuses_other_config(tmp_path):
    make_trainer(tmp_path, epochs=2).fit(max_epochs=1)
    other = make_trainer(tmp_path, epochs=2, config={"model": "toy", "dropout": 0.5})
    with pytest.raises(ValueError, match="dropout") as info:
        other.fit(resume=True)
    assert "\n" not in str(info.value)
    longer = make_trainer(tmp_path, epochs=3)  # another schedule length
    with pytest.raises(ValueError, match="epochs"):
        longer.fit(resume=True)
    with pytest.raises(ValueError, match="resume"):
        make_trainer(tmp_path, epochs=2).fit(resume=False)


# ----------------------------------------------------------------------------------------------- files
def test_files_and_best_checkpoint(tmp_path):
    seed_everything(0)
    values = iter([3.0, 1.0, 2.0, 1.5])
    trainer = Trainer(ToyNet(), toy_graphs(), batch_size=8, loss_fn=mse_loss, out_dir=str(tmp_path), epochs=4,
                      evaluate_fn=lambda m: {"score": next(values), "other": 0.0}, monitor="score", progress=False)
    history = trainer.fit()
    assert [row["score"] for row in history] == [3.0, 1.0, 2.0, 1.5]
    best = load_checkpoint(str(tmp_path / "checkpoint_best.pt"))
    last = load_checkpoint(str(tmp_path / "checkpoint_last.pt"))
    assert best["epoch"] == 2 and best["best"]["value"] == 1.0
    assert last["epoch"] == 4 and last["best"]["epoch"] == 2
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert {"train_loss", "lr", "score", "other", "time_s", "cpu_s"} <= set(rows[0])
    assert float(rows[3]["train_loss"]) == pytest.approx(history[3]["train_loss"])
    png = (tmp_path / "learning_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_training_reduces_loss_and_float64(tmp_path):
    trainer = make_trainer(tmp_path, epochs=10, dropout=0.0, evaluate=False, dtype=torch.float64, lr=3e-2)
    history = trainer.fit()
    assert next(trainer.model.parameters()).dtype == torch.float64
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]


# ----------------------------------------------------------------------------------------------- DDP
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        trainer = make_trainer(out_dir, epochs=3, dropout=0.0, evaluate=False, device="cpu")
        assert trainer.world_size == world and trainer.loader.batch_size == 8 // world
        trainer.fit()
        del trainer  # DDP's reducer freed after the process group: gloo's teardown hung ~1 run in 10
        gc.collect()
    finally:
        from torch_geometric_lieconv.training import cleanup_distributed

        cleanup_distributed()


def test_ddp_two_processes_match_one(tmp_path):
    import torch.multiprocessing as mp

    single = make_trainer(tmp_path / "one", epochs=3, dropout=0.0, evaluate=False, device="cpu")
    single.fit()
    for attempt in range(2):  # a rendezvous that hangs (a port taken between probe and bind) is retried once
        shutil.rmtree(tmp_path / "two", ignore_errors=True)
        context = mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "two")), nprocs=2, join=False)
        deadline = time.monotonic() + 180
        while not context.join(timeout=5) and time.monotonic() < deadline:
            pass
        if all(not p.is_alive() for p in context.processes):
            break
        for process in context.processes:
            process.kill()
    else:
        pytest.fail("two DDP processes did not finish in 180 s, twice")
    one, two = _final_state(tmp_path / "one"), _final_state(tmp_path / "two")
    assert not os.path.exists(tmp_path / "two" / "checkpoint_last.pt.tmp")
    for key, value in one["model"].items():
        if key == "seen":  # per-process counters see half the data each
            continue
        torch.testing.assert_close(two["model"][key], value, rtol=1e-5, atol=1e-6)
    for row_1, row_2 in zip(one["history"], two["history"]):
        assert row_2["train_loss"] == pytest.approx(row_1["train_loss"], rel=1e-5)
    assert len(two["rng"]) == 2


# ----------------------------------------------------------------------------------------------- precision
def test_the_trainer_runs_every_loss_and_evaluation_under_its_autocast(tmp_path):
    """``autocast=torch.bfloat16``: the loss and the validation run under CPU autocast (where the matmuls
    become bfloat16), the weights stay float32; without it, neither does."""
    for dtype in (torch.bfloat16, None):
        seen = {"loss": [], "evaluate": []}

        def loss(model, batch):
            seen["loss"].append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
            return mse_loss(model, batch)

        def evaluate(model):
            seen["evaluate"].append(torch.is_autocast_enabled("cpu"))
            return {"valid_mae": 0.0}

        trainer = make_trainer(tmp_path / str(dtype), epochs=1, evaluate=False, autocast=dtype)
        trainer.loss_fn, trainer.evaluate_fn = loss, evaluate
        trainer.fit()
        assert seen["loss"] and all(on == (dtype is not None) for on, _ in seen["loss"])
        if dtype is not None:
            assert all(kind == torch.bfloat16 for _, kind in seen["loss"])
        assert seen["evaluate"] == [dtype is not None]
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
        assert not torch.is_autocast_enabled("cpu")


def test_the_trainers_adam_is_fused_where_it_can_be_and_updates_as_adam_does():
    """Fused on CPU parameters (one kernel per update), the unfused Adam for lazy parameters; the
    fused update equals the loop of element-wise ops to float32 rounding, step after step."""
    from torch_geometric.nn.dense.linear import Linear

    from torch_geometric_lieconv.training.optimisation import adam

    torch.manual_seed(0)
    fused_net, plain_net = torch.nn.Linear(6, 5), torch.nn.Linear(6, 5)
    plain_net.load_state_dict(fused_net.state_dict())
    start = fused_net.weight.detach().clone()
    fused, plain = adam(fused_net.parameters(), lr=1e-2), torch.optim.Adam(plain_net.parameters(), lr=1e-2)
    assert fused.defaults["fused"] and not plain.defaults["fused"]
    assert not adam(Linear(-1, 4).parameters()).defaults["fused"]
    x = torch.randn(32, 6)
    for _ in range(5):
        for net, opt in ((fused_net, fused), (plain_net, plain)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    moved = (fused_net.weight - plain_net.weight).abs().max()
    assert moved < 1e-6 * fused_net.weight.abs().max(), moved
    assert (fused_net.weight - start).abs().max() > 1e-2  # five steps of 1e-2 moved it
