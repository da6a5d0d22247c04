r"""``--precision auto``: bfloat16 autocast where the hardware and the model size make it pay.

Under bfloat16 autocast the Linear layers and kernel MLPs run their matmuls in bfloat16 (float32
weights, group math in float32; the aggregation's batched matmul in bfloat16 on CPUs with AMX-BF16,
in float32 on other CPUs). That is faster only where bfloat16 matmuls are
native -- CPUs with AVX-512-BF16 or AMX, CUDA GPUs of compute capability 8 and up -- and only once the
matmuls dominate the step: on small models the casts cost more than the matmuls save.
:func:`choose_precision` decides from both; the task supplies the width from which its benchmark
showed bfloat16 faster.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

__all__ = ["PrecisionChoice", "native_bfloat16", "choose_precision", "autocast"]

#: CPU flags (``/proc/cpuinfo``) of native bfloat16 dot products
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run uses and why.

    Args:
        precision (str): ``"float32"``, ``"float64"`` or ``"bfloat16"``.
        reason (str): one line for the log and the run's config.
    """

    precision: str
    reason: str


def _cpu_flags(path: str = "/proc/cpuinfo") -> Optional[set]:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def native_bfloat16(device: torch.device, cpuinfo: str = "/proc/cpuinfo") -> Tuple[bool, str]:
    """Whether ``device`` multiplies bfloat16 matrices natively, and what showed it.

    CUDA: compute capability 8.0 or higher (Ampere on). CPU: the ``amx_bf16`` or ``avx512_bf16`` flag
    in ``cpuinfo`` (Linux); where the flags cannot be read the answer is no.

    Args:
        device (torch.device): the run's device.
        cpuinfo (str, optional): the CPU description to read. (default: :obj:`"/proc/cpuinfo"`)
    """
    device = torch.device(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        name = torch.cuda.get_device_name(device)
        return major >= 8, f"{name}, compute capability {major}.{minor}"
    if device.type != "cpu":
        return False, f"no bfloat16 measurements for {device.type} devices"
    flags = _cpu_flags(cpuinfo)
    if flags is None:
        return False, "CPU flags unknown (no /proc/cpuinfo)"
    found = [flag for flag in BFLOAT16_CPU_FLAGS if flag in flags]
    return (True, "CPU with " + ", ".join(found)) if found else (False, "CPU without AVX-512-BF16 or AMX")


def choose_precision(requested: str, device: torch.device, channels: int, min_channels: Optional[int],
                     cpuinfo: str = "/proc/cpuinfo") -> PrecisionChoice:
    r"""The precision of a run: ``requested`` unless it is ``"auto"``, which picks bfloat16 autocast
    when the device has native bfloat16 matmuls and the model has at least ``min_channels`` channels,
    else float32.

    Args:
        requested (str): ``"auto"``, ``"float32"``, ``"float64"`` or ``"bfloat16"``.
        device (torch.device): the run's device.
        channels (int): the model's width (hidden channels).
        min_channels (int, optional): the width from which the task's benchmark showed bfloat16
            faster; ``None``: the task has no bfloat16 path, auto is float32.
        cpuinfo (str, optional): the CPU description to read. (default: :obj:`"/proc/cpuinfo"`)
    """
    if requested != "auto":
        return PrecisionChoice(requested, f"{requested} (requested)")
    if min_channels is None:
        return PrecisionChoice("float32", "auto: float32 (this task has no bfloat16 path)")
    native, hardware = native_bfloat16(device, cpuinfo)
    if not native:
        return PrecisionChoice("float32", f"auto: float32 ({hardware})")
    if channels < min_channels:
        return PrecisionChoice("float32", f"auto: float32 ({hardware}, but {channels} channels < {min_channels}, "
                                          f"below which bfloat16 was measured slower)")
    return PrecisionChoice("bfloat16", f"auto: bfloat16 autocast ({hardware}, {channels} channels >= "
                                       f"{min_channels})")


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    """The autocast context of a run's precision: matmuls in ``dtype`` on ``device`` (``None``: off).

    The one place where a precision becomes autocast: the trainer wraps each loss and evaluation in it,
    and ``lieconv evaluate`` the evaluation of a trained run.

    Args:
        device (torch.device): where the model runs.
        dtype (torch.dtype, optional): the autocast dtype (``torch.bfloat16``), or ``None`` for none.
    """
    return torch.autocast(torch.device(device).type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)
