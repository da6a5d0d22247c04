"""What the benchmarks share: clocks and timing loops, worker processes, tables, the machine's
description, and imports of code outside this checkout (the original LieConv, another revision).

Not a benchmark itself; the modules next to it are (``python -m benchmarks.<module> --help``).
Only torch and the standard library are imported here, so a worker can load another revision of
``torch_geometric_lieconv`` (:func:`import_package`) after importing this module.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
#: where the original LieConv repository (the authors' code) is looked for by default
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference" / "LieConv"
#: a worker's answer: the last stdout line that starts with this, then JSON
RESULT_PREFIX = "RESULT "


# ----------------------------------------------------------------------------------------------- timing
class Clock:
    """Seconds for timing: process CPU time (``kind="cpu"``, the default on a CPU) or wall time
    (``"wall"``, the default on CUDA); on CUDA every reading synchronises the device first."""

    def __init__(self, device: torch.device | str = "cpu", kind: Optional[str] = None) -> None:
        self.device = torch.device(device)
        self.kind = kind or ("wall" if self.device.type == "cuda" else "cpu")

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self) -> float:
        self.sync()
        return time.process_time() if self.kind == "cpu" else time.perf_counter()

    def seconds(self, fn: Callable[[], object]) -> float:
        """The time of one call of ``fn``."""
        start = self()
        fn()
        return self() - start


def best_time(fn: Callable[[], object], reps: int, clock: Optional[Clock] = None,
              long_call: float = math.inf) -> float:
    """Minimum time of ``reps`` calls of ``fn`` after a warm-up call (process CPU time by default);
    a warm-up call of at least ``long_call`` seconds is the answer instead (too slow to repeat)."""
    clock = clock or Clock()
    first = clock.seconds(fn)
    if first >= long_call:
        return first
    return min(clock.seconds(fn) for _ in range(reps))


def interleaved(steps: Dict[str, Callable[[], None]], rounds: int, warmup: int, clock: Clock) -> Dict[str, float]:
    """Minimum seconds per call of each step, the calls of a round interleaved (order reversed every
    other round), after ``warmup`` calls of each."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    best = {name: math.inf for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            best[name] = min(best[name], clock.seconds(steps[name]))
    return best


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (the mean of the middle two for an even count)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of no values")
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _status_mb(field: str) -> float:
    match = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) / 1024


class Meter:
    """Times and peak memory of callables on one device.

    Peak memory on CPU: the rise of the process's peak resident set size (``VmHWM``, reset through
    ``/proc/self/clear_refs`` right before the call) over the resident size just before it; on CUDA
    ``torch.cuda.max_memory_allocated()`` minus the allocation before the call. Call
    :meth:`memory_mode` in a fresh process before allocating, and :meth:`timing_mode` before timing.
    """

    #: calls at least this long are timed once (by their memory call)
    LONG_CALL_S = 5.0

    def __init__(self, device: torch.device, clock: str) -> None:
        self.device, self.cuda = device, device.type == "cuda"
        self.clock = Clock(device, clock)

    def _memory_now(self) -> float:
        return torch.cuda.memory_allocated(self.device) / 2**20 if self.cuda else _status_mb("VmRSS")

    def _reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:  # no reset: VmHWM keeps the earlier peak (an over-estimate at worst)
            pass

    def _peak(self) -> float:
        return torch.cuda.max_memory_allocated(self.device) / 2**20 if self.cuda else _status_mb("VmHWM")

    def time(self, fn: Callable[[], object], reps: int) -> float:
        """Minimum time of ``reps`` calls after a warm-up call; a call longer than ``LONG_CALL_S`` is timed once."""
        return best_time(fn, reps, self.clock, self.LONG_CALL_S)

    def memory(self, fn: Callable[[], object]) -> Dict[str, float]:
        """``{"peak_mb", "time"}``: the peak memory one call adds to what was allocated before it, and its time.

        The call is the first of ``fn`` (one-off buffers count). CPU: valid only before
        :meth:`timing_mode` (see :meth:`memory_mode`); its time is then slightly pessimistic.
        """
        gc.collect()
        self.clock.sync()
        base = self._memory_now()
        self._reset_peak()
        elapsed = self.clock.seconds(fn)
        return {"peak_mb": max(self._peak() - base, 0.0), "time": elapsed}

    def measure(self, fns: Dict[str, Callable[[], object]], reps: int) -> Dict[str, Dict[str, float]]:
        """Memory of each callable (in memory mode), then times (in timing mode). Long calls (at least
        ``LONG_CALL_S``) keep the time of their memory call instead of running again."""
        results = {name: self.memory(fn) for name, fn in fns.items()}
        self.timing_mode()
        for name, fn in fns.items():
            if results[name]["time"] < self.LONG_CALL_S:
                results[name]["time"] = self.time(fn, reps)
        return results

    def memory_mode(self) -> None:
        """Measure memory from now on: glibc serves allocations >= 128 KiB by mmap and returns them on free.

        By default glibc keeps freed blocks (up to 32 MiB each) resident, so the resident size stays at
        its high-water mark and a step's peak reads as ~0. Call in a fresh process, before allocating.
        """
        self._malloc_options(mmap_threshold=128 * 1024, trim_threshold=128 * 1024)

    def timing_mode(self) -> None:
        """Time from now on: large blocks come from (and go back to) the heap, as glibc settles by default."""
        self._malloc_options(mmap_threshold=32 * 2**20, trim_threshold=64 * 2**20)

    def _malloc_options(self, mmap_threshold: int, trim_threshold: int) -> None:
        if self.cuda:
            return
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, mmap_threshold)  # M_MMAP_THRESHOLD (a fixed value: no dynamic adjustment)
            libc.mallopt(-1, trim_threshold)  # M_TRIM_THRESHOLD
        except (OSError, AttributeError):  # not glibc: CPU peaks may read low
            pass


