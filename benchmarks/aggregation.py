"""LieConv's neighbourhood contraction alone: batched matmul, embedding_bag and segment_csr, side by side.

    python -m benchmarks.aggregation                           # QM9 and RotMNIST sizes, 5 reps
    python -m benchmarks.aggregation --workloads qm9-T3 --reps 9

Times :math:`P_i = \\sum_j W_{ij} \\otimes f_j` (``[T, c_m, c_in]``) from what ``LieConv.aggregate``
receives: the kernel values of the selected edges ``[E, c_m]`` in target order, their sources ``[E]``
and their flat positions in the padded ``[T, S]`` rows. Each path starts from there, so the padded
paths pay for laying the edges out in rows:

* ``bmm``: pad to ``[T, S, c_m]``, gather the sources to ``[T, S, c_in]``, one batched matmul
  (``aggregation="bmm"``); ``bmm bf16->fp32`` is that path under CPU autocast before this benchmark
  (bfloat16 inputs cast to float32 for the matmul), ``bmm bf16`` the matmul in bfloat16.
* ``embedding_bag``: pad, then one weighted bag per (target, kernel channel)
  (``aggregation="scatter"``, its custom backward).
* ``segment_csr``: no padding; :func:`torch_scatter.segment_csr` over the edges with the targets'
  CSR pointer. A segment reduction only sums rows, so the products :math:`W_{ij} \\otimes f_j` must
  be formed per edge first; of the two ways measured the faster is reported (the cell says which):
  ``outer``, the ``[E, c_m c_in]`` outer products at once (only where they take at most
  ``--outer-mb``), or ``per-channel``, ``c_m`` reductions of ``[E, c_in]`` (``x[src] * w[:, m]``),
  which never hold more than one channel's products.

Each workload is random data of a model's shapes: ragged rows (valid counts as the model's
neighbourhoods have them) padded to the widest, sources drawn within each graph. QM9 (75 molecules of
N(18, 3) atoms, the paper's k=1536, so the BottleBlock's LieConv has c_in = k/4 = 384, c_m = 16):
``qm9-T3`` one lift, nbhd 100 with fill 1 (each atom's row is its molecule); ``qm9-SE3`` 4 lifts,
nbhd 25 of a ball holding half the molecule's lifted points. RotMNIST (25 images of 648 pixels, k=32
widening over 3 blocks as :func:`~torch_geometric_lieconv.models.image.layer_schedule`, total_ds 0.1,
nbhd 16, c_m 16): ``rotmnist-1..3`` the LieConv of each block (c_in 8, 12, 17; the targets are the
points the block keeps).

One thread; process CPU time; each cell is the median of ``--reps`` calls after one warm-up, the paths
of a rep interleaved. ``fwd`` runs without autograd, ``fwd+bwd`` adds the backward to ``x`` and ``w``
(a random output gradient). Ratios are the ``bmm`` float32 time over the cell's time (above 1: faster).
"""
from __future__ import annotations

import math
import statistics
import sys
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from benchmarks.harness import Clock, argument_parser, bfloat16_description, header, table
from benchmarks.inputs import qm9_like_batch
from torch_geometric_lieconv._contraction import WeightedSegmentSum, cpu_bfloat16_bmm_is_faster, gather_rows
from torch_geometric_lieconv.models.image import layer_schedule

QM9_K, QM9_MOLECULES, KERNEL_CHANNELS = 1536, 75, 16
IMAGES, PIXELS, IMAGE_K, IMAGE_BLOCKS, IMAGE_NBHD, IMAGE_FILL, IMAGE_TOTAL_DS = 25, 648, 32, 3, 16, 0.1, 0.1
#: the table's columns: (label, path, dtype of the inputs)
COLUMNS = [("bmm fp32", "bmm", torch.float32), ("bmm bf16->fp32", "bmm-fp32", torch.bfloat16),
           ("bmm bf16", "bmm", torch.bfloat16),
           ("embedding_bag fp32", "embedding_bag", torch.float32),
           ("embedding_bag bf16", "embedding_bag", torch.bfloat16),
           ("segment_csr fp32", "segment", torch.float32), ("segment_csr bf16", "segment", torch.bfloat16)]


