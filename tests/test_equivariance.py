"""Symmetries checked at the scale of the signal: invariance errors far below the output's change
under new positions, in float64 with exact stabilizer frames, for every group; FPS against a
brute-force reference; Haar stabilizer samples; per-block graphs."""
import math

import pytest
import torch

from torch_geometric_lieconv.testing import amplify_weights
from torch_geometric_lieconv import LieResNet, QM9LieConv, group_from_name, lift_points
from torch_geometric_lieconv.equivariance import equivariance_error
from torch_geometric_lieconv.graph import build_pair_graph
from torch_geometric_lieconv.groups import random_rotations
from torch_geometric_lieconv.pool import farthest_point_subsample

F64 = torch.float64
#: every group with a symmetry, the lift samples its models use
GROUPS = {"T3": 1, "SE3": 2, "SO3": 2, "T2": 1, "SO2": 1, "RxSO2": 1, "Rx": 1, "SE2": 2, "Tx": 1, "Ty": 1}


def cloud(group, n=14, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, group.space_dim, generator=gen, dtype=F64) * 1.5
    return pos + 0.7  # off the origin, where polar lifts are undefined


def signal(forward, pos, seed=1):
    """How much the output moves when the points move: the scale every error is compared with."""
    gen = torch.Generator().manual_seed(seed)
    other = pos + torch.randn(pos.shape, generator=gen, dtype=F64) * 0.5
    return float((forward(other, None) - forward(pos, None)).abs().max())


@pytest.mark.parametrize("name,pool,continuous", [(n, p, False) for n in GROUPS for p in (True, False)]
                         + [(n, True, True) for n in ("SE3", "SO3", "SO2", "RxSO2", "SE2")])
