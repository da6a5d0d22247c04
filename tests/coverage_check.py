"""Branch coverage per package after ``python -m pytest -q --cov``, held against ``tests/UNCOVERED.md``.

    python -m pytest -q --cov            # writes .coverage (coverage.py's branch mode, see pyproject.toml)
    python tests/coverage_check.py       # the table per package; the library's uncovered branches
    python tests/coverage_check.py --fail-under 95   # also fail when the library is below 95% of branches

The library is every layer up to ``testing`` (``tests/test_layers.py``: groups, lift, graph, conv,
pool, the lifted-graph Data API, models, datasets, testing and the utilities). Each branch it leaves
uncovered must be listed in ``tests/UNCOVERED.md`` with the reason no test can reach it, as
``- path.py:FROM->TO (source of line FROM): reason`` (``TO`` is ``exit`` for a branch that leaves the
function). The check fails when a miss is not listed, or when a listed branch is covered now (stale).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Set, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "torch_geometric_lieconv"
sys.path.insert(0, os.path.join(ROOT, "tests"))
from test_layers import LAYERS, LIBRARY_END  # noqa: E402  (the one definition of the layers)

UNCOVERED = os.path.join(ROOT, "tests", "UNCOVERED.md")
ENTRY = re.compile(r"^- (?P<path>[\w/.]+\.py):(?P<start>\d+)->(?P<end>\d+|exit)\b")


def library_tops() -> Set[str]:
    """The top-level modules and packages of the library layers."""
    tops: Set[str] = {""}
    for layer in LAYERS:
        for names in (layer if isinstance(layer, tuple) else (layer,)):
            tops.update(names)
        if LIBRARY_END in (layer if isinstance(layer, list) else []):
            break
    return tops


def package_of(path: str) -> Tuple[str, str]:
    """``(relative path, part)``: the file below the package and the part of the table it counts in."""
    rel = path.replace(os.sep, "/").split(f"{PACKAGE}/", 1)[1]
    top = rel.split("/")[0].removesuffix(".py")
    top = "" if top == "__init__" else top
    return rel, "library" if top in library_tops() else top


def measured(data_file: str) -> Dict:
    """coverage.py's JSON report of ``data_file``."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "coverage.json")
        subprocess.run([sys.executable, "-m", "coverage", "json", "-q", f"--data-file={data_file}", "-o", out],
                       check=True, cwd=ROOT)
        with open(out) as f:
            return json.load(f)


def listed() -> Set[Tuple[str, int, str]]:
    """The branches ``tests/UNCOVERED.md`` lists."""
    if not os.path.isfile(UNCOVERED):
        return set()
    with open(UNCOVERED) as f:
        return {(m["path"], int(m["start"]), m["end"]) for m in map(ENTRY.match, f) if m}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-file", default=os.path.join(ROOT, ".coverage"))
    parser.add_argument("--fail-under", type=float, default=None,
                        help="fail when the library covers fewer than this percentage of its branches")
    args = parser.parse_args(argv)
    report = measured(args.data_file)
    parts: Dict[str, List[int]] = {}
    misses: Set[Tuple[str, int, str]] = set()
    for path, info in report["files"].items():
        rel, part = package_of(path)
        s = info["summary"]
        totals = parts.setdefault(part, [0, 0, 0, 0])
        totals[0] += s["covered_branches"]
        totals[1] += s["num_branches"]
        totals[2] += s["covered_lines"]
        totals[3] += s["num_statements"]
        if part == "library":
            misses.update((rel, start, "exit" if end < 0 else str(end)) for start, end in info["missing_branches"])
    print(f"{'part':<14}{'branches':>18}{'lines':>18}")
    for part, (cb, nb, cl, nl) in sorted(parts.items(), key=lambda item: (item[0] != "library", item[0])):
        print(f"{part or PACKAGE:<14}{cb:>8}/{nb:<5} {100 * cb / max(nb, 1):5.1f}%{cl:>8}/{nl:<5} {100 * cl / max(nl, 1):5.1f}%")
    known = listed()
    unlisted, stale = sorted(misses - known), sorted(known - misses)
    for rel, start, end in unlisted:
        print(f"uncovered and not in tests/UNCOVERED.md: {rel}:{start}->{end}")
    for rel, start, end in stale:
        print(f"listed in tests/UNCOVERED.md but covered (or moved): {rel}:{start}->{end}")
    cb, nb = parts.get("library", [0, 1])[:2]
    below = args.fail_under is not None and 100 * cb / max(nb, 1) < args.fail_under
    if below:
        print(f"the library covers {100 * cb / max(nb, 1):.1f}% of its branches, under {args.fail_under}%")
    return 1 if unlisted or stale or below else 0


if __name__ == "__main__":
    sys.exit(main())
