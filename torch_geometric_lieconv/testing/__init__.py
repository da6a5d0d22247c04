r"""Helpers for testing LieConv models and code built on this package (as :mod:`torch_geometric.testing`
is for PyG): references computed independently of the package's fast paths, groups written as a
user would, and small data roots in the real raw formats, so that the loading code runs offline.

* :mod:`.dense_reference`: LieConv over all pairs of each graph, padded and dense (Algorithm 2 as
  written), to check the sparse layer and whole models against;
* :mod:`.reference_graphs`: the exact radius graph (:func:`radius_pairs`) and the neighbourhoods of a
  flat edge list (:func:`select_neighborhood`);
* :mod:`.group_reference`: each group's Lie algebra basis as matrices (exp against
  ``torch.linalg.matrix_exp``) and the orbit representatives of the lift;
* :mod:`.user_groups`: groups defined only by ``exp``, ``log``, ``lift`` and ``distance``;
* :mod:`.signal`: weights scaled so that an untrained model's output depends on geometry;
* :mod:`.qm9_fixture`, :mod:`.rotmnist_fixture`, :mod:`.springs_fixture`: tiny datasets;
* :func:`random_rotations`: Haar-random rotation matrices (from :mod:`~torch_geometric_lieconv.groups`).
"""
from ..groups import random_rotations
from .dense_reference import dense_lieconv, dense_model_forward, dense_pair_embeddings
from .group_reference import generators, orbit_origin, planar_rotation, reference_exp
from .qm9_fixture import write_qm9_root
from .reference_graphs import radius_pairs, select_neighborhood
from .rotmnist_fixture import one_pixel_image, write_amat, write_rotmnist_root
from .signal import amplify_weights
from .springs_fixture import at_physical_force, drifts_per_substeps, frame_turn_per_step, spring_systems
from .user_groups import USER_GROUPS, Affine1, MatrixSO2

__all__ = ["random_rotations", "dense_lieconv", "dense_model_forward", "dense_pair_embeddings", "generators",
           "orbit_origin", "planar_rotation", "reference_exp", "write_qm9_root", "write_amat", "write_rotmnist_root",
           "one_pixel_image", "amplify_weights", "at_physical_force", "drifts_per_substeps", "frame_turn_per_step", "spring_systems",
           "USER_GROUPS", "Affine1", "MatrixSO2", "radius_pairs", "select_neighborhood"]
