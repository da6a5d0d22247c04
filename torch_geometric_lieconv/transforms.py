r"""PyG transforms of this package."""
from __future__ import annotations

from typing import Optional, Union

from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from .groups import LieGroup, group_from_name
from .lift import LiftedGraph, lift_graph

__all__ = ["LiftGraph"]


class LiftGraph(BaseTransform):
    r"""Turns a point cloud ``Data(pos, x, ...)`` into its lifted graph (:func:`~torch_geometric_lieconv.lift_graph`).

    Every node-level attribute (``x``, ``z``, ...) is repeated for the ``num_samples`` lifted
    elements of its point; graph-level attributes (``y``, ...) are kept; the input graph's own
    edges (e.g. QM9's bonds) are dropped, since the lifted graph's edges are the candidate pairs.
    A random lift (stabilizer samples, e.g. SE(3)) is redrawn on every call, so a dataset transform
    gives a fresh Monte Carlo draw each epoch. Groups with rotations act about the origin: centre
    the points first where that matters (``Compose([Center(), LiftGraph("SO3")])``).

    .. code-block:: python

        from torch_geometric.datasets import QM9
        from torch_geometric.loader import DataLoader
        from torch_geometric_lieconv import QM9LieConv
        from torch_geometric_lieconv.transforms import LiftGraph

        model = QM9LieConv("T3", hidden_channels=32, num_layers=2, fill=0.5)   # balls up to 2.0
        dataset = QM9("data/QM9", transform=LiftGraph("T3", radius=2.0))
        for data in DataLoader(dataset[:150], batch_size=75):
            out = model.forward_lifted(data)    # [75, 1]

    Args:
        group (LieGroup or str): the group, or its name.
        num_samples (int, optional): lifted elements per point. (default: :obj:`1`)
        radius (float, optional): the largest group radius of any ball the graph must serve.
            (default: :obj:`None`, every pair of each graph)
        max_num_neighbors (int, optional): cap on candidates per point. (default: :obj:`None`)
    """

    def __init__(self, group: Union[LieGroup, str], num_samples: int = 1, radius: Optional[float] = None,
                 max_num_neighbors: Optional[int] = None) -> None:
        self.group = group_from_name(group) if isinstance(group, str) else group
        self.num_samples, self.radius, self.max_num_neighbors = int(num_samples), radius, max_num_neighbors
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if radius is not None and not float(radius) >= 0:
            raise ValueError(f"radius must be None or a non-negative number, got {radius}")

    def forward(self, data: Data) -> LiftedGraph:
        if getattr(data, "pos", None) is None:
            raise ValueError("LiftGraph: the data object has no 'pos' to lift")
        lifted = lift_graph(self.group, data.pos, None, self.num_samples, self.radius,
                            max_num_neighbors=self.max_num_neighbors)
        skip = {"pos", "edge_index", "edge_attr", "batch", "ptr", "num_nodes"}
        for key, value in data.items():
            if key in skip or data.is_edge_attr(key):
                continue
            if data.is_node_attr(key):
                value = value.index_select(data.__cat_dim__(key, value), lifted.node_index)
            lifted[key] = value
        return lifted

    def __repr__(self) -> str:
        radius = "all pairs" if self.radius is None else f"{self.radius:g}"
        return f"{type(self).__name__}({self.group}, num_samples={self.num_samples}, radius={radius})"
