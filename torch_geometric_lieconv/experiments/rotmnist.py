r"""RotMNIST with LieConv (paper §5.1, Table 1): ``lieconv train|evaluate|check rotmnist``.

* ``lieconv train rotmnist --root R --group SE2 [--preset quick] [--epochs E] [--resume]`` trains an
  :class:`~torch_geometric_lieconv.models.image.ImageLieResNet` on the 10k training images (random
  rotation augmentation of the point sets, as the reference's ``aug=True``), reports the validation
  error after every epoch, keeps ``checkpoint_best.pt`` by it, and finally prints the test error next to
  the paper's figure for the group.
* ``lieconv evaluate rotmnist --root R --checkpoint runs/rotmnist/SE2/checkpoint_best.pt`` prints the
  test (or validation) error in percent next to the paper's Table 1.
* ``lieconv check rotmnist --root R --checkpoint ...`` prints the accuracy on the test set rotated
  about the image centre by fixed angles (0, 45, 90, 180 degrees by default) and by random angles.
  Rotating the point set is exact (no resampling); 90-degree multiples permute the pixel grid.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.transforms import RandomRotate

from ..datasets.rotmnist import RotMNIST
from ..groups import group_from_name
from ..models.image import ImageLieResNet
from ..runs import default_run_folder, refuse_early, run_folder, write_json
from ..training import RUNTIME_KEYS, Trainer, load_checkpoint, seed_everything
from ..transforms import DEFAULT_CROP_RADIUS
from .common import (add_threads_option, apply_threads, build_model, configure_upgrade, trained_model,
                     upgrade_command)
from .config import (RuntimeSettings, Settings, TaskSettings, add_setting_flags, flag_values, setting,
                     trainer_arguments)

#: the paper's Table 1: LieConv test error (%) on RotMNIST, by group class name (planar groups only)
PAPER_TEST_ERROR = {"Trivial": 1.58, "Ty": 1.49, "T": 1.44, "SO2": 1.42, "RxSO2": 1.27, "SE2": 1.24}
#: how Table 1 names the groups (the paper's T(1)_y is our Ty: translations along the image's vertical)
PAPER_GROUP_LABEL = {"Trivial": "Trivial", "Ty": "T(1)y", "T": "T(2)", "SO2": "SO(2)", "RxSO2": "RxSO(2)",
                     "SE2": "SE(2)"}

#: ``paper``: the reference command line of the RotMNIST runs (the fields' defaults); ``quick``: a small
#: CPU-friendly run
PRESETS: Dict[str, Dict[str, Any]] = {
    "paper": {},
    "quick": dict(epochs=5, hidden_channels=32, num_layers=3, mc_samples=16),
}


@dataclass
class ImageModelSettings:
    """The image classifier (:class:`~torch_geometric_lieconv.models.ImageLieResNet`)."""

    group: str = setting("SE2", "Trivial2, Ty, T2, SO2, RxSO2, SE2, ...")
    alpha: Optional[float] = setting(None, "the group's weight of the orbit distance (default: the group's)")
    hidden_channels: int = setting(128, "channels k of the first block")
    num_layers: int = setting(6, "bottleneck blocks")
    mc_samples: int = setting(25, "Monte Carlo neighbours (nbhd)")
    fill: float = setting(0.1, "first-layer fill")
    total_ds: float = setting(0.1, "fraction of the points left after the last block")
    grow_channels: bool = setting(True, "widen the blocks as the points thin out, k/ds_frac^(i/2) (the "
                                        "paper's); --no-grow-channels keeps k channels in every block")
    lift_samples: Optional[int] = setting(None, "lift samples (default: 2 for SE2, else 1)")
    continuous_kernel: bool = setting(False, "kernels of the matrix v^-1 u instead of its log "
                                             "(no jump at the angle cut)")


@dataclass
class ImageDataSettings:
    """The images: crop, augmentation and subsets."""

    crop_radius: float = setting(DEFAULT_CROP_RADIUS, "circular crop in pixels")
    augment: bool = setting(True, "random rotation of the training point sets (the reference's aug=True)")
    train_limit: Optional[int] = setting(None, "use only the first N training images")
    valid_limit: Optional[int] = setting(None, "use only the first N validation images")
    test_limit: Optional[int] = setting(None, "use only the first N test images at the end")


@dataclass
class ImageRuntimeSettings(RuntimeSettings):
    """Where and how a RotMNIST run executes; may differ between a run and its resume or evaluation."""

    root: Optional[str] = setting(None, "dataset folder; the .amat files are read from ROOT/raw (required)")
    out: Optional[str] = setting(None, "run folder (default: runs/rotmnist/GROUP-PRESET)")
    eval_batch_size: int = setting(100, "batch size of the evaluations")
    test: bool = setting(True, "evaluate the best checkpoint on the test set at the end (--no-test: skip)")


def _finish(settings: Settings) -> None:
    group_from_name(settings.model.group, settings.model.alpha)  # a clear error for a bad name before any work


#: RotMNIST's settings (:mod:`..experiments.config`): the paper's by default, ``--preset quick`` for a CPU
SETTINGS = TaskSettings("rotmnist", ImageModelSettings, ImageDataSettings, runtime=ImageRuntimeSettings,
                        presets=lambda preset, chosen: {"batch_size": 25, **PRESETS[preset]}, finish=_finish,
                        trainer_choices={"precision": ("float32", "float64")},
                        old_defaults={"grow_channels": False})  # runs from before the widening option


def paper_error(group_name: str) -> Tuple[str, Optional[float]]:
    """Table 1's label and test error (%) for a group name (``None`` when the paper has no figure).

    Args:
        group_name (str): the group's name.
    """
    group = group_from_name(group_name)
    key = type(group).__name__
    if getattr(group, "space_dim", 2) != 2 or key not in PAPER_TEST_ERROR:
        return str(group), None
    return PAPER_GROUP_LABEL[key], PAPER_TEST_ERROR[key]


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _limit(dataset: RotMNIST, limit: Optional[int]) -> RotMNIST:
    if limit is None:
        return dataset
    if limit < 1:
        raise ValueError(f"a limit on the number of images must be >= 1, got {limit}")
    return dataset[: min(int(limit), len(dataset))]


def _load(root: str, split: str, crop_radius: Optional[float], transform=None, download: bool = True) -> RotMNIST:
    raw = os.path.join(root, "raw")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"--root {root} does not exist; create it (the .amat files go in {raw}, "
                                f"or they are downloaded there)")
    return RotMNIST(root, split, crop_radius=crop_radius, transform=transform, download=download)


@torch.no_grad()
def classification_error(model: nn.Module, dataset, batch_size: int = 100, device: Any = "cpu",
                         progress: bool = False, desc: str = "evaluating") -> float:
    """Error (%) of ``model`` (point-set classifier ``model(x, pos, batch, num_graphs=...)``) on ``dataset``.

    Args:
        model (torch.nn.Module): a point-set classifier ``model(x, pos, batch, num_graphs=...)``.
        dataset (Sequence): the point sets.
        batch_size (int, optional): point sets per batch. (default: :obj:`100`)
        device (Any, optional): where to evaluate. (default: :obj:`"cpu"`)
        progress (bool, optional): show a progress bar. (default: :obj:`False`)
        desc (str, optional): the bar's label. (default: :obj:`"evaluating"`)
    """
    from torch_geometric.loader import DataLoader
    from tqdm import tqdm

    was_training = model.training
    model.eval()
    wrong = total = 0
    for batch in tqdm(DataLoader(dataset, batch_size=batch_size), desc=desc, leave=False, disable=not progress):
        batch = batch.to(device)
        logits = model(batch.x, batch.pos, batch.batch, num_graphs=batch.num_graphs)
        wrong += int((logits.argmax(dim=-1) != batch.y).sum())
        total += batch.num_graphs
    model.train(was_training)
    if total == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    return 100.0 * wrong / total


def _cross_entropy(model: nn.Module, batch) -> torch.Tensor:
    return F.cross_entropy(model(batch.x, batch.pos, batch.batch, num_graphs=batch.num_graphs), batch.y)


def _report_line(group_name: str, split: str, error: float, count: int) -> str:
    label, paper = paper_error(group_name)
    reference = f"paper Table 1 ({label}): {paper:.2f}%" if paper is not None else "no Table 1 figure for this group"
    return f"{label}: {split} error {error:.2f}% on {count} images; {reference}"


def model_arguments(settings: Settings) -> Tuple[str, Dict[str, Any]]:
    """The image classifier of a run's ``settings`` as (class name, constructor arguments).

    Args:
        settings (Settings): the run's settings.
    """
    return "ImageLieResNet", dataclasses.asdict(settings.model)


def load_trained(checkpoint: str, device: Any = "cpu") -> Tuple[ImageLieResNet, Settings]:
    """The model stored in a ``lieconv train rotmnist`` checkpoint, and the run's settings.

    Args:
        checkpoint (str): a checkpoint file of ``lieconv train rotmnist``.
        device (Any, optional): where to put the model. (default: :obj:`"cpu"`)
    """
    state = load_checkpoint(checkpoint, map_location=device)
    if state.get("config", {}).get("task") != "rotmnist":
        raise ValueError(f"{checkpoint} is not a checkpoint of 'lieconv train rotmnist'")
    model = trained_model(state, checkpoint, SETTINGS, model_arguments).to(device)
    return model, SETTINGS.from_saved(state["config"])


def configure_train(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Train LieConv on RotMNIST (paper §5.1). Settings default to --preset paper "
                          "(500 epochs, batch 25, lr 3e-3, k=128, 6 layers, nbhd 25, fill 0.1, total_ds 0.1).")
    add_setting_flags(parser, SETTINGS)


def run_train(args: argparse.Namespace) -> int:
    settings = SETTINGS.resolve(config_file=args.config, flags=flag_values(args, SETTINGS))
    runtime, data, trainer_settings = settings.runtime, settings.data, settings.trainer
    if runtime.root is None:
        raise ValueError("pass --root, the dataset folder (the .amat files are read from ROOT/raw)")
    apply_threads(runtime.threads)
    device = runtime.device or _default_device()
    seed_everything(trainer_settings.seed)  # the initial weights
    model = build_model(*model_arguments(settings))
    augment = RandomRotate(180) if data.augment else None
    train = _limit(_load(runtime.root, "train", data.crop_radius, transform=augment, download=runtime.download),
                   data.train_limit)
    valid = _limit(_load(runtime.root, "valid", data.crop_radius, download=runtime.download), data.valid_limit)
    group = settings.model.group
    out = runtime.out or default_run_folder(
        os.path.join("runs", "rotmnist", f"{re.sub(r'[^A-Za-z0-9]', '', group)}-{settings.preset}"), runtime.resume)
    runtime.root = os.path.abspath(runtime.root)
    settings.measured.update(train_size=len(train), valid_size=len(valid))
    saved = settings.saved()

    def evaluate(trained: nn.Module) -> Dict[str, float]:
        return {"valid_error": classification_error(trained, valid, runtime.eval_batch_size, device,
                                                    runtime.progress, "validation")}

    trainer = Trainer(model, train, **trainer_arguments(trainer_settings), loss_fn=_cross_entropy, out_dir=out,
                      evaluate_fn=evaluate, monitor="valid_error", device=device, config=saved,
                      num_workers=runtime.num_workers, progress=runtime.progress)
    print(f"training {model} on {len(train)} images ({len(valid)} for validation), {trainer.steps_per_epoch} "
          f"steps per epoch, on {trainer.device}; output in {out}", flush=True)
    with run_folder(out):  # refused while another run writes to it
        refuse_early(out, runtime.resume, saved, RUNTIME_KEYS)
        write_json(os.path.join(out, "config.json"), saved)
        trainer.fit(resume=runtime.resume, max_epochs=runtime.max_epochs)
        if not runtime.test or trainer.epoch < trainer.epochs:
            return 0
        best, _ = load_trained(trainer.best_path, trainer.device)
        test = _limit(_load(runtime.root, "test", data.crop_radius, download=runtime.download), data.test_limit)
        error = classification_error(best, test, runtime.eval_batch_size, trainer.device, runtime.progress, "test")
        _write_results(out, "test", error, len(test), group, trainer.best["epoch"])
    print(_report_line(group, "test", error, len(test)) + f" (best epoch {trainer.best['epoch']})")
    return 0


def _write_results(run: str, split: str, error: float, count: int, group: str, epoch: Any) -> None:
    """``RUN/results_SPLIT.json``: the error next to the paper's Table 1 figure."""
    label, paper = paper_error(group)
    write_json(os.path.join(run, f"results_{split}.json"), {"split": split, "error_percent": error, "images": count,
                                                            "group": label, "epoch": epoch, "paper_error": paper})


