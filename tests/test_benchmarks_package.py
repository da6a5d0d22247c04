"""The benchmarks are a package of modules run as ``python -m benchmarks.<module>``: each imports without
touching ``sys.path`` and parses ``--help``."""
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(info.name for info in pkgutil.iter_modules([str(ROOT / "benchmarks")]))


def test_every_benchmark_module_is_listed():
    assert {"harness", "benchmark", "side_by_side", "compare_revisions", "host_syncs"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_imports_without_touching_sys_path_and_parses_help(name, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT))  # the repository root, as `python -m` from there has it
    before = list(sys.path)
    module = importlib.import_module(f"benchmarks.{name}")
    assert sys.path == before, f"benchmarks.{name} changed sys.path on import"
    if not hasattr(module, "main"):  # shared code, no command
        assert name in {"harness", "inputs", "qm9", "rotmnist", "springs", "layer"}
        return
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out
    assert sys.path == before
