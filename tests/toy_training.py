"""A toy training problem for the tests of the trainer and of run folders: small random graphs, an MLP
with dropout (it consumes the RNG) and a buffer updated in training, and a :class:`Trainer` on them."""
from __future__ import annotations

import torch
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import global_mean_pool

from torch_geometric_lieconv.training import Trainer, seed_everything


def toy_graphs(n: int = 24, seed: int = 1):
    """Small random graphs whose target is a fixed nonlinear function of their mean feature."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(n):
        size = int(torch.randint(2, 6, (1,), generator=g))
        x = torch.randn(size, 3, generator=g)
        y = torch.tanh(x.mean(0) @ torch.tensor([1.0, -2.0, 0.5])).view(1)
        graphs.append(Data(x=x, y=y))
    return graphs


class ToyNet(nn.Module):
    """MLP on nodes, mean pool, head; optional dropout (consumes the RNG) and a buffer updated in training."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 16), nn.SiLU(), nn.Dropout(dropout), nn.Linear(16, 16), nn.SiLU())
        self.head = nn.Linear(16, 1)
        self.register_buffer("seen", torch.zeros(()))

    def forward(self, data):
        if self.training:
            self.seen += data.num_graphs  # like LieConv's adaptive radius: state that changes in training
        return self.head(global_mean_pool(self.body(data.x), data.batch)).squeeze(-1)


def mse_loss(model, batch):
    return (model(batch) - batch.y).pow(2).mean()


def make_trainer(out_dir, epochs=4, dropout=0.2, evaluate=True, **kwargs):
    seed_everything(0)
    model = ToyNet(dropout)
    data = toy_graphs()
    valid = toy_graphs(8, seed=2)

    def evaluate_fn(m):
        from torch_geometric.loader import DataLoader

        with torch.no_grad():
            batch = next(iter(DataLoader(valid, batch_size=len(valid))))
            return {"valid_mae": float((m(batch) - batch.y).abs().mean())}

    kwargs.setdefault("config", {"model": "toy", "dropout": dropout})
    kwargs.setdefault("lr", 1e-2)
    kwargs.setdefault("plot", False)
    return Trainer(model, data, batch_size=8, loss_fn=mse_loss, out_dir=str(out_dir), epochs=epochs,
                   evaluate_fn=evaluate_fn if evaluate else None, progress=False, **kwargs)