# ----------------------------------------------------------------------------------------------- evaluate
def _configure_trained(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, help="dataset folder; the .amat files are read from ROOT/raw")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", dest="run_dir", default=None,
                       help="a run folder of 'lieconv train rotmnist' (its best checkpoint)")
    which.add_argument("--checkpoint", default=None, help="a checkpoint file of 'lieconv train rotmnist'")
    parser.add_argument("--split", choices=("test", "valid"), default="test")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random lift / neighbourhood samples")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    add_threads_option(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-download", dest="download", action="store_false",
                        help="never download: fail clearly when ROOT/raw lacks the .amat files")


def configure_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.description = "Test error (%) of a trained RotMNIST model next to the paper's Table 1."
    _configure_trained(parser)


def _apply_runtime_options(args: argparse.Namespace) -> str:
    """Set the thread count; return the device."""
    apply_threads(args.threads)
    return args.device or _default_device()


def _checkpoint_of(args: argparse.Namespace) -> str:
    return args.checkpoint or os.path.join(args.run_dir, "checkpoint_best.pt")


def run_evaluate(args: argparse.Namespace) -> int:
    device = _apply_runtime_options(args)
    model, settings = load_trained(_checkpoint_of(args), device)
    seed_everything(args.seed)
    dataset = _limit(_load(args.root, args.split, settings.data.crop_radius, download=args.download), args.limit)
    error = classification_error(model, dataset, args.batch_size, device, not args.no_progress, args.split)
    if args.run_dir:
        _write_results(args.run_dir, args.split, error, len(dataset), settings.model.group, "best")
    print(_report_line(settings.model.group, args.split, error, len(dataset)))
    return 0


