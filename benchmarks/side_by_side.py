"""The original LieConv code and this project side by side: same inputs, same steps, one table per application.

    python benchmarks/side_by_side.py                                  # every section, quick sizes
    python benchmarks/side_by_side.py --sections qm9 --size paper      # the paper's k=1536
    python benchmarks/side_by_side.py --reference /path/to/LieConv     # default ../shared/reference/LieConv

The original (the authors' repository) is imported at run time from ``--reference``; nothing of it is
copied. Its models get the inputs this project's pipeline makes (padded tensors of the same molecules,
images, spring systems). Where it is absent, the script says so and prints the project's columns only.
The original's trainers need packages that are not dependencies here (olive-oil-ml, h5py,
torchvision): the two modules the Hamiltonian model imports them from get inert stand-ins.

Timing: one process, one intra-op thread (``--threads``), process CPU time of each training step
(forward, backward, Adam; on CUDA the wall time after a synchronize). The columns' steps are
interleaved -- each round runs every column once, the order reversed every other round -- after the
same warm-up steps (the adaptive ball radii of both codes move to their fills there); the tables give
the minimum over rounds. The layer section runs each size in a fresh process to read its peak memory.

Sections:

* ``qm9``: T(3) (6 blocks, nbhd 100, fill 1) and SE(3) (4 lifts, nbhd 25, fill 1/2, alpha 0.2) on 75
  QM9-sized molecules, L1 loss; the original in float32, the project in float32 and under bfloat16
  autocast. ``--size quick``: k=128, 3 blocks (nbhd 32 for T(3)); ``paper``: k=1536, 6 blocks. Every
  step takes a new batch (the same sequence in every column), and the bfloat16 column runs in a fresh
  process after the float32 columns: with one repeated batch, or after float32 steps in the same
  process, oneDNN's bfloat16 timings are not those of a training run.
* ``rotmnist``: ``ImgLieResnet`` against ``ImageLieResNet`` for T(2), SO(2), RxSO(2), SE(2) (the
  reference README's alphas, 2 lifts for SE(2)), batch 25 of 28 x 28 images, cross-entropy; s/step
  and the epoch of the benchmark (10,000 training images in steps of 25 and 2,000 validation images
  in forward passes of 25). ``quick``: k=32, 3 blocks, nbhd 16; ``paper``: k=128, 6 blocks, nbhd 25.
* ``springs``: ``HLieResNet`` against ``HamiltonianLieConv`` for T(2), SO(2), SE(2), centred, on 50
  six-particle spring systems, the MSE of a 5-step RK4 rollout. ``quick``: k=64, 2 layers; ``paper``:
  k=384, 4 layers.
* ``layer``: one T(3) LieConv (32 -> 32 channels, 32 samples, a ball of ~48 points at unit density) on
  1e3 to 1e5 uniform points, forward + backward: microseconds per point and peak memory.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch_geometric.utils import to_dense_batch

from benchmark import (Meter, layer_radius, load_average, machine_description, qm9_like_batch, table,
                       uniform_cloud)  # benchmarks/ is the script's folder

from torch_geometric_lieconv import LieConv, lift_graph
from torch_geometric_lieconv.dynamics import rollout
from torch_geometric_lieconv.groups import group_from_name
from torch_geometric_lieconv.models import HamiltonianLieConv, ImageLieResNet, QM9LieConv
from torch_geometric_lieconv.models.qm9 import atom_features
from torch_geometric_lieconv.datasets.springs import SpringSystem, generate_systems
from torch_geometric_lieconv.transforms import ImageToPointSet

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference" / "LieConv"
SECTIONS = ("qm9", "rotmnist", "springs", "layer")
#: the reference README's RotMNIST groups: (our name, its constructor, alpha, lift samples)
IMAGE_GROUPS = [("T2", "T", None, 1), ("SO2", "SO2", 0.2, 1), ("RxSO2", "RxSO2", 0.3, 1), ("SE2", "SE2", 0.05, 2)]
SPRING_GROUPS = [("T2", "T", None), ("SO2", "SO2", 0.2), ("SE2", "SE2", 0.05)]  # the project's alphas
#: the benchmark's epoch; evaluation in batches of the training size too, since the original's image
#: network caches the lift of its first batch and takes no other batch size afterwards
TRAIN_IMAGES, VALID_IMAGES, TRAIN_BATCH, EVAL_BATCH = 10_000, 2_000, 25, 25


# ----------------------------------------------------------------------------------------------- the original
def import_reference(path: Optional[Path]) -> Optional[types.SimpleNamespace]:
    """The original's modules, imported from ``path`` (``None`` when it is not there)."""
    if path is None or not (path / "lie_conv" / "lieConv.py").is_file():
        return None
    sys.path.insert(0, str(path))
    # inert stand-ins for the two imports of packages that are not dependencies here (its trainers and
    # datasets); the models used below never call them
    for name in ("oil", "oil.utils", "oil.utils.utils", "oil.model_trainers"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["oil.utils.utils"].Eval = contextlib.nullcontext
    sys.modules["oil.model_trainers"].Trainer = object
    datasets = types.ModuleType("lie_conv.datasets")
    datasets.SO3aug = datasets.SE3aug = torch.nn.Identity
    sys.modules.setdefault("lie_conv.datasets", datasets)
    import lie_conv.lieConv as lie_conv_layers
    import lie_conv.lieGroups as lie_groups
    from lie_conv.dynamicsTrainer import HLieResNet

    return types.SimpleNamespace(layers=lie_conv_layers, groups=lie_groups, HLieResNet=HLieResNet)


def reference_group(reference, name: str, alpha: Optional[float], dim: int = 2):
    cls = getattr(reference.groups, name)
    return cls(dim) if name == "T" else cls(alpha)


# ----------------------------------------------------------------------------------------------- timing
class Clock:
    """Process CPU time on the CPU; wall time after a synchronize on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __call__(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return time.perf_counter()
        return time.process_time()


def interleaved(steps: Dict[str, Callable[[], None]], rounds: int, warmup: int, clock: Clock) -> Dict[str, float]:
    """Minimum seconds per call of each step, the calls of a round interleaved (order reversed every
    other round), after ``warmup`` calls of each."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    best = {name: math.inf for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = clock()
            steps[name]()
            best[name] = min(best[name], clock() - start)
    return best


def adam_step(model: torch.nn.Module, loss_of: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """A training step of ``model``: the loss, its gradients, one Adam update."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_of().backward()
        optimizer.step()

    return step


def ratio(reference: Optional[float], ours: float) -> str:
    return "-" if reference is None else f"{reference / ours:.2f}x"


def seconds(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


# ----------------------------------------------------------------------------------------------- QM9
#: the QM9 models: (group, lift samples, nbhd at the quick size, nbhd at the paper's, fill)
QM9_MODELS = [("T3", 1, 32, 100, 1.0), ("SE3", 4, 25, 25, 0.5)]
#: (k, blocks) of the QM9 network at each ``--size``
QM9_SIZES = {"quick": (128, 3), "paper": (1536, 6)}


def qm9_batches(count: int, device: torch.device) -> List[tuple]:
    """``count`` different batches of 75 QM9-sized molecules, each as the project's ``(z, pos, batch)``
    and the original's padded ``(positions, features, mask)``, with a target per molecule. Every step
    takes the next one, as training does: repeating one batch would let oneDNN reuse the kernels it set up
    for its shapes, which flatters bfloat16 (1.3x slower with new batches at k=128, faster with one)."""
    batches = []
    for seed in range(count):
        z, pos, batch = (t.to(device) for t in qm9_like_batch(75, seed=seed))
        features = atom_features(z)
        dense_pos, mask = to_dense_batch(pos, batch)
        dense_features, _ = to_dense_batch(features, batch)
        target = torch.randn(75, generator=torch.Generator().manual_seed(seed)).to(device)
        batches.append(((z, pos, batch), (dense_pos, dense_features, mask), target))
    return batches


def qm9_steps(reference, name: str, columns: List[str], args, device: torch.device) -> Dict[str, Callable[[], None]]:
    """The training steps of the chosen ``columns`` (``"original fp32"``, ``"project fp32"``,
    ``"project bf16"``) for one QM9 model; each column walks the same sequence of batches."""
    k, layers = QM9_SIZES[args.size]
    _, lifts, quick_nbhd, paper_nbhd, fill = next(m for m in QM9_MODELS if m[0] == name)
    nbhd = quick_nbhd if args.size == "quick" else paper_nbhd
    batches = qm9_batches(args.warmup + args.steps, device)
    steps = {}
    for column in columns:
        torch.manual_seed(0)
        if column == "original fp32":
            group = reference.groups.T(3) if name == "T3" else reference.groups.SE3(0.2)
            model = reference.layers.LieResNet(chin=batches[0][1][1].shape[-1], num_outputs=1, k=k, nbhd=nbhd,
                                               num_layers=layers, fill=fill, liftsamples=lifts, group=group, bn=True,
                                               mean=True, ds_frac=1).to(device).train()
            forward = lambda model, item: model(item[1])  # noqa: E731
        else:
            model = QM9LieConv(group_from_name(name, 0.2 if name == "SE3" else None), hidden_channels=k,
                               num_layers=layers, mc_samples=nbhd, fill=fill, lift_samples=lifts).to(device).train()
            forward = lambda model, item: model(*item[0])  # noqa: E731
        autocast = column.endswith("bf16")
        order = itertools.count()

        def loss(model=model, forward=forward, autocast=autocast, order=order):
            item = batches[next(order) % len(batches)]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                out = forward(model, item).squeeze(-1).float()
            return (out - item[2]).abs().mean()

        steps[column] = adam_step(model, loss)
    return steps


def qm9_worker(spec: dict) -> Dict[str, float]:
    """The bfloat16 column in its own process (after float32 steps in the same process, oneDNN's
    bfloat16 kernels run slower than in a process of their own: the process a run would be)."""
    torch.set_num_threads(spec["threads"])
    args = argparse.Namespace(**spec["args"])
    device = torch.device(args.device)
    steps = qm9_steps(None, spec["name"], ["project bf16"], args, device)
    return interleaved(steps, args.steps, args.warmup, Clock(device))


def qm9_section(reference, args, clock: Clock, device: torch.device) -> str:
    k, layers = QM9_SIZES[args.size]
    rows = []
    for name, lifts, quick_nbhd, paper_nbhd, fill in QM9_MODELS:
        nbhd = quick_nbhd if args.size == "quick" else paper_nbhd
        columns = (["original fp32"] if reference is not None else []) + ["project fp32"]
        best = interleaved(qm9_steps(reference, name, columns, args, device), args.steps, args.warmup, clock)
        spec = {"kind": "qm9", "name": name, "threads": args.threads,
                "args": {key: getattr(args, key) for key in ("size", "steps", "warmup", "device")}}
        best.update(run_worker(spec, args.timeout))
        original = best.get("original fp32")
        rows.append([f"{name}, {lifts} lift(s), nbhd {nbhd}, fill {fill:g}", seconds(original),
                     seconds(best["project fp32"]), ratio(original, best["project fp32"]),
                     seconds(best["project bf16"]), ratio(original, best["project bf16"]),
                     ratio(best["project fp32"], best["project bf16"])])
        print(f"  qm9 {name}: {best}", file=sys.stderr, flush=True)
    return (f"QM9, k={k}, {layers} blocks, 75 QM9-sized molecules (a new batch every step, the same sequence "
            f"for every column; bf16 in a process of its own), training step (s):\n\n"
            + table(["model", "original fp32", "project fp32", "speed-up", "project bf16", "speed-up",
                     "bf16 / fp32"], rows))


# ----------------------------------------------------------------------------------------------- RotMNIST
def rotmnist_section(reference, args, clock: Clock, device: torch.device) -> str:
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

        steps = {"project": adam_step(ours, lambda: F.cross_entropy(our_logits(points, TRAIN_BATCH), labels)),
                 "project eval": _eval_step(ours, lambda: our_logits(eval_points, EVAL_BATCH))}
        if reference is not None:
            theirs = reference.layers.ImgLieResnet(chin=1, total_ds=0.1, num_layers=layers, fill=0.1, k=k, nbhd=nbhd,
                                                   group=reference_group(reference, ref_name, alpha),
                                                   liftsamples=lifts, num_targets=10).to(device)
            steps["original"] = adam_step(theirs, lambda: F.cross_entropy(theirs(images), labels))
            steps["original eval"] = _eval_step(theirs, lambda: theirs(eval_images))
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


def _eval_step(model: torch.nn.Module, forward: Callable[[], torch.Tensor]) -> Callable[[], None]:
    def step() -> None:
        model.eval()
        with torch.no_grad():
            forward()
        model.train()

    return step


# ----------------------------------------------------------------------------------------------- springs
def springs_section(reference, args, clock: Clock, device: torch.device) -> str:
    k, layers = (64, 2) if args.size == "quick" else (384, 4)
    systems, n, d = 50, 6, 2
    traj, params, t = generate_systems(SpringSystem(), systems, traj_len=5, dt=0.01, seed=0)
    traj, params, t = traj.float().to(device), params.float().to(device), t.float().to(device)
    batch = torch.arange(systems, device=device).repeat_interleave(n)
    z0 = traj[:, 0]
    # the original's layout: one row per system, positions then momenta flattened
    flat = traj.view(systems, n, 5, 2 * d)
    flat_z = torch.cat([flat[..., :d].permute(0, 2, 1, 3).reshape(systems, 5, n * d),
                        flat[..., d:].permute(0, 2, 1, 3).reshape(systems, 5, n * d)], dim=-1)
    sys_params = params.view(systems, n, -1)
    rows = []
    for name, ref_name, alpha in SPRING_GROUPS:
        torch.manual_seed(0)
        ours = HamiltonianLieConv(2, group_from_name(name, alpha), hidden_channels=k, num_layers=layers).to(device)
        steps = {"project": adam_step(ours, lambda: (rollout(lambda _, z: ours(_, z, params, batch, systems), z0, t)
                                                     - traj).pow(2).mean())}
        if reference is not None:
            from torchdiffeq import odeint

            theirs = reference.HLieResNet(d=2, sys_dim=2, k=k, num_layers=layers,
                                          group=reference_group(reference, ref_name, alpha)).to(device)
            steps["original"] = adam_step(theirs, lambda: (
                odeint(lambda _, z: theirs(_, z, sys_params), flat_z[:, 0], t, method="rk4").transpose(0, 1)
                - flat_z).pow(2).mean())
        best = interleaved(steps, args.steps, args.warmup, clock)
        original = best.get("original")
        rows.append([name, seconds(original), seconds(best["project"]), ratio(original, best["project"])])
        print(f"  springs {name}: {best}", file=sys.stderr, flush=True)
    return (f"Springs, k={k}, {layers} layers, {systems} systems of {n} particles, 5-step RK4 rollout, "
            f"training step (s):\n\n" + table(["group", "original", "project", "speed-up"], rows))


# ----------------------------------------------------------------------------------------------- one layer
def layer_worker(spec: dict) -> dict:
    """One layer at one size in this (fresh) process: CPU s per fwd+bwd and peak memory of the step."""
    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    meter = Meter(device, "wall" if device.type == "cuda" else "cpu")
    n, width = spec["points"], 32
    pos = uniform_cloud(n).to(device)
    x = torch.randn(n, width, device=device, requires_grad=True)
    radius = layer_radius()
    if spec["side"] == "project":
        graph = lift_graph("T3", pos, radius=radius)
        conv = LieConv(width, width, "T3", mc_samples=32, fill=0.5).to(device)
        conv.radius.fill_(radius)
        conv.eval()  # the ball stays at the radius of ~48 points

        def step() -> None:
            conv(x[graph.node_index], graph.edge_index, graph.edge_attr,
                 candidate_radius=graph.candidate_radius).sum().backward()
    else:
        reference = import_reference(Path(spec["reference"]))
        conv = reference.layers.LieConv(width, width, mc_samples=32, group=reference.groups.T(3), fill=0.5,
                                        xyz_dim=3).to(device)
        conv.r.fill_(radius)
        conv.eval()
        lifted = reference.groups.T(3).lift((pos[None], x[None], torch.ones(1, n, dtype=torch.bool,
                                                                            device=device)), 1)

        def step() -> None:
            conv(lifted)[1].sum().backward()

    meter.memory_mode()
    memory = meter.memory(step)  # the first call: one-off buffers count
    meter.timing_mode()
    return {"seconds": meter.time(step, reps=2), "peak_mb": memory["peak_mb"]}


def run_worker(spec: dict, timeout: float) -> dict:
    """Run ``spec`` in a fresh process of this script; its JSON result."""
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec.get('kind')} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def layer_section(reference_path: Optional[Path], args) -> str:
    rows = []
    for n in args.layer_points:
        cells = [f"{n:,}"]
        for side in ("original", "project"):
            if side == "original" and reference_path is None:
                cells += ["-", "-"]
                continue
            need_gb = 3 * n * n * 4 / 2**30  # its dense N x N distances and masks, at the least
            if side == "original" and need_gb > args.max_dense_gb:
                cells += [f"(skipped: dense pairs need > {need_gb:,.0f} GB)", "-"]
                continue
            spec = {"kind": "layer", "side": side, "points": n, "threads": args.threads, "device": args.device,
                    "reference": str(reference_path)}
            try:
                result = run_worker(spec, args.timeout)
            except RuntimeError as error:
                cells += [f"(failed: {str(error).strip().splitlines()[-1][:60]})", "-"]
                continue
            cells += [f"{1e6 * result['seconds'] / n:.1f}", f"{result['peak_mb']:,.0f}"]
        rows.append(cells)
        print(f"  layer {n}: {cells}", file=sys.stderr, flush=True)
    return ("One T(3) LieConv layer, 32 -> 32 channels, 32 samples, ball of ~48 points, forward + backward "
            "(one fresh process per cell):\n\n"
            + table(["points", "original us/point", "original peak MB", "project us/point", "project peak MB"],
                    rows))


# ----------------------------------------------------------------------------------------------- main
def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=str(DEFAULT_REFERENCE), help="the original LieConv repository")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--size", default="quick", choices=["quick", "paper"])
    parser.add_argument("--steps", type=int, default=3, help="timed rounds (the minimum is reported)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps of each column first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (CUDA: wall time)")
    parser.add_argument("--layer-points", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--max-dense-gb", type=float, default=8.0, help="skip original layers needing more")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        spec = json.loads(args.worker)
        print(json.dumps((qm9_worker if spec["kind"] == "qm9" else layer_worker)(spec)))
        return
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    reference_path = Path(args.reference).expanduser().resolve()
    reference = import_reference(reference_path)
    if reference is None:
        print(f"No original LieConv code at {reference_path} (pass --reference DIR): the project's columns only.\n")
        reference_path = None
    print(f"Command: `python benchmarks/side_by_side.py {' '.join(sys.argv[1:] if argv is None else argv)}`  ")
    print(f"Device: {machine_description(args.device)}; threads {args.threads}; torch {torch.__version__}; "
          f"load average at start {load_average()}; {args.steps} interleaved rounds after {args.warmup} warm-up "
          f"steps, minimum reported.\n")
    clock = Clock(device)
    for section in args.sections:
        if section == "layer":
            print(layer_section(reference_path, args) + "\n", flush=True)
        else:
            build = {"qm9": qm9_section, "rotmnist": rotmnist_section, "springs": springs_section}[section]
            print(build(reference, args, clock, device) + "\n", flush=True)


if __name__ == "__main__":
    main()
