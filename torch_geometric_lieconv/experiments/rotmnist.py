r"""RotMNIST with LieConv (paper §5.1, Table 1): ``lieconv train|evaluate|check|upgrade rotmnist``.

* ``lieconv train rotmnist --root R --group SE2 [--preset quick] [--epochs E] [--resume]`` trains an
  :class:`~torch_geometric_lieconv.models.image.ImageLieResNet` on the 10k training images (random
  rotation augmentation of the image content on the pixel grid, as the reference's ``aug=True``, for
  the groups that do not already make it exact: see :func:`augmentation`), reports the validation
  error after every epoch, keeps ``checkpoint_best.pt`` by it, and finally prints the test error next to
  the paper's figure for the group.
* ``lieconv evaluate rotmnist --run runs/rotmnist-SE2`` prints the test (or validation) error in
  percent next to the paper's Table 1.
* ``lieconv check rotmnist --run runs/rotmnist-SE2`` prints the accuracy on the test set rotated
  about the image centre by fixed angles (0, 45, 90, 180 degrees by default) and by random angles.
  Rotating the point set is exact (no resampling); 90-degree multiples permute the pixel grid.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.transforms import RandomRotate

from ..datasets.rotmnist import RotMNIST
from ..groups import LieGroup, SE2, SO2, RxSO2, group_from_name
from ..training import move_to
from ..transforms import DEFAULT_CROP_RADIUS, RandomRotateOnGrid
from .common import apply_threads
from .config import EvaluateSettings, RuntimeSettings, Settings, TaskSettings, setting
from .driver import load_trained
from .task import Objective, PreparedData, Task

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
    shared_samples: bool = setting(False, "the images of a batch share their farthest point starts and "
                                          "SE2 lift samples, so every block's geometry is built once per "
                                          "batch (faster; not shown to learn as well: see the guide)")


@dataclass
class ImageDataSettings:
    """The images: crop, augmentation and subsets."""

    crop_radius: float = setting(DEFAULT_CROP_RADIUS, "circular crop in pixels")
    augment: bool = setting(True, "random rotation of the training images (the reference's aug=True): the "
                                  "image content turned on the fixed pixel grid; for groups with the rotations "
                                  "about the image centre (SO2, RxSO2, SE2) the model is exactly invariant to it, "
                                  "so it is not applied; every batch keeps the one grid, lifted and connected once")
    train_size: Optional[int] = setting(None, "training images: the first N (default: all)", old_flag="--train-limit")
    valid_size: Optional[int] = setting(None, "validation images: the first N (default: all)",
                                        old_flag="--valid-limit")
    test_size: Optional[int] = setting(None, "test images of the final evaluation: the first N (default: all)",
                                       old_flag="--test-limit")


@dataclass
class ImageRuntimeSettings(RuntimeSettings):
    """Where and how a RotMNIST run executes; may differ between a run and its resume or evaluation."""

    root: Optional[str] = setting(None, "dataset folder; the .amat files are read from ROOT/raw (required)")
    out: Optional[str] = setting(None, "run folder (default: runs/rotmnist-GROUP[-quick])")


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


#: the planar groups that hold the rotations about the origin, the centre of the pixel grid
ROTATIONS_ABOUT_THE_CENTRE = (SO2, RxSO2, SE2)


def rotation_is_exact(group: LieGroup) -> bool:
    """Whether ``group`` holds the rotations about the image centre, so that a model of it is invariant to
    rotating the point sets (:func:`~torch_geometric_lieconv.transforms.pixel_grid` centres the grid at the
    origin, where SO(2) and RxSO(2) lift about; SE(2) holds every rotation): rotation augmentation is then a
    no-op in distribution (its stabilizer samples and farthest point starts are drawn uniformly either way).

    Args:
        group (LieGroup): the model's group.
    """
    return isinstance(group, ROTATIONS_ABOUT_THE_CENTRE)


def augmentation(settings: Settings):
    """The transform of the training point sets with ``augment``: ``None`` where the group makes rotations
    exact (:func:`rotation_is_exact`), else :class:`~torch_geometric_lieconv.transforms.RandomRotateOnGrid`
    (180 degrees: the image content turned, the points left on the pixel grid, as the reference's
    augmentation does). Either way every batch keeps the one geometry of the grid, which the model
    computes once (:class:`~torch_geometric_lieconv.models.shared_geometry.GeometryCache`).

    Args:
        settings (Settings): the run's settings.
    """
    if not settings.data.augment or rotation_is_exact(group_from_name(settings.model.group, settings.model.alpha)):
        return None
    return RandomRotateOnGrid(180, RotMNIST.image_size, RotMNIST.image_size)


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
    dtype = next(model.parameters()).dtype
    for batch in tqdm(DataLoader(dataset, batch_size=batch_size), desc=desc, leave=False, disable=not progress):
        batch = move_to(batch, device, dtype)
        logits = model(batch.x, batch.pos, batch.batch, num_graphs=batch.num_graphs)
        wrong += int((logits.argmax(dim=-1) != batch.y).sum())
        total += batch.num_graphs
    model.train(was_training)
    if total == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    return 100.0 * wrong / total


def _cross_entropy(model: nn.Module, batch) -> torch.Tensor:
    return F.cross_entropy(model(batch.x, batch.pos, batch.batch, num_graphs=batch.num_graphs), batch.y)


class ClassificationObjective(Objective):
    """Cross-entropy of the digit classes; the validation error (%) picks the best checkpoint.

    Args:
        valid (Sequence, optional): the validation point sets. (default: :obj:`None`)
        batch_size (int, optional): point sets per evaluation batch. (default: :obj:`100`)
        device (torch.device, optional): where to evaluate. (default: the CPU)
        progress (bool, optional): show a progress bar. (default: :obj:`False`)
    """

    def __init__(self, valid=None, batch_size: int = 100, device: Any = "cpu", progress: bool = False) -> None:
        super().__init__("valid_error")
        self.valid, self.batch_size, self.device, self.progress = valid, batch_size, device, progress

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        return _cross_entropy(model, batch)

    def evaluate(self, model: nn.Module) -> Dict[str, float]:
        return {"valid_error": classification_error(model, self.valid, self.batch_size, self.device, self.progress,
                                                    "validation")}


def model_arguments(settings: Settings) -> Tuple[str, Dict[str, Any]]:
    """The image classifier of a run's ``settings`` as (class name, constructor arguments).

    Args:
        settings (Settings): the run's settings.
    """
    return "ImageLieResNet", asdict(settings.model)


@dataclass
class ImageEvaluateSettings(EvaluateSettings):
    """Which trained RotMNIST runs to evaluate, on which images, and where."""

    split: str = setting("test", "the split to evaluate", choices=("test", "valid"))
    root: Optional[str] = setting(None, "dataset folder, the .amat files in ROOT/raw (default: the run's)")


@dataclass
class ImageCheckSettings(ImageEvaluateSettings):
    """Which trained RotMNIST runs to check, at which rotations."""

    angles: List[float] = setting([0.0, 45.0, 90.0, 180.0], "fixed rotation angles in degrees, counter-clockwise")
    random: bool = setting(True, "also a copy rotated by random angles (--no-random: skip)")


def _split_of(settings: Settings, options: EvaluateSettings, transform=None) -> RotMNIST:
    root = options.root or settings.runtime.root
    if root is None:
        raise ValueError("pass --root: the run does not record its dataset folder")
    limit = options.limit if options.limit is not None else getattr(settings.data, f"{options.split}_size")
    return _limit(_load(root, options.split, settings.data.crop_radius, transform, options.download), limit)


def run_check(task: Task, options: ImageCheckSettings) -> int:
    """``lieconv check rotmnist``: the accuracy of each run on its split rotated by fixed and random angles.

    Args:
        task (Task): the RotMNIST task.
        options (ImageCheckSettings): the check's settings.
    """
    apply_threads(options.threads)
    for run in options.run:
        model, settings, _, device = load_trained(task, run, options)
        dataset = _split_of(settings, options)
        label, _ = paper_error(settings.model.group)
        # PyG's RandomRotate(d) turns the points clockwise by d degrees (x right, y up): -angle is counter-clockwise
        rotations = [(f"{angle:g} deg", RandomRotate((-angle, -angle))) for angle in options.angles]
        if options.random:
            rotations.append(("random", RandomRotate(180)))
        seed = settings.trainer.seed if options.seed is None else options.seed
        print(f"{label} ({run}): accuracy on the {options.split} set ({len(dataset)} images) rotated about the "
              f"image centre")
        print(f"{'rotation':>10}  {'accuracy %':>10}  {'error %':>8}")
        for name, rotation in rotations:
            torch.manual_seed(seed)  # the same lift / neighbourhood samples for every angle
            dataset.transform = rotation
            start = time.perf_counter()
            error = classification_error(model, dataset, options.batch_size or 2 * settings.trainer.batch_size,
                                         device, options.progress, name)
            print(f"{name:>10}  {100 - error:>10.2f}  {error:>8.2f}   ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    return 0


class RotMNISTTask(Task):
    """Rotated MNIST classification (the paper's Table 1)."""

    name = "rotmnist"
    settings = SETTINGS
    evaluate_settings = ImageEvaluateSettings
    descriptions = {
        "train": "Train LieConv on RotMNIST (paper §5.1). Settings default to --preset paper (500 epochs, batch 25, "
                 "lr 3e-3, k=128, 6 layers, nbhd 25, fill 0.1, total_ds 0.1).",
        "evaluate": "Test error (%) of trained RotMNIST runs next to the paper's Table 1.",
        "check": "Accuracy of trained RotMNIST runs on the test set rotated about the image centre by fixed angles "
                 "and by random angles (rotations of the point sets).",
    }
    commands = {"check": (ImageCheckSettings, run_check)}

    def run_name(self, settings: Settings) -> str:
        group = re.sub(r"[^A-Za-z0-9]", "", settings.model.group)
        return f"rotmnist-{group}" + ("-quick" if settings.preset == "quick" else "")

    def model_arguments(self, settings: Settings) -> Tuple[str, Dict[str, Any]]:
        return model_arguments(settings)

    def prepare(self, settings: Settings, *, validate: bool = True) -> PreparedData:
        runtime, data = settings.runtime, settings.data
        if runtime.root is None:
            raise ValueError("pass --root, the dataset folder (the .amat files are read from ROOT/raw)")
        augment = augmentation(settings)
        train = _limit(_load(runtime.root, "train", data.crop_radius, augment, runtime.download), data.train_size)
        valid = _limit(_load(runtime.root, "valid", data.crop_radius, None, runtime.download), data.valid_size)
        return PreparedData(train=train, valid=valid if validate else None,
                            measured={"split_sizes": {"train": len(train), "valid": len(valid)}},
                            summary=f"group {settings.model.group}, {len(train)} training images "
                                    f"({'randomly rotated' if augment is not None else 'on the fixed pixel grid'}), "
                                    f"{len(valid)} for validation")

    def objective(self, settings: Settings, data: PreparedData, device: torch.device) -> ClassificationObjective:
        return ClassificationObjective(data.valid, 2 * settings.trainer.batch_size, device, settings.runtime.progress)

    def evaluate(self, run: str, model: nn.Module, settings: Settings, options: EvaluateSettings,
                 device: torch.device, data: Optional[PreparedData] = None) -> Dict[str, Any]:
        dataset = _split_of(settings, options)
        error = classification_error(model, dataset, options.batch_size or 2 * settings.trainer.batch_size, device,
                                     options.progress, options.split)
        label, paper = paper_error(settings.model.group)
        return {"group": settings.model.group, "error_percent": error, "images": len(dataset), "paper_error": paper}

    def format_results(self, rows: List[Dict[str, Any]]) -> str:
        lines = []
        for r in rows:
            label, paper = paper_error(r["group"])
            reference = (f"paper Table 1 ({label}): {paper:.2f}%" if paper is not None
                         else "no Table 1 figure for this group")
            lines.append(f"{label}: {r['split']} error {r['error_percent']:.2f}% on {r['images']} images "
                         f"({r['checkpoint']} checkpoint, epoch {r['epoch']}, {r['run']}); {reference}")
        return "\n".join(lines)


#: the RotMNIST task of the command line (``lieconv train|evaluate|check|upgrade rotmnist``)
TASK = RotMNISTTask()
