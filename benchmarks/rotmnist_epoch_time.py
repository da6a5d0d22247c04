"""Time per RotMNIST epoch of the image LieResNet at the paper's settings, per group.

    python -m benchmarks.rotmnist_epoch_time                       # T2, SO2, RxSO2, SE2, paper settings
    python -m benchmarks.rotmnist_epoch_time --groups SE2 --steps 5 --device cuda

The cost of a step depends on the pixel grid, not on the digits, so the batches are random 28 x 28
images turned into point sets exactly as the dataset does (centred pixel grid, circular crop of
radius 15: 648 points per image); ``--root`` uses a RotMNIST folder's first training images instead.

The ball radii start at 2 pixels and adapt during training toward each layer's fill (fill 0.1 in the
first block, growing as the points thin out), so early steps are cheaper than the rest of the run.
Before timing, the radii are moved to the fills they converge to (a few no-grad forward passes that
rescale each radius by sqrt(target fill / observed fill), the area law of a 2-D grid). Then
``--steps`` training steps (forward, backward, Adam) are timed after one warm-up step, and one
evaluation forward of a batch of ``--eval-batch-size`` images. An epoch of the paper's run is
10,000 / batch_size training steps plus the 2,000 validation images:

    epoch = (10000 / 25) x step + (2000 / eval_batch) x eval_forward
"""
from __future__ import annotations

import argparse
import math
from typing import List, Optional

import torch
import torch.nn.functional as F

from benchmarks.harness import Clock, argument_parser, header
from benchmarks.rotmnist import TRAIN_IMAGES, VALID_IMAGES
from torch_geometric_lieconv.experiments.rotmnist import PRESETS, SETTINGS, paper_error
from torch_geometric_lieconv.models import ImageLieResNet
from torch_geometric_lieconv.transforms import ImageToPointSet


def image_batch(num: int, seed: int, root: Optional[str]):
    """A batch of ``num`` 28 x 28 images as point sets (``Batch`` with ``x``, ``pos``, ``batch``, ``y``)."""
    if root:
        from torch_geometric.loader import DataLoader

        from torch_geometric_lieconv.datasets import RotMNIST

        return next(iter(DataLoader(RotMNIST(root, "train"), batch_size=num)))
    gen = torch.Generator().manual_seed(seed)
    data = ImageToPointSet(28, 28).batch(torch.rand(num, 1, 28, 28, generator=gen))
    data.y = torch.randint(0, 10, (num,), generator=gen)
    return data


def logits(model: ImageLieResNet, batch) -> torch.Tensor:
    return model(batch.x, batch.pos, batch.batch, num_graphs=batch.y.numel())


def calibrate_radii(model: ImageLieResNet, batch, rounds: int = 6) -> List[float]:
    """Move every layer's ball radius to its target fill; returns the observed fills of the last round."""
    model.train()
    with torch.no_grad():
        for _ in range(rounds):
            logits(model, batch)
            for conv in model.convs:
                observed = max(float(conv.observed_fill), 1e-3)
                conv.radius.mul_(math.sqrt(conv.fill / observed))
        logits(model, batch)
    return [float(conv.observed_fill) for conv in model.convs]


def measure(group: str, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    settings = SETTINGS.resolve(preset=args.preset).flat()
    torch.manual_seed(args.seed)
    model = ImageLieResNet(group, hidden_channels=settings["hidden_channels"], num_layers=settings["num_layers"],
                           mc_samples=settings["mc_samples"], fill=settings["fill"],
                           total_ds=settings["total_ds"],
                           grow_channels=settings["grow_channels"] and not args.constant_channels).to(device)
    batch = image_batch(settings["batch_size"], args.seed, args.root).to(device)
    fills = calibrate_radii(model, batch)
    with torch.no_grad():  # the first block's candidate graph at its calibrated radius
        _, graph = model.lift_and_connect(batch.pos, batch.batch)
        in_ball = int((graph.dist < model.convs[0].radius).sum())
        candidates_per_image = graph.edge_index.shape[1] / batch.y.numel()
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(logits(model, batch), batch.y)
        loss.backward()
        optimizer.step()

    model.train()
    step()  # warm-up
    clock = Clock(device, "wall")
    times = [clock.seconds(step) for _ in range(args.steps)]
    eval_batch = image_batch(args.eval_batch_size, args.seed + 1, args.root).to(device)
    model.eval()
    with torch.no_grad():
        logits(model, eval_batch)  # warm-up
        eval_s = clock.seconds(lambda: logits(model, eval_batch))
    step_s = sum(times) / len(times)
    steps_per_epoch = TRAIN_IMAGES / settings["batch_size"]
    epoch_s = steps_per_epoch * step_s + VALID_IMAGES / args.eval_batch_size * eval_s
    return {"group": group, "lift": model.lift_samples, "points": batch.pos.shape[0] // batch.y.numel(),
            "fills": fills, "candidates": candidates_per_image, "ratio": graph.edge_index.shape[1] / max(in_ball, 1),
            "step_s": step_s, "eval_s": eval_s, "epoch_s": epoch_s,
            "run_h": epoch_s * settings["epochs"] / 3600, "epochs": settings["epochs"]}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--groups", default="T2,SO2,RxSO2,SE2", help="comma-separated group names")
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per group")
    parser.add_argument("--eval-batch-size", type=int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--root", default=None,
                        help="a RotMNIST root to take the images from (default: random images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--constant-channels", action="store_true",
                        help="k channels in every block (default: the preset's widening k/ds_frac^(i/2))")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = SETTINGS.resolve(preset=args.preset).flat()
    print(header(__spec__.name, argv, args.device) + ".  ")
    print(f"Preset {args.preset!r}: k={settings['hidden_channels']}, {settings['num_layers']} blocks, "
          f"{'constant width' if args.constant_channels else 'widening k/ds_frac^(i/2)'}, "
          f"nbhd {settings['mc_samples']}, fill {settings['fill']}, total_ds {settings['total_ds']}, "
          f"batch {settings['batch_size']}; epoch = {TRAIN_IMAGES:,} training + {VALID_IMAGES:,} validation images.\n")
    print("| group | lift samples | points per image | observed fills (first / last block) "
          "| block-1 candidate pairs per image | candidates / in ball | train step s "
          "| eval forward s (batch %d) | epoch min | %d epochs h | paper Table 1 error |" % (args.eval_batch_size,
                                                                                   settings["epochs"]))
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for group in args.groups.split(","):
        r = measure(group.strip(), args)
        label, paper = paper_error(r["group"])
        print(f"| {label} | {r['lift']} | {r['points']} | {r['fills'][0]:.3f} / {r['fills'][-1]:.3f} | "
              f"{r['candidates']:,.0f} | {r['ratio']:.2f} | "
              f"{r['step_s']:.2f} | {r['eval_s']:.2f} | {r['epoch_s'] / 60:.1f} | {r['run_h']:,.0f} | "
              f"{'' if paper is None else f'{paper:.2f}%'} |", flush=True)


if __name__ == "__main__":
    main()
