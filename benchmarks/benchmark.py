"""Speed and memory of torch-geometric-lieconv against the dense padded reference and SchNet.

    python benchmarks/benchmark.py --quick                  # < 10 minutes on a 2-core CPU
    python benchmarks/benchmark.py                          # paper sizes (k=1536), up to 1e6 points
    python benchmarks/benchmark.py --device cuda --dtype bfloat16
    python benchmarks/benchmark.py --quick --write benchmarks/RESULTS.md

Sections (``--sections``, default all):

* ``qm9``: QM9-sized batches (75 molecules of 1-29 atoms, sizes ~ N(18, 3) clipped, QM9-like
  species H/C/N/O/F, synthetic tree-shaped geometry with 1.1-1.5 A bonds). The paper's T(3) model
  (k channels, 6 blocks, nbhd 100, fill 1) and SE(3) model (4 lift samples, nbhd 25, fill 1/2,
  alpha 0.2): this package (``sparse``), the dense padded reference of the tests
  (:mod:`torch_geometric_lieconv.testing.dense_reference`: all pairs of the padded batch, so for SE(3) it convolves over every
  pair instead of 25 sampled ones, as the original implementation stores them) and PyG's SchNet at its
  default size. Forward (eval, no grad) and forward+backward (train) time, peak memory, molecules/s,
  and the largest output difference sparse vs dense (eval; SE(3) checked with fill 1 and explicit
  frames, where both compute the same function).
* ``layer``: one T(3) LieConv (32 -> 32 channels, ball with ~48 points of a uniform cloud, 32
  samples) on 1e3 ... 1e6 points: graph build, forward, forward+backward, time per point, memory,
  and the memory the dense all-pairs approach would need (computed, never allocated).
* ``flops``: FLOP rate of the layer (counted analytically) against ``torch.matmul`` / ``torch.bmm``
  on the layer's own matmul shapes and a square matmul.
* ``aggregation``: ``"bmm"`` vs ``"scatter"`` at QM9 size (T(3) model, and one layer).
* ``compile``: eager vs ``torch.compile`` of one layer, and ``torch._dynamo.explain`` graph breaks.

Each configuration runs in a fresh subprocess (``--worker``), so memory is per configuration.
Peak memory: on CPU the rise of the process's peak resident set size (``VmHWM``, reset through
``/proc/self/clear_refs`` right before the measured steps) over the resident size just before them:
everything the steps allocate (tensors, autograd buffers, allocator slack), but nothing built before
(inputs, model). On CUDA ``torch.cuda.max_memory_allocated()`` minus the allocation before the steps.
Times: the minimum over ``--reps`` repetitions after one warm-up; wall clock (CUDA: synchronised) or,
with ``--clock cpu``, the process's CPU time, which a busy shared machine barely disturbs (with one
thread it is the wall time the step would take on an idle core).
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]

QM9_SPECIES_FREQ = {1: 0.51, 6: 0.35, 7: 0.056, 8: 0.078, 9: 0.006}  # atom fractions in QM9
LAYER_BALL_POINTS = 48  # expected points in the ball of the scaling layer (unit density)
LAYER_CHANNELS = 32
LAYER_MC = 32
LONG_CALL_S = 5.0  # calls at least this long are timed once (in the memory pass)


# ---------------------------------------------------------------------------------------------- data
def qm9_like_batch(num_molecules: int = 75, seed: int = 0):
    """``(z, pos, batch)`` of molecules with QM9's size distribution and species, synthetic geometry.

    Heavy atoms grow as a random tree with 1.45 A bonds, each hydrogen sits 1.09 A from a random heavy
    atom, so distances look molecular (the model's cost depends on sizes, not on chemistry).
    """
    gen = torch.Generator().manual_seed(seed)
    sizes = (torch.randn(num_molecules, generator=gen) * 3 + 18).round().clamp(1, 29).long()
    species = torch.tensor(list(QM9_SPECIES_FREQ))
    probs = torch.tensor(list(QM9_SPECIES_FREQ.values()))
    zs, positions = [], []
    for n in sizes.tolist():
        z = species[torch.multinomial(probs, n, replacement=True, generator=gen)]
        if not (z > 1).any():
            z[0] = 6
        z = torch.cat([z[z > 1], z[z == 1]])  # heavy atoms first
        heavy = int((z > 1).sum())
        pos = torch.zeros(n, 3)
        for i in range(1, n):
            anchor = int(torch.randint(0, min(i, heavy), (1,), generator=gen))
            bond = 1.45 if i < heavy else 1.09
            step = torch.randn(3, generator=gen)
            pos[i] = pos[anchor] + bond * step / step.norm()
        zs.append(z)
        positions.append(pos + torch.randn(3, generator=gen) * 5)
    batch = torch.repeat_interleave(torch.arange(num_molecules), sizes)
    return torch.cat(zs), torch.cat(positions), batch


def uniform_cloud(num_points: int, seed: int = 0) -> torch.Tensor:
    """``num_points`` uniform points at unit density (a cube of side ``num_points ** (1/3)``)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(num_points, 3, generator=gen) * num_points ** (1 / 3)


def layer_radius() -> float:
    """Ball radius holding ``LAYER_BALL_POINTS`` points on average at unit density."""
    return (3 * LAYER_BALL_POINTS / (4 * math.pi)) ** (1 / 3)


# ---------------------------------------------------------------------------------------------- measuring
def _status_mb(field: str) -> float:
    match = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) / 1024


