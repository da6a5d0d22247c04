"""The package is built in layers: every import (function-level ones too) goes to the same layer or one
before it, never up, and no two modules import each other, directly or around a loop."""
import ast
import os
from typing import Dict, List, Set

import pytest

import torch_geometric_lieconv

PACKAGE = "torch_geometric_lieconv"
ROOT = os.path.dirname(torch_geometric_lieconv.__file__)

#: the layers, first to last; a module may import its own layer and those before it. Modules of one
#: layer side by side (models | datasets) must not import each other: they sit in separate layers of
#: equal rank, listed as a tuple.
LAYERS = [
    ["_errors", "_files", "_deprecation", "host_syncs", "ops", "_contraction"],  # import nothing of the package
    ["groups"],
    ["lift"],
    ["graph"],
    ["conv", "pool"],
    ["lifted_graph", "transforms", "equivariance", "dynamics"],  # the lifted-graph Data API, checks, physics
    (["models"], ["datasets"]),  # side by side
    ["testing"],
    ["runs"],
    ["training"],
    ["experiments"],
    ["cli", "_memory", "__main__"],
]
#: the last layer of the library: nothing up to it imports runs, training, experiments or the cli
LIBRARY_END = "testing"


def _rank_and_side() -> Dict[str, tuple]:
    found = {}
    for rank, layer in enumerate(LAYERS):
        groups = layer if isinstance(layer, tuple) else (layer,)
        for side, names in enumerate(groups):
            for name in names:
                found[name] = (rank, side if isinstance(layer, tuple) else None)
    return found


RANKS = _rank_and_side()


def _modules() -> Dict[str, str]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for folder, _, files in os.walk(ROOT):
        for file in files:
            if file.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, file), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                modules[".".join([PACKAGE] + rel)] = os.path.join(folder, file)
    return modules


def _imports(module: str, path: str, known: Set[str]) -> Set[str]:
    """The package modules ``module`` imports anywhere in its file (``from . import x`` resolved)."""
    tree = ast.parse(open(path).read(), path)
    is_package = path.endswith("__init__.py")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            # the longest known module the name starts with (``pkg.groups.LieGroup`` -> ``pkg.groups``)
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def import_graph() -> Dict[str, Set[str]]:
    modules = _modules()
    return {module: _imports(module, path, set(modules)) for module, path in modules.items()}


def layer_violations(graph: Dict[str, Set[str]]) -> List[str]:
    problems = []
    for module, targets in graph.items():
        top = _top(module)
        if top == "":  # the package's __init__: the public API, made of the library only
            for target in targets:
                if RANKS[_top(target)][0] > RANKS[LIBRARY_END][0]:
                    problems.append(f"{PACKAGE}/__init__ imports the application module {target}")
            continue
        if top not in RANKS:
            problems.append(f"{module} is in no layer: add it to LAYERS in {__file__}")
            continue
        rank, side = RANKS[top]
        for target in targets:
            target_top = _top(target)
            if target_top == "":
                problems.append(f"{module} imports the package's __init__ (import the module itself)")
                continue
            target_rank, target_side = RANKS[target_top]
            if target_rank > rank:
                problems.append(f"{module} imports {target}, a later layer")
            elif target_rank == rank and side is not None and side != target_side:
                problems.append(f"{module} imports {target}, which sits beside it (neither may import the other)")
    return problems


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Import loops between modules (a package's ``__init__`` importing its own modules is not one)."""
    found, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if module.startswith(target + ".") or target.startswith(module + "."):
                continue  # a package and its own modules
            if state.get(target) == "open":
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_every_import_goes_to_an_earlier_layer():
    graph = import_graph()
    assert len(graph) > 30 and all(_top(m) in RANKS for m in graph if _top(m))
    assert layer_violations(graph) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("source, imports, problem", [
    # an upward import inside a function (as QM9LieConv.from_checkpoint once imported experiments)
    ("models.qm9", "def load():\n    from ..experiments.qm9 import model_arguments\n", "a later layer"),
    ("models.image", "from ..datasets.rotmnist import RotMNIST\n", "beside it"),
    ("datasets.qm9", "from torch_geometric_lieconv.models import QM9LieConv\n", "beside it"),
    ("graph", "from . import lifted_graph\n", "a later layer"),
])
def test_the_check_finds_planted_violations(source, imports, problem):
    modules = _modules()
    module = f"{PACKAGE}.{source}"
    path = modules[module]
    graph = import_graph()
    planted = os.path.join(os.path.dirname(path), "_planted_check.py")
    try:
        with open(planted, "w") as f:
            f.write(imports)
        graph[module] = graph[module] | _imports(module, planted, set(modules))
    finally:
        os.remove(planted)
    assert any(problem in line for line in layer_violations(graph))


def test_the_check_finds_a_planted_cycle():
    graph = import_graph()
    graph[f"{PACKAGE}.lift"] = graph[f"{PACKAGE}.lift"] | {f"{PACKAGE}.graph"}  # graph imports lift already
    assert any(f"{PACKAGE}.graph" in loop and f"{PACKAGE}.lift" in loop for loop in cycles(graph))
