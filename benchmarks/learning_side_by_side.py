"""RotMNIST learning side by side: the original ``ImgLieResnet`` and this project's ``ImageLieResNet``
trained on the same digits, in the same order, with the same augmentation and optimizer steps.

    python -m benchmarks.learning_side_by_side --root DIGITS [--groups T2 SO2 RxSO2] [--seeds 0 1 2]

``DIGITS`` is a folder with the benchmark's two ``.amat`` files (directly or in ``raw/``). Both models
get the quick preset (k=32 widening, 3 blocks, nbhd 16, fill 0.1, total_ds 0.1, batch 25, Adam 3e-3
with the per-step cosine schedule and 1% warm-up, ``--epochs`` over the training split); every batch
is rotated by random angles on the image grid (bilinear, as the reference's augmentation) and the same
rotated images go to both (the project's as point sets of the pixel centres). Each run is its own
process (``--jobs`` at a time, one thread each); the table gives the test error after the last step,
mean and 95% t-interval over the seeds. The original is imported at run time from ``--reference``.
``--sides project project-shared-samples`` compares the project's default with ``ImageLieResNet(...,
shared_samples=True)`` (the images of a batch share their farthest point starts and lift samples).
The QM9 counterpart is ``python -m benchmarks.qm9_learning_side_by_side``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import List, Optional

from benchmarks.harness import DEFAULT_REFERENCE, argument_parser, command, import_reference, interval, run_in_processes
from benchmarks.rotmnist import IMAGE_GROUPS, TRAIN_BATCH


#: the runs a comparison can hold
SIDES = ["original", "project", "project-shared-samples"]


def learning_parser(module: str, doc: str, root_help: str, epochs: int) -> argparse.ArgumentParser:
    """The parser of learning comparison ``module``, with the options both share."""
    parser = argument_parser(module, doc)
    parser.add_argument("--root", default=None, help=root_help)
    parser.add_argument("--reference", default=str(DEFAULT_REFERENCE))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=epochs, help="epochs of the quick preset")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--out", default=None, help="also write the runs as JSON here")
    return parser


def run_all(target: str, specs: List[dict], args, describe) -> List[dict]:
    """The runs of ``specs`` (``--jobs`` processes at a time), also written to ``--out`` when given."""
    results = run_in_processes(target, specs, args.jobs, describe)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return results


def main(argv: Optional[List[str]] = None) -> None:
    parser = learning_parser(__spec__.name, __doc__, "folder of the two .amat files (or of raw/ with them)", epochs=5)
    parser.add_argument("--groups", nargs="+", default=["T2", "SO2", "RxSO2"], choices=[g[0] for g in IMAGE_GROUPS])
    parser.add_argument("--sides", nargs="+", default=["original", "project"], choices=SIDES,
                        help="whose runs: the original, the project, the project with ImageLieResNet's "
                             "shared_samples=True")
    args = parser.parse_args(argv)
    if args.root is None:
        parser.error("--root is required")
    reference = Path(args.reference).expanduser().resolve()
    sides = list(args.sides)
    if "original" in sides and import_reference(reference) is None:
        sides.remove("original")
        print(f"No original LieConv code at {reference}: the project's runs only.\n")
    specs = [{"side": side, "group": group, "seed": seed, "epochs": args.epochs, "root": args.root,
              "reference": str(reference)} for group in args.groups for seed in args.seeds for side in sides]

    results = run_all("benchmarks.rotmnist:learning_run", specs, args, lambda r: (
        f"{r['side']:8s} {r['group']:6s} seed {r['seed']}: test error {r['test_error']:.2f}% "
        f"({r['train_cpu_s']:.0f} CPU s)"))
    print(f"Command: `{command(__spec__.name, argv)}`  ")
    first = results[0]
    print(f"{first['steps']} optimizer steps per run (batch {TRAIN_BATCH}, {args.epochs} epochs); test error (%) on "
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
