"""LieConv inside an ordinary PyG model: SE(3)-aware geometry features, then a GCN and PyG pooling.

    python examples/mixed_pyg_model.py

Builds random molecules as a PyG ``Batch``, lifts them to SE(3), runs two LieConv layers on the
lifted points, averages the lift samples back onto the atoms, passes the result through PyG's
``GCNConv`` on a k-nearest-neighbour graph (``torch_cluster.knn_graph``) and pools per molecule with
``global_add_pool``. It then checks that the whole model is invariant to a rotation + translation
(with the stabilizer frames transformed along, i.e. exactly) and trains it for a few steps.
"""
import torch
from torch import nn
from torch_cluster import knn_graph
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GCNConv, global_add_pool
from torch_scatter import scatter_mean

from torch_geometric_lieconv import SE3, lift_points
from torch_geometric_lieconv.conv import LieConv
from torch_geometric_lieconv.equivariance import equivariance_error
from torch_geometric_lieconv.graph import build_pair_graph


class LieConvThenGCN(nn.Module):
    def __init__(self, in_channels: int, hidden: int = 32, lift_samples: int = 4) -> None:
        super().__init__()
        self.group, self.lift_samples = SE3(), lift_samples
        self.embed = nn.Linear(in_channels, hidden)
        self.conv1 = LieConv(hidden, hidden, self.group, mc_samples=16, fill=1.0)
        self.conv2 = LieConv(hidden, hidden, self.group, mc_samples=16, fill=1.0)
        self.gcn = GCNConv(hidden, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x, pos, batch, frames=None):
        lifted = lift_points(self.group, pos, batch, self.lift_samples, frames)
        graph = build_pair_graph(self.group, lifted)
        h = self.embed(x)[lifted.node_index]
        h = nn.functional.silu(self.conv1(h, graph))
        h = nn.functional.silu(self.conv2(h, graph))
        h = scatter_mean(h, lifted.node_index, dim=0, dim_size=x.shape[0])  # back to atoms
        edge_index = knn_graph(pos, k=4, batch=batch)  # an invariant graph for the GCN
        h = nn.functional.silu(self.gcn(h, edge_index))
        return self.out(global_add_pool(h, batch)).squeeze(-1)


def random_molecules(num: int, generator: torch.Generator) -> Batch:
    data = []
    for _ in range(num):
        n = int(torch.randint(3, 15, (1,), generator=generator))
        data.append(Data(x=torch.randn(n, 5, generator=generator), pos=torch.randn(n, 3, generator=generator) * 1.5,
                         y=torch.randn(1, generator=generator)))
    return Batch.from_data_list(data)


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    batch = random_molecules(8, gen)
    model = LieConvThenGCN(5)
    print(model)
    out = model(batch.x, batch.pos, batch.batch)
    print("predictions:", out.detach().numpy().round(4))

    def forward(pos, frames):
        torch.manual_seed(0)
        return model(batch.x, pos, batch.batch, frames)

    report = equivariance_error(forward, model.group, batch.pos, num_samples=model.lift_samples, trials=3)
    print("exact SE(3) invariance:", report)

    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(30):
        loss = nn.functional.mse_loss(model(batch.x, batch.pos, batch.batch), batch.y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 10 == 0 or step == 29:
            print(f"step {step:2d}  loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
