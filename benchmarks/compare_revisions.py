"""Layer and model step time of this checkout against another revision of the package, side by side.

    git worktree add /tmp/lieconv-base <revision>
    python benchmarks/compare_revisions.py --baseline /tmp/lieconv-base

Each measurement runs in a fresh subprocess that imports ``torch_geometric_lieconv`` from one of the
two source trees (the baseline's or this one's), with one intra-op thread, and reports the process CPU
time of a step (the minimum over ``--reps`` after a warm-up), with glibc told to keep freed memory
(:data:`STEADY_MALLOC`). Rounds alternate the two trees
(``--rounds``, order reversed every round), so a load change on a shared machine hits both; the
table gives the median over rounds and the ratio current / baseline (below 1: the current tree is faster).

Cases (same inputs for both trees, built from this checkout's ``benchmarks/benchmark.py`` helpers):

* ``qm9 T3``: :class:`QM9LieConv` T(3), k=384, 6 blocks, nbhd 100, fill 1, 75 QM9-sized molecules,
  forward + backward in training mode (every candidate edge used).
* ``qm9 SE3``: SE(3), k=384, 4 lift samples, nbhd 25, fill 1/2, alpha 0.2: the ball and random subset path.
* ``layer 1e5``: one T(3) LieConv (32 -> 32 channels) on 1e5 uniform points, ~48 points per ball,
  32 samples; forward (eval, no grad) and forward + backward, on a prebuilt candidate graph. The current
  tree is measured twice: with the neighbour table the models share between layers, and from
  ``edge_index`` alone (the table laid out inside the call).
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

ROOT = Path(__file__).resolve().parents[1]
#: glibc: serve every block from the heap and keep freed memory, so that a step's time is its compute and
#: not the page faults of fresh mmap-ed blocks (which otherwise add 1-3x, very noisy, at 1e5 points)
STEADY_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}
CASES = ["qm9 T3", "qm9 SE3", "layer 1e5 fwd", "layer 1e5 fwd+bwd"]


def cpu_time(fn: Callable[[], object], reps: int) -> float:
    """Minimum process CPU time of ``fn`` over ``reps`` calls, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(reps):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def worker(spec: dict) -> Dict[str, float]:
    """Import the package from ``spec['tree']`` and time every case; ``{case: seconds}``."""
    sys.path.insert(0, spec["tree"])
    sys.path.insert(1, str(ROOT / "benchmarks"))
    import torch

    torch.set_num_threads(1)
    import torch_geometric_lieconv
    from benchmark import layer_radius, qm9_like_batch, uniform_cloud
    from torch_geometric_lieconv import SE3, T, lift_points
    from torch_geometric_lieconv.conv import LieConv
    from torch_geometric_lieconv.graph import build_pair_graph
    from torch_geometric_lieconv.models import QM9LieConv

    assert Path(torch_geometric_lieconv.__file__).resolve().is_relative_to(Path(spec["tree"]).resolve())
    reps, out = spec["reps"], {}
    z, pos, batch = qm9_like_batch(75, 0)
    for name, group, kwargs in [("qm9 T3", T(3), dict(mc_samples=100, fill=1.0, lift_samples=1)),
                                ("qm9 SE3", SE3(alpha=0.2), dict(mc_samples=25, fill=0.5, lift_samples=4))]:
        torch.manual_seed(0)
        model = QM9LieConv(group, hidden_channels=384, num_layers=6, **kwargs).train()

        def step():
            model.zero_grad(set_to_none=True)
            model(z, pos, batch).square().mean().backward()

        out[name] = cpu_time(step, reps)

    group = T(3)
    radius = layer_radius()
    cloud = uniform_cloud(100_000, 0)
    graph = build_pair_graph(group, lift_points(group, cloud), radius=radius)
    torch.manual_seed(0)
    conv = LieConv(32, 32, group, mc_samples=32, fill=0.5).eval()
    conv.radius.fill_(radius)
    x = torch.randn(cloud.shape[0], 32)
    speaks_edge_index = "edge_attr" in inspect.signature(LieConv.forward).parameters
    calls = {"": lambda inp: conv(inp, graph)}
    if speaks_edge_index:
        calls = {"": lambda inp: conv(inp, graph.edge_index, graph.edge_attr, table=graph.table,
                                      candidate_radius=radius),
                 " (edge_index only)": lambda inp: conv(inp, graph.edge_index, graph.edge_attr,
                                                        candidate_radius=radius)}
    xg = x.clone().requires_grad_(True)
    for suffix, call in calls.items():
        def forward():
            with torch.no_grad():
                call(x)

        def train_step():
            conv.zero_grad(set_to_none=True)
            xg.grad = None
            call(xg).square().mean().backward()

        out["layer 1e5 fwd" + suffix] = cpu_time(forward, reps)
        out["layer 1e5 fwd+bwd" + suffix] = cpu_time(train_step, reps)
    return out


def run(tree: Path, reps: int) -> Dict[str, float]:
    spec = json.dumps({"tree": str(tree), "reps": reps})
    proc = subprocess.run([sys.executable, __file__, "--worker", spec], capture_output=True, text=True,
                          check=False, env={**os.environ, **STEADY_MALLOC})
    if proc.returncode != 0:
        raise RuntimeError(f"worker for {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="source tree of the other revision")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--reps", type=int, default=3, help="timed calls per case and round (default 3)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.baseline is None or not (args.baseline / "torch_geometric_lieconv").is_dir():
        parser.error("--baseline must be a source tree holding torch_geometric_lieconv/")
    trees = {"baseline": args.baseline.resolve(), "current": ROOT}
    results: Dict[str, List[Dict[str, float]]] = {name: [] for name in trees}
    for round_index in range(args.rounds):
        order = list(trees) if round_index % 2 == 0 else list(trees)[::-1]
        for name in order:
            results[name].append(run(trees[name], args.reps))
            print(f"round {round_index + 1}/{args.rounds}: {name} done", file=sys.stderr, flush=True)
    median = {name: {case: statistics.median(r[case] for r in runs) for case in runs[0]}
              for name, runs in results.items()}
    print(f"CPU s per call, one thread, median of {args.rounds} interleaved rounds "
          f"(each the minimum of {args.reps} calls); baseline {trees['baseline']}\n")
    print("| case | baseline s | current s | current / baseline |")
    print("|---|---|---|---|")
    for case in median["current"]:
        base = median["baseline"].get(case) or median["baseline"].get(case.replace(" (edge_index only)", ""))
        cur = median["current"][case]
        print(f"| {case} | {base:.4f} | {cur:.4f} | {cur / base:.2f} |")


if __name__ == "__main__":
    main()
