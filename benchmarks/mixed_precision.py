"""Training step of the paper's QM9 models in float32 and under bfloat16 autocast, side by side.

    python benchmarks/mixed_precision.py                      # k=1536, T(3) and SE(3), one thread
    python benchmarks/mixed_precision.py --k 384 --rounds 5

One process, one thread, interleaved rounds (float32 step, bfloat16 step, float32 step, ...): process
CPU time of a training step (forward, backward and Adam) on 75 QM9-sized molecules
(``benchmark.qm9_like_batch``), the median over rounds, and the relative difference of the two
outputs at the same weights (eval mode). Under autocast the Linear layers and the kernel MLPs run in
bfloat16; the group math (lift, log, distances) stays in float32/float64 and the aggregation's batched
matmul in float32 (on CPUs a bfloat16 ``bmm`` of these shapes is slower than float32). bfloat16 pays
off on CPUs with AVX-512-BF16 or AMX (and on GPUs); elsewhere it can be slower.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Dict, List

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark import build_qm9_model, qm9_like_batch  # noqa: E402

CONFIGS = {
    "T3": dict(group="T3", layers=6, nbhd=100, fill=1.0, lift=1),
    "SE3": dict(group="SE3", layers=6, nbhd=25, fill=0.5, lift=4),
}


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return ", ".join(found) if found else "no bf16 instructions"


def measure(name: str, k: int, rounds: int, seed: int) -> Dict[str, float]:
    torch.manual_seed(seed)
    model = build_qm9_model({**CONFIGS[name], "k": k})
    z, pos, batch = qm9_like_batch(75, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    target = torch.randn(int(batch.max()) + 1)

    def step(dtype: torch.dtype) -> float:
        model.train()
        start = time.process_time()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = model(z, pos, batch)
        (out.float() - target).abs().mean().backward()
        optimizer.step()
        return time.process_time() - start

    step(torch.float32), step(torch.bfloat16)  # warm-up
    times: Dict[str, List[float]] = {"float32": [], "bfloat16": []}
    for _ in range(rounds):
        times["float32"].append(step(torch.float32))
        times["bfloat16"].append(step(torch.bfloat16))
    model.eval()
    generator_state = torch.get_rng_state()
    with torch.no_grad():
        full = model(z, pos, batch)
        torch.set_rng_state(generator_state)  # the same random lifts and neighbourhoods
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(z, pos, batch).float()
    fp32, bf16 = statistics.median(times["float32"]), statistics.median(times["bfloat16"])
    difference = float((half - full).norm() / full.norm().clamp_min(1e-30))
    return {"fp32": fp32, "bf16": bf16, "ratio": fp32 / bf16, "difference": difference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=1536, help="channels of the QM9 models")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--groups", default="T3,SE3")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"Command: `python benchmarks/mixed_precision.py {' '.join(sys.argv[1:])}`")
    print(f"CPU: {platform.processor() or platform.machine()} ({cpu_flags()}); torch {torch.__version__}; "
          f"one thread; median of {args.rounds} interleaved rounds; load average at start "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}.\n")
    print("| model | float32 s/step | bfloat16 autocast s/step | speed-up | output difference (relative) |")
    print("|---|---|---|---|---|")
    for name in args.groups.split(","):
        r = measure(name, args.k, args.rounds, args.seed)
        print(f"| {name}, k={args.k} | {r['fp32']:.2f} | {r['bf16']:.2f} | {r['ratio']:.2f}x | "
              f"{r['difference']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
