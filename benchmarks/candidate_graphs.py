"""Candidate pair graphs in each group's search embedding: candidates per used pair, and linear growth.

    python -m benchmarks.candidate_graphs                  # all sections, ~5 minutes on one core
    python -m benchmarks.candidate_graphs --sizes 10000,30000

Sections:

* ``planar``: 25 RotMNIST-sized images (the 648-pixel disc of radius 15 around the image centre),
  SO(2) / RxSO(2) / Rx / SE(2) (2 lift samples) at the ball radius that holds a fraction 0.1 of each
  image (the paper's first-block fill): candidate pairs per image from the search embedding, against
  the old Euclidean bound (``LieGroup.euclidean_radius`` over the points) and all pairs.
* ``qm9``: 75 QM9-sized molecules (``benchmarks.inputs.qm9_like_batch``), SO(3) and SE(3) (4 lift
  samples) at the radius of fill 0.5, positions centred per molecule.
* ``scaling``: SO(3) on 1e4 ... 1e5 points spread over a spherical shell around the origin (the
  group's neighbourhoods are angular: on a solid ball they would span whole shells), the radius set
  so that a ball holds ~48 lifted points at the first size and scaled as n^(-1/4) for the others (the
  lifted elements fill a 4-d space, three rotation angles and the radius, at a density growing as n):
  graph build time, one LieConv forward (32 -> 32 channels,
  32 samples), candidates per point. Constant candidates per point and time per point mean linear
  growth.

Times are process CPU seconds with one thread (the minimum of ``--reps``).
"""
from __future__ import annotations

import sys
from typing import List, Optional

import torch

from benchmarks.harness import argument_parser, best_time, header, table
from benchmarks.inputs import qm9_like_batch
from torch_geometric_lieconv import LieConv, group_from_name, lift_points
from torch_geometric_lieconv.graph import all_pairs_within_graphs, build_pair_graph
from torch_geometric_lieconv.testing import radius_pairs
from torch_geometric_lieconv.transforms import ImageToPointSet


def radius_for_fill(group, lifted, fill: float) -> float:
    """The ball radius whose mean fraction of each graph inside the ball is ``fill`` (bisection)."""
    everything = build_pair_graph(group, lifted, candidate_radius=None)
    sizes = torch.bincount(lifted.batch)[lifted.batch[everything.edge_index[1]]].to(everything.dist.dtype)
    low, high = 0.0, float(everything.dist.max()) + 1.0
    for _ in range(40):
        mid = (low + high) / 2
        observed = float(((everything.dist < mid).to(sizes.dtype) / sizes).sum()) / lifted.num_nodes
        low, high = (mid, high) if observed < fill else (low, mid)
    return high


def radius_for_count(group, lifted, count: float) -> float:
    """The ball radius holding ``count`` lifted points on average (bisection over candidate graphs,
    from below: the radius grows geometrically until it holds enough, so no graph is much larger)."""

    def mean_inside(r: float) -> float:
        graph = build_pair_graph(group, lifted, candidate_radius=r)
        return int((graph.dist < r).sum()) / lifted.num_nodes

    low, high = 1e-3, 0.02
    while mean_inside(high) < count:
        low, high = high, high * 1.5
    for _ in range(6):
        mid = (low + high) / 2
        low, high = (mid, high) if mean_inside(mid) < count else (low, mid)
    return high


def old_candidates(group, lifted, radius: float) -> int:
    """Candidate pairs under the Euclidean bound over the points (the behaviour before search embeddings)."""
    bound = group.euclidean_radius(radius, float(lifted.pos.norm(dim=-1).max()))
    if bound is None:
        return all_pairs_within_graphs(lifted.batch).shape[1]
    return radius_pairs(lifted.pos, lifted.batch, bound * (1 + 1e-6) + 1e-12).shape[1]


def row(name: str, group, lifted, radius: float, num_graphs: int, reps: int) -> List[str]:
    graph = build_pair_graph(group, lifted, candidate_radius=radius)
    used = int((graph.dist < radius).sum())
    build = best_time(lambda: build_pair_graph(group, lifted, candidate_radius=radius), reps)
    old = old_candidates(group, lifted, radius)
    pairs = all_pairs_within_graphs(lifted.batch).shape[1]
    return [name, f"{radius:.3f}", f"{used / num_graphs:,.0f}", f"{graph.edge_index.shape[1] / num_graphs:,.0f}",
            f"{graph.edge_index.shape[1] / used:.2f}", f"{old / num_graphs:,.0f}", f"{old / used:.2f}",
            f"{pairs / num_graphs:,.0f}", f"{build * 1e3:.0f}"]


