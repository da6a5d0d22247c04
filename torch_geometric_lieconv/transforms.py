r"""PyG transforms of this package: point clouds to lifted graphs, images to point sets.

**Images as point sets** (:func:`pixel_grid`, :class:`ImageToPointSet`, used by
:class:`~torch_geometric_lieconv.datasets.rotmnist.RotMNIST`): an image :math:`f` of size
:math:`H \times W` becomes the point set :math:`\{(p_n, f(p_n))\}` of its pixel centres inside a
centred disc, with pixel (row :math:`i`, column :math:`j`) at

.. math::
    p_{ij} = (x, y) = \Big(j - \frac{W-1}{2},\ \frac{H-1}{2} - i\Big)

in pixel units (:math:`x` right, :math:`y` up as displayed, origin at the image centre), so a
rotation of the point set by :math:`+\theta` turns the displayed image counter-clockwise. Pixels with
:math:`\|p\| <` ``crop_radius`` are kept; the default ``14.5`` keeps the reference's 648 of the 784
pixels of a 28 x 28 image.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from .groups import LieGroup, group_from_name
from ._deprecation import deprecated_alias, renamed_keywords
from .lifted_graph import LiftedGraph, lift_graph

__all__ = ["LiftGraph", "ImageToPointSet", "RandomRotateOnGrid", "pixel_grid", "DEFAULT_CROP_RADIUS"]


class LiftGraph(BaseTransform):
    r"""Turns a point cloud ``Data(pos, x, ...)`` into its lifted graph (:func:`~torch_geometric_lieconv.lift_graph`).

    Every node-level attribute (``x``, ``z``, ...) is repeated for the ``lift_samples`` lifted
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
        dataset = QM9("data/QM9", transform=LiftGraph("T3", candidate_radius=2.0))
        for data in DataLoader(dataset[:150], batch_size=75):
            out = model.forward_lifted(data)    # [75, 1]

    Args:
        group (LieGroup or str): the group, or its name.
        lift_samples (int, optional): lifted elements per point; ``num_samples`` before 0.3.
            (default: :obj:`1`)
        candidate_radius (float, optional): the largest group radius of any ball the graph must
            serve; ``radius`` before 0.3. (default: :obj:`None`, every pair of each graph)
        max_num_neighbors (int, optional): cap on candidates per point. (default: :obj:`None`)
    """

    @renamed_keywords(num_samples="lift_samples", radius="candidate_radius")  # before 0.3
    def __init__(self, group: Union[LieGroup, str], lift_samples: int = 1, candidate_radius: Optional[float] = None,
                 max_num_neighbors: Optional[int] = None) -> None:
        self.group = group_from_name(group) if isinstance(group, str) else group
        self.lift_samples, self.candidate_radius = int(lift_samples), candidate_radius
        self.max_num_neighbors = max_num_neighbors
        if self.lift_samples < 1:
            raise ValueError(f"lift_samples must be >= 1, got {lift_samples}")
        if candidate_radius is not None and not float(candidate_radius) >= 0:
            raise ValueError(f"candidate_radius must be None or a non-negative number, got {candidate_radius}")

    num_samples = deprecated_alias("num_samples", "lift_samples")  # before 0.3
    radius = deprecated_alias("radius", "candidate_radius")  # before 0.3

    def __setstate__(self, state: dict) -> None:
        # transforms pickled before 0.3 (e.g. in a saved dataset object) hold the old attribute names
        for old, new in (("num_samples", "lift_samples"), ("radius", "candidate_radius")):
            if old in state:
                state.setdefault(new, state.pop(old))
        self.__dict__.update(state)

    def forward(self, data: Data) -> LiftedGraph:
        if getattr(data, "pos", None) is None:
            raise ValueError("LiftGraph: the data object has no 'pos' to lift")
        lifted = lift_graph(self.group, data.pos, None, self.lift_samples, self.candidate_radius,
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
        radius = "all pairs" if self.candidate_radius is None else f"{self.candidate_radius:g}"
        return f"{type(self).__name__}({self.group}, lift_samples={self.lift_samples}, candidate_radius={radius})"


#: the crop radius (pixels) that keeps the reference's 648 pixels of a 28 x 28 image
DEFAULT_CROP_RADIUS = 14.5


def pixel_grid(height: int, width: int, crop_radius: Optional[float] = DEFAULT_CROP_RADIUS) -> Tuple[Tensor, Tensor]:
    r"""Centres of the pixels inside the crop, and their row-major indices.

    Returns ``pos`` ``[n, 2]`` with :math:`(x, y) = (j - (W-1)/2, (H-1)/2 - i)` (see the module docstring)
    and ``index`` ``[n]`` with :math:`iW + j`, in row-major order. ``crop_radius=None`` keeps every pixel.

    Args:
        height (int): :math:`H`.
        width (int): :math:`W`.
        crop_radius (float, optional): keep the pixel centres closer than this to the image centre (``None``:
            all). (default: :obj:`14.5`)
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height} x {width}")
    rows = torch.arange(height, dtype=torch.float32)
    cols = torch.arange(width, dtype=torch.float32)
    y, x = torch.meshgrid((height - 1) / 2 - rows, cols - (width - 1) / 2, indexing="ij")
    pos = torch.stack([x, y], dim=-1).reshape(-1, 2)
    index = torch.arange(height * width)
    if crop_radius is not None:
        if crop_radius <= 0:
            raise ValueError(f"crop_radius must be positive, got {crop_radius}")
        keep = pos.norm(dim=-1) < crop_radius
        if not bool(keep.any()):
            raise ValueError(f"crop_radius {crop_radius} keeps no pixel of a {height} x {width} image")
        pos, index = pos[keep], index[keep]
    return pos, index


