"""RotMNIST learning side by side: the original ``ImgLieResnet`` and this project's ``ImageLieResNet``
trained on the same digits, in the same order, with the same augmentation and optimizer steps.

    python benchmarks/learning_side_by_side.py --root DIGITS [--groups T2 SO2 RxSO2] [--seeds 0 1 2]

``DIGITS`` is a folder with the benchmark's two ``.amat`` files (directly or in ``raw/``). Both models
get the quick preset (k=32 widening, 3 blocks, nbhd 16, fill 0.1, total_ds 0.1, batch 25, Adam 3e-3
with the per-step cosine schedule and 1% warm-up, ``--epochs`` over the training split); every batch
is rotated by random angles on the image grid (bilinear, as the reference's augmentation) and the same
rotated images go to both (the project's as point sets of the pixel centres). Each run is its own
process (``--jobs`` at a time, one thread each); the table gives the test error after the last step,
mean and 95% t-interval over the seeds. The original is imported at run time from ``--reference``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F

from side_by_side import DEFAULT_REFERENCE, IMAGE_GROUPS, import_reference, reference_group  # same folder

from torch_geometric_lieconv.datasets.rotmnist import read_amat
from torch_geometric_lieconv.experiments.springs.statistics import t_quantile_975
from torch_geometric_lieconv.groups import group_from_name
from torch_geometric_lieconv.models import ImageLieResNet
from torch_geometric_lieconv.training import cosine_warmup_lambda
from torch_geometric_lieconv.transforms import ImageToPointSet

BATCH = 25
TRAIN_FRACTION = 10 / 12  # of the train_valid file, as the dataset class splits it


def load_digits(root: str):
    """``(train_images, train_labels, test_images, test_labels)``, images ``[N, 1, 28, 28]``."""
    folder = Path(root) / "raw" if (Path(root) / "raw").is_dir() else Path(root)
    images, labels = read_amat(str(folder / "mnist_all_rotation_normalized_float_train_valid.amat"))
    test_images, test_labels = read_amat(str(folder / "mnist_all_rotation_normalized_float_test.amat"))
    num_train = int(round(TRAIN_FRACTION * len(labels)))
    return (images[:num_train].view(-1, 1, 28, 28), labels[:num_train], test_images.view(-1, 1, 28, 28),
            test_labels)


def rotate(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Images rotated about their centre by ``angles`` (radians), bilinear, zeros outside."""
    cos, sin = angles.cos(), angles.sin()
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], -1),
                         torch.stack([sin, cos, torch.zeros_like(cos)], -1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


def train_one(spec: Dict) -> Dict:
    """One run in this process: train ``spec["side"]``'s model and return its test error (%)."""
    torch.set_num_threads(1)
    train_x, train_y, test_x, test_y = load_digits(spec["root"])
    name, ref_name, alpha, lifts = next(g for g in IMAGE_GROUPS if g[0] == spec["group"])
    torch.manual_seed(spec["seed"])
    to_points = ImageToPointSet(28, 28)
    if spec["side"] == "original":
        reference = import_reference(Path(spec["reference"]))
        model = reference.layers.ImgLieResnet(chin=1, total_ds=0.1, num_layers=3, fill=0.1, k=32, nbhd=16,
                                              group=reference_group(reference, ref_name, alpha), liftsamples=lifts,
                                              num_targets=10)
        logits = model
    else:
        model = ImageLieResNet(group_from_name(name, alpha), hidden_channels=32, num_layers=3, mc_samples=16,
                               fill=0.1, total_ds=0.1, lift_samples=lifts)

        def logits(images: torch.Tensor) -> torch.Tensor:
            data = to_points.batch(images)
            return model(data.x, data.pos, data.batch, num_graphs=images.shape[0])

    steps_per_epoch = len(train_y) // BATCH
    total = spec["epochs"] * steps_per_epoch
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_warmup_lambda(total, 0.01))
    data_order = torch.Generator().manual_seed(1000 + spec["seed"])  # the same for both sides
    start = time.process_time()
    model.train()
    for _ in range(spec["epochs"]):
        perm = torch.randperm(len(train_y), generator=data_order)
        for step in range(steps_per_epoch):
            index = perm[step * BATCH:(step + 1) * BATCH]
            angles = (torch.rand(BATCH, generator=data_order) * 2 - 1) * math.pi
            loss = F.cross_entropy(logits(rotate(train_x[index], angles)), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    train_s = time.process_time() - start
    model.eval()
    wrong = 0
    with torch.no_grad():
        for first in range(0, len(test_y) - BATCH + 1, BATCH):  # the original takes one batch size only
            out = logits(test_x[first:first + BATCH])
            wrong += int((out.argmax(-1) != test_y[first:first + BATCH]).sum())
    count = (len(test_y) // BATCH) * BATCH
    return {**spec, "test_error": 100.0 * wrong / count, "test_images": count, "train_cpu_s": train_s,
            "steps": total}


def run_in_processes(script: str, specs: List[Dict], jobs: int, describe: Callable[[Dict], str]) -> List[Dict]:
    """Each spec as ``python script --worker SPEC`` in a fresh one-thread process, ``jobs`` at a time;
    the workers' JSON results in the order of ``specs`` (``describe(result)`` is printed as each ends)."""

    def run(spec: Dict) -> Dict:
        proc = subprocess.run([sys.executable, script, "--worker", json.dumps(spec)], capture_output=True,
                              text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if proc.returncode != 0:
            raise RuntimeError(f"{spec}: {proc.stderr.strip().splitlines()[-1]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  {describe(result)}", file=sys.stderr, flush=True)
        return result

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(run, specs))


def interval(values: List[float]) -> str:
    """Mean and 95% t-interval."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return f"{mean:.2f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return f"{mean:.2f} [{mean - half:.2f}, {mean + half:.2f}]"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="folder of the two .amat files (or of raw/ with them)")
    parser.add_argument("--reference", default=str(DEFAULT_REFERENCE))
    parser.add_argument("--groups", nargs="+", default=["T2", "SO2", "RxSO2"], choices=[g[0] for g in IMAGE_GROUPS])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the quick preset")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--out", default=None, help="also write the runs as JSON here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(train_one(json.loads(args.worker))))
        return
    if args.root is None:
        parser.error("--root is required")
    reference = Path(args.reference).expanduser().resolve()
    sides = ["original", "project"] if import_reference(reference) is not None else ["project"]
    if sides == ["project"]:
        print(f"No original LieConv code at {reference}: the project's runs only.\n")
    specs = [{"side": side, "group": group, "seed": seed, "epochs": args.epochs, "root": args.root,
              "reference": str(reference)} for group in args.groups for seed in args.seeds for side in sides]

    results = run_in_processes(__file__, specs, args.jobs, lambda r: (
        f"{r['side']:8s} {r['group']:6s} seed {r['seed']}: test error {r['test_error']:.2f}% "
        f"({r['train_cpu_s']:.0f} CPU s)"))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"Command: `python benchmarks/learning_side_by_side.py {' '.join(sys.argv[1:] if argv is None else argv)}`  ")
    first = results[0]
    print(f"{first['steps']} optimizer steps per run (batch {BATCH}, {args.epochs} epochs); test error (%) on "
          f"{first['test_images']} test digits after the last step; mean [95% t-interval] over seeds "
          f"{', '.join(map(str, args.seeds))}.\n")
    print("| group | " + " | ".join(f"{side} test error %" for side in sides) + " | "
          + " | ".join(f"{side} train CPU s (mean)" for side in sides) + " |")
    print("|---|" + "---|" * (2 * len(sides)))
    for group in args.groups:
        cells = []
        for side in sides:
            cells.append(interval([r["test_error"] for r in results if r["group"] == group and r["side"] == side]))
        for side in sides:
            times = [r["train_cpu_s"] for r in results if r["group"] == group and r["side"] == side]
            cells.append(f"{sum(times) / len(times):.0f}")
        print(f"| {group} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
