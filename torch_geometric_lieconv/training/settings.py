r"""The optimisation's settings, one dataclass shared by the :class:`~.trainer.Trainer` (which records
them in its checkpoints) and the tasks' config system (:mod:`torch_geometric_lieconv.experiments.config`,
where they are the ``trainer`` group)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

import torch

__all__ = ["setting", "TrainerSettings"]


def setting(default: Any, help: str, *, choices: Optional[Tuple[Any, ...]] = None, flag: Optional[str] = None,
            required: bool = False, old_flag: Optional[str] = None) -> Any:
    r"""A dataclass field of a settings group, with the help text and choices of its command-line flag.

    Args:
        default (Any): the value before any preset, file or flag.
        help (str): what the setting means (the flag's help text).
        choices (tuple, optional): the allowed values (checked on resolution and by the flag).
            (default: :obj:`None`)
        flag (str, optional): the flag's name when it is not ``--name-with-dashes``.
            (default: :obj:`None`)
        required (bool, optional): the flag must be given. (default: :obj:`False`)
        old_flag (str, optional): the flag's name before 0.3, still read for one release with a
            deprecation warning. (default: :obj:`None`)
    """
    factory = (lambda: copy.deepcopy(default)) if isinstance(default, (dict, list)) else None
    metadata = {"help": help, "choices": choices, "flag": flag, "required": required, "old_flag": old_flag}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainerSettings:
    """The optimisation: Adam with a per-step cosine schedule and linear warm-up."""

    epochs: Optional[int] = setting(500, "epochs of the schedule")
    batch_size: int = setting(75, "batch size (the global one under torchrun)")
    lr: Optional[float] = setting(3e-3, "peak learning rate (cosine decay after a linear warm-up)")
    warmup_frac: float = setting(0.01, "fraction of the steps in the linear warm-up")
    weight_decay: float = setting(0.0, "Adam's weight decay")
    grad_clip: Optional[float] = setting(None, "clip the gradient norm to this value")
    seed: int = setting(0, "training seed (model init, data order, augmentation, sampling)")
    precision: str = setting("float32", "float32, float64, bfloat16 (float32 weights with the matmuls under "
                             "bfloat16 autocast: fast on CPUs with AVX-512-BF16/AMX and on GPUs), or auto "
                             "(bfloat16 where the device has native bfloat16 matmuls and the model is wide "
                             "enough for it to pay, else float32; decided when the run starts)",
                             choices=("auto", "float32", "float64", "bfloat16"))

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the weights and inputs (``bfloat16`` keeps float32 weights and autocasts)."""
        return torch.float64 if self._decided() == "float64" else torch.float32

    @property
    def autocast(self) -> Optional[torch.dtype]:
        """The autocast dtype of the matmuls (``None``: no autocast)."""
        return torch.bfloat16 if self._decided() == "bfloat16" else None

    def _decided(self) -> str:
        if self.precision == "auto":
            raise ValueError("precision 'auto' is decided when the run starts (settle_precision); "
                             "these settings were never started")
        return self.precision
