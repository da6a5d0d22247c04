"""Each group's distance on pair embeddings against its formula written on the points themselves."""
import math

import pytest
import torch

from torch_geometric_lieconv import group_from_name, lift_points
from torch_geometric_lieconv.graph import build_pair_graph

F64 = torch.float64


def planar_points(n=25, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, 2, generator=gen, dtype=F64) * 2 + 0.3
    pos[0] = torch.tensor([-1.7, 0.0], dtype=F64)  # on the angle cut
    return pos


def wrapped(angle):
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def polar(pos):
    return pos.norm(dim=-1), torch.atan2(pos[:, 1], pos[:, 0])


def pairs(group, pos, num_samples=1):
    lifted = lift_points(group, pos, None, num_samples)
    graph = build_pair_graph(group, lifted)
    return graph.edge_index[1], graph.edge_index[0], graph.dist, lifted  # i (target, u), j (source, v)


def test_translation_distance_is_the_euclidean_distance_of_the_points():
    group = group_from_name("T3")
    pos = torch.randn(20, 3, generator=torch.Generator().manual_seed(1), dtype=F64) * 3
    i, j, dist, _ = pairs(group, pos)
    torch.testing.assert_close(dist, (pos[i] - pos[j]).norm(dim=-1), atol=1e-12, rtol=0)


@pytest.mark.parametrize("alpha", [0.2, 0.6])
def test_so2_distance_is_angle_and_relative_radius(alpha):
    group = group_from_name("SO2", alpha)
    pos = planar_points()
    i, j, dist, _ = pairs(group, pos)
    r, theta = polar(pos)
    angle = wrapped(theta[i] - theta[j]).abs()
    # the cut: exactly antipodal pairs may take either sign of pi
    expected = alpha * angle + (1 - alpha) * (r[i] - r[j]).abs() / (r[i] + r[j] + 1e-3)
    torch.testing.assert_close(dist, expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("alpha", [0.3, 0.7])
def test_rxso2_distance_is_angle_and_log_radius(alpha):
    group = group_from_name("RxSO2", alpha)
    pos = planar_points(seed=2)
    i, j, dist, _ = pairs(group, pos)
    r, theta = polar(pos)
    expected = alpha * wrapped(theta[i] - theta[j]).abs() + (1 - alpha) * (r[i].log() - r[j].log()).abs()
    torch.testing.assert_close(dist, expected, atol=1e-9, rtol=0)


def test_rx_distance_is_log_radius_and_direction_chord():
    group = group_from_name("Rx", 0.4)
    pos = planar_points(seed=3)
    i, j, dist, _ = pairs(group, pos)
    r = pos.norm(dim=-1, keepdim=True)
    expected = 0.4 * (r[i] / r[j]).log().abs().squeeze(-1) + 0.6 * (pos[i] / r[i] - pos[j] / r[j]).norm(dim=-1)
    torch.testing.assert_close(dist, expected, atol=1e-9, rtol=0)


def test_se3_distance_with_identity_frames_is_the_point_distance():
    """With the same frame F at every point, log(v^-1 u) = (0, F^T (x_u - x_v)): d = (1 - alpha)|x_u - x_v|."""
    group = group_from_name("SE3", 0.2)
    pos = torch.randn(15, 3, generator=torch.Generator().manual_seed(4), dtype=F64) * 2
    frames = torch.eye(3, dtype=F64).expand(15, 1, 3, 3)
    lifted = lift_points(group, pos, None, 1, frames)
    graph = build_pair_graph(group, lifted)
    i, j = graph.edge_index[1], graph.edge_index[0]
    torch.testing.assert_close(graph.dist, 0.8 * (pos[i] - pos[j]).norm(dim=-1), atol=1e-10, rtol=0)