class Meter:
    """Times and peak memory of a callable on one device (see the module docstring)."""

    def __init__(self, device: torch.device, clock: str) -> None:
        self.device, self.clock = device, clock
        self.cuda = device.type == "cuda"

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def _now(self) -> float:
        return time.process_time() if self.clock == "cpu" else time.perf_counter()

    def _memory_now(self) -> float:
        if self.cuda:
            return torch.cuda.memory_allocated(self.device) / 2**20
        return _status_mb("VmRSS")

    def _reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:  # no reset: VmHWM keeps the earlier peak (an over-estimate at worst)
                pass

    def _peak(self) -> float:
        if self.cuda:
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return _status_mb("VmHWM")

    def time(self, fn: Callable[[], object], reps: int) -> float:
        """Minimum time of ``reps`` calls after a warm-up call; a call longer than ``LONG_CALL_S`` is timed once."""
        first = self._timed(fn)
        if first >= LONG_CALL_S:
            return first
        return min(self._timed(fn) for _ in range(reps))

    def _timed(self, fn: Callable[[], object]) -> float:
        self._sync()
        start = self._now()
        fn()
        self._sync()
        return self._now() - start

    def memory(self, fn: Callable[[], object]) -> Dict[str, float]:
        """``{"peak_mb", "time"}``: the peak memory one call adds to what was allocated before it, and its time.

        The call is the first of ``fn`` (one-off buffers count). CPU: valid only before
        :meth:`timing_mode` (see :meth:`memory_mode`); its time is then slightly pessimistic.
        """
        gc.collect()
        self._sync()
        base = self._memory_now()
        self._reset_peak()
        elapsed = self._timed(fn)
        return {"peak_mb": max(self._peak() - base, 0.0), "time": elapsed}

    def measure(self, fns: Dict[str, Callable[[], object]], reps: int) -> Dict[str, Dict[str, float]]:
        """Memory of each callable (in memory mode), then times (in timing mode). Long calls (at least
        ``LONG_CALL_S``) keep the time of their memory call instead of running again."""
        results = {name: self.memory(fn) for name, fn in fns.items()}
        self.timing_mode()
        for name, fn in fns.items():
            if results[name]["time"] < LONG_CALL_S:
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


def autocast_context(device: torch.device, dtype: str):
    if dtype == "float32":
        return nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, dtype))


# ---------------------------------------------------------------------------------------------- workers
def build_qm9_model(spec: dict):
    from torch_geometric_lieconv import SE3, T
    from torch_geometric_lieconv.models import QM9LieConv

    group = T(3) if spec["group"] == "T3" else SE3(alpha=0.2)
    return QM9LieConv(group, hidden_channels=spec["k"], num_layers=spec["layers"], mc_samples=spec["nbhd"],
                      fill=spec["fill"], lift_samples=spec["lift"], aggregation=spec.get("aggregation", "bmm"))