class ImageToPointSet:
    r"""Turn images into the point sets of :class:`RotMNIST`: ``x`` = the pixel values inside the crop.

    The pixel grid is computed once (per device and dtype). Call it on one image, ``[H, W]`` or ``[C, H, W]``
    (e.g. the output of ``torchvision.transforms.ToTensor()`` for MNIST), to get a
    :class:`~torch_geometric.data.Data` with ``x`` ``[n, C]`` and ``pos`` ``[n, 2]``; or use
    :meth:`batch` on ``[B, C, H, W]`` for a batch in PyG's layout.

    Args:
        height (int, optional): :math:`H`. (default: :obj:`28`)
        width (int, optional): :math:`W`. (default: :obj:`28`)
        crop_radius (float, optional): keep the pixels with :math:`\|p\| <` ``crop_radius`` (``None``:
            all pixels; see :func:`pixel_grid`). (default: :obj:`14.5`)
    """

    def __init__(self, height: int = 28, width: int = 28, crop_radius: Optional[float] = DEFAULT_CROP_RADIUS) -> None:
        self.height, self.width, self.crop_radius = int(height), int(width), crop_radius
        self.pos, self.index = pixel_grid(self.height, self.width, crop_radius)
        self._on_device: Dict[Tuple[torch.device, torch.dtype], Tuple[Tensor, Tensor]] = {}

    @property
    def num_points(self) -> int:
        return self.index.numel()

    def grid(self, device: Union[torch.device, str, None] = None, dtype: torch.dtype = torch.float32) -> Tuple[Tensor, Tensor]:
        """``(pos, index)`` with ``pos`` in ``dtype`` on ``device`` (cached).

        Args:
            device (torch.device, optional): where. (default: :obj:`None`)
            dtype (torch.dtype, optional): the positions' dtype. (default: :obj:`torch.float32`)
        """
        device = torch.device(device) if device is not None else self.pos.device
        if (device, dtype) not in self._on_device:
            self._on_device[(device, dtype)] = (self.pos.to(device, dtype), self.index.to(device))
        return self._on_device[(device, dtype)]

    def _check(self, image: Tensor, batched: bool) -> Tensor:
        """``image`` as ``[B, C, H*W]``."""
        dims = "[B, C, H, W]" if batched else "[H, W] or [C, H, W]"
        if not isinstance(image, Tensor) or image.dim() not in ((4,) if batched else (2, 3)):
            shape = list(image.shape) if isinstance(image, Tensor) else type(image).__name__
            raise ValueError(f"ImageToPointSet expects an image tensor {dims}, got {shape}")
        if tuple(image.shape[-2:]) != (self.height, self.width):
            raise ValueError(f"ImageToPointSet was built for {self.height} x {self.width} images, "
                             f"got {tuple(image.shape[-2:])}")
        if not batched:
            image = image.reshape(1, -1, self.height, self.width)
        return image.reshape(image.shape[0], image.shape[1], self.height * self.width)

    def __call__(self, image: Tensor) -> Data:
        """One image ``[H, W]`` or ``[C, H, W]`` -> ``Data(x=[n, C], pos=[n, 2])``."""
        flat = self._check(image, batched=False)[0]
        pos, index = self.grid(image.device, _pos_dtype(image))
        return Data(x=flat[:, index].t().contiguous(), pos=pos.clone())

    def batch(self, images: Tensor) -> Data:
        """Images ``[B, C, H, W]`` -> ``Data(x=[B*n, C], pos=[B*n, 2], batch=[B*n])`` (graph-major).

        Args:
            images (torch.Tensor): images ``[B, C, H, W]``.
        """
        flat = self._check(images, batched=True)
        pos, index = self.grid(images.device, _pos_dtype(images))
        num_images = flat.shape[0]
        x = flat[:, :, index].transpose(1, 2).reshape(num_images * self.num_points, flat.shape[1])
        batch = torch.arange(num_images, device=images.device).repeat_interleave(self.num_points)
        return Data(x=x, pos=pos.repeat(num_images, 1), batch=batch)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.height}x{self.width}, crop_radius={self.crop_radius}, points={self.num_points})"


