"""RotMNIST seconds per epoch end to end: ``lieconv train rotmnist`` beside the original's training loop.

    python -m benchmarks.rotmnist_end_to_end                         # T2, SO2, RxSO2, SE2; quick; 2 epochs
    python -m benchmarks.rotmnist_end_to_end --presets paper --train-size 200 --epochs 1

Each side of each group runs in a fresh process with one thread, one process at a time, the sides
interleaved (original T2, project T2, original SO2, ...). Both get the same digits: the first
``round(10 N / 12)`` images of ``--root``'s train_valid file for training, the rest for validation (as
the project's dataset splits it; ``--train-size`` / ``--valid-size`` keep the first N of each), the
preset's batch size, model settings (k, blocks, nbhd, fill, total_ds, widening) and the reference
README's alphas and lift samples; the schedule is the preset's (``--epochs`` epochs of it are run).

The project: ``python -m torch_geometric_lieconv.cli train rotmnist --preset P --group G --max-epochs
E --threads 1 --no-test --no-progress --root ROOT --out RUN ...``, exactly as a user runs it. Its
seconds per epoch are the ``cpu_s`` column the trainer writes to ``RUN/metrics.csv``: the process CPU
time of the epoch's training steps (data loading and collation, point sets, forward, backward, Adam,
schedule) and the validation pass after it; not the checkpoint written after each epoch.

The original: its ``ImgLieResnet`` (imported at run time from ``--reference``) behind its RotMNIST
augmentation, trained as ``examples/train_img.py`` with olive-oil-ml's ``Classifier`` trains it, in a
loop written here: ``MnistRotDataset`` items (each image through PIL and normalised by 0.130 / 0.297,
as its ``ToTensor`` + ``Normalize`` transform), a shuffled ``DataLoader`` of the preset's batch size,
``aug=True``: each training batch rotated about the image centre by angles uniform in [0, 2 pi)
(bilinear, zeros outside: its ``RandomRotateTranslate(0)``, a layer in front of the model, inactive
in eval mode), cross-entropy, Adam at the preset's lr, the ``cosLr`` schedule set after every step
(``max(0.5 (1 + cos(pi t / epochs)), 1e-3)`` at fractional epoch t, no warm-up). Its per-epoch
evaluation is, in place of the trainer's time-throttled logging (a training subset and the test set),
the validation digits' accuracy, in eval mode, as the project evaluates after every epoch. Its seconds
per epoch are the process CPU time of the training steps (loading included) and that validation.

The original's network caches the lift and subsampling of its first batch and takes no other batch
size afterwards, so a last partial training batch is skipped (``drop_last``: with 1,333 digits it
trains 53 x 25 = 1,325 per epoch, the project all 1,333) and a partial validation batch is padded with
copies of its last image, whose outputs are not counted (eval mode: every image's output is its own).

The table also gives each process's whole CPU time (``getrusage`` of the child: interpreter start,
imports, data loading, model construction, the epochs and, for the project, its checkpoints and
learning-curve plot) and the validation accuracy after every epoch of both, a check that both learn.
A run that passes ``--timeout`` keeps the epochs it finished.
"""
from __future__ import annotations

import csv
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.harness import (DEFAULT_REFERENCE, ROOT, WorkerError, argument_parser, bfloat16_description,
                                cpu_flags, header, import_reference, reference_group, run_worker, table)

#: the folder of the benchmark digits by default
DEFAULT_ROOT = ROOT.parent / "shared" / "data" / "rotmnist-like-2k"
TRAIN_VALID_FILE = "mnist_all_rotation_normalized_float_train_valid.amat"
TEST_FILE = "mnist_all_rotation_normalized_float_test.amat"
#: the original ``MnistRotDataset``'s normalisation
ORIGINAL_MEAN, ORIGINAL_STD = 0.130, 0.297
#: one thread in every child process
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: the CPU flags the header lists (prefixes)
VECTOR_FLAGS = ("avx", "amx", "fma", "f16c")