def dense_forward(model, z, pos, batch, frames=None):
    """The QM9 model's forward with every LieConv replaced by the dense padded reference."""
    from torch_geometric_lieconv.testing import dense_model_forward
    from torch_scatter import scatter_mean

    if model.center:
        pos = pos - scatter_mean(pos, batch, dim=0)[batch]
    x = model.atom_features(z).to(pos.dtype)
    return dense_model_forward(model.net, x, pos * model.pos_scale, batch, frames).squeeze(-1)


def worker_qm9(spec: dict, meter: Meter, device: torch.device) -> dict:
    """Forward and forward+backward of one implementation on one QM9-sized batch."""
    z, pos, batch = (t.to(device) for t in qm9_like_batch(75, spec["seed"]))
    if spec["impl"] == "schnet":
        from torch_geometric.nn.models import SchNet

        from torch_geometric_lieconv.models import RadiusInteractionGraph

        model = SchNet(interaction_graph=RadiusInteractionGraph()).to(device)
        call = lambda: model(z, pos, batch).squeeze(-1)  # noqa: E731
    else:
        model = build_qm9_model(spec).to(device)
        if spec["impl"] == "sparse":
            call = lambda: model(z, pos, batch)  # noqa: E731
        else:
            call = lambda: dense_forward(model, z, pos, batch)  # noqa: E731
    amp = lambda: autocast_context(device, spec["dtype"])  # noqa: E731

    def forward():
        with torch.no_grad(), amp():
            return call()

    def step():
        model.zero_grad(set_to_none=True)
        with amp():
            out = call()
        out.float().square().mean().backward()

    def forward_eval():
        model.eval()
        return forward()

    def step_train():
        model.train()
        step()

    res = meter.measure({"fwd": forward_eval, "fwdbwd": step_train}, spec["reps"])
    return {"fwd": res["fwd"], "fwdbwd": res["fwdbwd"], "atoms": int(z.numel()), "max_atoms": int(torch.bincount(batch).max()),
            "params": sum(p.numel() for p in model.parameters())}


def worker_qm9_check(spec: dict, meter: Meter, device: torch.device) -> dict:
    """Largest |sparse - dense| output difference (eval), sparse in the run's dtype, dense in float32.

    SE(3) is checked with fill 1, nbhd >= molecule size and explicit frames (no randomness), where the
    sparse and dense models compute the same function.
    """
    from torch_geometric_lieconv.groups import random_rotations

    spec = dict(spec)
    if spec["group"] == "SE3":
        spec.update(fill=1.0, nbhd=1000)
    z, pos, batch = (t.to(device) for t in qm9_like_batch(75, spec["seed"]))
    torch.manual_seed(spec["seed"])
    model = build_qm9_model(spec).to(device).eval()
    frames = random_rotations((z.numel(), spec["lift"]), 3, device=device) if spec["group"] == "SE3" else None
    with torch.no_grad():
        with autocast_context(device, spec["dtype"]):
            sparse = model(z, pos, batch, frames).float()
        dense = dense_forward(model, z, pos, batch, frames)
    return {"max_abs_diff": float((sparse - dense).abs().max()), "max_abs_out": float(dense.abs().max()),
            "checked": f"fill {spec['fill']:g}, nbhd {spec['nbhd']}" + (", explicit frames" if frames is not None else "")}


def build_layer_inputs(spec: dict, device: torch.device):
    from torch_geometric_lieconv import T, lift_points
    from torch_geometric_lieconv.conv import LieConv
    from torch_geometric_lieconv.graph import build_pair_graph

    group = T(3)
    pos = uniform_cloud(spec["n"], spec["seed"]).to(device)
    radius = layer_radius()
    conv = LieConv(LAYER_CHANNELS, LAYER_CHANNELS, group, mc_samples=LAYER_MC, fill=0.5,
                   aggregation=spec.get("aggregation", "bmm"), chunk_size=spec.get("chunk")).to(device).eval()
    conv.radius.fill_(radius)
    build = lambda: build_pair_graph(group, lift_points(group, pos), radius=radius)  # noqa: E731
    x = torch.randn(spec["n"], LAYER_CHANNELS, device=device)
    return conv, build, x