def test_every_group_model_is_invariant_far_below_its_signal(name, pool, continuous):
    """Pooled outputs, and per-point outputs (pool=False), of a LieResNet under random elements of its
    own group (frames moved along): error < 1e-9 x the change under new positions."""
    torch.manual_seed(0)
    group = group_from_name(name)
    k = GROUPS[name]
    model = amplify_weights(LieResNet(3, 2, group, hidden_channels=16, num_layers=2, mc_samples=1000, fill=1.0,
                                lift_samples=k, pool=pool, continuous_kernel=continuous)).to(F64).eval()
    pos = cloud(group)
    x = torch.randn(pos.shape[0], 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    frames = random_rotations((pos.shape[0], k), group.frame_dim, generator=torch.Generator().manual_seed(3),
                              dtype=F64) if group.frame_dim else None

    def forward(p, f):
        return model(x, p, None, f if f is not None else frames)

    scale = signal(forward, pos)
    assert scale > 1e-3, f"{name}: the model barely depends on geometry ({scale:.2e})"
    report = equivariance_error(lambda p, f: model(x, p, None, f), group, pos, lift_samples=k, trials=3,
                                generator=torch.Generator().manual_seed(4))
    assert report.max_abs_error < 1e-9 * scale, f"{name}: error {report.max_abs_error:.2e} vs signal {scale:.2e}"


@pytest.mark.parametrize("name", ["SO3", "SE3"])
def test_qm9_models_with_rotations_are_invariant_to_translations(name):
    """The QM9 model centres molecules for groups with rotations: SO(3) alone is not translation
    invariant, the model is."""
    torch.manual_seed(0)
    model = amplify_weights(QM9LieConv(name, hidden_channels=16, num_layers=2, mc_samples=100, lift_samples=2)).to(F64).eval()
    gen = torch.Generator().manual_seed(5)
    z = torch.tensor([6, 1, 1, 8, 1, 7, 1])
    pos = torch.randn(7, 3, generator=gen, dtype=F64) * 1.4
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    frames = random_rotations((7, 2), 3, generator=gen, dtype=F64)
    out = model(z, pos, batch, frames)
    shift = torch.randn(2, 3, generator=gen, dtype=F64)[batch] * 4
    moved = model(z, pos + shift, batch, frames)
    scale = float((model(z, pos * 1.3, batch, frames) - out).abs().max())
    assert scale > 1e-3
    assert (moved - out).abs().max() < 1e-9 * scale


def brute_force_fps(dist, first, keep):
    """Farthest point sampling by its definition on a dense distance matrix."""
    chosen = [first]
    while len(chosen) < keep:
        gap = dist[:, chosen].min(1).values
        gap[chosen] = -1
        chosen.append(int(gap.argmax()))
    return sorted(chosen)


@pytest.mark.parametrize("name,ratio", [("T3", 0.3), ("SE2", 0.5), ("SO2", 0.25)])
def test_farthest_point_subsampling_equals_the_brute_force_definition(name, ratio):
    group = group_from_name(name)
    sizes = [23, 40, 9]
    parts = [cloud(group, n, seed=i) + 3 * i for i, n in enumerate(sizes)]
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    lifted = lift_points(group, torch.cat(parts), batch, 1)
    graph = build_pair_graph(group, lifted)  # all pairs: every distance is known
    kept = farthest_point_subsample(graph, ratio, generator=torch.Generator().manual_seed(7))
    start = torch.rand(len(sizes), generator=torch.Generator().manual_seed(7))  # the same first draws
    dense = torch.full((lifted.num_nodes, lifted.num_nodes), math.inf, dtype=F64)
    dense[graph.edge_index[1], graph.edge_index[0]] = graph.dist
    expected, offset = [], 0
    for g, n in enumerate(sizes):
        block = dense[offset:offset + n, offset:offset + n]
        first = min(int(start[g] * n), n - 1)
        expected += [offset + i for i in brute_force_fps(block, first, math.ceil(n * ratio))]
        offset += n
    assert kept.tolist() == sorted(expected)


def test_so3_stabilizer_samples_are_haar_distributed():
    """Random frames (and so SE(3)/SO(3) lifts) have the Haar moments E[R] = 0 and E[R_ij^2] = 1/3:
    a sampler biased towards one axis (e.g. rotations about z only) fails by hundreds of standard errors."""
    n = 20000
    rotations = random_rotations((n,), 3, generator=torch.Generator().manual_seed(11), dtype=F64)
    mean = rotations.mean(0)
    second = rotations.square().mean(0)
    standard_error = (1 / 3 / n) ** 0.5
    assert mean.abs().max() < 5 * standard_error
    assert (second - 1 / 3).abs().max() < 0.02
    # and through the lift: a point's SE(3) lift samples cover all of SO(3)
    lifted = lift_points(group_from_name("SE3"), torch.zeros(1, 3, dtype=F64), lift_samples=4000)
    from torch_geometric_lieconv.groups.spatial import so3_exp

    lifted = so3_exp(lifted.u[:, :3])
    assert lifted.mean(0).abs().max() < 5 * (1 / 3 / 4000) ** 0.5


def test_per_block_graphs_at_their_own_radii_equal_an_all_pairs_graph():
    """Blocks with different ball radii, each on its own candidate graph (built at its radius), compute
    what they compute on the graph of all pairs."""
    torch.manual_seed(0)
    group = group_from_name("SO2")
    model = amplify_weights(LieResNet(2, 3, group, hidden_channels=16, num_layers=3, mc_samples=1000, fill=[0.2, 0.4, 0.6],
                                graph_per_block=True)).to(F64).eval()
    radii = [0.3, 0.55, 0.9]
    for conv, radius in zip(model.convs, radii):
        conv.radius.fill_(radius)
    pos = cloud(group, 60)
    x = torch.randn(60, 2, generator=torch.Generator().manual_seed(3), dtype=F64)
    per_block = model(x, pos)
    edges_per_block = [model.connect(lift_points(group, pos), i).edge_index.shape[1] for i in range(3)]
    assert edges_per_block[0] < edges_per_block[1] < edges_per_block[2]  # really different graphs
    model.candidate_radius = lambda first_block=0, radii=None: None  # every pair, for every block
    torch.testing.assert_close(model(x, pos), per_block, atol=1e-12, rtol=1e-12)


def test_position_gradients_pass_gradcheck():
    """Forces come from autograd through lift, pair logs and the layers: checked against finite differences."""
    torch.manual_seed(0)
    model = QM9LieConv("SE3", hidden_channels=8, num_layers=1, mc_samples=100, lift_samples=2).to(F64).eval()
    gen = torch.Generator().manual_seed(6)
    z = torch.tensor([6, 1, 8, 1])
    pos = torch.randn(4, 3, generator=gen, dtype=F64).requires_grad_(True)
    frames = random_rotations((4, 2), 3, generator=gen, dtype=F64)
    assert torch.autograd.gradcheck(lambda p: model(z, p, None, frames), (pos,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("group,identity", [("T2", "force"), ("SO2", "torque"), ("SE2", "both")])
def test_noether_identities_of_the_vector_field_at_physical_force_scale(group, identity):
    """dp/dt = -dV/dq of a G-invariant potential: total force zero (translations), total torque zero
    (rotations about the origin), with forces as large as the true spring forces."""
    from torch_geometric_lieconv.models import HamiltonianLieConv
    from torch_geometric_lieconv.testing import at_physical_force, spring_systems

    z, params, batch = spring_systems(4, seed=3)
    torch.manual_seed(0)
    untrained = HamiltonianLieConv(2, group, hidden_channels=32, num_layers=2).to(torch.float64).eval()
    model = at_physical_force(untrained, z, params, batch, 4)
    with torch.no_grad():
        field = model(None, z, params, batch, 4)
    q, force = z[:, :2], field[:, 2:]
    scale = float(force.abs().max())
    assert scale > 1.0
    from torch_scatter import scatter_add

    total_force = scatter_add(force, batch, dim=0).abs().max()
    torque = scatter_add(q[:, 0] * force[:, 1] - q[:, 1] * force[:, 0], batch, dim=0).abs().max()
    if identity in ("force", "both"):
        assert total_force < 1e-10 * scale
    if identity in ("torque", "both"):
        assert torque < 1e-10 * scale * float(q.abs().max())
    if identity == "force":
        assert torque > 1e-4 * scale  # a T(2) potential has no rotation symmetry: the check is not vacuous


@pytest.mark.parametrize("kwargs", [dict(group="SE3", knn=True, mc_samples=5, lift_samples=2),
                                    dict(group="T3", fill=0.4, mc_samples=1000),
                                    dict(group="SO3", knn=True, mc_samples=4, lift_samples=2)])
def test_batching_never_mixes_molecules(kwargs):
    """A batch's outputs equal each molecule's alone (knn, balls, SE(3)/SO(3) frames fixed), far below
    the signal: neighbourhoods, ball radii and pooling stay inside each graph."""
    torch.manual_seed(0)
    model = amplify_weights(QM9LieConv(hidden_channels=16, num_layers=2, **kwargs)).to(F64).eval()
    for conv in model.net.convs:
        conv.radius.fill_(1.3)
    gen = torch.Generator().manual_seed(8)
    sizes = [5, 1, 9, 3]
    z = torch.tensor([6, 1, 8, 7, 9])[torch.randint(0, 5, (sum(sizes),), generator=gen)]
    pos = torch.randn(sum(sizes), 3, generator=gen, dtype=F64) * 1.4
    batch = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    k = kwargs.get("lift_samples", 1)
    frames = random_rotations((sum(sizes), k), 3, generator=gen, dtype=F64) if k > 1 else None
    together = model(z, pos, batch, frames)
    alone, start = [], 0
    for n in sizes:
        part = slice(start, start + n)
        alone.append(model(z[part], pos[part], None, None if frames is None else frames[part]))
        start += n
    alone = torch.cat(alone)
    scale = float((model(z, pos * 1.2, batch, frames) - together).abs().max())
    assert scale > 1e-3
    assert (together - alone).abs().max() < 1e-9 * scale


@pytest.mark.parametrize("name", ["SO2", "SE2", "RxSO2", "SO3", "SE3"])
def test_continuous_kernel_input_has_no_jump_where_the_relative_angle_crosses_pi(name):
    """A pair whose relative rotation angle goes from pi - eps to pi + eps: log(v^-1 u) jumps (its angle
    flips sign), the matrix features of the continuous kernel input move by O(eps)."""
    group = group_from_name(name)
    eps = 1e-4
    d = group.space_dim
    pos = torch.tensor([[1.3, 0.2, 0.4][:d], [-1.1, -0.2, -0.3][:d]], dtype=F64)
    features, raw = [], []
    for angle in (math.pi - eps, math.pi + eps):
        c, s_ = math.cos(angle), math.sin(angle)
        turn = torch.eye(d, dtype=F64)
        turn[:2, :2] = torch.tensor([[c, -s_], [s_, c]], dtype=F64)
        if group.frame_dim:  # the second point's stabilizer frame turned by the angle about the last axis
            frames = torch.eye(d, dtype=F64).expand(2, 1, d, d).clone()
            frames[1, 0] = turn
            lifted = lift_points(group, pos, None, 1, frames)
        else:  # polar lifts: the second point itself at that angle from the first (same radius ratio)
            moved = pos.clone()
            moved[1] = turn @ pos[0] * (pos[1].norm() / pos[0].norm())
            lifted = lift_points(group, moved, None, 1)
        abq = group.pair_embedding(lifted.u, lifted.q, torch.tensor([[1], [0]]))
        raw.append(abq)
        features.append(group.continuous_kernel_input(abq))
    assert (features[1] - features[0]).abs().max() < 100 * eps
    if d == 2:
        assert (raw[1] - raw[0]).abs().max() > 1.0  # the log itself jumps across the cut
