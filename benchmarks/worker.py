"""One measurement of a benchmark in this fresh process (what :func:`benchmarks.harness.run_worker` starts):

    python -m benchmarks.worker benchmarks.<module>:<function> '<JSON spec>'

Calls ``function(spec)`` and prints its JSON result on a line of its own that starts with ``RESULT``.
"""
from __future__ import annotations

import argparse
import importlib
import json
from typing import List, Optional

from benchmarks.harness import RESULT_PREFIX


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker", description=__doc__.splitlines()[0])
    parser.add_argument("target", help="module:function, e.g. benchmarks.qm9:side_by_side_worker")
    parser.add_argument("spec", help="the function's argument, as JSON")
    args = parser.parse_args(argv)
    module, _, function = args.target.partition(":")
    result = getattr(importlib.import_module(module), function)(json.loads(args.spec))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
