"""The QM9 side by side's pieces that need no large model: the real-molecule batches (on a QM9 root
written by the project's fixture), the median, and the profile's operator groups."""
import os

import torch

from benchmarks.harness import median
from benchmarks.qm9 import _processed_root, batches, real_qm9_batches
from benchmarks.qm9_profile import group_of
from torch_geometric_lieconv.testing.qm9_fixture import write_qm9_root


def test_real_batches_are_a_fixed_sequence_and_leave_the_root_unwritten(tmp_path):
    root, scratch = tmp_path / "qm9", tmp_path / "scratch"
    molecules = write_qm9_root(str(root), num_molecules=12)
    first = real_qm9_batches(str(root), count=3, num_molecules=4, scratch=str(scratch))
    assert sorted(os.listdir(root)) == ["raw"]  # processed under scratch, not in the given root
    copy = _processed_root(str(root), str(scratch))
    assert copy.startswith(str(scratch)) and os.path.exists(os.path.join(copy, "processed", "data_v3.pt"))
    again = real_qm9_batches(str(root), count=3, num_molecules=4, scratch=str(scratch))
    atoms = 0
    for (z, pos, batch, homo), (z2, pos2, _, homo2) in zip(first, again):
        assert int(batch.max()) == 3 and z.shape == batch.shape and pos.shape == (z.numel(), 3)
        assert pos.dtype == torch.float32 and homo.shape == (4,)
        assert torch.equal(z, z2) and torch.equal(pos, pos2) and torch.equal(homo, homo2)
        atoms += z.numel()
    assert atoms == sum(len(m["z"]) for m in molecules)  # 3 x 4 = all 12 molecules, each once
    assert abs(float(torch.cat([b[3] for b in first]).mean())) < 1e-4  # all 12 molecules: the whole set


def test_batches_give_both_codes_the_same_molecules(tmp_path):
    root = tmp_path / "qm9"
    write_qm9_root(str(root), num_molecules=150)
    (z, pos, batch), (dense_pos, features, mask), target = batches(2, torch.device("cpu"), str(root))[1]
    assert dense_pos.shape[0] == 75 == target.numel() and torch.equal(dense_pos[mask], pos)
    assert features.shape[-1] == 15 and int(mask.sum()) == z.numel()


def test_median_and_profile_groups():
    assert median([3.0, 1.0, 2.0]) == 2.0 and median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert group_of("aten::addmm") == group_of("aten::bmm") == "matmul"
    assert group_of("aten::copy_") == group_of("aten::_to_copy") == "copies (copy_, to)"
    assert group_of("aten::index_select") == group_of("aten::index_add_") == "gather / scatter"
    assert group_of("aten::native_batch_norm_backward") == "BatchNorm"
    assert group_of("aten::silu_backward") == "activation" and group_of("aten::mul") == "rest"