class RandomRotateOnGrid(BaseTransform):
    r"""Rotate an image point set's content by a random angle while its points stay on the pixel grid.

    For a :class:`~torch_geometric.data.Data` whose ``pos`` are pixel centres of :func:`pixel_grid`
    (any crop) and ``x`` their intensities, the new intensity of the pixel at :math:`p` is the image
    at :math:`R(\theta)^{-1} p`, sampled bilinearly (zero outside the kept pixels), with
    :math:`\theta` uniform in ``[-degrees, degrees]`` (or in the interval of a pair, as for
    :class:`~torch_geometric.transforms.RandomRotate`): the displayed image turns counter-clockwise by
    :math:`\theta`, as the reference's RotMNIST augmentation does. ``pos`` is not changed, so every
    augmented image keeps the one geometry of the grid, which
    :class:`~torch_geometric_lieconv.models.ImageLieResNet` lifts and connects once; rotating the
    points instead (:class:`~torch_geometric.transforms.RandomRotate`) makes every batch a new geometry.

    Args:
        degrees (float or (float, float)): the largest rotation, in degrees, or the interval of the
            angles.
        height (int, optional): :math:`H` of the images. (default: :obj:`28`)
        width (int, optional): :math:`W` of the images. (default: :obj:`28`)
        generator (torch.Generator, optional): the source of the angles. (default: :obj:`None`, torch's
            global one)
    """

    def __init__(self, degrees: Union[float, Tuple[float, float]], height: int = 28, width: int = 28,
                 generator: Optional[torch.Generator] = None) -> None:
        low, high = (-degrees, degrees) if isinstance(degrees, (int, float)) else degrees
        if not low <= high:
            raise ValueError(f"degrees must be >= 0 or an interval (low, high) with low <= high, got {degrees}")
        self.degrees = (float(low), float(high))
        self.height, self.width, self.generator = int(height), int(width), generator

    def forward(self, data: Data) -> Data:
        pos, x = data.pos, data.x
        if pos is None or x is None or pos.dim() != 2 or pos.shape[1] != 2 or x.shape[0] != pos.shape[0]:
            raise ValueError("RandomRotateOnGrid needs an image point set: pos [n, 2] on the pixel grid and x [n, C]")
        col = pos[:, 0] + (self.width - 1) / 2
        row = (self.height - 1) / 2 - pos[:, 1]
        index = row.round().long() * self.width + col.round().long()
        off_grid = ((col - col.round()).abs().max() > 1e-4) | ((row - row.round()).abs().max() > 1e-4)
        if pos.shape[0] and (bool(off_grid) or bool((index < 0).any()) or bool((index >= self.height * self.width).any())):
            raise ValueError(f"RandomRotateOnGrid: pos are not pixel centres of a {self.height} x {self.width} "
                             f"grid (see pixel_grid)")
        low, high = self.degrees
        angle = math.radians(low + (high - low) * float(torch.rand((), generator=self.generator, dtype=torch.float64)))
        cos, sin = math.cos(angle), math.sin(angle)
        work = torch.promote_types(x.dtype, torch.float32)
        image = x.new_zeros(self.height * self.width, x.shape[1], dtype=work).index_copy(0, index, x.to(work))
        image = image.t().reshape(1, x.shape[1], self.height, self.width)
        p = pos.to(work)
        source = torch.stack([cos * p[:, 0] + sin * p[:, 1], -sin * p[:, 0] + cos * p[:, 1]], dim=-1)  # R^-1 p
        grid = torch.stack([source[:, 0] / (self.width / 2), -source[:, 1] / (self.height / 2)], dim=-1)
        values = F.grid_sample(image, grid.view(1, 1, -1, 2), mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        data = data.clone()
        data.x = values.view(x.shape[1], -1).t().to(x.dtype)
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.degrees})"


def _pos_dtype(image: Tensor) -> torch.dtype:
    """Coordinates in the image's floating dtype (float32 for integer images, e.g. uint8 MNIST)."""
    return image.dtype if image.is_floating_point() else torch.float32
