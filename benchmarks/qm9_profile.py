"""Where a QM9 training step's CPU time goes: a ``torch.profiler`` table of one step, grouped.

    python -m benchmarks.qm9_profile --qm9-root QM9_ROOT                  # SE(3), bf16, k=1536, 6 blocks
    python -m benchmarks.qm9_profile --qm9-root QM9_ROOT --group T3 --dtype float32 --size quick

One training step (forward, backward, Adam; L1 loss) of this project's ``QM9LieConv`` on 75 real
molecules (``--qm9-root``, a PyG QM9 root; synthetic QM9-sized molecules without it), in this process
with one thread, after a warm-up step on another batch (so the adaptive radius, oneDNN's kernels and
the allocator are settled). The models are those of ``benchmarks.side_by_side --sections qm9``: T(3)
with 1 lift, nbhd 100 (32 at the quick size), fill 1; SE(3) with alpha 0.2, 4 lifts, nbhd 25, fill 1/2.

The operators' self CPU time is grouped: matmul (mm, addmm, bmm, linear, ...), copies (``aten::copy_``,
``aten::to``, ``aten::_to_copy``: mostly the dtype casts of autocast), gathers and scatters
(index_select, index_add, scatter, gather, indexing), BatchNorm, activations (forward and backward),
and the rest; the table gives each group's share, then the top operators.
"""
from __future__ import annotations

import argparse
import re
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from benchmarks.harness import argument_parser, bfloat16_description, header

#: (group, pattern on the operator's name), the first that matches wins; unmatched: "rest"
GROUPS: Sequence[Tuple[str, str]] = (
    ("matmul", r"^aten::(mm|addmm|bmm|baddbmm|addbmm|matmul|linear|_addmm_activation|dot|mv|einsum)$|"
               r"mkldnn.*(linear|matmul|mm)|onednn.*(linear|matmul)"),
    ("copies (copy_, to)", r"^aten::(copy_|to|_to_copy|_copy_from|_copy_from_and_resize)$"),
    ("gather / scatter", r"index_select|index_add|index_put|index_copy|scatter|gather|^aten::index$|"
                         r"^aten::embedding|^torch_scatter::|segment|take_along_dim"),
    ("BatchNorm", r"batch_norm"),
    ("activation", r"silu|swish|relu|gelu|sigmoid|tanh|elu|softplus|threshold_backward|hardswish"),
)


def group_of(name: str) -> str:
    """The group (:data:`GROUPS`) of the operator ``name``; ``"rest"`` when none matches."""
    return next((group for group, pattern in GROUPS if re.search(pattern, name)), "rest")


def grouped(events) -> Tuple[Dict[str, float], List[Tuple[str, float, int]]]:
    """The self CPU seconds of each group and of each operator (``(name, seconds, calls)``, largest
    first) in ``events`` (a profiler's ``key_averages()``)."""
    totals = {group: 0.0 for group, _ in GROUPS}
    totals["rest"] = 0.0
    ops = []
    for event in events:
        self_s = event.self_cpu_time_total / 1e6
        if self_s <= 0:
            continue
        totals[group_of(event.key)] += self_s
        ops.append((event.key, self_s, event.count))
    ops.sort(key=lambda op: -op[1])
    return totals, ops


def profile_step(args) -> str:
    """The profile tables of one training step with ``args`` (see :func:`main`)."""
    from benchmarks import qm9

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    spec = argparse.Namespace(size=args.size, steps=1, warmup=1, device="cpu", qm9_root=args.qm9_root)
    column = "project bf16" if args.dtype == "bfloat16" else "project fp32"
    inputs = qm9.batches(2, device, args.qm9_root)
    step = qm9.side_by_side_steps(None, args.group, [column], spec, device, inputs)[column]
    step()  # warm-up, on the first batch
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()  # the second batch
    totals, ops = grouped(prof.key_averages())
    total = sum(totals.values())
    non_matmul = total - totals["matmul"]
    k, layers = qm9.SIZES[args.size]
    lines = [f"{args.group}, {args.dtype} (autocast for bfloat16), k={k}, {layers} blocks, one training step on "
             f"{int(inputs[1][0][2].max()) + 1} molecules ({inputs[1][0][0].numel()} atoms): {total:.3f} s self CPU "
             f"in operators, {non_matmul:.3f} s ({non_matmul / total:.0%}) outside matmul.", "",
             "| group | self CPU s | share | share of non-matmul |", "|---|---|---|---|"]
    for group, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        outside = "-" if group == "matmul" else f"{seconds / max(non_matmul, 1e-12):.0%}"
        lines.append(f"| {group} | {seconds:.3f} | {seconds / total:.0%} | {outside} |")
    lines += ["", f"Top {args.rows} operators by self CPU time:", "",
              "| operator | group | self CPU s | share | calls |", "|---|---|---|---|---|"]
    for name, seconds, calls in ops[:args.rows]:
        lines.append(f"| `{name}` | {group_of(name)} | {seconds:.3f} | {seconds / total:.1%} | {calls} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--qm9-root", default=None, help="a PyG QM9 root (real molecules); synthetic without")
    parser.add_argument("--group", default="SE3", choices=["T3", "SE3"])
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--size", default="paper", choices=["quick", "paper"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=15, help="operators in the top table")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(header(__spec__.name, argv) + f"; {bfloat16_description()}\n")
    print(profile_step(args), flush=True)


if __name__ == "__main__":
    main()
