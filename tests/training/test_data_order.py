"""The order in which the Trainer sees its samples, and the claims of ``training/distributed.py``'s docstring:

* every epoch's permutation is ``torch.randperm(n, generator=seed + epoch)``, independent of the RNG
  that the model or the loss consume: epochs differ, the same seed repeats, another seed does not;
* resuming continues the same order (``fit(max_epochs=1)`` + ``fit(resume=True)`` == one ``fit``);
* under several processes the same permutation is dealt round-robin, so the union of the ranks'
  k-th batches is the single-process k-th batch; when ``len(dataset)`` is not a multiple of the world
  size the padding with repeated samples is the only difference.

Each step's sample ids are recorded by a ``loss_fn`` that reads ``batch.idx``.
"""
from typing import List

import pytest
import torch
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from torch_geometric_lieconv.training import Trainer
from torch_geometric_lieconv.training.distributed import Processes

pytestmark = pytest.mark.usefixtures("single_thread")

BATCH = 4


def dataset(n: int) -> List[Data]:
    return [Data(idx=torch.tensor([i]), x=torch.full((1, 1), float(i)), y=torch.tensor([0.1 * i]))
            for i in range(n)]


class Recorder:
    """A loss that records the sample ids of each step and consumes the global RNG a data-dependent
    number of times (as dropout or augmentation would), which must not move the data order."""

    def __init__(self) -> None:
        self.steps: List[List[int]] = []

    def __call__(self, model, batch):
        self.steps.append(batch.idx.tolist())
        torch.rand(1 + int(batch.idx[0]))
        return (model(batch.x).squeeze(-1) - batch.y).pow(2).mean()


def trainer(out_dir, n: int = 10, seed: int = 0, epochs: int = 3) -> Trainer:
    torch.manual_seed(123)
    recorder = Recorder()
    t = Trainer(nn.Linear(1, 1), dataset(n), batch_size=BATCH, loss_fn=recorder, out_dir=str(out_dir), epochs=epochs,
                seed=seed, progress=False, plot=False, tensorboard=False, lr=1e-2)
    t.recorder = recorder
    return t


def epochs_of(steps: List[List[int]], n: int) -> List[List[int]]:
    flat = [i for step in steps for i in step]
    assert len(flat) % n == 0
    return [flat[e * n:(e + 1) * n] for e in range(len(flat) // n)]


def documented_permutation(n: int, seed: int, epoch: int) -> List[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()


def test_each_epoch_is_a_fresh_permutation_drawn_from_seed_plus_epoch(tmp_path):
    n = 10
    t = trainer(tmp_path / "a", n=n, seed=7)
    t.fit()
    orders = epochs_of(t.recorder.steps, n)
    assert len(orders) == 3 and all(sorted(o) == list(range(n)) for o in orders)
    assert orders == [documented_permutation(n, 7, e) for e in range(3)]
    assert orders[0] != orders[1] and orders[1] != orders[2] and orders[0] != orders[2]
    # steps are consecutive slices of the permutation (the last one short: no drop_last)
    assert [len(s) for s in t.recorder.steps[:3]] == [4, 4, 2]


def test_same_seed_same_order_other_seed_other_order(tmp_path):
    n = 10
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        t = trainer(tmp_path / name, n=n, seed=seed)
        torch.rand(int(ord(name)))  # whatever the global RNG did before fit
        t.fit()
        runs[name] = t.recorder.steps
    assert runs["a"] == runs["b"]
    assert all(x != y for x, y in zip(epochs_of(runs["a"], n), epochs_of(runs["c"], n)))


def test_resume_continues_the_same_order(tmp_path):
    n = 10
    straight = trainer(tmp_path / "straight", n=n, seed=5)
    straight.fit()
    first = trainer(tmp_path / "resumed", n=n, seed=5)
    first.fit(max_epochs=1)
    second = trainer(tmp_path / "resumed", n=n, seed=5)  # a new process rebuilds everything
    second.fit(resume=True, max_epochs=1)
    third = trainer(tmp_path / "resumed", n=n, seed=5)
    third.fit(resume=True)
    assert first.recorder.steps + second.recorder.steps + third.recorder.steps == straight.recorder.steps
    assert len(epochs_of(third.recorder.steps, n)) == 1


def rank_batches(n: int, seed: int, epoch: int, world: int) -> List[List[List[int]]]:
    """Each rank's batches of one epoch, with the sampler of ``Processes`` and the loader the Trainer
    builds (``batch_size // world`` per rank), without a process group."""
    out = []
    for rank in range(world):
        processes = Processes("cpu")
        processes.rank, processes.world_size = rank, world
        sampler = processes.sampler(dataset(n), seed)
        sampler.set_epoch(epoch)
        loader = DataLoader(dataset(n), batch_size=BATCH // world, sampler=sampler)
        out.append([batch.idx.tolist() for batch in loader])
    return out


@pytest.mark.parametrize("n", [12, 11])
def test_union_of_the_ranks_kth_batches_is_the_single_process_kth_batch(tmp_path, n):
    single = trainer(tmp_path / "one", n=n, seed=2)
    single.fit()
    steps_per_epoch = single.steps_per_epoch
    for epoch in range(3):
        one = single.recorder.steps[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch]
        ranks = rank_batches(n, 2, epoch, world=2)
        assert len(ranks[0]) == len(ranks[1]) == len(one)
        for k, batch in enumerate(one):
            union = sorted(ranks[0][k] + ranks[1][k])
            if n % 2 == 0 or k < len(one) - 1:
                assert union == sorted(batch), (epoch, k)
                # dealt round-robin: rank r holds the single batch's samples r, r + 2, ...
                assert ranks[0][k] == batch[0::2] and ranks[1][k] == batch[1::2]
            else:  # padded with the permutation's first sample: the only difference
                assert union == sorted(batch + [one[0][0]]), (epoch, k)
