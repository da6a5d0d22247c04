"""Shared options and fixtures: ``--runslow``, a fixed seed per test, one thread for modules of tiny
tensors, and tiny QM9 and RotMNIST roots in their raw formats."""
import pytest
import torch

from torch_geometric_lieconv.datasets.rotmnist import RotMNIST
from torch_geometric_lieconv.testing import write_qm9_root, write_rotmnist_root

#: molecules of the tiny QM9 root of :func:`qm9_root`
NUM_MOLECULES = 30


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def single_thread():
    """Run a test module on one thread (its tensors are tiny: OpenMP hand-offs only cost time, above
    all on a machine shared with other jobs); use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def qm9_root(tmp_path_factory):
    """A QM9 root of :data:`NUM_MOLECULES` generated molecules: ``(root, molecules)``."""
    root = tmp_path_factory.mktemp("qm9")
    molecules = write_qm9_root(str(root), NUM_MOLECULES, seed=0)
    return str(root), molecules


@pytest.fixture
def rotmnist_root(tmp_path, monkeypatch):
    """``make(train_images, train_labels, test_images, test_labels) -> root``: a RotMNIST root in the
    benchmark's raw layout, under which any download attempt fails the test."""

    def make(train_images, train_labels, test_images, test_labels):
        root = write_rotmnist_root(str(tmp_path), train_images, train_labels, test_images, test_labels)
        monkeypatch.setattr(RotMNIST, "download", lambda self: pytest.fail("RotMNIST tried to download"))
        return root

    return make