@dataclass
class Workload:
    """The index pattern of one LieConv: ``counts[t]`` valid slots of target ``t`` (rows padded to
    ``width``), their sources ``source[t, :counts[t]]`` among ``num_sources`` points."""

    name: str
    num_sources: int
    source: Tensor  #: [T, S], padding slots 0
    valid: Tensor  #: [T, S] bool, each row's valid slots first
    in_channels: int
    kernel_channels: int = KERNEL_CHANNELS

    @property
    def edges(self) -> int:
        return int(self.valid.sum())

    def describe(self) -> str:
        targets, width = self.valid.shape
        return (f"{self.name}: T={targets:,}, S={width}, E={self.edges:,} ({self.edges / self.valid.numel():.0%} "
                f"of slots), N={self.num_sources:,}, c_in={self.in_channels}, c_m={self.kernel_channels}")


def _rows(graph_sources: Sequence[int], graph_targets: Sequence[int], counts: Sequence[Tensor], width: int,
          gen: torch.Generator) -> Tuple[Tensor, Tensor]:
    """``(source, valid)``: each target's ``count`` sources drawn without replacement within its graph."""
    sources, valids = [], []
    offset = 0
    for n_src, n_dst, count in zip(graph_sources, graph_targets, counts):
        keys = torch.rand(n_dst, n_src, generator=gen).argsort(1)[:, :width] + offset  # a random order per row
        if keys.shape[1] < width:
            keys = torch.cat([keys, keys.new_zeros(n_dst, width - keys.shape[1])], 1)
        valid = torch.arange(width) < count.view(-1, 1)
        sources.append(keys * valid)
        valids.append(valid)
        offset += n_src
    return torch.cat(sources), torch.cat(valids)


