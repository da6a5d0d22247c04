"""One T(3) LieConv layer on uniform point clouds (32 -> 32 channels, 32 samples, a ball of ~48 points at
unit density): graph build, forward, forward + backward, FLOP rate, ``torch.compile``, and the
original LieConv's layer beside it.

Used by ``python -m benchmarks.benchmark`` (sections ``layer``, ``flops``, ``compile``) and ``python
-m benchmarks.side_by_side --sections layer``; it has no command of its own.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Dict, Optional

import torch

from benchmarks.harness import Meter, WorkerError, autocast, import_reference, run_worker, table
from benchmarks.inputs import LAYER_CHANNELS, LAYER_MC, layer_radius, qm9_like_batch, uniform_cloud
from torch_geometric_lieconv import LieConv, T, lift_graph, lift_points
from torch_geometric_lieconv.graph import build_pair_graph


def build_layer_inputs(spec: dict, device: torch.device):
    """``(conv, build, x)``: the layer (eval, ball radius fixed), a call that builds its candidate graph
    on ``spec["n"]`` uniform points, and the features."""
    group = T(3)
    pos = uniform_cloud(spec["n"], spec["seed"]).to(device)
    radius = layer_radius()
    conv = LieConv(LAYER_CHANNELS, LAYER_CHANNELS, group, mc_samples=LAYER_MC, fill=0.5,
                   aggregation=spec.get("aggregation", "bmm"), chunk_size=spec.get("chunk")).to(device).eval()
    conv.radius.fill_(radius)
    build = lambda: build_pair_graph(group, lift_points(group, pos), candidate_radius=radius)  # noqa: E731
    x = torch.randn(spec["n"], LAYER_CHANNELS, device=device)
    return conv, build, x


def apply(conv: LieConv, x: torch.Tensor, graph) -> torch.Tensor:
    """The layer on a prebuilt candidate graph (its neighbour table and radius)."""
    return conv(x, graph.edge_index, graph.edge_attr, table=graph.table, candidate_radius=graph.candidate_radius)


def graph_nbytes(graph) -> int:
    tensors = [graph.edge_index, graph.edge_attr, graph.dist, graph.batch, graph.slots, graph.slot_mask,
               graph.graph_size]
    return sum(t.numel() * t.element_size() for t in tensors)


def speed_worker(spec: dict, meter: Meter, device: torch.device) -> dict:
    """Graph build, forward and forward+backward of one T(3) LieConv on a uniform cloud of ``n`` points."""
    conv, build, x = build_layer_inputs(spec, device)
    graph = build()

    def forward():
        with torch.no_grad(), autocast(device, spec["dtype"]):
            return apply(conv, x, graph)

    xg = x.clone().requires_grad_(True)

    def step():
        conv.zero_grad(set_to_none=True)
        xg.grad = None
        with autocast(device, spec["dtype"]):
            out = apply(conv, xg, graph)
        out.float().square().mean().backward()

    fns = {"graph": build, "fwd": forward}
    if not spec.get("forward_only"):
        fns["fwdbwd"] = step
    result = meter.measure(fns, spec["reps"])
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


def flops_worker(spec: dict, meter: Meter, device: torch.device) -> dict:
    """Achieved FLOP rate of the layer and of torch.matmul/bmm on the layer's shapes."""
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
        with torch.no_grad(), autocast(device, spec["dtype"]):
            layer = meter.time(lambda: apply(conv, x, graph), reps)
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
    with autocast(device, spec["dtype"]):
        square = meter.time(lambda: torch.matmul(a, b), reps)
    return {"rows": rows, "square_gflops": 2 * n**3 / square / 1e9}


def compile_worker(spec: dict, meter: Meter, device: torch.device) -> dict:
    """Eager vs torch.compile of one LieConv layer at QM9 size; graph breaks from torch._dynamo.explain."""
    import torch._dynamo

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


# ----------------------------------------------------------------------------------------------- side by side
def side_by_side_worker(spec: dict) -> dict:
    """One layer at one size in this (fresh) process: CPU s per fwd+bwd and peak memory of the step."""
    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    meter = Meter(device, "wall" if device.type == "cuda" else "cpu")
    n, width = spec["points"], LAYER_CHANNELS
    pos = uniform_cloud(n).to(device)
    x = torch.randn(n, width, device=device, requires_grad=True)
    radius = layer_radius()
    if spec["side"] == "project":
        graph = lift_graph("T3", pos, candidate_radius=radius)
        conv = LieConv(width, width, "T3", mc_samples=LAYER_MC, fill=0.5).to(device)
        conv.radius.fill_(radius)
        conv.eval()  # the ball stays at the radius of ~48 points

        def step() -> None:
            conv(x[graph.node_index], graph.edge_index, graph.edge_attr,
                 candidate_radius=graph.candidate_radius).sum().backward()
    else:
        reference = import_reference(Path(spec["reference"]))
        conv = reference.layers.LieConv(width, width, mc_samples=LAYER_MC, group=reference.groups.T(3), fill=0.5,
                                        xyz_dim=3).to(device)
        conv.r.fill_(radius)
        conv.eval()
        lifted = reference.groups.T(3).lift((pos[None], x[None], torch.ones(1, n, dtype=torch.bool,
                                                                            device=device)), 1)

        def step() -> None:
            conv(lifted)[1].sum().backward()

    meter.memory_mode()
    memory = meter.memory(step)  # the first call: one-off buffers count
    meter.timing_mode()
    return {"seconds": meter.time(step, reps=2), "peak_mb": memory["peak_mb"]}


def side_by_side_section(reference_path: Optional[Path], args) -> str:
    """The layer table of ``benchmarks.side_by_side``: one fresh process per cell."""
    rows = []
    for n in args.layer_points:
        cells = [f"{n:,}"]
        for side in ("original", "project"):
            if side == "original" and reference_path is None:
                cells += ["-", "-"]
                continue
            need_gb = 3 * n * n * 4 / 2**30  # its dense N x N distances and masks, at the least
            if side == "original" and need_gb > args.max_dense_gb:
                cells += [f"(skipped: dense pairs need > {need_gb:,.0f} GB)", "-"]
                continue
            spec = {"side": side, "points": n, "threads": args.threads, "device": args.device,
                    "reference": str(reference_path)}
            try:
                result = run_worker(f"{__name__}:side_by_side_worker", spec, args.timeout)
            except WorkerError as error:
                cells += [f"(failed: {error.last_line[:60]})", "-"]
                continue
            cells += [f"{1e6 * result['seconds'] / n:.1f}", f"{result['peak_mb']:,.0f}"]
        rows.append(cells)
        print(f"  layer {n}: {cells}", file=sys.stderr, flush=True)
    return ("One T(3) LieConv layer, 32 -> 32 channels, 32 samples, ball of ~48 points, forward + backward "
            "(one fresh process per cell):\n\n"
            + table(["points", "original us/point", "original peak MB", "project us/point", "project peak MB"],
                    rows))
