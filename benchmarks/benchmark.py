"""Speed and memory of torch-geometric-lieconv against the dense padded reference and SchNet.

    python -m benchmarks.benchmark --quick                  # < 10 minutes on a 2-core CPU
    python -m benchmarks.benchmark                          # paper sizes (k=1536), up to 1e6 points
    python -m benchmarks.benchmark --device cuda --dtype bfloat16
    python -m benchmarks.benchmark --quick --write benchmarks/RESULTS.md

Sections (``--sections``, default all):

* ``qm9``: QM9-sized batches (75 molecules of 1-29 atoms, sizes ~ N(18, 3) clipped, QM9-like
  species H/C/N/O/F, synthetic tree-shaped geometry with 1.1-1.5 A bonds). The paper's T(3) model
  (k channels, 6 blocks, nbhd 100, fill 1) and SE(3) model (4 lift samples, nbhd 25, fill 1/2,
  alpha 0.2): this package (``sparse``), the dense padded reference of the tests
  (:func:`torch_geometric_lieconv.testing.dense_model_forward`: all pairs of the padded batch, so for
  SE(3) it convolves over every pair instead of 25 sampled ones, as the original implementation stores
  them) and PyG's SchNet at its default size. Forward (eval, no grad) and forward+backward (train)
  time, peak memory, molecules/s, and the largest output difference sparse vs dense (eval; SE(3)
  checked with fill 1 and explicit frames, where both compute the same function).
* ``layer``: one T(3) LieConv (32 -> 32 channels, ball with ~48 points of a uniform cloud, 32
  samples) on 1e3 ... 1e6 points: graph build, forward, forward+backward, time per point, memory,
  and the memory the dense all-pairs approach would need (computed, never allocated).
* ``flops``: FLOP rate of the layer (counted analytically) against ``torch.matmul`` / ``torch.bmm``
  on the layer's own matmul shapes and a square matmul.
* ``aggregation``: ``"bmm"`` vs ``"scatter"`` at QM9 size (T(3) model, and one layer).
* ``compile``: eager vs ``torch.compile`` of one layer, and ``torch._dynamo.explain`` graph breaks.

Each configuration runs in a fresh subprocess (``benchmarks.worker``), so memory is per configuration.
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
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

from benchmarks import layer, qm9
from benchmarks.harness import (Meter, WorkerError, argument_parser, available_memory_mb, command, load_average,
                                machine_description, mb, ms, run_worker, table, total_memory_mb)
from benchmarks.inputs import LAYER_BALL_POINTS, LAYER_CHANNELS, LAYER_MC
from benchmarks.qm9 import CONFIGS

#: the measurements, by a spec's ``kind``: ``function(spec, meter, device) -> result``
MEASUREMENTS = {"qm9": qm9.speed_worker, "qm9_check": qm9.check_worker, "layer": layer.speed_worker,
                "flops": layer.flops_worker, "compile": layer.compile_worker}


def measurement(spec: dict) -> dict:
    """One configuration in this fresh process (a worker): threads, memory limit, seed, then its measurement."""
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
    return MEASUREMENTS[spec["kind"]](spec, meter, device)


def run_measurement(spec: dict, timeout: float) -> dict:
    """Run one configuration in a fresh interpreter; ``{"error": ...}`` if it fails or runs out of memory."""
    try:
        return run_worker(f"{__spec__.name}:measurement", spec, timeout)
    except WorkerError as error:
        if error.timed_out:
            return {"error": str(error)}
        stderr = error.stderr.lower()
        if (error.returncode or 0) < 0 or "memory" in stderr or "alloc" in stderr:
            return {"error": f"out of memory ({error.last_line[:100]})"}
        return {"error": error.last_line[:160]}


class Benchmark:
    """Runs the sections and renders their markdown tables."""

    def __init__(self, args: argparse.Namespace, argv: Optional[List[str]] = None) -> None:
        self.args, self.argv = args, argv
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
        result = self.cache[key] = run_measurement(spec, self.args.timeout)
        label = {k: spec[k] for k in spec if k in ("impl", "group", "n", "aggregation", "chunk", "kind")}
        error = "ERROR " + result["error"] if "error" in result else ""
        print(f"  [{time.perf_counter() - start:5.1f} s] {label} {error}", file=sys.stderr, flush=True)
        return result

    # ------------------------------------------------------------------ sections
    def section_qm9(self) -> None:
        models = {name: dict(CONFIGS[name], aggregation="bmm") for name in ("T3", "SE3")}
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
        self.emit(f"\n### One T(3) LieConv layer ({LAYER_CHANNELS} -> {LAYER_CHANNELS} channels, ball of "
                  f"~{LAYER_BALL_POINTS} points, {LAYER_MC} samples, aggregation {self.args.aggregation!r}) on a "
                  "uniform point cloud\n")
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
        self.emit(f"\n### torch.compile of one LieConv layer (QM9 batch, {self.k // 4} channels, kernel BatchNorm, "
                  "train)\n")
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
        return (f"Command: `{command(__spec__.name, self.argv)}`  \n"
                f"Device: {device}; torch {torch.__version__}; dtype {a.dtype} "
                f"({'autocast' if a.dtype != 'float32' else 'no autocast'}); "
                f"threads {a.threads or torch.get_num_threads()}; "
                f"clock {a.clock}; {self.reps} repetitions (minimum reported); load average at start {load}.")

    def main(self) -> str:
        start = time.perf_counter()
        self.emit(self.header())
        for name in self.args.sections.split(","):
            getattr(self, f"section_{name.strip()}")()
        self.emit(f"\nTotal benchmark time: {time.perf_counter() - start:.0f} s.")
        return "\n".join(self.out) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--quick", action="store_true",
                        help="k=384, 3 repetitions, up to 1e5 points (< 10 min on 2 cores)")
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
    args = parser.parse_args(argv)
    if args.clock == "cpu" and args.device != "cpu":
        parser.error("--clock cpu is for CPU runs")
    text = Benchmark(args, argv).main()
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
