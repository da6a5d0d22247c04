r"""The training loop. The jobs around it are collaborators: the processes (:mod:`.distributed`), the
optimiser and schedule (:mod:`.optimisation`), the checkpoints and exact resume (:mod:`.checkpoints`,
:mod:`.randomness`) and the metric sinks (:mod:`.metrics`)."""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from ..runs import RUNTIME_KEYS, check_config, run_folder
from .batches import move_to, num_samples
from .checkpoints import CheckpointStore, model_identity
from .distributed import Processes
from .metrics import TIMING_KEYS, metric_sinks
from .optimisation import Optimisation
from .precision import autocast as autocast_context
from .randomness import rng_state, seed_everything, set_rng_state
from .settings import TrainerSettings

__all__ = ["Trainer"]


class Trainer:
    r"""Train ``model`` by minimising ``loss_fn`` with Adam and a per-step cosine schedule with warm-up.

    Files written to ``out_dir`` (by rank 0 only): ``checkpoint_last.pt`` every epoch and
    ``checkpoint_best.pt`` at the epoch with the lowest ``monitor`` metric (:mod:`.checkpoints`);
    ``metrics.csv``, TensorBoard events when ``tensorboard`` is installed, and ``learning_curve.png``
    at the end (:mod:`.metrics`). ``fit(resume=True)`` continues from ``checkpoint_last.pt`` so that
    ``2 epochs + resume 2 more`` gives the same numbers as ``4 epochs`` straight.

    Args:
        model (torch.nn.Module): the module (moved to ``device`` / ``dtype``; wrapped in DDP under
            ``torchrun``).
        train_dataset (Sequence): PyG dataset, list of ``Data``, or any dataset PyG's ``DataLoader``
            collates.
        batch_size (int): the **global** batch size (split evenly over ranks under DDP).
        loss_fn (Callable): ``loss_fn(model, batch) -> Tensor``, the mean loss over the batch (already
            on ``device``).
        out_dir (str): folder for checkpoints, metrics and the plot.
        epochs (int): number of epochs.
        lr (float, optional): peak learning rate. (default: :obj:`3e-3`)
        weight_decay (float, optional): Adam's weight decay. (default: :obj:`0.0`)
        warmup_frac (float, optional): fraction of all steps spent in the linear warm-up.
            (default: :obj:`0.01`)
        evaluate_fn (Callable, optional): ``evaluate_fn(model) -> {name: value}`` after each epoch, on
            rank 0, with the plain (unwrapped) model in eval mode. Gradients are enabled (wrap your code
            in ``torch.no_grad()`` unless it needs them). (default: :obj:`None`)
        monitor (str, optional): metric (lower is better) that selects ``checkpoint_best.pt``; default:
            the first metric ``evaluate_fn`` returns, else ``train_loss``. (default: :obj:`None`)
        device (torch.device or str, optional): where to train. (default: ``cuda:LOCAL_RANK`` if
            available, else CPU)
        dtype (torch.dtype, optional): cast the model and the batches' floating tensors to this dtype.
            (default: :obj:`None`)
        autocast (torch.dtype, optional): run every loss and evaluation under autocast in this dtype
            (``torch.bfloat16``: float32 weights, matmuls in bfloat16). (default: :obj:`None`)
        grad_clip (float, optional): clip the gradient norm to this value. (default: :obj:`None`)
        seed (int, optional): the data order and the training RNG (fresh runs call
            ``seed_everything(seed + rank)``). (default: :obj:`0`)
        config (Mapping, optional): the experiment's settings, saved in checkpoints; resuming from a
            checkpoint whose config differs (outside :data:`~torch_geometric_lieconv.runs.RUNTIME_KEYS`
            and ``runtime_keys``) is refused; without a ``"trainer"`` section the trainer records its
            own arguments there, as :class:`~.settings.TrainerSettings`. (default: :obj:`None`)
        runtime_keys (Iterable[str], optional): more config keys that may differ on resume.
            (default: :obj:`()`)
        drop_last (bool, optional): drop the last incomplete batch of each epoch. (default: :obj:`False`)
        num_workers (int, optional): DataLoader workers. (default: :obj:`0`)
        progress (bool, optional): show a tqdm progress bar (rank 0). (default: :obj:`True`)
        sync_batchnorm (bool, optional): convert BatchNorm to SyncBatchNorm under DDP (otherwise each
            rank normalises with its own batch statistics, which differs from one process).
            (default: :obj:`False`)
        find_unused_parameters (bool, optional): passed to DDP. (default: :obj:`False`)
        tensorboard (bool, optional): log to TensorBoard (``None``: when it is importable).
            (default: :obj:`None`)
        log_every (int, optional): update the progress bar's running loss every this many steps.
            (default: :obj:`10`)
        plot (bool, optional): write ``learning_curve.png`` at the end of :meth:`fit`.
            (default: :obj:`True`)
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
        autocast: Optional[torch.dtype] = None,
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
        self.processes = Processes(device)
        self.device, self.rank, self.world_size = self.processes.device, self.processes.rank, \
            self.processes.world_size
        if batch_size % self.world_size:
            lower = batch_size - batch_size % self.world_size
            raise ValueError(f"batch_size {batch_size} is not divisible by the {self.world_size} processes (each "
                             f"takes an equal share of the global batch); pass --batch-size "
                             f"{lower or self.world_size} or {lower + self.world_size}")
        self.dtype, self.autocast = dtype, autocast
        model = model.to(self.device) if dtype is None else model.to(self.device, dtype)
        self.model, self.wrapped = self.processes.wrap(model, sync_batchnorm, find_unused_parameters)

        self.batch_size, self.epochs, self.seed = int(batch_size), int(epochs), int(seed)
        self.sampler = self.processes.sampler(train_dataset, self.seed)
        self.loader = DataLoader(train_dataset, batch_size=self.batch_size // self.world_size, sampler=self.sampler,
                                 drop_last=drop_last, num_workers=num_workers)
        self.steps_per_epoch = len(self.loader)
        if self.steps_per_epoch == 0:
            raise ValueError(f"no full batch of {batch_size} in {len(train_dataset)} samples with drop_last; "
                             f"lower the batch size")
        self.optimisation = Optimisation(self.model.parameters(), self.epochs * self.steps_per_epoch, float(lr),
                                         weight_decay, warmup_frac, grad_clip)
        self.loss_fn, self.evaluate_fn, self.monitor = loss_fn, evaluate_fn, monitor
        self.out_dir = out_dir
        self.checkpoints = CheckpointStore(out_dir)
        self.sinks = metric_sinks(out_dir, tensorboard, plot) if self.processes.main else []
        self.progress, self.log_every = progress, max(1, int(log_every))
        self.runtime_keys = set(RUNTIME_KEYS) | set(runtime_keys)
        self.config: Dict[str, Any] = dict(config or {})
        precision = "bfloat16" if autocast is not None else "float64" if dtype == torch.float64 else "float32"
        self.config.setdefault("trainer", dataclasses.asdict(TrainerSettings(  # a task's trainer settings' form
            epochs=self.epochs, batch_size=self.batch_size, lr=float(lr), warmup_frac=warmup_frac,
            weight_decay=weight_decay, grad_clip=grad_clip, seed=self.seed, precision=precision)))
        self.history: List[Dict[str, float]] = []
        self.best: Optional[Dict[str, Any]] = None  # {"epoch": e, "value": v, "metric": name}
        self.epoch = 0

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.optimisation.optimizer

    @property
    def last_path(self) -> str:
        return self.checkpoints.last_path

    @property
    def best_path(self) -> str:
        return self.checkpoints.best_path

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, rng: List[Dict[str, Any]]) -> Dict[str, Any]:
        """Everything a resume needs, with the RNG states ``rng`` of every rank.

        Args:
            rng (List[Dict[str, Any]]): the RNG states of every rank (:func:`~.randomness.rng_state`).
        """
        return {**model_identity(self.model), "model": self.model.state_dict(), **self.optimisation.state_dict(),
                "epoch": self.epoch, "rng": rng, "config": self.config, "history": self.history, "best": self.best}

    def _resume(self) -> None:
        state = self.checkpoints.load_last(map_location=self.device)
        check_config(state.get("config", {}), self.config, ignore=self.runtime_keys,
                     what=f"checkpoint {self.last_path}")
        self.model.load_state_dict(state["model"])
        self.optimisation.load_state_dict(state)
        self.epoch, self.history, self.best = int(state["epoch"]), list(state["history"]), state.get("best")
        rng = state["rng"]
        set_rng_state(rng[self.rank] if self.rank < len(rng) else rng[0])
        for sink in self.sinks:
            sink.restore(self.history)

    # ------------------------------------------------------------------ training
    def fit(self, resume: bool = False, max_epochs: Optional[int] = None) -> List[Dict[str, float]]:
        """Train until ``epochs`` epochs are done; return the per-epoch metric rows.

        ``resume=True`` continues from ``out_dir/checkpoint_last.pt`` (a fresh start if there is none);
        ``resume=False`` refuses to overwrite an existing ``checkpoint_last.pt``. ``max_epochs`` stops
        after that many epochs in this call (for time-limited jobs: resume later to finish the schedule).

        Args:
            resume (bool, optional): continue ``checkpoint_last.pt``. (default: :obj:`False`)
            max_epochs (int, optional): stop after this many epochs in this call. (default: :obj:`None`)
        """
        with run_folder(self.out_dir) if self.processes.main else contextlib.nullcontext():
            if resume and self.checkpoints.has_last():
                self._resume()
            elif self.checkpoints.has_last():
                raise ValueError(f"{self.last_path} exists; pass --resume to continue it or choose another --out")
            else:
                seed_everything(self.seed + self.rank)
            stop = self.epochs if max_epochs is None else min(self.epochs, self.epoch + int(max_epochs))
            while self.epoch < stop:
                row = self._epoch()
                rng = self.processes.gather(rng_state())
                if self.processes.main:
                    self._end_epoch(row, rng)
                self.processes.barrier()
            for sink in self.sinks:
                sink.close(self.history)
        return self.history

    def _epoch(self) -> Dict[str, float]:
        """One epoch of training, then the evaluation; the epoch's metric row."""
        start, start_cpu = time.perf_counter(), time.process_time()
        train_loss = self._train_epoch()
        self.epoch += 1
        row: Dict[str, float] = {"epoch": self.epoch, "train_loss": train_loss, "lr": self.optimisation.lr}
        if self.evaluate_fn is not None and self.processes.main:
            self.model.eval()
            with autocast_context(self.device, self.autocast):
                metrics = self.evaluate_fn(self.model)
            row.update({k: float(v) for k, v in metrics.items()})
            self.model.train()
        # wall time, and this process's CPU time (with one thread: the wall time on an idle core)
        row["time_s"], row["cpu_s"] = time.perf_counter() - start, time.process_time() - start_cpu
        self.history.append(row)
        return row

    def _train_epoch(self) -> float:
        from tqdm import tqdm  # a dependency of PyG itself

        self.sampler.set_epoch(self.epoch)
        self.wrapped.train()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = torch.zeros((), dtype=torch.float64, device=self.device)
        bar = tqdm(self.loader, desc=f"epoch {self.epoch + 1}/{self.epochs}", leave=False, dynamic_ncols=True,
                   disable=not (self.progress and self.processes.main))
        for step, batch in enumerate(bar):
            batch = move_to(batch, self.device, self.dtype)
            n_local = num_samples(batch)
            with autocast_context(self.device, self.autocast):
                loss = self.loss_fn(self.wrapped, batch)
            if loss.dim() != 0:
                raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
            self.optimisation.step(self.processes.global_mean(loss, n_local))
            total += loss.detach().to(torch.float64) * n_local
            count += n_local
            if (step + 1) % self.log_every == 0 or step + 1 == self.steps_per_epoch:
                running = (total / count).item()
                if not math.isfinite(running):
                    raise RuntimeError(f"the training loss became {running} in epoch {self.epoch + 1}; "
                                       f"lower the learning rate or check the data")
                bar.set_postfix(loss=f"{running:.4g}", lr=f"{self.optimisation.lr:.2e}")
        self.processes.all_reduce(total, count)
        return float((total / count).item())

    def _end_epoch(self, row: Dict[str, float], rng: List[Dict[str, Any]]) -> None:
        monitor = self.monitor or next((k for k in row if k not in TIMING_KEYS), "train_loss")
        if monitor not in row:
            raise ValueError(f"monitor metric {monitor!r} is not among the metrics {sorted(row)}")
        value = row[monitor]
        improved = self.best is None or value < self.best["value"]
        if improved:
            self.best = {"epoch": self.epoch, "value": value, "metric": monitor}
        self.checkpoints.save(self.state_dict(rng), best=improved)
        for sink in self.sinks:
            sink.write(self.history)
        print(f"epoch {self.epoch}/{self.epochs}: " + ", ".join(
            f"{k}={v:.4g}" for k, v in row.items() if k != "epoch") + (" *" if improved else ""), flush=True)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(epochs={self.epochs}, batch_size={self.batch_size}, "
                f"lr={self.optimisation.optimizer.defaults['lr']}, world_size={self.world_size}, "
                f"out_dir={self.out_dir!r})")
