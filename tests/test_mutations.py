"""The mutation check (tests/mutation_check.py) as a slow test: every planted bug must be caught."""
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_every_planted_bug_is_caught():
    script = Path(__file__).with_name("mutation_check.py")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stdout[-4000:]
