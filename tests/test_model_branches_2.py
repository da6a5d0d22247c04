"""Branches of ``models/image.py``, ``models/lieresnet.py``, ``pool.py``, ``transforms.py`` and
``datasets/qm9.py`` that the other tests leave out, each stated as a fact: an error that names the
problem, or a path that agrees with another path or with an independent computation."""
import os
import pickle

import pytest
import torch
from torch_geometric.data import Data

from torch_geometric_lieconv import LieResNet
from torch_geometric_lieconv.datasets import qm9 as qm9_module
from torch_geometric_lieconv.groups import SO2, T
from torch_geometric_lieconv.models.image import ImageLieResNet, layer_schedule
from torch_geometric_lieconv.models.shared_geometry import LiftedGraphCache, SharedGeometry, replicate_graph
from torch_geometric_lieconv.models.lieresnet import BottleBlock
from torch_geometric_lieconv.pool import farthest_point_subsample
from torch_geometric_lieconv.transforms import LiftGraph, pixel_grid

pytestmark = pytest.mark.usefixtures("single_thread")


def _points(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g), torch.rand(n, 1, generator=g)


def _tiny_image_model(**kwargs):
    options = dict(group="SO2", hidden_channels=4, num_layers=1, mc_samples=4, num_classes=3)
    options.update(kwargs)
    return ImageLieResNet(**options)


# ---------------------------------------------------------------------------------------------- models/image.py
def test_layer_schedule_refuses_zero_layers():
    with pytest.raises(ValueError, match="num_layers must be >= 1, got 0"):
        layer_schedule(0.5, 0.1, 0)


def test_layer_schedule_refuses_a_width_that_is_not_a_multiple_of_4():
    with pytest.raises(ValueError, match="hidden_channels must be a positive multiple of 4, got 6"):
        layer_schedule(0.5, 0.1, 2, hidden_channels=6)


def test_lifted_graph_cache_misses_on_a_different_key_and_hits_on_the_same():
    cache, pos, batch = LiftedGraphCache(), torch.randn(4, 2), torch.zeros(4, dtype=torch.long)
    value = ("lifted", "graph")
    assert cache.get(pos, batch, 1.0) is None  # empty
    assert (cache.hits, cache.misses) == (0, 1)
    cache.put(pos, batch, 1.0, value)
    assert cache.get(pos, batch, 2.0) is None  # another radius
    assert cache.get(pos + 1, batch, 1.0) is None  # other points
    assert (cache.hits, cache.misses) == (0, 3)
    assert cache.get(pos.clone(), batch.clone(), 1.0) is value
    assert (cache.hits, cache.misses) == (1, 3)
    cache.clear()
    assert cache.get(pos, batch, 1.0) is None


def test_replicate_graph_without_table_positions_matches_the_one_with_them():
    """A table with no flat positions (``position=None``) replicates to the same edges, distances and slots
    as the complete one, and stays without positions."""
    model = LieResNet(1, 2, SO2(), hidden_channels=4, num_layers=1, mc_samples=4)
    _, single = model.lift_and_connect(_points(5)[0])
    bare = replicate_graph(single, 1)  # a copy of the graph
    bare.table = single.table._replace(position=None)
    full, stripped = replicate_graph(single, 3), replicate_graph(bare, 3)
    assert stripped.table.position is None and full.table.position is not None
    for name in ("edge_index", "edge_attr", "dist", "batch"):
        assert torch.equal(getattr(full, name), getattr(stripped, name)), name
    assert torch.equal(full.table.slots, stripped.table.slots) and torch.equal(full.table.mask, stripped.table.mask)


def test_shared_geometry_refuses_more_starts_than_graphs():
    model = LieResNet(1, 2, SO2(), hidden_channels=4, num_layers=1, mc_samples=4)
    lifted, graph = model.lift_and_connect(_points(5)[0])
    geometry = SharedGeometry(lifted, graph, 2, 5)
    with pytest.raises(ValueError, match="3 starts for a batch of 2 graphs"):
        geometry.sample(0.5, torch.zeros(3, dtype=torch.long))


def test_image_model_takes_a_group_object():
    group = SO2()
    model = _tiny_image_model(group=group)
    assert model.group is group and model.lift_samples == 1


def test_image_model_refuses_alpha_with_a_group_object():
    with pytest.raises(ValueError, match="alpha applies to a group given by name"):
        _tiny_image_model(group=SO2(), alpha=0.5)


def test_image_model_refuses_a_non_positive_input_std():
    with pytest.raises(ValueError, match="input_std must be positive, got 0"):
        _tiny_image_model(input_std=0.0)


def test_image_model_keeps_given_lift_samples():
    assert _tiny_image_model(group="SE2", lift_samples=3).lift_samples == 3


