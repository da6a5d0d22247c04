"""The original LieConv code and this project side by side: same inputs, same steps, one table per application.

    python -m benchmarks.side_by_side                                  # every section, quick sizes
    python -m benchmarks.side_by_side --sections qm9 --size paper      # the paper's k=1536
    python -m benchmarks.side_by_side --reference /path/to/LieConv     # default ../shared/reference/LieConv
    python -m benchmarks.side_by_side --sections qm9 --size paper --qm9-root QM9_ROOT --compile

The original (the authors' repository) is imported at run time from ``--reference``; nothing of it is
copied. Its models get the inputs this project's pipeline makes (padded tensors of the same molecules,
images, spring systems). Where it is absent, the script says so and prints the project's columns only.
The original's trainers need packages that are not dependencies here (olive-oil-ml, h5py,
torchvision): the two modules the Hamiltonian model imports them from get inert stand-ins.

Timing: one process, one intra-op thread (``--threads``), process CPU time of each training step
(forward, backward, Adam; on CUDA the wall time after a synchronize). The columns' steps are
interleaved -- each round runs every column once, the order reversed every other round -- after the
same warm-up steps (the adaptive ball radii of both codes move to their fills there); the tables give
the minimum over rounds. The QM9 section differs: each column runs in a process of its own, and its
table gives the median step and each column's spread. The layer section runs each size in a fresh
process to read its peak memory.

Sections (the code of each is in the module named after it):

* ``qm9``: T(3) (6 blocks, nbhd 100, fill 1) and SE(3) (4 lifts, nbhd 25, fill 1/2, alpha 0.2) on 75
  molecules a batch, L1 loss; the original in float32, the project in float32 and under bfloat16
  autocast (with ``--compile`` also both under ``torch.compile``, whose warm-up, graph count and graph
  breaks get a table of their own). ``--size quick``: k=128, 3 blocks (nbhd 32 for T(3)); ``paper``:
  k=1536, 6 blocks. ``--qm9-root DIR`` (a PyG QM9 root) takes real molecules, a fixed permutation of
  them in slices of 75; without it the molecules are synthetic and QM9-sized. Every step takes a new
  batch (the same sequence in every column); every column runs in a fresh one-thread process, one
  after another, ``--warmup`` steps then ``--steps`` timed ones, and the table gives the median
  (repeating one batch, or running after other columns in one process, changes oneDNN's bfloat16
  timings). ``python -m benchmarks.qm9_profile`` profiles one step's operators.
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

from pathlib import Path
from typing import List, Optional

import torch

from benchmarks import layer, qm9, rotmnist, springs
from benchmarks.harness import (Clock, DEFAULT_REFERENCE, argument_parser, bfloat16_description, header,
                                import_reference)

SECTIONS = ("qm9", "rotmnist", "springs", "layer")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--reference", default=str(DEFAULT_REFERENCE), help="the original LieConv repository")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--size", default="quick", choices=["quick", "paper"])
    parser.add_argument("--steps", type=int, default=3,
                        help="timed rounds (the minimum is reported; qm9: timed steps, the median)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps of each column first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (CUDA: wall time)")
    parser.add_argument("--layer-points", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--max-dense-gb", type=float, default=8.0, help="skip original layers needing more")
    parser.add_argument("--qm9-root", default=None, help="qm9: a PyG QM9 root, for real molecules "
                        "(processed once, into a copy under the temporary directory when not processed yet)")
    parser.add_argument("--compile", action="store_true", help="qm9: also the project under torch.compile")
    parser.add_argument("--compile-warmup", type=int, default=2,
                        help="qm9: warm-up steps a compiled column takes first, on other molecules")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per worker process")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    reference_path = Path(args.reference).expanduser().resolve()
    reference = import_reference(reference_path)
    if reference is None:
        print(f"No original LieConv code at {reference_path} (pass --reference DIR): the project's columns only.\n")
        reference_path = None
    print(header(__spec__.name, argv, args.device) + f"; {bfloat16_description()}; {args.steps} interleaved "
          f"rounds after {args.warmup} warm-up steps, minimum reported (qm9: median).\n")
    clock = Clock(device)
    for section in args.sections:
        if section == "layer":
            print(layer.side_by_side_section(reference_path, args) + "\n", flush=True)
        else:
            build = {"qm9": qm9, "rotmnist": rotmnist, "springs": springs}[section].side_by_side_section
            print(build(reference, args, clock, device) + "\n", flush=True)


if __name__ == "__main__":
    main()