def qm9_workload(group: str, seed: int) -> Workload:
    """The BottleBlock LieConv of the paper's QM9 model (``group``: ``"T3"`` or ``"SE3"``)."""
    gen = torch.Generator().manual_seed(seed)
    _, _, batch = qm9_like_batch(QM9_MOLECULES, seed)
    sizes = torch.bincount(batch).tolist()
    if group == "T3":  # one lift, nbhd 100 > 29 atoms, fill 1: every atom of the molecule
        width = max(sizes)
        counts = [torch.full((n,), n) for n in sizes]
        points = sizes
    else:  # 4 lifts, a ball of half the lifted points, 25 of them sampled
        width = 25
        points = [4 * n for n in sizes]
        counts = [torch.binomial(torch.full((p,), float(p)), torch.full((p,), 0.5), generator=gen).long()
                  .clamp(1, width) for p in points]
    source, valid = _rows(points, points, counts, width, gen)
    return Workload(f"qm9-{group}", sum(points), source, valid, QM9_K // 4)


def rotmnist_workloads(seed: int) -> List[Workload]:
    """The LieConv of each block of the RotMNIST network (``rotmnist-1`` the first)."""
    gen = torch.Generator().manual_seed(seed)
    schedule = layer_schedule(IMAGE_TOTAL_DS, IMAGE_FILL, IMAGE_BLOCKS, IMAGE_K)
    workloads, points = [], PIXELS
    for block in range(IMAGE_BLOCKS):
        kept = max(1, math.ceil(points * schedule.ds_frac))
        ball = torch.binomial(torch.full((IMAGES * kept,), float(points)),
                              torch.full((IMAGES * kept,), min(1.0, schedule.fills[block])), generator=gen)
        counts = ball.long().clamp(1, IMAGE_NBHD).view(IMAGES, kept)
        source, valid = _rows([points] * IMAGES, [kept] * IMAGES, list(counts), IMAGE_NBHD, gen)
        workloads.append(Workload(f"rotmnist-{block + 1}", IMAGES * points, source, valid,
                                  schedule.widths[block] // 4))
        points = kept
    return workloads


# ----------------------------------------------------------------------------------------------- the paths
def _padded(w: Tensor, source: Tensor, position: Tensor, targets: int, width: int) -> Tuple[Tensor, Tensor]:
    """The edges laid out in ``[T, S]`` rows as ``LieConv.aggregate`` does (padding: weight 0, source 0)."""
    pad_w = w.new_zeros(targets * width, w.shape[1]).index_copy(0, position, w)
    pad_s = source.new_zeros(targets * width).index_copy_(0, position, source)
    return pad_w.view(targets, width, -1), pad_s.view(targets, width)


def bmm_path(x: Tensor, w: Tensor, source: Tensor, position: Tensor, shape: Tuple[int, int],
             work: Optional[torch.dtype] = None) -> Tensor:
    """``aggregation="bmm"`` (``work``: the matmul's dtype, default the inputs')."""
    pad_w, pad_s = _padded(w, source, position, *shape)
    rows = gather_rows(x, pad_s)
    if work is not None:
        pad_w, rows = pad_w.to(work), rows.to(work)
    return torch.bmm(pad_w.transpose(1, 2), rows)


def embedding_bag_path(x: Tensor, w: Tensor, source: Tensor, position: Tensor,
                       shape: Tuple[int, int]) -> Tensor:
    """``aggregation="scatter"``: the weighted segment sum with its custom backward."""
    pad_w, pad_s = _padded(w, source, position, *shape)
    return WeightedSegmentSum.apply(x, pad_s, pad_w)


def segment_outer(x: Tensor, w: Tensor, source: Tensor, ptr: Tensor) -> Tensor:
    """segment_csr of the ``[E, c_m c_in]`` outer products."""
    from torch_scatter import segment_csr

    products = w.unsqueeze(2) * x.index_select(0, source).unsqueeze(1)
    return segment_csr(products.flatten(1), ptr).view(ptr.numel() - 1, w.shape[1], x.shape[1])


def segment_per_channel(x: Tensor, w: Tensor, source: Tensor, ptr: Tensor) -> Tensor:
    """``c_m`` segment_csr reductions of ``x[source] * w[:, m]``."""
    from torch_scatter import segment_csr

    rows = x.index_select(0, source)
    return torch.stack([segment_csr(rows * w[:, m:m + 1], ptr) for m in range(w.shape[1])], 1)


#: a timed call: ``call(grad)``, forward alone or (``grad=True``) forward and backward
Call = Callable[[bool], Tensor]


def path_calls(workload: Workload, dtype: torch.dtype, outer_mb: float, seed: int) -> Dict[str, Call]:
    """``{path: call(grad)}`` of one workload in one input dtype; ``call(True)`` runs forward and backward."""
    gen = torch.Generator().manual_seed(seed)
    targets, width = workload.valid.shape
    position = workload.valid.flatten().nonzero().squeeze(1)
    source = workload.source.flatten().index_select(0, position)
    ptr = torch.cat([position.new_zeros(1), workload.valid.sum(1).cumsum(0)])
    x = torch.randn(workload.num_sources, workload.in_channels, generator=gen).to(dtype)
    w = torch.randn(position.numel(), workload.kernel_channels, generator=gen).to(dtype)
    grad_out = torch.randn(targets, workload.kernel_channels, workload.in_channels, generator=gen)
    shape = (targets, width)
    forms = {"bmm": lambda xs, ws: bmm_path(xs, ws, source, position, shape),
             "embedding_bag": lambda xs, ws: embedding_bag_path(xs, ws, source, position, shape),
             "segment per-channel": lambda xs, ws: segment_per_channel(xs, ws, source, ptr)}
    if dtype != torch.float32:
        forms["bmm-fp32"] = lambda xs, ws: bmm_path(xs, ws, source, position, shape, torch.float32)
    outer_bytes = position.numel() * workload.kernel_channels * workload.in_channels * x.element_size()
    if outer_bytes <= outer_mb * 2**20:
        forms["segment outer"] = lambda xs, ws: segment_outer(xs, ws, source, ptr)

    def call(form: Callable[[Tensor, Tensor], Tensor]) -> Call:
        def run(grad: bool) -> Tensor:
            if not grad:
                with torch.no_grad():
                    return form(x, w)
            xs, ws = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
            out = form(xs, ws)
            out.backward(grad_out.to(out.dtype))
            return out
        return run

    return {name: call(form) for name, form in forms.items()}


def measure(workload: Workload, reps: int, outer_mb: float, seed: int,
            clock: Clock) -> Dict[Tuple[str, str], Tuple[float, str]]:
    """``{(column, pass): (median seconds, note)}`` of one workload."""
    results = {}
    for passname, grad in (("fwd", False), ("fwd+bwd", True)):
        calls: Dict[Tuple[str, str], Call] = {}
        for dtype in (torch.float32, torch.bfloat16):
            for name, run in path_calls(workload, dtype, outer_mb, seed).items():
                calls[(name, str(dtype).replace("torch.", ""))] = run
        times: Dict[Tuple[str, str], List[float]] = {key: [] for key in calls}
        for run in calls.values():
            run(grad)  # warm-up
        for rep in range(reps):
            for key in (list(calls) if rep % 2 == 0 else list(calls)[::-1]):
                times[key].append(clock.seconds(lambda: calls[key](grad)))
        medians = {key: statistics.median(values) for key, values in times.items()}
        for label, path, dtype in COLUMNS:
            tag = str(dtype).replace("torch.", "")
            if path != "segment":
                results[(label, passname)] = (medians[(path, tag)], "")
                continue
            forms = [(medians[key], key[0].split(" ", 1)[1]) for key in medians
                     if key[1] == tag and key[0].startswith("segment")]
            results[(label, passname)] = min(forms)
        cells = ", ".join(f"{name} {dtype} {value * 1e3:.1f} ms" for (name, dtype), value in medians.items())
        print(f"  {workload.name} {passname}: {cells}", file=sys.stderr, flush=True)
    return results


WORKLOADS = ("qm9-T3", "qm9-SE3", "rotmnist-1", "rotmnist-2", "rotmnist-3")


def workloads(names: Sequence[str], seed: int) -> List[Workload]:
    """The workloads ``names`` (of :data:`WORKLOADS`), in that order."""
    images = {w.name: w for w in rotmnist_workloads(seed)} if any(n.startswith("rotmnist") for n in names) else {}
    return [qm9_workload(name.split("-", 1)[1], seed) if name.startswith("qm9") else images[name]
            for name in names]


def main(argv: Optional[List[str]] = None) -> None:
    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated, of {', '.join(WORKLOADS)}")
    parser.add_argument("--reps", type=int, default=5, help="timed calls per cell (the median is reported)")
    parser.add_argument("--outer-mb", type=float, default=256.0,
                        help="largest [E, c_m c_in] outer product segment_csr may form")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = args.workloads.split(",")
    if not set(names) <= set(WORKLOADS):
        parser.error(f"unknown workloads {sorted(set(names) - set(WORKLOADS))}; choose of {', '.join(WORKLOADS)}")
    torch.set_num_threads(1)
    print(header(__spec__.name, argv))
    print(f"CPU flags: {bfloat16_description()}; torch.backends.cpu.get_cpu_capability() = "
          f"{torch.backends.cpu.get_cpu_capability()}; cpu_bfloat16_bmm_is_faster() = "
          f"{cpu_bfloat16_bmm_is_faster()}\n")
    clock = Clock("cpu", "cpu")
    rows = []
    for workload in workloads(names, args.seed):
        print(workload.describe(), flush=True)
        results = measure(workload, args.reps, args.outer_mb, args.seed, clock)
        for passname in ("fwd", "fwd+bwd"):
            base = results[("bmm fp32", passname)][0]
            cells = []
            for label, _, _ in COLUMNS:
                seconds, note = results[(label, passname)]
                cells.append(f"{seconds * 1e3:,.1f} ({base / seconds:.2f}x{', ' + note if note else ''})")
            fastest = min(COLUMNS, key=lambda column: results[(column[0], passname)][0])[0]
            rows.append([workload.name, passname, *cells, fastest])
    print("\nms (speed relative to bmm fp32):\n")
    print(table(["workload", "pass", *[label for label, _, _ in COLUMNS], "fastest"], rows))


if __name__ == "__main__":
    main()