def test_image_model_refuses_candidate_headroom_below_one():
    with pytest.raises(ValueError, match="candidate_headroom must be >= 1, got 0.5"):
        _tiny_image_model(candidate_headroom=0.5)


def test_radii_from_data_on_too_many_points_equals_the_evenly_spaced_subset():
    """Past ``max_points`` lifted points the radii come from the evenly spaced ones: the same radii as from
    those points alone (SO(2): one deterministic lift sample per point)."""
    pos = _points(12, seed=3)[0]
    index = torch.linspace(0, 11, 5).round().long()
    radii = []
    for points, max_points in ((pos, 5), (pos[index], 2048)):
        model = _tiny_image_model(num_layers=2, total_ds=0.5)
        model._radii_from_data(points, None, max_points=max_points)
        radii.append(torch.stack([block.conv.radius.detach().clone() for block in model.blocks]))
    assert torch.equal(radii[0], radii[1])
    assert bool((radii[0] < 2.0).any())  # they were set from the data (initial radius 2.0)


def test_image_model_leaves_batches_of_different_sizes_unshared():
    """Graphs of different sizes are not copies of one point set: nothing is cached and the output is the
    one without the cache (same random draws)."""
    pos, x = _points(9, seed=1)
    batch = torch.tensor([0] * 4 + [1] * 5)
    outs = []
    for cache_graph in (True, False):
        torch.manual_seed(0)
        model = _tiny_image_model(cache_graph=cache_graph, radius_from_data=False).eval()
        torch.manual_seed(1)
        outs.append(model(x, pos, batch))
        assert len(model.graph_cache) == 0
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_shared_samples_without_graph_per_block_gives_every_copy_the_single_image_output():
    """``shared_samples`` with ``graph_per_block=False``: the later blocks' graph is the subgraph of the
    first one on the shared kept points; with nearest neighbours every copy of an image gets the logits of
    that image alone (one start drawn either way)."""
    torch.manual_seed(0)
    model = _tiny_image_model(num_layers=2, total_ds=0.25, knn=True, shared_samples=True, graph_per_block=False,
                              radius_from_data=False).eval()
    assert model.graph_per_block is False
    pos, x = _points(8, seed=2)
    torch.manual_seed(3)
    single = model(x, pos)
    torch.manual_seed(3)
    batched = model(x.repeat(3, 1), pos.repeat(3, 1), torch.arange(3).repeat_interleave(8))
    torch.testing.assert_close(batched, single.expand(3, -1))


def test_forward_images_refuses_images_without_a_channel_axis():
    with pytest.raises(ValueError, match=r"expects images \[B, C, H, W\], got \[2, 5, 5\]"):
        _tiny_image_model().forward_images(torch.rand(2, 5, 5))


# ---------------------------------------------------------------------------------------------- models/lieresnet.py
def test_bottle_block_refuses_channels_not_divisible_by_4():
    with pytest.raises(ValueError, match="divisible by 4, got 6 -> 8"):
        BottleBlock(6, 8, SO2())


def test_per_node_outputs_refuse_subsampling():
    with pytest.raises(ValueError, match="pool=False needs ds_frac == 1"):
        LieResNet(1, 2, SO2(), hidden_channels=4, num_layers=1, ds_frac=0.5, pool=False)


def test_forward_refuses_features_of_the_wrong_shape():
    model = LieResNet(1, 2, SO2(), hidden_channels=4, num_layers=1)
    pos = _points(5)[0]
    with pytest.raises(ValueError, match=r"x must have shape \[5, 1\], got \[5, 2\]"):
        model(torch.rand(5, 2), pos)


def test_forward_refuses_a_batch_of_the_wrong_shape():
    model = LieResNet(1, 2, SO2(), hidden_channels=4, num_layers=1)
    pos, x = _points(5)
    with pytest.raises(ValueError, match=r"batch must have shape \[5\] to match pos, got \[4\]"):
        model(x, pos, torch.zeros(4, dtype=torch.long))


def test_forward_lifted_refuses_a_tensor_first():
    model = LieResNet(1, 2, SO2(), hidden_channels=4, num_layers=1)
    with pytest.raises(TypeError, match="takes the lifted graph first"):
        model.forward_lifted(torch.rand(5, 1))


def test_forward_lifted_refuses_missing_features():
    from torch_geometric_lieconv import lift_graph
    model = LieResNet(1, 2, SO2(), hidden_channels=4, num_layers=1)
    data = lift_graph(SO2(), _points(5)[0], None, 1)
    data.x = None
    with pytest.raises(ValueError, match=r"x must have shape \[5, 1\], got None"):
        model.forward_lifted(data)