HEADER = ["group", "ball radius", "pairs in ball / graph", "candidates / graph", "candidates / in ball",
          "old bound candidates / graph", "old / in ball", "all pairs / graph", "graph build ms"]


def section_planar(reps: int) -> str:
    gen = torch.Generator().manual_seed(0)
    images = ImageToPointSet(28, 28).batch(torch.rand(25, 1, 28, 28, generator=gen))
    rows = []
    for name, samples in [("T2", 1), ("SO2", 1), ("RxSO2", 1), ("Rx", 1), ("SE2", 2)]:
        group = group_from_name(name)
        lifted = lift_points(group, images.pos, images.batch, samples, generator=gen)
        rows.append(row(name, group, lifted, radius_for_fill(group, lifted, 0.1), 25, reps))
    return "#### RotMNIST-sized images (25 images x 648 pixels, fill 0.1)\n\n" + table(HEADER, rows)


def section_qm9(reps: int) -> str:
    from torch_scatter import scatter_mean

    gen = torch.Generator().manual_seed(0)
    _, pos, batch = qm9_like_batch(75, 0)
    pos = (pos - scatter_mean(pos, batch, dim=0)[batch]).double()
    rows = []
    for name, samples in [("SO3", 1), ("SE3", 4)]:
        group = group_from_name(name)
        lifted = lift_points(group, pos, batch, samples, generator=gen)
        rows.append(row(name, group, lifted, radius_for_fill(group, lifted, 0.5), 75, reps))
    return "#### QM9-sized molecules (75 molecules, fill 0.5)\n\n" + table(HEADER, rows)


def section_scaling(sizes: List[int], reps: int) -> str:
    group = group_from_name("SO3")
    rows = []
    for n in sizes:
        gen = torch.Generator().manual_seed(n)
        direction = torch.randn(n, 3, generator=gen)
        pos = direction / direction.norm(dim=-1, keepdim=True) * (9.5 + torch.rand(n, 1, generator=gen))
        lifted = lift_points(group, pos, None, 1, generator=gen)
        if not rows:  # the first size sets the radius; balls in the 4-d lift space shrink as n^(-1/4)
            first_n, first_radius = n, radius_for_count(group, lifted, 48)
        radius = first_radius * (first_n / n) ** (1 / 4)
        graph = build_pair_graph(group, lifted, candidate_radius=radius)
        used = int((graph.dist < radius).sum())
        conv = LieConv(32, 32, group, mc_samples=32, fill=0.5).eval()
        conv.radius.fill_(radius)
        x = torch.randn(n, 32, generator=gen)
        build = best_time(lambda: build_pair_graph(group, lifted, candidate_radius=radius), reps)
        with torch.no_grad():
            forward = best_time(lambda: conv(x, graph.edge_index, graph.edge_attr, table=graph.table,
                                             candidate_radius=graph.candidate_radius), reps)
        rows.append([f"{n:,}", f"{radius:.3f}", f"{used / n:.1f}", f"{graph.edge_index.shape[1] / n:.1f}",
                     f"{graph.edge_index.shape[1] / used:.2f}", f"{build * 1e6 / n:.1f}", f"{forward * 1e6 / n:.1f}"])
        print("  " + " | ".join(rows[-1]), file=sys.stderr, flush=True)  # progress: a row per size
    header = ["points", "ball radius", "in ball / point", "candidates / point", "candidates / in ball",
              "graph build us / point", "layer fwd us / point"]
    return ("#### SO(3) on a spherical shell (radius 9.5-10.5, ~48 lifted points per ball)\n\n"
            + table(header, rows))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argument_parser(__spec__.name, __doc__)
    parser.add_argument("--sections", default="planar,qm9,scaling")
    parser.add_argument("--sizes", default="10000,30000,100000", help="cloud sizes of the scaling section")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(header(__spec__.name, argv) + ".\n")
    sections = {"planar": lambda: section_planar(args.reps), "qm9": lambda: section_qm9(args.reps),
                "scaling": lambda: section_scaling([int(n) for n in args.sizes.split(",")], args.reps)}
    for name in args.sections.split(","):
        print(sections[name.strip()]() + "\n", flush=True)


if __name__ == "__main__":
    main()
