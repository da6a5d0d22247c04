r"""A small generic trainer: Adam, cosine schedule with warm-up, checkpoints, exact resume, DDP.

Used by the QM9, springs and RotMNIST experiments. The user supplies a model, a training dataset
(a PyG dataset or a list of :class:`~torch_geometric.data.Data`, or anything PyG's ``DataLoader``
collates), a ``loss_fn(model, batch) -> Tensor`` (a scalar, the **mean** over the batch) and
optionally an ``evaluate_fn(model) -> Dict[str, float]`` called after every epoch.

Files written to ``out_dir`` (by rank 0 only):

* ``checkpoint_last.pt`` every epoch: model, optimizer, scheduler, completed epochs, the RNG states of
  every rank, the run's config and the metric history; ``fit(resume=True)`` continues from it so that
  ``2 epochs + resume 2 more`` gives the same numbers as ``4 epochs`` straight.
* ``checkpoint_best.pt``: the same, at the epoch with the lowest ``monitor`` metric.
* ``metrics.csv`` (one row per epoch; TensorBoard events too when ``tensorboard`` is installed).
* ``learning_curve.png`` at the end.

Data order: every epoch's permutation is ``torch.randperm(n, generator=seed + epoch)`` (PyTorch's
:class:`~torch.utils.data.DistributedSampler` with one replica), so it does not depend on any RNG that
the model or the augmentation consume, and resuming is exact. Under ``torchrun`` (``WORLD_SIZE > 1``) the
same permutation is dealt round-robin to the ranks, so the union of the ranks' ``k``-th batches is the
single-process ``k``-th batch of the same global ``batch_size``; each rank's mean loss is weighted by
``world * n_local / n_global`` so that DDP's gradient averaging gives the gradient of the global mean
even when the last batch splits unevenly. When ``len(dataset)`` is not a multiple of the world size,
the sampler pads with repeated samples (PyTorch's convention), which is the only difference from one process.
"""
from __future__ import annotations

import contextlib
import csv
import math
import os
import random
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DistributedSampler

from .models.hub import ARGUMENTS_KEY, CLASS_KEY, Rebuildable, class_name, read_checkpoint
from .runs import RUNTIME_KEYS, atomic_write, check_config, run_folder

__all__ = [
    "seed_everything",
    "cosine_warmup_lambda",
    "Trainer",
    "load_checkpoint",
    "check_config",
    "move_to",
    "init_distributed",
    "cleanup_distributed",
    "is_main_process",
    "RUNTIME_KEYS",
]

# ----------------------------------------------------------------------------------------------- seeding
def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every CUDA device)."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _rng_state() -> Dict[str, Any]:
    """All RNG states, as plain tensors / tuples (loadable with ``torch.load(weights_only=True)``)."""
    np_state = np.random.get_state()
    state: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------- schedule
def cosine_warmup_lambda(total_steps: int, warmup_frac: float = 0.01) -> Callable[[int], float]:
    r"""Learning-rate factor per optimizer step: linear warm-up times cosine decay.

    .. math::
        f(s) = \min\Big(1, \frac{s + 1}{w}\Big)\cdot\frac{1 + \cos(\pi s / S)}{2},
        \qquad w = \text{warmup\_frac}\cdot S,

    for step :math:`s = 0, \dots, S-1` of :math:`S` = ``total_steps`` (the warm-up factor is 1 when
    :math:`w \le 1`). This is the reference schedule ``min(e / (0.01 E), 1) * cos_lr(e)`` taken per step
    (and shifted by one step so the first update is not wasted at learning rate 0). Use with
    :class:`torch.optim.lr_scheduler.LambdaLR` and one ``scheduler.step()`` per optimizer step.
    """
    if total_steps < 1:
        raise ValueError(f"cosine_warmup_lambda needs total_steps >= 1, got {total_steps}")
    if not 0 <= warmup_frac < 1:
        raise ValueError(f"warmup_frac must be in [0, 1), got {warmup_frac}")
    warmup = warmup_frac * total_steps

    def factor(step: int) -> float:
        ramp = 1.0 if warmup <= 1 else min(1.0, (step + 1) / warmup)
        return ramp * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))

    return factor


