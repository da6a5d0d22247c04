"""Training step of the paper's QM9 models in float32 and under bfloat16 autocast, side by side.

    python -m benchmarks.mixed_precision                      # k=1536, T(3) and SE(3), one thread
    python -m benchmarks.mixed_precision --k 128 256 512 1024 1536 --groups T3,T3-quick,SE3   # crossover

One thread; process CPU time of a training step (forward, backward and Adam) on a new batch of 75
(``--molecules``) QM9-sized molecules every step (``benchmarks.inputs.qm9_like_batch``), as in training: the
atom count, so the matmul shapes, change every step, which costs bfloat16 more than float32 (one
repeated batch hides it). Each precision runs in a fresh process, in the order float32, bfloat16,
bfloat16, float32; a column is the better of its two medians over ``--rounds`` steps (after two
warm-up steps). One process per precision because within one process the two disturb each other
(float32 steps after bfloat16 ones ran slower, and interleaving them made bfloat16 look faster than a
bfloat16 training run is). The last column is the relative difference of the two outputs at the same
weights (eval mode).

Under autocast the Linear layers and the kernel MLPs run in bfloat16; the group math (lift, log,
distances) stays in float32/float64; the aggregation's batched matmul runs in bfloat16 on CPUs with
AMX-BF16 and in float32 on other CPUs (``python -m benchmarks.aggregation``). bfloat16 pays
off on CPUs with AVX-512-BF16 or AMX (and on GPUs); elsewhere it can be slower. With several ``--k``
the table ends with the crossover per model: the smallest width from which bfloat16 is faster at every
measured width (the figure behind ``--precision auto``, see
``torch_geometric_lieconv.experiments.qm9.BF16_MIN_CHANNELS``).

Models: ``T3`` and ``SE3`` are the paper's (6 blocks; nbhd 100, fill 1 / 4 lifts, nbhd 25, fill 1/2);
``T3-quick`` is ``--preset quick``'s network (3 blocks, nbhd 32).
"""
from __future__ import annotations

import math
import platform
import statistics
from typing import Dict, List, Optional

import torch

from benchmarks.harness import Clock, argument_parser, bfloat16_description, command, load_average, run_worker
from benchmarks.inputs import qm9_like_batch
from benchmarks.qm9 import CONFIGS, build_model


def step_seconds(name: str, k: int, rounds: int, seed: int, molecules: int, precision: str) -> float:
    """Median process CPU seconds of a training step in ``precision``, on a new batch every step."""
    torch.manual_seed(seed)
    model = build_model({**CONFIGS[name], "k": k}).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    clock = Clock()
    times = []
    for i in range(rounds + 2):  # new molecules every step, as in training: new matmul shapes
        z, pos, batch = qm9_like_batch(molecules, seed + i)
        start = clock()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            out = model(z, pos, batch)
        out.float().abs().mean().backward()
        optimizer.step()
        times.append(clock() - start)
    return statistics.median(times[2:])  # the first two steps warm up (the balls' radii settle)


def output_difference(name: str, k: int, seed: int, molecules: int) -> float:
    """Relative difference of the bfloat16-autocast output from the float32 one at equal weights."""
    torch.manual_seed(seed)
    model = build_model({**CONFIGS[name], "k": k}).eval()
    z, pos, batch = qm9_like_batch(molecules, seed)
    generator_state = torch.get_rng_state()
    with torch.no_grad():
        full = model(z, pos, batch)
        torch.set_rng_state(generator_state)  # the same random lifts and neighbourhoods
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(z, pos, batch).float()
    return float((half - full).norm() / full.norm().clamp_min(1e-30))


def in_process(spec: dict) -> float:
    """Run one measurement in a fresh process (one precision per process, see the module's doc)."""
    return run_worker(f"{__spec__.name}:worker", spec)


def measure(name: str, k: int, rounds: int, seed: int, molecules: int) -> Dict[str, float]:
    spec = dict(name=name, k=k, rounds=rounds, seed=seed, molecules=molecules)
    best = {"float32": math.inf, "bfloat16": math.inf}
    for precision in ("float32", "bfloat16", "bfloat16", "float32"):  # ABBA: drifts of the load cancel
        best[precision] = min(best[precision], in_process({**spec, "precision": precision}))
    difference = in_process({**spec, "precision": "difference"})
    fp32, bf16 = best["float32"], best["bfloat16"]
    return {"fp32": fp32, "bf16": bf16, "ratio": fp32 / bf16, "difference": difference}


def worker(spec: dict) -> float:
    """One measurement in this (fresh) process: the step time in a precision, or the output difference."""
    torch.set_num_threads(1)
    args = (spec["name"], spec["k"])
    if spec["precision"] == "difference":
        return output_difference(*args, spec["seed"], spec["molecules"])
    return step_seconds(*args, spec["rounds"], spec["seed"], spec["molecules"], spec["precision"])


def crossover(ratios: Dict[int, float]) -> str:
    """The smallest measured width from which bfloat16 is faster at every larger measured width."""
    widths = sorted(ratios)
    faster_from = [k for i, k in enumerate(widths) if all(ratios[w] > 1.0 for w in widths[i:])]
    return f"k >= {faster_from[0]}" if faster_from else "none measured"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--k", type=int, nargs="+", default=[1536], help="channels of the QM9 models")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--groups", default="T3,SE3", help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--molecules", type=int, default=75, help="molecules per batch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"Command: `{command(__spec__.name, argv)}`")
    print(f"CPU: {platform.processor() or platform.machine()} ({bfloat16_description()}); "
          f"torch {torch.__version__}; one thread; {args.molecules} molecules; each precision in its own "
          f"process (ABBA), best of 2 medians of {args.rounds} steps; load average at start {load_average()}.\n")
    print("| model | float32 s/step | bfloat16 autocast s/step | speed-up | output difference (relative) |")
    print("|---|---|---|---|---|")
    crossovers = []
    for name in args.groups.split(","):
        ratios = {}
        for k in args.k:
            r = measure(name, k, args.rounds, args.seed, args.molecules)
            ratios[k] = r["ratio"]
            print(f"| {name}, k={k} | {r['fp32']:.3f} | {r['bf16']:.3f} | {r['ratio']:.2f}x | "
                  f"{r['difference']:.1e} |", flush=True)
        crossovers.append(f"{name}: {crossover(ratios)}")
    if len(args.k) > 1:
        print(f"\nbfloat16 faster from: {'; '.join(crossovers)}")


if __name__ == "__main__":
    main()
