r"""One process or several under ``torchrun``: the device, the ranks, the wrapped model, the sampler.

Data order: every epoch's permutation is ``torch.randperm(n, generator=seed + epoch)`` (PyTorch's
:class:`~torch.utils.data.DistributedSampler` with one replica), so it does not depend on any RNG that
the model or the augmentation consume, and resuming is exact. Under ``torchrun`` (``WORLD_SIZE > 1``) the
same permutation is dealt round-robin to the ranks, so the union of the ranks' ``k``-th batches is the
single-process ``k``-th batch of the same global ``batch_size``; :meth:`Processes.global_mean`
weights each rank's mean loss by ``world * n_local / n_global`` so that DDP's gradient averaging gives
the gradient of the global mean even when the last batch splits unevenly. When ``len(dataset)`` is not
a multiple of the world size, the sampler pads with repeated samples (PyTorch's convention), which is
the only difference from one process.
"""
from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.utils.data import DistributedSampler

__all__ = ["init_distributed", "cleanup_distributed", "is_main_process", "training_device", "Processes"]


def _env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: Optional[torch.device] = None) -> bool:
    r"""Initialise ``torch.distributed`` from the ``torchrun`` environment when ``WORLD_SIZE > 1``.

    Backend: NCCL for a CUDA ``device``, gloo otherwise. Returns whether a process group is active.

    Args:
        device (torch.device, optional): the device of this process (NCCL for CUDA). (default: :obj:`None`)
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


def training_device(device: Optional[Any] = None) -> torch.device:
    r"""The device this process trains on: ``device``, with CUDA's index the process's ``LOCAL_RANK``
    when none is given; by default ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU.

    Args:
        device (torch.device or str, optional): the device asked for. (default: :obj:`None`)
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available; use --device cpu")
    return device


class Processes:
    r"""The processes of a training run: this one's device and rank, and the collectives between them.

    Args:
        device (torch.device or str, optional): where to train. (default: ``cuda:LOCAL_RANK`` if CUDA is
            available, else the CPU)
    """

    def __init__(self, device: Optional[Any] = None) -> None:
        self.device = training_device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.distributed = init_distributed(self.device) and _dist_active()
        if self.distributed:
            import torch.distributed as dist

            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        else:
            self.rank, self.world_size = 0, 1

    @property
    def main(self) -> bool:
        """Whether this is rank 0, the process that writes files and evaluates."""
        return self.rank == 0

    def wrap(self, model: nn.Module, sync_batchnorm: bool = False, find_unused_parameters: bool = False
             ) -> Tuple[nn.Module, nn.Module]:
        """``(model, trained)``: the model (its BatchNorm layers made SyncBatchNorm under DDP if asked) and
        what the steps call: the model itself in one process, the model in DDP else.

        Args:
            model (torch.nn.Module): the model, on this process's device.
            sync_batchnorm (bool, optional): SyncBatchNorm under DDP. (default: :obj:`False`)
            find_unused_parameters (bool, optional): passed to DDP. (default: :obj:`False`)
        """
        if not self.distributed:
            return model, model
        from torch.nn.parallel import DistributedDataParallel

        if sync_batchnorm:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model, DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters)

    def sampler(self, dataset: Sequence, seed: int) -> DistributedSampler:
        """The epoch permutations of ``dataset`` (``set_epoch`` before each), dealt to the ranks.

        Args:
            dataset (Sequence): the training set.
            seed (int): the permutations' seed.
        """
        return DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=seed,
                                  drop_last=False)

    def global_mean(self, loss: Tensor, n_local: int) -> Tensor:
        """This rank's mean ``loss`` over ``n_local`` samples, weighted so that DDP's average of the
        gradients is the gradient of the mean over the global batch (``loss`` itself in one process).

        Args:
            loss (torch.Tensor): this rank's mean loss.
            n_local (int): its samples.
        """
        if not self.distributed:
            return loss
        import torch.distributed as dist

        n_global = torch.tensor(float(n_local), device=self.device)
        dist.all_reduce(n_global)
        return loss * (self.world_size * n_local / n_global)

    def all_reduce(self, *tensors: Tensor) -> None:
        """Sum ``tensors`` over the ranks, in place."""
        if self.distributed:
            import torch.distributed as dist

            for tensor in tensors:
                dist.all_reduce(tensor)

    def gather(self, obj: Any) -> List[Any]:
        """Every rank's ``obj``, in rank order.

        Args:
            obj (Any): this rank's object.
        """
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        objects: List[Any] = [None] * self.world_size
        dist.all_gather_object(objects, obj)
        return objects

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def on_main(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on rank 0 alone, its result shared with every rank; an error there (a busy run
        folder, a refused resume) is raised on every rank instead of leaving the others waiting.

        Args:
            fn (Callable): the work of rank 0 (its result must pickle).
        """
        if not self.distributed:
            return fn()
        import torch.distributed as dist

        box: List[Any] = [None]
        if self.main:
            try:
                box[0] = ("ok", fn())
            except (ValueError, OSError, RuntimeError) as error:
                box[0] = ("error", f"{type(error).__name__}: {error}")
                dist.broadcast_object_list(box, src=0)
                raise
        dist.broadcast_object_list(box, src=0)
        if box[0][0] == "error":
            raise RuntimeError(f"rank 0 stopped the run: {box[0][1]}")
        return box[0][1]

    def main_first(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on every rank, rank 0 first (it writes the caches that the others then read).

        Args:
            fn (Callable): the work of every rank.
        """
        if self.distributed and not self.main:
            self.barrier()
        result = fn()
        if self.distributed and self.main:
            self.barrier()
        return result
