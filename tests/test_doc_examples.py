"""The code examples of the README, of the guide pages and of the package's docstrings, run as written.

Each example runs in a fresh namespace, in a folder where ``data/QM9`` holds a small QM9 fixture in
PyG's raw format (so ``QM9("data/QM9")`` processes real files and downloads nothing)."""
import os
import re
from pathlib import Path

import pytest

from torch_geometric_lieconv.testing.qm9_fixture import write_qm9_root

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "torch_geometric_lieconv"


def markdown_examples():
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]:
        text = path.read_text()
        found += [(f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}", m.group(1))
                  for m in re.finditer(r"```python\n(.*?)```", text, re.S)]
    return found


def docstring_examples():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        for m in re.finditer(r"\n( *)\.\. code-block:: python\n\n((?:\1    .*\n|\n)+)", text):
            indent = len(m.group(1)) + 4
            code = "\n".join(line[indent:] for line in m.group(2).splitlines())
            found.append((f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 2}", code))
    return found


EXAMPLES = markdown_examples() + docstring_examples()


def test_the_examples_are_found():
    names = [name for name, _ in EXAMPLES]
    assert sum(n.startswith("README") for n in names) >= 2
    assert sum(n.startswith("docs/guide/pyg.md") for n in names) >= 2
    assert any("transforms.py" in n for n in names) and any("host_syncs.py" in n for n in names)


@pytest.fixture(scope="module")
def qm9_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("examples")
    os.makedirs(folder / "data" / "QM9")
    write_qm9_root(str(folder / "data" / "QM9"), 160, seed=1)
    return folder


@pytest.mark.filterwarnings("ignore:LieConv. the ball radius")
@pytest.mark.parametrize("name,code", EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_example_runs_as_written(name, code, qm9_folder, monkeypatch):
    monkeypatch.chdir(qm9_folder)
    exec(compile(code, name, "exec"), {"__name__": "__example__"})