def graph_nbytes(graph) -> int:
    tensors = [graph.edge_index, graph.edge_attr, graph.dist, graph.batch, graph.slots, graph.slot_mask,
               graph.graph_size]
    return sum(t.numel() * t.element_size() for t in tensors)


def worker_layer(spec: dict, meter: Meter, device: torch.device) -> dict:
    """Graph build, forward and forward+backward of one T(3) LieConv on a uniform cloud of ``n`` points."""
    conv, build, x = build_layer_inputs(spec, device)
    reps = spec["reps"]
    graph = build()
    amp = lambda: autocast_context(device, spec["dtype"])  # noqa: E731

    def forward():
        with torch.no_grad(), amp():
            return conv(x, graph.edge_index, graph.edge_attr, table=graph.table)

    xg = x.clone().requires_grad_(True)

    def step():
        conv.zero_grad(set_to_none=True)
        xg.grad = None
        with amp():
            out = conv(xg, graph.edge_index, graph.edge_attr, table=graph.table)
        out.float().square().mean().backward()

    fns = {"graph": build, "fwd": forward} if spec.get("forward_only") else {"graph": build, "fwd": forward, "fwdbwd": step}
    result = meter.measure(fns, reps)
    result.update(edges=int(graph.edge_index.shape[1]), max_degree=int(graph.max_degree),
                  graph_mb=graph_nbytes(graph) / 2**20)
    return result


def layer_flops(num_rows_kernel: int, targets: int, width: int, c_in: int, c_out: int, lie_dim: int,
                c_m: int = 16, hidden: int = 32) -> Dict[str, float]:
    """Multiply-add FLOPs (2 per MAC) of one LieConv forward: kernel MLP, aggregation, output Linear."""
    return {
        "kernel": 2.0 * num_rows_kernel * (lie_dim * hidden + hidden * hidden + hidden * c_m),
        "aggregation": 2.0 * targets * width * c_m * c_in,
        "linear": 2.0 * targets * c_m * c_in * c_out,
    }