# ----------------------------------------------------------------------------------------------- the original
class OriginalDigits(torch.utils.data.Dataset):
    """The digits as the original's ``MnistRotDataset`` hands them out: ``(image [1, 28, 28], label)``,
    each image made a PIL float image and back (its ``ToTensor``), then normalised (its ``Normalize``)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        picture = Image.fromarray(self.images[index])
        image = torch.from_numpy(np.array(picture, np.float32, copy=True)).view(28, 28, 1).permute(2, 0, 1)
        return (image.contiguous() - ORIGINAL_MEAN) / ORIGINAL_STD, self.labels[index]


class RotateBatch(torch.nn.Module):
    """The original's RotMNIST augmentation layer: in training mode, every image of the batch rotated about
    its centre by an angle uniform in [0, 2 pi) (bilinear, zeros outside); the identity in eval mode."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return images
        angles = torch.rand(images.shape[0]) * 2 * math.pi
        cos, sin, zero = angles.cos(), angles.sin(), torch.zeros_like(angles)
        theta = torch.stack([torch.stack([cos, sin, zero], -1), torch.stack([-sin, cos, zero], -1)], 1)
        grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, align_corners=False)


def cosine_factor(epoch: float, epochs: int) -> float:
    """olive-oil-ml's ``cosLr(epochs)`` (one cycle) at fractional epoch ``epoch``: the lr's factor."""
    return max(0.5 * (1 + math.cos(math.pi * epoch / epochs)), 1e-3)


def _write_progress(path: Optional[str], result: Dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(result))