def _blockless_model_and_graphs():
    torch.manual_seed(0)
    model = LieResNet(1, 2, SO2(), hidden_channels=4, num_layers=0).eval()
    pos, x = _points(7)
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    per_point = model.head(model.lin_in(x))
    expected = torch.stack([per_point[:3].mean(0), per_point[3:].mean(0)])
    return model, x, pos, batch, expected


def test_a_model_without_blocks_is_the_pooled_head_of_the_input_layer():
    """num_layers=0: no blocks, so forward_lifted is the mean over each graph's points of head(lin_in(x))."""
    from torch_geometric_lieconv import lift_graph
    model, x, pos, batch, expected = _blockless_model_and_graphs()
    assert len(model.blocks) == 0
    data = lift_graph(SO2(), pos, batch, 1)
    data.x = x
    torch.testing.assert_close(model.forward_lifted(data), expected)


def test_forward_of_a_model_without_blocks_agrees_with_forward_lifted():
    """``num_layers=0`` (lift, head, pooling): forward once raised 'max() arg is an empty sequence' in
    candidate_radius, which had no ball radius to take the largest of."""
    model, x, pos, batch, expected = _blockless_model_and_graphs()
    torch.testing.assert_close(model(x, pos, batch), expected)


def test_lieresnet_refuses_a_width_list_of_the_wrong_length():
    with pytest.raises(ValueError, match="num_layers \\+ 1 = 3 widths, got 2"):
        LieResNet(1, 2, SO2(), hidden_channels=[4, 8], num_layers=2)


def test_lieresnet_refuses_a_fill_list_of_the_wrong_length():
    with pytest.raises(ValueError, match="fill must be a number or 2 numbers, got 3"):
        LieResNet(1, 2, SO2(), hidden_channels=4, num_layers=2, fill=[0.1, 0.2, 0.3])


# ---------------------------------------------------------------------------------------------- pool.py
def _pair_graph(n=6, batch=None):
    model = LieResNet(1, 2, T(2), hidden_channels=4, num_layers=1)
    return model.lift_and_connect(_points(n)[0] if n else torch.zeros(0, 2), batch)[1]


def test_farthest_point_subsample_refuses_a_ratio_outside_0_1():
    graph = _pair_graph()
    for ratio in (0.0, 1.5):
        with pytest.raises(ValueError, match=f"ratio must lie in \\(0, 1\\], got {ratio}"):
            farthest_point_subsample(graph, ratio)


def test_farthest_point_subsample_keeps_every_point_at_ratio_one():
    graph = _pair_graph()
    assert torch.equal(farthest_point_subsample(graph, 1.0), torch.arange(graph.num_nodes))


def test_farthest_point_subsample_of_an_empty_graph_is_empty():
    graph = _pair_graph(0)
    kept = farthest_point_subsample(graph, 0.5)
    assert kept.dtype == torch.long and kept.numel() == 0


# ---------------------------------------------------------------------------------------------- transforms.py
def test_lift_graph_transform_refuses_no_lift_samples():
    with pytest.raises(ValueError, match="lift_samples must be >= 1, got 0"):
        LiftGraph("SO2", lift_samples=0)


def test_lift_graph_transform_refuses_a_negative_candidate_radius():
    with pytest.raises(ValueError, match="candidate_radius must be None or a non-negative number, got -1"):
        LiftGraph("SO2", candidate_radius=-1.0)


def test_lift_graph_transform_survives_pickling():
    transform = LiftGraph("SO2", lift_samples=2, candidate_radius=1.5, max_num_neighbors=7)
    back = pickle.loads(pickle.dumps(transform))
    assert (back.lift_samples, back.candidate_radius, back.max_num_neighbors) == (2, 1.5, 7)
    assert "num_samples" not in back.__dict__ and "radius" not in back.__dict__
    assert type(back.group) is type(transform.group)


def test_lift_graph_transform_refuses_data_without_positions():
    with pytest.raises(ValueError, match="no 'pos' to lift"):
        LiftGraph("SO2")(Data(x=torch.rand(3, 1)))


def test_pixel_grid_refuses_an_empty_image():
    with pytest.raises(ValueError, match="image size must be positive, got 0 x 4"):
        pixel_grid(0, 4)


def test_pixel_grid_refuses_a_non_positive_crop_radius():
    with pytest.raises(ValueError, match="crop_radius must be positive, got 0"):
        pixel_grid(4, 4, crop_radius=0.0)


# ---------------------------------------------------------------------------------------------- datasets/qm9.py
def test_writable_stops_at_the_filesystem_root(monkeypatch):
    """A path none of whose ancestors exists climbs to the root and asks about the root (no endless loop)."""
    root = os.path.abspath(os.sep)
    expected = os.access(root, os.W_OK)
    monkeypatch.setattr(qm9_module.os.path, "exists", lambda path: False)
    assert qm9_module._writable("/no/such/dir") is expected