def worker_flops(spec: dict, meter: Meter, device: torch.device) -> dict:
    """Achieved FLOP rate of the layer and of torch.matmul/bmm on the layer's shapes."""
    from torch_geometric_lieconv import T, lift_points
    from torch_geometric_lieconv.conv import LieConv
    from torch_geometric_lieconv.graph import build_pair_graph

    meter.timing_mode()
    rows = []
    reps = spec["reps"]
    cases = [("QM9 T(3) block conv", spec["k"] // 4), ("point cloud 1e5", LAYER_CHANNELS)]
    for name, channels in cases:
        if name.startswith("QM9"):
            z, pos, batch = (t.to(device) for t in qm9_like_batch(75, spec["seed"]))
            group = T(3)
            graph = build_pair_graph(group, lift_points(group, pos, batch))
            conv = LieConv(channels, channels, group, mc_samples=100, fill=1.0).to(device).eval()
            kernel_rows = graph.edge_index.shape[1]
        else:
            conv, build, _ = build_layer_inputs({"n": 100_000, "seed": spec["seed"]}, device)
            graph = build()
            kernel_rows = graph.num_nodes * min(LAYER_MC, graph.max_degree)
        targets, width = graph.num_nodes, min(conv.mc_samples, graph.max_degree)
        x = torch.randn(targets, channels, device=device)
        flops = layer_flops(kernel_rows, targets, width, channels, channels, 3)
        with torch.no_grad(), autocast_context(device, spec["dtype"]):
            layer = meter.time(lambda: conv(x, graph.edge_index, graph.edge_attr, table=graph.table), reps)
            a = torch.randn(targets, 16, width, device=device)
            b = torch.randn(targets, width, channels, device=device)
            bmm = meter.time(lambda: torch.bmm(a, b), reps)
            p = torch.randn(targets, 16 * channels, device=device)
            w = torch.randn(16 * channels, channels, device=device)
            mm = meter.time(lambda: torch.matmul(p, w), reps)
        total = sum(flops.values())
        rows.append({"case": name, "targets": targets, "width": width, "channels": channels,
                     "gflop": total / 1e9, "layer_gflops": total / layer / 1e9,
                     "bmm_gflops": flops["aggregation"] / bmm / 1e9, "mm_gflops": flops["linear"] / mm / 1e9,
                     "share": {k: v / total for k, v in flops.items()}})
    n = 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    with autocast_context(device, spec["dtype"]):
        square = meter.time(lambda: torch.matmul(a, b), reps)
    return {"rows": rows, "square_gflops": 2 * n**3 / square / 1e9}


def worker_compile(spec: dict, meter: Meter, device: torch.device) -> dict:
    """Eager vs torch.compile of one LieConv layer at QM9 size; graph breaks from torch._dynamo.explain."""
    import torch._dynamo

    from torch_geometric_lieconv import T, lift_points
    from torch_geometric_lieconv.conv import LieConv
    from torch_geometric_lieconv.graph import build_pair_graph

    meter.timing_mode()
    z, pos, batch = (t.to(device) for t in qm9_like_batch(75, spec["seed"]))
    group = T(3)
    graph = build_pair_graph(group, lift_points(group, pos, batch))
    channels = spec["k"] // 4
    conv = LieConv(channels, channels, group, mc_samples=100, fill=1.0, kernel_batch_norm=True,
                   aggregation=spec.get("aggregation", "bmm")).to(device).train()
    x = torch.randn(graph.num_nodes, channels, device=device, requires_grad=True)
    explanation = torch._dynamo.explain(conv)(x, graph.edge_index, graph.edge_attr, table=graph.table)
    torch._dynamo.reset()
    compiled = torch.compile(conv)

    def step(module):
        def run():
            conv.zero_grad(set_to_none=True)
            module(x, graph.edge_index, graph.edge_attr, table=graph.table).square().mean().backward()
        return run

    start = time.perf_counter()
    step(compiled)()
    compile_s = time.perf_counter() - start
    eager = meter.time(step(conv), spec["reps"])
    fast = meter.time(step(compiled), spec["reps"])
    conv.eval()
    with torch.no_grad():
        eager_fwd = meter.time(lambda: conv(x, graph.edge_index, graph.edge_attr, table=graph.table), spec["reps"])
        compiled(x, graph.edge_index, graph.edge_attr, table=graph.table)  # compile the inference graph
        fast_fwd = meter.time(lambda: compiled(x, graph.edge_index, graph.edge_attr, table=graph.table), spec["reps"])
    reasons = sorted({str(getattr(b, "reason", b)).splitlines()[0][:120] for b in explanation.break_reasons})
    return {"graphs": explanation.graph_count, "breaks": explanation.graph_break_count, "reasons": reasons,
            "compile_s": compile_s, "eager": eager, "compiled": fast, "eager_fwd": eager_fwd, "compiled_fwd": fast_fwd,
            "channels": channels}


WORKERS = {"qm9": worker_qm9, "qm9_check": worker_qm9_check, "layer": worker_layer, "flops": worker_flops,
           "compile": worker_compile}


def worker_main(spec: dict) -> None:
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    if spec.get("memory_limit_mb") and spec["device"] == "cpu":
        import resource

        limit = int(spec["memory_limit_mb"] * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    torch.manual_seed(spec["seed"])
    device = torch.device(spec["device"])
    meter = Meter(device, spec["clock"])
    meter.memory_mode()
    result = WORKERS[spec["kind"]](spec, meter, device)
    print("RESULT " + json.dumps(result))


def run_worker(spec: dict, timeout: float) -> dict:
    """Run one configuration in a fresh interpreter; ``{"error": ...}`` if it fails or runs out of memory."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    if proc.returncode < 0 or "memory" in proc.stderr.lower() or "alloc" in proc.stderr.lower():
        return {"error": f"out of memory ({tail[:100]})"}
    return {"error": tail[:160]}


# ---------------------------------------------------------------------------------------------- tables
def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


def mb(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_description(device: str) -> str:
    """The GPU's name, or the CPU model and core count."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or platform.machine()
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def load_average() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def available_memory_mb() -> float:
    match = re.search(r"MemAvailable:\s+(\d+)", Path("/proc/meminfo").read_text())
    return int(match.group(1)) / 1024 if match else float("inf")


def total_memory_mb() -> float:
    match = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


class Benchmark:
    """Runs the sections and renders their markdown tables."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        quick = args.quick
        self.k = args.k or (384 if quick else 1536)
        self.reps = args.reps or (3 if quick else 5)
        self.sizes = [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
        self.out: List[str] = []
        self.cache: Dict[str, dict] = {}

    def spec(self, kind: str, **kw) -> dict:
        a = self.args
        base = {"kind": kind, "device": a.device, "dtype": a.dtype, "threads": a.threads, "clock": a.clock,
                "reps": self.reps, "seed": a.seed, "k": self.k,
                "memory_limit_mb": None if a.device != "cpu" else max(available_memory_mb() - 1024, 1024)}
        base.update(kw)
        return base

    def emit(self, text: str) -> None:
        print(text, flush=True)
        self.out.append(text)

    def run(self, spec: dict) -> dict:
        key = json.dumps(spec, sort_keys=True)
        if key in self.cache:
            return self.cache[key]
        start = time.perf_counter()
        result = self.cache[key] = run_worker(spec, self.args.timeout)
        label = {k: spec[k] for k in spec if k in ("impl", "group", "n", "aggregation", "chunk", "kind")}
        print(f"  [{time.perf_counter() - start:5.1f} s] {label} {'ERROR ' + result['error'] if 'error' in result else ''}",
              file=sys.stderr, flush=True)
        return result

    # ------------------------------------------------------------------ sections
    def section_qm9(self) -> None:
        models = {
            "T3": dict(group="T3", layers=6, nbhd=100, fill=1.0, lift=1, aggregation="bmm"),
            "SE3": dict(group="SE3", layers=6, nbhd=25, fill=0.5, lift=4, aggregation="bmm"),
        }
        rows, checks = [], []
        for name, cfg in models.items():
            results = {impl: self.run(self.spec("qm9", impl=impl, **cfg)) for impl in ("sparse", "dense")}
            check = self.run(self.spec("qm9_check", **cfg))
            dense = results["dense"]
            for impl, res in results.items():
                rows.append(self._qm9_row(f"LieConv {name} {impl}", res, dense if impl == "sparse" else None))
            checks.append([name, check.get("checked", ""), f"{check.get('max_abs_diff', float('nan')):.2e}",
                           f"{check.get('max_abs_out', float('nan')):.3g}"] if "error" not in check
                          else [name, "", check["error"], ""])
        schnet = self.run(self.spec("qm9", impl="schnet", group="T3", layers=0, nbhd=0, fill=1.0, lift=1))
        rows.append(self._qm9_row("SchNet (PyG default: 128 ch, 6 interactions, cutoff 10)", schnet, None))
        self.emit(f"\n### QM9-sized batches (75 molecules, k={self.k}, 6 blocks)\n")
        self.emit(table(["model", "fwd ms", "fwd MB", "fwd+bwd ms", "fwd+bwd MB", "molecules/s (fwd+bwd)",
                         "dense / sparse (fwd, fwd+bwd time)"], rows))
        self.emit("\nOutputs, sparse vs dense reference (eval):\n")
        self.emit(table(["model", "checked at", "max abs diff", "max abs output"], checks))

    def _qm9_row(self, name: str, res: dict, dense: Optional[dict]) -> List[str]:
        if "error" in res:
            return [name, res["error"], "", "", "", "", ""]
        f, b = res["fwd"], res["fwdbwd"]
        ratio = ""
        if dense is not None and "error" not in dense:
            ratio = f"{dense['fwd']['time'] / f['time']:.2f}x, **{dense['fwdbwd']['time'] / b['time']:.2f}x**"
        elif dense is not None:
            ratio = "dense failed: " + dense["error"]
        return [name, ms(f["time"]), mb(f["peak_mb"]), ms(b["time"]), mb(b["peak_mb"]), f"{75 / b['time']:,.0f}", ratio]

    def section_layer(self) -> None:
        rows = []
        per_pair_min = 4 * (3 + 1 + 16)  # abq (3) + distance (1) + kernel output (16) floats per pair
        per_pair_mlp = per_pair_min + 4 * 2 * 32  # + the kernel MLP's two hidden layers
        ram = total_memory_mb()
        configs = []
        for n in self.sizes:
            configs.append(dict(n=n, aggregation=self.args.aggregation, chunk=None, forward_only=n >= 1_000_000))
            if n >= 100_000:
                configs.append(dict(n=n, aggregation=self.args.aggregation, chunk=65_536, forward_only=False))
        for cfg in configs:
            res = self.run(self.spec("layer", reps=2 if cfg["n"] >= 1_000_000 else self.reps, **cfg))
            n = cfg["n"]
            dense_gb = n * n * per_pair_min / 2**30
            dense_mlp_gb = n * n * per_pair_mlp / 2**30
            dense = f"{dense_gb:,.2f} / {dense_mlp_gb:,.2f}" + (" (OOM)" if dense_gb * 1024 > ram else "")
            label = f"{n:,}" + (f", chunk {cfg['chunk']:,}" if cfg["chunk"] else "")
            if "error" in res:
                rows.append([label, res["error"], "", "", "", "", "", "", dense])
                continue
            fb = res.get("fwdbwd")
            rows.append([
                label, f"{res['edges'] / n:.1f} / {res['max_degree']}", ms(res["graph"]["time"]), mb(res["graph_mb"]),
                ms(res["fwd"]["time"]), mb(res["fwd"]["peak_mb"]),
                ms(fb["time"]) if fb else "(forward only)", mb(fb["peak_mb"]) if fb else "",
                f"{res['fwd']['time'] / n * 1e6:.2f} / " + (f"{fb['time'] / n * 1e6:.2f}" if fb else "-"), dense,
            ])
        self.emit(f"\n### One T(3) LieConv layer ({LAYER_CHANNELS} -> {LAYER_CHANNELS} channels, ball of ~{LAYER_BALL_POINTS} "
                  f"points, {LAYER_MC} samples, aggregation {self.args.aggregation!r}) on a uniform point cloud\n")
        self.emit(table(["points", "candidates per point (mean / max)", "graph build ms", "graph MB", "fwd ms",
                         "fwd peak MB", "fwd+bwd ms", "fwd+bwd peak MB", "us per point (fwd / fwd+bwd)",
                         "dense all-pairs GB (min / with kernel MLP)"], rows))
        self.emit(f"\nDense memory is computed, not allocated: N^2 pairs x {per_pair_min} B (pair embedding, distance, "
                  f"kernel output in float32) / x {per_pair_mlp} B (plus the kernel MLP's two 32-wide hidden "
                  f"layers); (OOM) where the minimum exceeds this machine's {ram / 1024:.0f} GB of RAM. "
                  "Peak MB counts the layer's step only; the graph (built once per forward of a model and shared by "
                  "its layers) is in 'graph MB'.")

    def section_flops(self) -> None:
        res = self.run(self.spec("flops"))
        if "error" in res:
            self.emit(f"\n### FLOP rate\n\nfailed: {res['error']}")
            return
        rows = []
        for r in res["rows"]:
            share = ", ".join(f"{k} {v:.0%}" for k, v in r["share"].items())
            rows.append([r["case"], f"{r['targets']:,} x {r['width']} x {r['channels']}", f"{r['gflop']:.2f}", share,
                         f"{r['layer_gflops']:.1f}", f"{r['bmm_gflops']:.1f}", f"{r['mm_gflops']:.1f}"])
        self.emit("\n### FLOP rate of one layer (forward, eval) vs this machine's matmul rate\n")
        self.emit(table(["layer", "targets x slots x channels", "GFLOP per forward", "FLOP share",
                         "layer GFLOP/s", "torch.bmm GFLOP/s on the aggregation shapes",
                         "torch.matmul GFLOP/s on the output-Linear shapes"], rows))
        self.emit(f"\nSquare 2048 x 2048 torch.matmul: {res['square_gflops']:.1f} GFLOP/s. FLOPs are counted as 2 per "
                  "multiply-add of the kernel MLP, the aggregation P_i = sum_j f_j (x) W_ij and the output Linear "
                  "(elementwise work, gathers and neighbourhood selection not counted).")

    def section_aggregation(self) -> None:
        rows = []
        cfg = dict(group="T3", layers=6, nbhd=100, fill=1.0, lift=1)
        for agg in ("bmm", "scatter"):
            res = self.run(self.spec("qm9", impl="sparse", aggregation=agg, **cfg))
            rows.append(self._qm9_row(f"T3 model, aggregation {agg!r}", res, None)[:6])
        for agg in ("bmm", "scatter"):
            res = self.run(self.spec("layer", n=100_000, aggregation=agg, chunk=None, forward_only=False))
            if "error" in res:
                rows.append([f"layer 1e5 points, {agg!r}", res["error"], "", "", "", ""])
                continue
            rows.append([f"layer 1e5 points, {agg!r}", ms(res["fwd"]["time"]), mb(res["fwd"]["peak_mb"]),
                         ms(res["fwdbwd"]["time"]), mb(res["fwdbwd"]["peak_mb"]), ""])
        self.emit(f"\n### Aggregation: padded batched matmul ('bmm') vs weighted segment sum ('scatter'), k={self.k}\n")
        self.emit(table(["configuration", "fwd ms", "fwd MB", "fwd+bwd ms", "fwd+bwd MB", "molecules/s"], rows))

    def section_compile(self) -> None:
        res = self.run(self.spec("compile"))
        self.emit(f"\n### torch.compile of one LieConv layer (QM9 batch, {self.k // 4} channels, kernel BatchNorm, train)\n")
        if "error" in res:
            self.emit(f"failed: {res['error']}")
            return
        self.emit(table(["", "eager ms", "compiled ms", "speed-up"], [
            ["fwd+bwd (train)", ms(res["eager"]), ms(res["compiled"]), f"{res['eager'] / res['compiled']:.2f}x"],
            ["fwd (eval, no grad)", ms(res["eager_fwd"]), ms(res["compiled_fwd"]),
             f"{res['eager_fwd'] / res['compiled_fwd']:.2f}x"],
        ]))
        reasons = "; ".join(res["reasons"]) or "none"
        self.emit(f"\nFirst compiled call (compilation): {res['compile_s']:.0f} s. torch._dynamo.explain: "
                  f"{res['graphs']} graph(s), {res['breaks']} graph break(s); reasons: {reasons}.")

    # ------------------------------------------------------------------ all
    def header(self) -> str:
        a = self.args
        device, load = machine_description(a.device), load_average()
        return (f"Command: `python benchmarks/benchmark.py {' '.join(sys.argv[1:])}`  \n"
                f"Device: {device}; torch {torch.__version__}; dtype {a.dtype} "
                f"({'autocast' if a.dtype != 'float32' else 'no autocast'}); threads {a.threads or torch.get_num_threads()}; "
                f"clock {a.clock}; {self.reps} repetitions (minimum reported); load average at start {load}.")

    def main(self) -> str:
        start = time.perf_counter()
        self.emit(self.header())
        for name in self.args.sections.split(","):
            getattr(self, f"section_{name.strip()}")()
        self.emit(f"\nTotal benchmark time: {time.perf_counter() - start:.0f} s.")
        return "\n".join(self.out) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="k=384, 3 repetitions, up to 1e5 points (< 10 min on 2 cores)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                        help="autocast dtype for the kernel MLP and the matmuls (group math stays float32/64)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: torch's)")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"])
    parser.add_argument("--k", type=int, default=None, help="channels of the QM9 models (default 1536, quick 384)")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--aggregation", default="bmm", choices=["bmm", "scatter"], help="for the layer section")
    parser.add_argument("--sections", default="qm9,aggregation,layer,flops,compile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per configuration")
    parser.add_argument("--write", type=Path, default=None, help="also write the tables to this markdown file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(json.loads(args.worker))
        return
    if args.clock == "cpu" and args.device != "cpu":
        parser.error("--clock cpu is for CPU runs")
    text = Benchmark(args).main()
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
