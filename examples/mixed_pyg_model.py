"""LieConv mixed with PyG's attention layers over one lifted graph.

    python examples/mixed_pyg_model.py

Random molecules are lifted to SE(3) (``lift_graph``: 4 stabilizer samples per atom, candidate pairs
with their pair embeddings abq as ``edge_attr``). The same ``edge_index`` and ``edge_attr`` then feed a
LieConv, PyG's ``GATConv(edge_dim=...)`` and ``TransformerConv(edge_dim=...)``: abq is invariant, so the
attention layers see the geometry invariantly too. The model is a PyG ``Sequential`` with mean pooling
per molecule. The script checks that it is invariant to a rotation + translation (with the stabilizer
frames moved along and the same Monte Carlo
neighbourhoods drawn, i.e. exactly) and trains it for a few steps.
"""
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GATConv, Sequential, TransformerConv, global_mean_pool

from torch_geometric_lieconv import SE3, LieConv, lift_graph
from torch_geometric_lieconv.groups import random_rotations

LIFT_SAMPLES = 4


def build_model(in_channels: int, hidden: int = 32) -> Sequential:
    group = SE3()
    edge_dim = group.embedding_dim  # abq of SE(3): the 6 Lie algebra coordinates of v^-1 u
    return Sequential("x, edge_index, edge_attr, batch", [
        (nn.Linear(in_channels, hidden), "x -> x"),
        (LieConv(hidden, hidden, group, mc_samples=16, fill=1.0), "x, edge_index, edge_attr -> x"),
        nn.SiLU(),
        (GATConv(hidden, hidden, heads=2, concat=False, edge_dim=edge_dim), "x, edge_index, edge_attr -> x"),
        nn.SiLU(),
        (TransformerConv(hidden, hidden, edge_dim=edge_dim), "x, edge_index, edge_attr -> x"),
        (global_mean_pool, "x, batch -> x"),
        nn.Linear(hidden, 1),
    ])


def random_molecules(num: int, generator: torch.Generator) -> Batch:
    data = []
    for _ in range(num):
        n = int(torch.randint(3, 15, (1,), generator=generator))
        data.append(Data(x=torch.randn(n, 5, generator=generator), pos=torch.randn(n, 3, generator=generator) * 1.5,
                         y=torch.randn(1, generator=generator)))
    return Batch.from_data_list(data)


def predict(model: Sequential, batch: Batch, pos: torch.Tensor, frames: torch.Tensor, seed=None) -> torch.Tensor:
    """Lift, connect and run the model; ``seed`` fixes LieConv's Monte Carlo neighbourhood draw."""
    if seed is not None:
        torch.manual_seed(seed)
    graph = lift_graph(SE3(), pos, batch.batch, lift_samples=LIFT_SAMPLES, frames=frames)
    return model(batch.x[graph.node_index], graph.edge_index, graph.edge_attr, graph.batch).squeeze(-1)


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    batch = random_molecules(8, gen)
    model = build_model(5).eval()
    print(model)
    with torch.no_grad():  # the invariance check in float64, where rounding does not hide a defect
        model.double()
        pos = batch.pos.double()
        batch.x = batch.x.double()
        frames = random_rotations((batch.num_nodes, LIFT_SAMPLES), 3, generator=gen, dtype=torch.float64)
        out = predict(model, batch, pos, frames, seed=1)
        print("predictions:", out.numpy().round(4))
        rotation = random_rotations((), 3, generator=gen, dtype=torch.float64)
        shift = torch.randn(3, generator=gen, dtype=torch.float64) * 4
        moved = predict(model, batch, pos @ rotation.T + shift, rotation @ frames, seed=1)
        other = predict(model, batch, torch.randn(pos.shape, generator=gen, dtype=torch.float64) * 1.5, frames, seed=1)
        print(f"rotation + translation changes the output by {float((moved - out).abs().max()):.1e} "
              f"(new positions: {float((other - out).abs().max()):.1e})")
        model.float()
        batch.x = batch.x.float()

    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(30):
        loss = nn.functional.mse_loss(predict(model, batch, batch.pos, None), batch.y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 10 == 0 or step == 29:
            print(f"step {step:2d}  loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