def original_run(spec: Dict[str, Any]) -> Dict[str, Any]:
    """The original's RotMNIST training in this process (one thread): ``spec["epochs"]`` epochs, each timed
    (process CPU seconds of its training and of its validation pass) and evaluated; written to
    ``spec["progress"]`` after every epoch too (a run stopped by a timeout keeps its finished epochs)."""
    torch.set_num_threads(1)
    torch.manual_seed(spec["seed"])
    np.random.seed(spec["seed"])
    reference = import_reference(Path(spec["reference"]))
    if reference is None:
        raise FileNotFoundError(f"no original LieConv code at {spec['reference']}")
    data = np.loadtxt(spec["train_valid"])  # as MnistRotDataset reads the file (any spacing)
    images, labels = data[:, :-1].reshape(-1, 28, 28).astype(np.float32), data[:, -1].astype(np.int64)
    (train_start, train_stop), (valid_start, valid_stop) = spec["train"], spec["valid"]
    train = OriginalDigits(images[train_start:train_stop], labels[train_start:train_stop])
    valid = OriginalDigits(images[valid_start:valid_stop], labels[valid_start:valid_stop])
    batch, model_spec = spec["batch_size"], spec["model"]
    group = reference_group(reference, spec["group_constructor"], spec["alpha"])
    network = reference.layers.ImgLieResnet(chin=1, num_targets=10, group=group, **model_spec)
    model = torch.nn.Sequential(RotateBatch(), network)
    train_loader = torch.utils.data.DataLoader(train, batch_size=batch, shuffle=True, num_workers=0)
    valid_loader = torch.utils.data.DataLoader(valid, batch_size=batch, shuffle=False, num_workers=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    criterion = torch.nn.CrossEntropyLoss()
    steps_per_epoch = len(train_loader)
    result: Dict[str, Any] = {"side": "original", "group": spec["group"], "train_images": 0,
                              "valid_images": len(valid), "epochs": []}
    step = 0
    for epoch in range(spec["epochs"]):
        start = time.process_time()
        model.train()
        losses, seen = 0.0, 0
        for images_, labels_ in train_loader:
            if images_.shape[0] != batch:  # the cached lift takes no other batch size
                continue
            optimizer.zero_grad()
            loss = criterion(model(images_), labels_)
            loss.backward()
            optimizer.step()
            for group_ in optimizer.param_groups:  # the cosLr schedule, set after every step
                group_["lr"] = spec["lr"] * cosine_factor(step / steps_per_epoch, spec["schedule_epochs"])
            step += 1
            losses += float(loss) * batch
            seen += batch
        train_s = time.process_time() - start
        model.eval()
        correct = 0
        with torch.no_grad():
            for images_, labels_ in valid_loader:
                count = images_.shape[0]
                if count != batch:  # padded to the one batch size the network takes; the copies not counted
                    images_ = torch.cat([images_, images_[-1:].expand(batch - count, -1, -1, -1)])
                correct += int((model(images_)[:count].argmax(-1) == labels_).sum())
        model.train()
        epoch_s = time.process_time() - start
        result["train_images"] = seen
        result["epochs"].append({"epoch": epoch + 1, "cpu_s": epoch_s, "train_cpu_s": train_s,
                                 "valid_accuracy": 100.0 * correct / len(valid), "train_loss": losses / seen})
        _write_progress(spec.get("progress"), result)
    return result


# ----------------------------------------------------------------------------------------------- the project
def project_command(spec: Dict[str, Any]) -> List[str]:
    """The ``lieconv train rotmnist`` command line of a project run."""
    command = [sys.executable, "-m", "torch_geometric_lieconv.cli", "train", "rotmnist",
               "--root", spec["root"], "--group", spec["group"], "--preset", spec["preset"],
               "--max-epochs", str(spec["epochs"]), "--threads", "1", "--no-test", "--no-progress",
               "--seed", str(spec["seed"]), "--out", spec["out"]]
    if spec["epochs"] > spec["schedule_epochs"]:
        command += ["--epochs", str(spec["epochs"])]
    for flag in ("train_size", "valid_size"):
        if spec.get(flag) is not None:
            command += [f"--{flag.replace('_', '-')}", str(spec[flag])]
    return command


def read_metrics(run: Path) -> List[Dict[str, float]]:
    """The rows of a project run's ``metrics.csv`` (none when it has not finished an epoch)."""
    path = run / "metrics.csv"
    if not path.is_file():
        return []
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def project_run(spec: Dict[str, Any], timeout: Optional[float]) -> Dict[str, Any]:
    """One ``lieconv train rotmnist`` process; its per-epoch CPU seconds and validation accuracy."""
    run = Path(spec["out"])
    shutil.rmtree(run, ignore_errors=True)
    before, timed_out = children_cpu(), False
    try:
        proc = subprocess.run(project_command(spec), capture_output=True, text=True, timeout=timeout,
                              cwd=ROOT, env={**os.environ, **ONE_THREAD})
        if proc.returncode != 0:
            raise RuntimeError(f"lieconv train rotmnist failed (exit status {proc.returncode}):\n"
                               f"{proc.stderr[-3000:]}")
    except subprocess.TimeoutExpired:
        timed_out = True
    total = children_cpu() - before
    config = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    sizes = config.get("measured", {}).get("split_sizes", {})
    epochs = [{"epoch": int(r["epoch"]), "cpu_s": r["cpu_s"], "valid_accuracy": 100.0 - r["valid_error"],
               "train_loss": r["train_loss"]} for r in read_metrics(run)]
    return {"side": "project", "group": spec["group"], "epochs": epochs,
            "process_cpu_s": None if timed_out else total, "timed_out": timed_out,
            "train_images": sizes.get("train"), "valid_images": sizes.get("valid"),
            "batch_size": config.get("trainer", {}).get("batch_size")}


# ---------------------------------------------------------------------------------------- the comparison
def prepare_root(source: Path, folder: Path) -> Path:
    """A dataset root for the project (``folder/raw`` linking to ``source``'s two ``.amat`` files, directly
    in it or in its ``raw/``), its processed files written once here, before any timing."""
    from torch_geometric_lieconv.datasets import RotMNIST

    raw = source / "raw" if (source / "raw" / TRAIN_VALID_FILE).is_file() else source
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    for name in (TRAIN_VALID_FILE, TEST_FILE):
        if not (raw / name).is_file():
            raise FileNotFoundError(f"{raw / name} is missing")
        (folder / "raw" / name).symlink_to((raw / name).resolve())
    for split in ("train", "valid"):
        RotMNIST(str(folder), split, log=False, download=False)
    return folder


def split_ranges(root: Path, train_size: Optional[int], valid_size: Optional[int]):
    """``((start, stop), (start, stop))``: the rows of the train_valid file that the project trains
    and validates on."""
    from benchmarks.rotmnist import TRAIN_FRACTION
    from torch_geometric_lieconv.datasets import RotMNIST

    rows = len(RotMNIST(str(root), "train", log=False)) + len(RotMNIST(str(root), "valid", log=False))
    num_train = int(round(TRAIN_FRACTION * rows))
    train_stop = num_train if train_size is None else min(train_size, num_train)
    valid_stop = rows if valid_size is None else min(num_train + valid_size, rows)
    return (0, train_stop), (num_train, valid_stop)


def preset_settings(preset: str) -> Dict[str, Any]:
    """The flat settings of a RotMNIST preset."""
    from torch_geometric_lieconv.experiments.rotmnist import SETTINGS

    return SETTINGS.resolve(preset=preset).flat()


def original_model(settings: Dict[str, Any], lifts: int) -> Dict[str, Any]:
    """``ImgLieResnet``'s arguments for a preset's model settings."""
    return {"k": settings["hidden_channels"], "num_layers": settings["num_layers"],
            "nbhd": settings["mc_samples"], "fill": settings["fill"], "total_ds": settings["total_ds"],
            "increase_channels": settings["grow_channels"],
            "liftsamples": settings["lift_samples"] or lifts}


def run_original(spec: Dict[str, Any], timeout: Optional[float]) -> Dict[str, Any]:
    """One original run in its own worker process (one thread); the epochs it finished when it times out."""
    before = children_cpu()
    try:
        result = run_worker("benchmarks.rotmnist_end_to_end:original_run", spec, timeout=timeout,
                            env=ONE_THREAD)
        result["process_cpu_s"], result["timed_out"] = children_cpu() - before, False
    except WorkerError as error:
        if not error.timed_out:
            raise
        progress = Path(spec["progress"])
        result = (json.loads(progress.read_text()) if progress.is_file()
                  else {"epochs": [], "group": spec["group"]})
        result.update(process_cpu_s=None, timed_out=True)
    return result


def _cell(values: Sequence[Optional[float]], fmt: str) -> List[str]:
    return ["-" if v is None else format(v, fmt) for v in values]


def results_table(rows: List[Dict[str, Any]], epochs: int) -> str:
    """The table of one preset: seconds per epoch, ratios, process totals and accuracies."""
    numbers = range(1, epochs + 1)
    head = (["group"] + [f"original s epoch {e}" for e in numbers] + [f"project s epoch {e}" for e in numbers]
            + [f"ratio epoch {e}" for e in numbers]
            + ["original process s", "project process s", "ratio process",
               "original valid acc % per epoch", "project valid acc % per epoch"])
    lines = []
    for row in rows:
        original, project = row["original"], row["project"]

        def per_epoch(result, key):
            found = {e["epoch"]: e[key] for e in result.get("epochs", [])}
            return [found.get(e) for e in numbers]

        o_s, p_s = per_epoch(original, "cpu_s"), per_epoch(project, "cpu_s")
        ratios = [None if o is None or p is None else o / p for o, p in zip(o_s, p_s)]
        o_total, p_total = original.get("process_cpu_s"), project.get("process_cpu_s")
        total_ratio = None if o_total is None or p_total is None else o_total / p_total
        accuracy = [" / ".join(_cell(per_epoch(r, "valid_accuracy"), ".1f")) for r in (original, project)]
        lines.append([row["group"]] + _cell(o_s, ".1f") + _cell(p_s, ".1f") + _cell(ratios, ".2f")
                     + _cell([o_total, p_total], ".1f") + _cell([total_ratio], ".2f") + accuracy)
    return table(head, lines)


def main(argv: Optional[List[str]] = None) -> None:
    from benchmarks.rotmnist import IMAGE_GROUPS

    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--groups", default="T2,SO2,RxSO2,SE2", help="comma-separated: T2, SO2, RxSO2, SE2")
    parser.add_argument("--presets", default="quick", help="comma-separated: quick, paper")
    parser.add_argument("--epochs", type=int, default=2, help="epochs run (of the preset's schedule)")
    parser.add_argument("--train-size", type=int, default=None,
                        help="training digits: the first N (default: all)")
    parser.add_argument("--valid-size", type=int, default=None,
                        help="validation digits: the first N (default: all)")
    parser.add_argument("--root", default=str(DEFAULT_ROOT),
                        help="folder of the two .amat files (or of raw/ with them)")
    parser.add_argument("--reference", default=str(DEFAULT_REFERENCE), help="the original LieConv repository")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per process; a run stopped by it keeps the epochs it finished")
    parser.add_argument("--json", default=None, help="also write every run's results here")
    args = parser.parse_args(argv)
    groups = {g[0]: g for g in IMAGE_GROUPS}
    names = [g.strip() for g in args.groups.split(",") if g.strip()]
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if unknown := [g for g in names if g not in groups]:
        parser.error(f"unknown groups {unknown}; choose from {sorted(groups)}")
    if unknown := [p for p in presets if p not in ("quick", "paper")]:
        parser.error(f"unknown presets {unknown}; choose from quick, paper")
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    reference = Path(args.reference).expanduser().resolve()
    if import_reference(reference) is None:
        parser.error(f"no original LieConv code at {reference}")

    torch.set_num_threads(1)
    print(header(__spec__.name, argv) + "  ")
    flags = cpu_flags()
    vector = "unknown" if flags is None else " ".join(sorted(f for f in flags if f.startswith(VECTOR_FLAGS)))
    print(f"CPU flags (vector and matrix units): {vector}; {bfloat16_description()}\n")
    work = Path(tempfile.mkdtemp(prefix="rotmnist-end-to-end-"))
    all_results: List[Dict[str, Any]] = []
    try:
        root = prepare_root(Path(args.root).expanduser(), work / "root")
        train, valid = split_ranges(root, args.train_size, args.valid_size)
        for preset in presets:
            settings = preset_settings(preset)
            batch = settings["batch_size"]
            rows = []
            for name in names:
                _, constructor, alpha, lifts = groups[name]
                base = {"group": name, "seed": args.seed, "epochs": args.epochs, "batch_size": batch,
                        "schedule_epochs": max(settings["epochs"], args.epochs)}
                original_spec = {**base, "reference": str(reference), "train": train, "valid": valid,
                                 "train_valid": str(root / "raw" / TRAIN_VALID_FILE),
                                 "group_constructor": constructor, "alpha": alpha, "lr": settings["lr"],
                                 "model": original_model(settings, lifts),
                                 "progress": str(work / f"{preset}-{name}-original.json")}
                project_spec = {**base, "preset": preset, "root": str(root),
                                "out": str(work / f"{preset}-{name}"), "train_size": args.train_size,
                                "valid_size": args.valid_size, "schedule_epochs": settings["epochs"]}
                original = run_original(original_spec, args.timeout)
                print(f"  {preset} {name} original: {json.dumps(original)}", file=sys.stderr, flush=True)
                project = project_run(project_spec, args.timeout)
                print(f"  {preset} {name} project: {json.dumps(project)}", file=sys.stderr, flush=True)
                rows.append({"preset": preset, "group": name, "original": original, "project": project})
            all_results += rows
            first = rows[0]
            print(f"**{preset}** preset: k={settings['hidden_channels']} "
                  f"widening={settings['grow_channels']}, "
                  f"{settings['num_layers']} blocks, nbhd {settings['mc_samples']}, fill {settings['fill']}, "
                  f"total_ds {settings['total_ds']}, batch {batch}, lr {settings['lr']} "
                  f"({settings['epochs']}-epoch schedule, {args.epochs} run); training digits: original "
                  f"{first['original'].get('train_images', '?')} per epoch (whole batches), project "
                  f"{first['project'].get('train_images', '?')}; validation digits "
                  f"{first['project'].get('valid_images', '?')}. Seconds: process CPU time, one thread.\n")
            print(results_table(rows, args.epochs) + "\n", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(all_results, indent=1))


if __name__ == "__main__":
    main()
