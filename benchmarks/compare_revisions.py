"""Layer and model step time of this checkout against another revision of the package, side by side.

    git worktree add /tmp/lieconv-base <revision>
    python -m benchmarks.compare_revisions --baseline /tmp/lieconv-base

Each measurement runs in a fresh subprocess that imports ``torch_geometric_lieconv`` from one of the
two source trees (the baseline's or this one's), with one intra-op thread, and reports the process CPU
time of a step (the minimum over ``--reps`` after a warm-up), with glibc told to keep freed memory
(:data:`STEADY_MALLOC`). Rounds alternate the two trees
(``--rounds``, order reversed every round), so a load change on a shared machine hits both; the
table gives the median over rounds and the ratio current / baseline (below 1: the current tree is faster).

Cases (same inputs for both trees, built by this checkout's ``benchmarks.inputs``):

* ``qm9 T3``: :class:`QM9LieConv` T(3), k=384, 6 blocks, nbhd 100, fill 1, 75 QM9-sized molecules,
  forward + backward in training mode (every candidate edge used).
* ``qm9 SE3``: SE(3), k=384, 4 lift samples, nbhd 25, fill 1/2, alpha 0.2: the ball and random subset path.
* ``layer 1e5``: one T(3) LieConv (32 -> 32 channels) on 1e5 uniform points, ~48 points per ball,
  32 samples; forward (eval, no grad) and forward + backward, on a prebuilt candidate graph. The current
  tree is measured twice: with the neighbour table the models share between layers, and from
  ``edge_index`` alone (the table laid out inside the call).
"""
from __future__ import annotations

import inspect
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional

import torch

from benchmarks.harness import ROOT, argument_parser, best_time, import_package, run_worker
from benchmarks.inputs import layer_radius, qm9_like_batch, uniform_cloud

#: glibc: serve every block from the heap and keep freed memory, so that a step's time is its compute and
#: not the page faults of fresh mmap-ed blocks (which otherwise add 1-3x, very noisy, at 1e5 points)
STEADY_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}
CASES = ["qm9 T3", "qm9 SE3", "layer 1e5 fwd", "layer 1e5 fwd+bwd"]


def worker(spec: dict) -> Dict[str, float]:
    """Import the package from ``spec['tree']`` and time every case (in a fresh process); ``{case: seconds}``."""
    torch.set_num_threads(1)
    import_package("torch_geometric_lieconv", Path(spec["tree"]))
    from torch_geometric_lieconv import SE3, LieConv, T, lift_points
    from torch_geometric_lieconv.graph import build_pair_graph
    from torch_geometric_lieconv.models import QM9LieConv

    reps, out = spec["reps"], {}
    z, pos, batch = qm9_like_batch(75, 0)
    for name, group, kwargs in [("qm9 T3", T(3), dict(mc_samples=100, fill=1.0, lift_samples=1)),
                                ("qm9 SE3", SE3(alpha=0.2), dict(mc_samples=25, fill=0.5, lift_samples=4))]:
        torch.manual_seed(0)
        model = QM9LieConv(group, hidden_channels=384, num_layers=6, **kwargs).train()

        def step():
            model.zero_grad(set_to_none=True)
            model(z, pos, batch).square().mean().backward()

        out[name] = best_time(step, reps)

    group = T(3)
    radius = layer_radius()
    cloud = uniform_cloud(100_000, 0)
    keyword = "candidate_radius" if "candidate_radius" in inspect.signature(build_pair_graph).parameters else "radius"
    graph = build_pair_graph(group, lift_points(group, cloud), **{keyword: radius})
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

        out["layer 1e5 fwd" + suffix] = best_time(forward, reps)
        out["layer 1e5 fwd+bwd" + suffix] = best_time(train_step, reps)
    return out


def run(tree: Path, reps: int) -> Dict[str, float]:
    return run_worker(f"{__spec__.name}:worker", {"tree": str(tree), "reps": reps}, env=STEADY_MALLOC)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--baseline", type=Path, help="source tree of the other revision")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--reps", type=int, default=3, help="timed calls per case and round (default 3)")
    args = parser.parse_args(argv)
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