def autocast(device: torch.device, dtype: str):
    """``torch.autocast`` to ``dtype`` (a name) on ``device``; nothing for ``"float32"``."""
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, dtype))


def adam_step(model: torch.nn.Module, loss_of: Callable[[], torch.Tensor], lr: float = 3e-4,
              optimizer: Callable[..., torch.optim.Optimizer] = torch.optim.Adam) -> Callable[[], None]:
    """A training step of ``model``: the loss, its gradients, one Adam update (``optimizer``: the
    original's plain :class:`torch.optim.Adam`, or the project trainer's
    :func:`torch_geometric_lieconv.training.optimisation.adam`)."""
    optimizer = optimizer(model.parameters(), lr=lr)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_of().backward()
        optimizer.step()

    return step


def fit(model: torch.nn.Module, loss_of: Callable[[torch.Tensor, torch.Generator], torch.Tensor], items: torch.Tensor,
        batch: int, steps_per_epoch: int, epochs: int, seed: int, lr: float = 3e-3) -> float:
    """Train ``model`` as the learning comparisons do; the process CPU seconds it took.

    Adam at ``lr`` with the per-step cosine schedule and 1% warm-up over ``epochs * steps_per_epoch``
    steps; each epoch walks a permutation of ``items`` in batches of ``batch``, and ``loss_of(index,
    generator)`` gives a batch's loss. The permutations come from a generator seeded ``1000 + seed``,
    which ``loss_of`` may draw augmentations from, so every side of a comparison sees the same data.
    """
    from torch_geometric_lieconv.training import cosine_warmup_lambda

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_warmup_lambda(epochs * steps_per_epoch, 0.01))
    data_order = torch.Generator().manual_seed(1000 + seed)
    start = time.process_time()
    model.train()
    for _ in range(epochs):
        perm = items[torch.randperm(len(items), generator=data_order)]
        for step in range(steps_per_epoch):
            loss = loss_of(perm[step * batch:(step + 1) * batch], data_order)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return time.process_time() - start


# ----------------------------------------------------------------------------------------------- processes
class WorkerError(RuntimeError):
    """A worker process that failed (``returncode``, ``stderr``) or ran out of time (``timed_out``)."""

    def __init__(self, message: str, stderr: str = "", returncode: Optional[int] = None,
                 timed_out: bool = False) -> None:
        super().__init__(message + (f":\n{stderr[-3000:]}" if stderr else ""))
        self.stderr, self.returncode, self.timed_out = stderr, returncode, timed_out

    @property
    def last_line(self) -> str:
        """The last line the worker wrote to stderr (or the message)."""
        return (self.stderr.strip().splitlines() or str(self).splitlines() or ["no output"])[-1]


def run_worker(target: str, spec: Any, timeout: Optional[float] = None, env: Optional[Dict[str, str]] = None) -> Any:
    """``target(spec)`` (``"benchmarks.module:function"``) in a fresh interpreter (``python -m
    benchmarks.worker``, from the repository root, with ``env`` added to the environment); its JSON
    result. Raises :class:`WorkerError` when it fails or takes longer than ``timeout`` seconds."""
    command = [sys.executable, "-m", "benchmarks.worker", target, json.dumps(spec)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        raise WorkerError(f"timed out after {timeout:.0f} s", timed_out=True) from None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise WorkerError(f"worker {target} failed (exit status {proc.returncode})", proc.stderr, proc.returncode)


def run_in_processes(target: str, specs: Sequence[Any], jobs: int, describe: Callable[[Any], str]) -> List[Any]:
    """Each spec in a fresh one-thread worker (:func:`run_worker`), ``jobs`` at a time; the results in
    the order of ``specs`` (``describe(result)`` is printed to stderr as each ends)."""

    def run(spec: Any) -> Any:
        try:
            result = run_worker(target, spec, env={"OMP_NUM_THREADS": "1"})
        except WorkerError as error:
            raise RuntimeError(f"{spec}: {error.last_line}") from None
        print(f"  {describe(result)}", file=sys.stderr, flush=True)
        return result

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(run, specs))


# ----------------------------------------------------------------------------------------------- tables
def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