# ----------------------------------------------------------------------------------------------- distributed
def _env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: Optional[torch.device] = None) -> bool:
    """Initialise ``torch.distributed`` from the ``torchrun`` environment when ``WORLD_SIZE > 1``.

    Backend: NCCL for a CUDA ``device``, gloo otherwise. Returns whether a process group is active.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return True
    if _env_world_size() <= 1:
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but torch.distributed is not available in this PyTorch build")
    backend = "nccl" if device is not None and torch.device(device).type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return True


def cleanup_distributed() -> None:
    """Destroy the process group if one is active (call once at the end of a ``torchrun`` script)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _dist_active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    """True on rank 0 (and when not distributed)."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


# ----------------------------------------------------------------------------------------------- helpers
def move_to(obj: Any, device: torch.device, dtype: Optional[torch.dtype] = None) -> Any:
    """Move a batch (``Data``/``Batch``, tensor, or nested tuple/list/dict of them) to ``device``;
    floating-point tensors are also cast to ``dtype`` when given."""
    if isinstance(obj, Tensor):
        obj = obj.to(device, non_blocking=True)
        return obj.to(dtype) if dtype is not None and obj.is_floating_point() else obj
    if isinstance(obj, (list, tuple)):
        moved = [move_to(o, device, dtype) for o in obj]
        return type(obj)(moved) if not hasattr(obj, "_fields") else type(obj)(*moved)
    if isinstance(obj, dict):
        return {k: move_to(v, device, dtype) for k, v in obj.items()}
    if hasattr(obj, "apply") and hasattr(obj, "to"):  # PyG Data / Batch
        obj = obj.to(device, non_blocking=True)
        if dtype is not None:
            obj = obj.apply(lambda t: t.to(dtype) if t.is_floating_point() else t)
        return obj
    return obj


def _num_samples(batch: Any) -> int:
    """Samples in a batch: ``num_graphs`` of a PyG batch, else the leading size of the first tensor."""
    if hasattr(batch, "num_graphs"):
        return int(batch.num_graphs)
    if isinstance(batch, Tensor):
        return int(batch.shape[0])
    if isinstance(batch, (list, tuple)) and batch:
        return _num_samples(batch[0])
    if isinstance(batch, dict) and batch:
        return _num_samples(next(iter(batch.values())))
    raise ValueError(f"cannot tell the number of samples in a batch of type {type(batch).__name__}")


#: load a checkpoint written by :class:`Trainer` (``weights_only``: no code is unpickled)
load_checkpoint = read_checkpoint


#: the columns of the metric history that are not metrics
TIMING_KEYS = ("epoch", "train_loss", "lr", "time_s", "cpu_s")


# ----------------------------------------------------------------------------------------------- trainer
class Trainer:
    r"""Train ``model`` by minimising ``loss_fn`` with Adam and a per-step cosine schedule with warm-up.

    Args:
        model: the module (moved to ``device`` / ``dtype``; wrapped in DDP under ``torchrun``).
        train_dataset: PyG dataset, list of ``Data``, or any dataset PyG's ``DataLoader`` collates.
        batch_size: the **global** batch size (split evenly over ranks under DDP).
        loss_fn: ``loss_fn(model, batch) -> Tensor``, the mean loss over the batch (already on ``device``).
        out_dir: folder for checkpoints, metrics and the plot.
        epochs: number of epochs.
        lr: peak learning rate. weight_decay: Adam's weight decay.
        warmup_frac: fraction of all steps spent in the linear warm-up.
        evaluate_fn: ``evaluate_fn(model) -> {name: value}`` after each epoch, on rank 0, with the plain
            (unwrapped) model in eval mode. Gradients are enabled (wrap your code in ``torch.no_grad()``
            unless it needs them).
        monitor: metric (lower is better) that selects ``checkpoint_best.pt``; default: the first
            metric ``evaluate_fn`` returns, else ``train_loss``.
        device: where to train (default: ``cuda:LOCAL_RANK`` if available, else CPU).
        dtype: cast the model and the batches' floating tensors to this dtype (e.g. ``torch.float64``).
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
        seed: the data order and the training RNG (fresh runs call ``seed_everything(seed + rank)``).
        config: the experiment's settings, saved in checkpoints; resuming from a checkpoint whose config
            differs (outside :data:`RUNTIME_KEYS` and ``runtime_keys``) is refused.
        drop_last: drop the last incomplete batch of each epoch.
        num_workers: DataLoader workers.
        progress: show a tqdm progress bar (rank 0).
        sync_batchnorm: convert BatchNorm to SyncBatchNorm under DDP (otherwise each rank normalises
            with its own batch statistics, which differs from one process).
        find_unused_parameters: passed to DDP.
        tensorboard: log to TensorBoard when it is installed (``None``: when importable).
        log_every: update the progress bar's running loss every this many steps.
        plot: write ``learning_curve.png`` at the end of :meth:`fit`.
    """

    def __init__(
        self,
        model: nn.Module,
        train_dataset: Sequence,
        *,
        batch_size: int,
        loss_fn: Callable[[nn.Module, Any], Tensor],
        out_dir: str,
        epochs: int,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        warmup_frac: float = 0.01,
        evaluate_fn: Optional[Callable[[nn.Module], Dict[str, float]]] = None,
        monitor: Optional[str] = None,
        device: Optional[Any] = None,
        dtype: Optional[torch.dtype] = None,
        grad_clip: Optional[float] = None,
        seed: int = 0,
        config: Optional[Mapping[str, Any]] = None,
        runtime_keys: Iterable[str] = (),
        drop_last: bool = False,
        num_workers: int = 0,
        progress: bool = True,
        sync_batchnorm: bool = False,
        find_unused_parameters: bool = False,
        tensorboard: Optional[bool] = None,
        log_every: int = 10,
        plot: bool = True,
    ) -> None:
        from torch_geometric.loader import DataLoader

        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(train_dataset) == 0:
            raise ValueError("the training dataset is empty")
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device is None:
            device = f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", self.local_rank)
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError("--device cuda was asked for but CUDA is not available; use --device cpu")
            torch.cuda.set_device(self.device)
        self.distributed = init_distributed(self.device) and _dist_active()
        if self.distributed:
            import torch.distributed as dist

            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        else:
            self.rank, self.world_size = 0, 1
        if batch_size % self.world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {self.world_size} processes")

        self.dtype = dtype
        self.model = model.to(self.device) if dtype is None else model.to(self.device, dtype)
        if self.distributed and sync_batchnorm:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.wrapped: nn.Module = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=find_unused_parameters)
        else:
            self.wrapped = self.model

        self.train_dataset = train_dataset
        self.batch_size, self.epochs, self.lr, self.seed = int(batch_size), int(epochs), float(lr), int(seed)
        self.sampler = DistributedSampler(train_dataset, num_replicas=self.world_size, rank=self.rank,
                                          shuffle=True, seed=self.seed, drop_last=False)
        self.loader = DataLoader(train_dataset, batch_size=self.batch_size // self.world_size, sampler=self.sampler,
                                 drop_last=drop_last, num_workers=num_workers)
        self.steps_per_epoch = len(self.loader)
        if self.steps_per_epoch == 0:
            raise ValueError(f"no full batch of {batch_size} in {len(train_dataset)} samples with drop_last; "
                             f"lower the batch size")
        self.loss_fn, self.evaluate_fn = loss_fn, evaluate_fn
        self.monitor = monitor
        self.grad_clip = grad_clip
        self.out_dir = out_dir
        self.progress, self.log_every = progress, max(1, int(log_every))
        self.runtime_keys = set(RUNTIME_KEYS) | set(runtime_keys)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, cosine_warmup_lambda(self.epochs * self.steps_per_epoch, warmup_frac))
        self.config: Dict[str, Any] = dict(config or {})
        self.config.setdefault("trainer", {
            "batch_size": self.batch_size, "epochs": self.epochs, "lr": self.lr, "weight_decay": weight_decay,
            "warmup_frac": warmup_frac, "grad_clip": grad_clip, "seed": self.seed, "drop_last": drop_last,
            "dtype": str(dtype) if dtype is not None else None, "dataset_size": len(train_dataset),
        })
        self.history: List[Dict[str, float]] = []
        self.best: Optional[Dict[str, float]] = None  # {"epoch": e, "value": v}
        self.epoch = 0
        self._tensorboard = tensorboard
        self._writer = None
        self._plot = plot

    # ------------------------------------------------------------------ paths
    @property
    def last_path(self) -> str:
        return os.path.join(self.out_dir, "checkpoint_last.pt")

    @property
    def best_path(self) -> str:
        return os.path.join(self.out_dir, "checkpoint_best.pt")

    @property
    def metrics_path(self) -> str:
        return os.path.join(self.out_dir, "metrics.csv")

    @property
    def plot_path(self) -> str:
        return os.path.join(self.out_dir, "learning_curve.png")

    # ------------------------------------------------------------------ checkpointing
    def _gather_rng(self) -> List[Dict[str, Any]]:
        state = _rng_state()
        if not self.distributed:
            return [state]
        import torch.distributed as dist

        states: List[Any] = [None] * self.world_size
        dist.all_gather_object(states, state)
        return states

    def _model_identity(self) -> Dict[str, Any]:
        """The model's class and arguments, so that ``from_checkpoint`` rebuilds it (empty for a model
        that cannot record them, e.g. one built with a user's own group)."""
        if not isinstance(self.model, Rebuildable):
            return {}
        try:
            return {CLASS_KEY: class_name(type(self.model)), ARGUMENTS_KEY: self.model.arguments}
        except ValueError:
            return {}

    def state_dict(self, rng: List[Dict[str, Any]]) -> Dict[str, Any]:
        return {
            **self._model_identity(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "rng": rng,
            "config": self.config,
            "history": self.history,
            "best": self.best,
        }

    def _save(self, path: str, state: Dict[str, Any]) -> None:
        atomic_write(path, lambda f: torch.save(state, f))

    def _resume(self) -> None:
        state = load_checkpoint(self.last_path, map_location=self.device)
        check_config(state.get("config", {}), self.config, ignore=self.runtime_keys,
                     what=f"checkpoint {self.last_path}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.best = state.get("best")
        rng = state["rng"]
        _set_rng_state(rng[self.rank] if self.rank < len(rng) else rng[0])
        if self.rank == 0 and self.history:
            self._write_csv()  # a crash after the checkpoint but before metrics.csv lost no row

    # ------------------------------------------------------------------ logging
    def _write_csv(self) -> None:
        keys: List[str] = []
        for row in self.history:
            keys += [k for k in row if k not in keys]

        def write(f) -> None:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)

        atomic_write(self.metrics_path, write, binary=False)

    def _write_metrics(self) -> None:
        self._write_csv()
        if self._tensorboard is not False and self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(os.path.join(self.out_dir, "tensorboard"))
            except ImportError:
                if self._tensorboard:
                    raise ValueError("tensorboard=True but the tensorboard package is not installed")
                self._tensorboard = False
        if self._writer is not None:
            row = self.history[-1]
            for key, value in row.items():
                if key != "epoch":
                    self._writer.add_scalar(key, value, int(row["epoch"]))
            self._writer.flush()

    def plot(self) -> None:
        """Write ``learning_curve.png``: training loss and every evaluated metric per epoch (needs matplotlib)."""
        try:
            import matplotlib
        except ImportError:
            print("learning_curve.png skipped: matplotlib is not installed (pip install "
                  "'torch-geometric-lieconv[experiments]')", flush=True)
            return

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if not self.history:
            return
        epochs = [row["epoch"] for row in self.history]
        metrics = [k for k in self.history[-1] if k not in TIMING_KEYS]
        fig, axes = plt.subplots(1, 2 if metrics else 1, figsize=(10 if metrics else 5, 3.6), squeeze=False)
        axes[0, 0].plot(epochs, [row["train_loss"] for row in self.history], marker="o", ms=3)
        axes[0, 0].set(xlabel="epoch", ylabel="training loss", title="training loss")
        if metrics:
            for key in metrics:
                values = [row.get(key, float("nan")) for row in self.history]
                axes[0, 1].plot(epochs, values, marker="o", ms=3, label=key)
            axes[0, 1].set(xlabel="epoch", title="evaluation")
            axes[0, 1].legend()
        for ax in axes.flat:
            values = [v for line in ax.get_lines() for v in line.get_ydata() if v == v]
            if values and min(values) > 0 and max(values) / min(values) > 10:
                ax.set_yscale("log")  # only where the values span more than a decade
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(self.plot_path, dpi=120)
        plt.close(fig)

    # ------------------------------------------------------------------ training
    def _train_epoch(self) -> float:
        from tqdm import tqdm  # a dependency of PyG itself

        self.sampler.set_epoch(self.epoch)
        self.wrapped.train()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = torch.zeros((), dtype=torch.float64, device=self.device)
        bar = tqdm(self.loader, desc=f"epoch {self.epoch + 1}/{self.epochs}", leave=False, dynamic_ncols=True,
                   disable=not (self.progress and self.rank == 0))
        for step, batch in enumerate(bar):
            batch = move_to(batch, self.device, self.dtype)
            n_local = _num_samples(batch)
            loss = self.loss_fn(self.wrapped, batch)
            if loss.dim() != 0:
                raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
            scaled = loss
            if self.distributed:
                import torch.distributed as dist

                n_global = torch.tensor(float(n_local), device=self.device)
                dist.all_reduce(n_global)
                scaled = loss * (self.world_size * n_local / n_global)
            self.optimizer.zero_grad(set_to_none=True)
            scaled.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            total += loss.detach().to(torch.float64) * n_local
            count += n_local
            if (step + 1) % self.log_every == 0 or step + 1 == self.steps_per_epoch:
                running = (total / count).item()
                if not math.isfinite(running):
                    raise RuntimeError(f"the training loss became {running} in epoch {self.epoch + 1}; "
                                       f"lower the learning rate or check the data")
                bar.set_postfix(loss=f"{running:.4g}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
        if self.distributed:
            import torch.distributed as dist

            dist.all_reduce(total)
            dist.all_reduce(count)
        return float((total / count).item())

    def fit(self, resume: bool = False, max_epochs: Optional[int] = None) -> List[Dict[str, float]]:
        """Train until ``epochs`` epochs are done; return the per-epoch metric rows.

        ``resume=True`` continues from ``out_dir/checkpoint_last.pt`` (a fresh start if there is none);
        ``resume=False`` refuses to overwrite an existing ``checkpoint_last.pt``. ``max_epochs`` stops
        after that many epochs in this call (for time-limited jobs: resume later to finish the schedule).
        """
        with run_folder(self.out_dir) if self.rank == 0 else contextlib.nullcontext():
            return self._fit(resume, max_epochs)

    def _fit(self, resume: bool, max_epochs: Optional[int]) -> List[Dict[str, float]]:
        if resume and os.path.isfile(self.last_path):
            self._resume()
        else:
            if not resume and os.path.isfile(self.last_path):
                raise ValueError(f"{self.last_path} exists; pass --resume to continue it or choose another --out")
            seed_everything(self.seed + self.rank)
        stop = self.epochs if max_epochs is None else min(self.epochs, self.epoch + int(max_epochs))
        while self.epoch < stop:
            start, start_cpu = time.perf_counter(), time.process_time()
            train_loss = self._train_epoch()
            self.epoch += 1
            row: Dict[str, float] = {"epoch": self.epoch, "train_loss": train_loss,
                                     "lr": float(self.scheduler.get_last_lr()[0])}
            if self.evaluate_fn is not None and self.rank == 0:
                self.model.eval()
                row.update({k: float(v) for k, v in self.evaluate_fn(self.model).items()})
                self.model.train()
            # wall time, and this process's CPU time (with one thread: the wall time on an idle core)
            row["time_s"], row["cpu_s"] = time.perf_counter() - start, time.process_time() - start_cpu
            self.history.append(row)
            rng = self._gather_rng()
            if self.rank == 0:
                self._end_epoch(row, rng)
            if self.distributed:
                import torch.distributed as dist

                dist.barrier()
        if self.rank == 0:
            if self._plot:
                self.plot()
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        return self.history

    def _end_epoch(self, row: Dict[str, float], rng: List[Dict[str, Any]]) -> None:
        monitor = self.monitor or next((k for k in row if k not in TIMING_KEYS),
                                       "train_loss")
        if monitor not in row:
            raise ValueError(f"monitor metric {monitor!r} is not among the metrics {sorted(row)}")
        value = row[monitor]
        improved = self.best is None or value < self.best["value"]
        if improved:
            self.best = {"epoch": self.epoch, "value": value, "metric": monitor}
        state = self.state_dict(rng)
        if improved:  # best first: a crash between the two never leaves "best" pointing at another epoch
            self._save(self.best_path, state)
        self._save(self.last_path, state)
        self._write_metrics()
        print(f"epoch {self.epoch}/{self.epochs}: " + ", ".join(
            f"{k}={v:.4g}" for k, v in row.items() if k != "epoch") + (" *" if improved else ""), flush=True)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(epochs={self.epochs}, batch_size={self.batch_size}, lr={self.lr}, "
                f"world_size={self.world_size}, out_dir={self.out_dir!r})")