# ----------------------------------------------------------------------------------------------- check
def configure_check(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Accuracy of a trained RotMNIST model on the test set rotated about the image centre "
                          "by fixed angles and by random angles (rotations of the point sets).")
    _configure_trained(parser)
    parser.add_argument("--angles", type=float, nargs="+", default=[0.0, 45.0, 90.0, 180.0],
                        help="fixed rotation angles in degrees, counter-clockwise (default: 0 45 90 180)")
    parser.add_argument("--no-random", action="store_true", help="skip the randomly rotated copy")


def run_check(args: argparse.Namespace) -> int:
    device = _apply_runtime_options(args)
    model, settings = load_trained(_checkpoint_of(args), device)
    dataset = _limit(_load(args.root, args.split, settings.data.crop_radius, download=args.download), args.limit)
    label, _ = paper_error(settings.model.group)
    # PyG's RandomRotate(d) turns the points clockwise by d degrees (x right, y up): -angle is counter-clockwise
    rotations = [(f"{angle:g} deg", RandomRotate((-angle, -angle))) for angle in args.angles]
    if not args.no_random:
        rotations.append(("random", RandomRotate(180)))
    print(f"{label}: accuracy on the {args.split} set ({len(dataset)} images) rotated about the image centre")
    print(f"{'rotation':>10}  {'accuracy %':>10}  {'error %':>8}")
    for name, rotation in rotations:
        seed_everything(args.seed)  # the same lift / neighbourhood samples for every angle
        dataset.transform = rotation
        start = time.perf_counter()
        error = classification_error(model, dataset, args.batch_size, device, not args.no_progress, name)
        print(f"{name:>10}  {100 - error:>10.2f}  {error:>8.2f}   ({time.perf_counter() - start:.0f} s)", flush=True)
    return 0


#: ``lieconv upgrade rotmnist`` (``configure_upgrade`` comes from :mod:`.common`)
run_upgrade = upgrade_command(SETTINGS, model_arguments)