def mb(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def seconds(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


def ratio(reference: Optional[float], ours: float) -> str:
    return "-" if reference is None else f"{reference / ours:.2f}x"


#: 97.5% quantiles of Student's t for 1 to 9 degrees of freedom (1.96 beyond)
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262)


def interval(values: Sequence[float]) -> str:
    """Mean and 95% t-interval, ``"mean [low, high]"``."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return f"{mean:.2f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = (T_975[n - 2] if n - 1 <= len(T_975) else 1.96) * sd / math.sqrt(n)
    return f"{mean:.2f} [{mean - half:.2f}, {mean + half:.2f}]"


def argument_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The command line parser of benchmark ``module``: its usage is ``python -m <module>``, its description
    the first line of ``doc``."""
    return argparse.ArgumentParser(prog=f"python -m {module}", description=doc.splitlines()[0])


def command(module: str, argv: Optional[Sequence[str]] = None) -> str:
    """``python -m <module> <arguments>``: the command that printed a table (``argv``: the arguments,
    default the process's)."""
    arguments = sys.argv[1:] if argv is None else argv
    return " ".join(["python -m", module, *arguments])


def header(module: str, argv: Optional[Sequence[str]], device: str = "cpu") -> str:
    """The first lines of a benchmark's output: its command, and the device, torch threads, torch version
    and load average it ran with."""
    return (f"Command: `{command(module, argv)}`  \nDevice: {machine_description(device)}; threads "
            f"{torch.get_num_threads()}; torch {torch.__version__}; load average at start {load_average()}")


# ----------------------------------------------------------------------------------------------- machine
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def machine_description(device: str = "cpu") -> str:
    """The GPU's name, or the CPU model and core count."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    match = re.search(r"model name\s*:\s*(.*)", _cpuinfo())
    cpu = match.group(1) if match else (platform.processor() or platform.machine())
    return f"{cpu}, {os.cpu_count()} cores"


#: CPU flags of native bfloat16 matrix multiplication
BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags() -> Optional[set]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; ``None`` where they cannot be read)."""
    match = re.search(r"^flags\s*:\s*(.*)$", _cpuinfo(), flags=re.MULTILINE)
    return set(match.group(1).split()) if match else None


def bfloat16_description() -> str:
    """Whether this CPU multiplies bfloat16 natively, as its flags say."""
    flags = cpu_flags()
    if flags is None:
        return "CPU flags unknown (no /proc/cpuinfo)"
    found = [flag for flag in BFLOAT16_FLAGS if flag in flags]
    return "CPU with " + ", ".join(found) if found else "CPU without AVX-512-BF16 or AMX"


def load_average() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def _meminfo_mb(field: str, default: float) -> float:
    match = re.search(rf"{field}:\s+(\d+)", Path("/proc/meminfo").read_text())
    return int(match.group(1)) / 1024 if match else default


def available_memory_mb() -> float:
    return _meminfo_mb("MemAvailable", float("inf"))


def total_memory_mb() -> float:
    return _meminfo_mb("MemTotal", float("nan"))


# ----------------------------------------------------------------------------------------------- other code
def import_package(name: str, tree: Path) -> types.ModuleType:
    """The package ``tree/name`` imported as ``name`` (its submodules from that folder too), whatever
    ``sys.path`` holds: another revision of this project, or the original LieConv code. Import it
    before anything imports another copy of ``name`` (an error otherwise)."""
    folder = Path(tree).resolve() / name
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(loaded.__file__).resolve().parent != folder:
            raise RuntimeError(f"{name} is already imported from {loaded.__file__}, not from {folder}")
        return loaded
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_reference(path: Optional[Path]) -> Optional[types.SimpleNamespace]:
    """The original LieConv's modules (``layers``, ``groups``, ``HLieResNet``), imported at run time from
    the repository at ``path``; ``None`` when it is not there. Nothing of it is copied here.

    Its trainers need packages that are not dependencies of this project (olive-oil-ml, its datasets):
    the imports of the modules used here get inert stand-ins, which the models never call.
    """
    if path is None or not (Path(path) / "lie_conv" / "lieConv.py").is_file():
        return None
    for name in ("oil", "oil.utils", "oil.utils.utils", "oil.model_trainers"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["oil.utils.utils"].Eval = contextlib.nullcontext
    sys.modules["oil.model_trainers"].Trainer = object
    datasets = types.ModuleType("lie_conv.datasets")
    datasets.SO3aug = datasets.SE3aug = torch.nn.Identity
    sys.modules.setdefault("lie_conv.datasets", datasets)
    import_package("lie_conv", Path(path))
    return types.SimpleNamespace(layers=importlib.import_module("lie_conv.lieConv"),
                                 groups=importlib.import_module("lie_conv.lieGroups"),
                                 HLieResNet=importlib.import_module("lie_conv.dynamicsTrainer").HLieResNet)


def reference_group(reference: types.SimpleNamespace, name: str, alpha: Optional[float], dim: int = 2):
    """The original's group ``name`` (its ``T(dim)``, or ``name(alpha)``)."""
    cls = getattr(reference.groups, name)
    return cls(dim) if name == "T" else cls(alpha)
