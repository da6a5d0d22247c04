"""The RotMNIST application's benchmark pieces: the original ``ImgLieResnet`` beside this project's
``ImageLieResNet`` (step and epoch time), and one learning run on real digits.

Used by ``python -m benchmarks.side_by_side --sections rotmnist``, ``python -m
benchmarks.learning_side_by_side`` and ``python -m benchmarks.rotmnist_epoch_time``; it has no
command of its own.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Callable, Dict

import torch
import torch.nn.functional as F

from benchmarks.harness import (Clock, adam_step, fit, import_reference, interleaved, ratio, reference_group, seconds,
                                table)
from torch_geometric_lieconv.groups import group_from_name
from torch_geometric_lieconv.models import ImageLieResNet
from torch_geometric_lieconv.training.optimisation import adam
from torch_geometric_lieconv.transforms import ImageToPointSet

#: the reference README's RotMNIST groups: (our name, its constructor, alpha, lift samples)
IMAGE_GROUPS = [("T2", "T", None, 1), ("SO2", "SO2", 0.2, 1), ("RxSO2", "RxSO2", 0.3, 1), ("SE2", "SE2", 0.05, 2)]
#: the benchmark's epoch; evaluation in batches of the training size too, since the original's image
#: network caches the lift of its first batch and takes no other batch size afterwards
TRAIN_IMAGES, VALID_IMAGES, TRAIN_BATCH, EVAL_BATCH = 10_000, 2_000, 25, 25


def eval_step(model: torch.nn.Module, forward: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """A no-grad forward of ``model`` in eval mode (back in train mode afterwards)."""

    def step() -> None:
        model.eval()
        with torch.no_grad():
            forward()
        model.train()

    return step


def side_by_side_section(reference, args, clock: Clock, device: torch.device) -> str:
    """The RotMNIST table of ``benchmarks.side_by_side``."""
    k, layers, nbhd = (32, 3, 16) if args.size == "quick" else (128, 6, 25)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(TRAIN_BATCH, 1, 28, 28, generator=gen).to(device)
    eval_images = torch.rand(EVAL_BATCH, 1, 28, 28, generator=gen).to(device)
    labels = torch.randint(0, 10, (TRAIN_BATCH,), generator=gen).to(device)
    to_points = ImageToPointSet(28, 28)
    points, eval_points = to_points.batch(images), to_points.batch(eval_images)
    rows = []
    for name, ref_name, alpha, lifts in IMAGE_GROUPS:
        torch.manual_seed(0)
        ours = ImageLieResNet(name, hidden_channels=k, num_layers=layers, mc_samples=nbhd, fill=0.1, total_ds=0.1,
                              lift_samples=lifts, **({"alpha": alpha} if alpha is not None else {})).to(device)

        def our_logits(data, num_graphs, model=ours):
            return model(data.x, data.pos, data.batch, num_graphs=num_graphs)

        steps = {"project": adam_step(ours, lambda: F.cross_entropy(our_logits(points, TRAIN_BATCH), labels),
                                      optimizer=adam),
                 "project eval": eval_step(ours, lambda: our_logits(eval_points, EVAL_BATCH))}
        if reference is not None:
            theirs = reference.layers.ImgLieResnet(chin=1, total_ds=0.1, num_layers=layers, fill=0.1, k=k, nbhd=nbhd,
                                                   group=reference_group(reference, ref_name, alpha),
                                                   liftsamples=lifts, num_targets=10).to(device)
            steps["original"] = adam_step(theirs, lambda: F.cross_entropy(theirs(images), labels))
            steps["original eval"] = eval_step(theirs, lambda: theirs(eval_images))
        best = interleaved(steps, args.steps, args.warmup, clock)
        epoch = {side: TRAIN_IMAGES / TRAIN_BATCH * best[side] + VALID_IMAGES / EVAL_BATCH * best[f"{side} eval"]
                 for side in ("original", "project") if side in best}
        original = best.get("original")
        rows.append([name, seconds(original), seconds(best["project"]), ratio(original, best["project"]),
                     seconds(epoch.get("original")), seconds(epoch["project"]),
                     ratio(epoch.get("original"), epoch["project"])])
        print(f"  rotmnist {name}: {best}", file=sys.stderr, flush=True)
    return (f"RotMNIST, k={k} widening, {layers} blocks, nbhd {nbhd}, fill 0.1, total_ds 0.1 (s; epoch = "
            f"{TRAIN_IMAGES:,} training images in steps of {TRAIN_BATCH} + {VALID_IMAGES:,} validation images "
            f"in batches of {EVAL_BATCH}):\n\n"
            + table(["group", "original s/step", "project s/step", "speed-up", "original s/epoch",
                     "project s/epoch", "speed-up"], rows))


# ----------------------------------------------------------------------------------------------- learning
TRAIN_FRACTION = 10 / 12  # of the train_valid file, as the dataset class splits it


def load_digits(root: str):
    """``(train_images, train_labels, test_images, test_labels)``, images ``[N, 1, 28, 28]``."""
    from torch_geometric_lieconv.datasets.rotmnist import read_amat

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


def learning_run(spec: Dict) -> Dict:
    """One run of ``benchmarks.learning_side_by_side`` in this process: train ``spec["side"]``'s model
    and return its test error (%)."""
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
                               fill=0.1, total_ds=0.1, lift_samples=lifts,
                               shared_samples=spec["side"] == "project-shared-samples")

        def logits(images: torch.Tensor) -> torch.Tensor:
            data = to_points.batch(images)
            return model(data.x, data.pos, data.batch, num_graphs=images.shape[0])

    def loss_of(index: torch.Tensor, data_order: torch.Generator) -> torch.Tensor:
        angles = (torch.rand(len(index), generator=data_order) * 2 - 1) * math.pi
        return F.cross_entropy(logits(rotate(train_x[index], angles)), train_y[index])

    steps_per_epoch = len(train_y) // TRAIN_BATCH
    train_s = fit(model, loss_of, torch.arange(len(train_y)), TRAIN_BATCH, steps_per_epoch, spec["epochs"],
                  spec["seed"])
    model.eval()
    wrong = 0
    with torch.no_grad():
        for first in range(0, len(test_y) - TRAIN_BATCH + 1, TRAIN_BATCH):  # the original takes one batch size
            out = logits(test_x[first:first + TRAIN_BATCH])
            wrong += int((out.argmax(-1) != test_y[first:first + TRAIN_BATCH]).sum())
    count = (len(test_y) // TRAIN_BATCH) * TRAIN_BATCH
    return {**spec, "test_error": 100.0 * wrong / count, "test_images": count, "train_cpu_s": train_s,
            "steps": spec["epochs"] * steps_per_epoch}
