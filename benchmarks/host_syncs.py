"""Host syncs per forward pass of the models, this checkout against another revision, side by side.

    git worktree add /tmp/lieconv-base <revision>
    python -m benchmarks.host_syncs --baseline /tmp/lieconv-base

Each tree is imported in its own subprocess; the syncs are counted by this checkout's
:class:`~torch_geometric_lieconv.host_syncs.HostSyncCounter` (loaded from its file, so the baseline
needs no counter of its own): scalar reads, ``nonzero``, ``masked_select``, boolean-mask indexing,
``bincount``, ``repeat_interleave`` without ``output_size``, the radius search, and the package's
deliberate batched reads. A read through ``Tensor.tolist`` dispatches no operator on a CPU, so a tree
that reads that way without :func:`read_to_host` is undercounted (this one counts its own). Inputs:
4 QM9-sized molecules (7, 12, 5, 9 atoms) and 4 random 28x28 images, one forward pass in training
mode after a warm-up. Counts do not depend on the device, so a CPU shows what a GPU would stall on.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Dict, List, Optional

import torch

from benchmarks.harness import ROOT, argument_parser, import_package, run_worker

CASES = [
    ("QM9 T(3) fill 1, 3 blocks", "qm9", dict(group="T3", num_layers=3)),
    ("QM9 T(3) fill 1, 6 blocks", "qm9", dict(group="T3", num_layers=6)),
    ("QM9 SE(3) fill 1/2, 2 lifts, 3 blocks", "qm9", dict(group="SE3", num_layers=3, fill=0.5, lift_samples=2,
                                                          mc_samples=25)),
    ("QM9 SE(3) fill 1/2, 2 lifts, 6 blocks", "qm9", dict(group="SE3", num_layers=6, fill=0.5, lift_samples=2,
                                                          mc_samples=25)),
    ("RotMNIST SO(2), 3 blocks (per-block graphs)", "image", dict(group="SO2", num_layers=3)),
    ("RotMNIST T(2), 3 blocks (per-block graphs)", "image", dict(group="T2", num_layers=3)),
]


def this_checkout_counter():
    """This checkout's ``host_syncs`` module, loaded from its file under another name (the tree being
    measured may have no counter of its own)."""
    spec = importlib.util.spec_from_file_location("counter", ROOT / "torch_geometric_lieconv" / "host_syncs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(tree: str) -> Dict[str, int]:
    """Host syncs of every case with ``torch_geometric_lieconv`` imported from ``tree`` (in a fresh process)."""
    import_package("torch_geometric_lieconv", Path(tree))
    from torch_geometric_lieconv.models import ImageLieResNet, QM9LieConv

    try:  # the tree's own counter, so that its deliberate reads count too, when it has one
        from torch_geometric_lieconv import host_syncs as counter
    except ImportError:
        counter = this_checkout_counter()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    sizes = (7, 12, 5, 9)
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    z = torch.tensor([1, 6, 7, 8, 9])[torch.randint(0, 5, (len(batch),), generator=gen)]
    pos = torch.randn(len(batch), 3, generator=gen) * 1.5
    images = torch.rand(4, 1, 28, 28, generator=gen)
    out = {}
    for name, kind, kwargs in CASES:
        kwargs = dict(kwargs)
        group = kwargs.pop("group")
        if kind == "qm9":
            model = QM9LieConv(group, hidden_channels=16, **kwargs).train()
            call = lambda: model(z, pos, batch)  # noqa: E731
        else:
            model = ImageLieResNet(group, hidden_channels=16, cache_graph=False, **kwargs).train()
            call = lambda: model.forward_images(images)  # noqa: E731
        call()
        with counter.HostSyncCounter() as syncs:
            call()
        out[name] = syncs.count
    return out


def run(tree: Path) -> Dict[str, int]:
    return run_worker(f"{__spec__.name}:worker", str(tree))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--baseline", type=Path, help="source tree of the other revision")
    args = parser.parse_args(argv)
    current = run(ROOT)
    baseline = run(args.baseline) if args.baseline else {}
    width = max(len(name) for name, _, _ in CASES)
    print(f"{'model':<{width}}  {'baseline':>8}  {'this':>5}")
    for name, _, _ in CASES:
        print(f"{name:<{width}}  {baseline.get(name, '-'):>8}  {current[name]:>5}")


if __name__ == "__main__":
    main()
