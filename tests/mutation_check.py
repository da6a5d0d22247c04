"""Plant deliberate bugs in a copy of the package and check that the tests catch every one.

    python tests/mutation_check.py              # all mutations, a table of caught / missed
    python tests/mutation_check.py --only fps   # the mutations whose name contains "fps"

Each mutation replaces one exact snippet of one source file (it must occur exactly once, so the
list fails loudly when the code it targets changes) in a temporary copy of the repository, then
runs the test files named for it there. A mutation is *caught* when that run fails. The script exits
non-zero when any mutation is missed; ``tests/test_mutations.py`` (slow) runs it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = "torch_geometric_lieconv"


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  #: relative to the package folder
    old: str
    new: str
    tests: Sequence[str]  #: test files (pytest node ids work too)


MUTATIONS: List[Mutation] = [
    # --- the ten bugs the review planted
    Mutation("rotmnist check never rotates", "experiments/rotmnist.py",
             "            dataset.transform = rotation\n", "            dataset.transform = None\n",
             ["tests/experiments/test_rotmnist.py"]),
    Mutation("SO(2) lift not invariant: q = r + x", "groups/planar.py",
             "        return _expand(theta, num_samples), _expand(r, num_samples)",
             "        return _expand(theta, num_samples), _expand(r + pos[:, 0], num_samples)",
             ["tests/test_equivariance.py"]),
    Mutation("SO(2) lift slightly not invariant: q = r + 0.3 x", "groups/planar.py",
             "        return _expand(theta, num_samples), _expand(r, num_samples)",
             "        return _expand(theta, num_samples), _expand(r + 0.3 * pos[:, 0], num_samples)",
             ["tests/test_equivariance.py"]),
    Mutation("SO(3) stabilizer frames about z only", "groups/_rotations.py",
             "        q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)\n",
             "        q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)\n"
             "        q = torch.stack([q[..., 0], torch.zeros_like(q[..., 1]), torch.zeros_like(q[..., 2]), q[..., 3]], -1)\n"
             "        q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)\n",
             ["tests/test_equivariance.py"]),
    Mutation("FPS picks at random instead of the farthest point", "pool.py",
             "        _, chosen = scatter_max(min_dist, batch, dim=0, dim_size=num_graphs)",
             "        _, chosen = scatter_max(torch.rand_like(min_dist).masked_fill(min_dist < 0, -1.0), batch, dim=0,"
             " dim_size=num_graphs)",
             ["tests/test_equivariance.py"]),
    Mutation("per-block graphs built at block 0's radius", "models/lieresnet.py",
             "        used = radii[first_block : first_block + 1] if self.graph_per_block else radii[first_block:]",
             "        used = radii[0:1] if self.graph_per_block else radii[first_block:]",
             ["tests/models/test_image.py", "tests/test_equivariance.py"]),
    Mutation("the optimizer never steps", "training/optimisation.py",
             "        self.optimizer.step()\n", "        pass\n",
             ["tests/experiments/test_qm9.py", "tests/training/test_trainer.py"]),
    Mutation("kernel input zeroed under autocast", "conv.py",
             "        return self.kernel(edge_attr)\n",
             "        return self.kernel(edge_attr * (0.0 if torch.is_autocast_enabled('cpu') else 1.0))\n",
             ["tests/test_conv_paths.py"]),
    Mutation("T(3) pair log off by 5e-4 a_u", "groups/translation.py",
             "        return abq.norm(dim=-1)\n\n    def pair_log(self, a_u: Tensor, a_v: Tensor) -> Tensor:\n"
             "        return a_u - a_v\n",
             "        return abq.norm(dim=-1)\n\n    def pair_log(self, a_u: Tensor, a_v: Tensor) -> Tensor:\n"
             "        return a_u - a_v + 5e-4 * a_u\n",
             ["tests/test_equivariance.py"]),
    Mutation("QM9 model stops centring for rotation groups", "models/qm9.py",
             "        if self.center:\n", "        if False:\n",
             ["tests/test_equivariance.py"]),
    # --- one per group map family
    Mutation("SO(3) exp: wrong sign of the sin term", "groups/spatial.py",
             "    return eye + sinc(t2) * W + cosc(t2) * (W @ W)", "    return eye - sinc(t2) * W + cosc(t2) * (W @ W)",
             ["tests/groups/test_groups.py"]),
    Mutation("SE(2) log: translation not through V^-1", "groups/planar.py",
             "        return torch.cat([theta.unsqueeze(-1), _inverse_left_jacobian(theta, g[..., :2, 2])], dim=-1)",
             "        return torch.cat([theta.unsqueeze(-1), g[..., :2, 2]], dim=-1)",
             ["tests/groups/test_groups.py"]),
    Mutation("RxSO(2) distance: weights swapped", "groups/planar.py",
             "        return self.alpha * abq[..., 1].abs() + (1 - self.alpha) * abq[..., 0].abs()",
             "        return (1 - self.alpha) * abq[..., 1].abs() + self.alpha * abq[..., 0].abs()",
             ["tests/groups/test_distances.py"]),
    Mutation("Rx lift: orbit not normalised", "groups/planar.py",
             "        return _expand(r.log(), num_samples), _expand(pos / r, num_samples)",
             "        return _expand(r.log(), num_samples), _expand(pos, num_samples)",
             ["tests/test_lift.py", "tests/test_equivariance.py"]),
    Mutation("SE(3) lift: translation scaled", "groups/spatial.py",
             "        t = pos.unsqueeze(1).expand(-1, num_samples, -1)\n        return log_in_double(self, homogeneous(frames, t))",
             "        t = 1.01 * pos.unsqueeze(1).expand(-1, num_samples, -1)\n"
             "        return log_in_double(self, homogeneous(frames, t))",
             ["tests/test_lift.py"]),
    Mutation("T(d) distance: L1 instead of Euclidean", "groups/translation.py",
             "        return abq.norm(dim=-1)", "        return abq.abs().sum(-1)",
             ["tests/groups/test_distances.py"]),
    Mutation("SO(2) distance ignores the angle", "groups/planar.py",
             "        return self.alpha * ab[..., 0].abs() + (1 - self.alpha) * radial[..., 0]",
             "        return (1 - self.alpha) * radial[..., 0]",
             ["tests/groups/test_distances.py"]),
    Mutation("SE(3) search embedding: rotation part sqrt(2) too heavy", "groups/spatial.py",
             "        return weighted_parts((1 - self.alpha, pos), (self.alpha / math.sqrt(2), so3_exp(a[..., :3]).flatten(-2)))",
             "        return weighted_parts((1 - self.alpha, pos), (self.alpha, so3_exp(a[..., :3]).flatten(-2)))",
             ["tests/test_graph.py"]),
    Mutation("Tx lift: coordinates swapped (translation along y)", "groups/translation.py",
             "        a = pos[:, self.axis : self.axis + 1].unsqueeze(1).expand(-1, num_samples, -1)\n"
             "        q = pos[:, 1 - self.axis : 2 - self.axis].unsqueeze(1).expand(-1, num_samples, -1)",
             "        q = pos[:, self.axis : self.axis + 1].unsqueeze(1).expand(-1, num_samples, -1)\n"
             "        a = pos[:, 1 - self.axis : 2 - self.axis].unsqueeze(1).expand(-1, num_samples, -1)",
             ["tests/test_equivariance.py"]),
    Mutation("SE(2) exp: translation without V(theta)", "groups/planar.py",
             "        t = _left_jacobian(theta, a[..., 1:])\n        g = torch.zeros(*a.shape[:-1], 3, 3",
             "        t = a[..., 1:]\n        g = torch.zeros(*a.shape[:-1], 3, 3",
             ["tests/groups/test_groups.py"]),
    Mutation("orbit distance (Trivial, Rx, SO(3), Tx/Ty): squared norm", "groups/base.py",
             "        return (q_u - q_v).norm(dim=-1)", "        return (q_u - q_v).square().sum(-1)",
             ["tests/groups/test_distances.py", "tests/groups/test_groups.py", "tests/test_graph.py"]),
    Mutation("candidate radius search ignores the graphs of a batch", "graph.py",
             "    row, col = torch_cluster.radius(pos, pos, radius, batch, batch, max_num_neighbors=max_num_neighbors,\n"
             "                                    batch_size=num_graphs)",
             "    row, col = torch_cluster.radius(pos, pos, radius, max_num_neighbors=max_num_neighbors)",
             ["tests/test_equivariance.py"]),
    Mutation("LieConv forgets the mean", "conv.py",
             "        if norm is not None:\n            w = w * norm.view(-1, 1, 1).to(w.dtype)",
             "        if norm is not None:\n            w = w * 1.0",
             ["tests/test_conv.py", "tests/test_pyg_native.py"]),
    Mutation("Hamiltonian vector field: dp/dt with the wrong sign", "dynamics.py",
             "    return join_state(dh_dp, -dh_dq)", "    return join_state(dh_dp, dh_dq)",
             ["tests/test_dynamics.py"]),
    Mutation("image network widens by 1/rho per block instead of 1/sqrt(rho)", "models/image.py",
             "    growth = [ds_frac ** (-i / 2) if grow_channels", "    growth = [ds_frac ** (-i) if grow_channels",
             ["tests/models/test_image.py::test_image_network_widens_as_the_points_thin_out"]),
    Mutation("QM9 prediction left in bfloat16 under autocast", "models/qm9.py",
             "    y = h.to(torch.promote_types(h.dtype, module.target_std.dtype)) * module.target_std + module.target_mean",
             "    y = h * module.target_std + module.target_mean",
             ["tests/experiments/test_qm9.py::test_bfloat16_autocast_run_keeps_float32_outputs"]),
    Mutation("a ball wider than its graph is not capped", "conv.py",
             "        return torch.minimum(self.radius, bound)\n", "        return self.radius\n",
             ["tests/test_pyg_native.py"]),
    Mutation("explainer masks indexed by slot position, not edge id", "conv.py",
             "        return inputs * mask.index_select(0, edge_id).unsqueeze(-1)",
             "        return inputs * mask[: inputs.shape[0]].unsqueeze(-1)",
             ["tests/test_pyg_native.py"]),
    Mutation("LiftedGraph not allowlisted for weights_only loading", "lifted_graph.py",
             "    [LiftedGraph, (LiftedGraph, \"torch_geometric_lieconv.lift.LiftedGraph\")]  # before 0.2",
             "    []",
             ["tests/datasets/test_qm9_dataset.py"]),
    Mutation("old QM9 checkpoints' mean/std buffers not renamed", "models/qm9.py",
             "    module._register_load_state_dict_pre_hook(_rename_old_target_buffers)", "    pass",
             ["tests/models/test_hub.py"]),
    Mutation("a rebuilt float64 model loaded into float32 weights", "models/hub.py",
             "            model = model.to(floating[0])", "            pass", ["tests/models/test_hub.py"]),
    Mutation("springs study drops the rows of the parts it did not run", "experiments/springs/study.py",
             '            rows = [r for r in json.load(f) if r.get("part") not in args.parts] + rows',
             "            rows = rows",
             ["tests/experiments/test_springs.py::test_study_momentum_part_over_seeds_and_kept_rows"]),
    Mutation("the preset is applied over the config file and the flags", "experiments/config.py",
             "        return self.build(preset, {**values, **chosen})",
             "        return self.build(preset, {**chosen, **values})",
             ["tests/experiments/test_config.py::test_defaults_then_preset_then_file_then_flags"]),
    Mutation("old flat settings forget the behaviour of options added later", "experiments/migration.py",
             "    flat: Dict[str, Any] = dict(old_defaults)",
             "    flat: Dict[str, Any] = {}",
             ["tests/experiments/test_config.py::test_flat_forms_from_before_0_2_read_back"]),
    Mutation("upgrade leaves the run's config.json in the old form", "experiments/migration.py",
             '            write_json(config, today)',
             "            pass",
             ["tests/models/test_hub.py::test_old_qm9_checkpoints_load_in_evaluate_and_upgrade"]),
    Mutation("the RotMNIST download skips its md5 check", "datasets/rotmnist.py",
             "        if self.archive_md5 is not None:", "        if False:",
             ["tests/datasets/test_rotmnist_dataset.py"]),
    Mutation("an explicit QM9 cache_dir is not keyed by the raw files", "datasets/qm9.py",
             '        target_dir = os.path.join(cache_base, f"qm9-{_raw_digest(root)}")',
             "        target_dir = cache_base",
             ["tests/test_runs.py::test_an_explicit_qm9_cache_dir_is_keyed_by_the_raw_data_too"]),
    Mutation("the spring simulator samples every 2 dt", "datasets/springs.py",
             "    return dt * torch.arange(traj_len, dtype=dtype)", "    return 2 * dt * torch.arange(traj_len, dtype=dtype)",
             ["tests/datasets/test_springs_dataset.py::test_positions_move_at_p_over_m_along_generated_trajectories"]),
    Mutation("the spring force is half the potential's gradient", "datasets/springs.py",
             "        return join_state(p / m, -2 * k * (k_total * q - kq))",
             "        return join_state(p / m, -k * (k_total * q - kq))",
             ["tests/datasets/test_springs_dataset.py::test_two_springs_follow_the_analytic_solution_at_the_sample_times"]),
    Mutation("SO(2) closed-form pair log with the wrong sign", "groups/planar.py",
             "        return angle_difference(a_u, a_v)  # abelian: the angle difference, wrapped; no matrices",
             "        return angle_difference(a_v, a_u)",
             ["tests/groups/test_groups.py"]),
    Mutation("angle differences not wrapped below -pi", "groups/planar.py",
             "    return torch.where(d <= -torch.pi + BRANCH_CUT_SHIFT, d + 2 * torch.pi, d)",
             "    return d",
             ["tests/groups/test_groups.py"]),
    # --- --precision auto
    Mutation("auto precision: exclusive width bound", "training/precision.py",
             "    if channels < min_channels:\n", "    if channels <= min_channels:\n",
             ["tests/training/test_precision.py"]),
    Mutation("auto precision: ignores the CPU's bfloat16 flags", "training/precision.py",
             "    if not native:\n", "    if False:\n", ["tests/training/test_precision.py"]),
    Mutation("auto precision: overrides a forced precision", "training/precision.py",
             '    if requested != "auto":\n', '    if requested not in ("auto", "float32"):\n',
             ["tests/training/test_precision.py"]),
    Mutation("auto precision: a resumed run re-decides", "experiments/config.py",
             "    if previous is not None and trainer.precision in", "    if False and trainer.precision in",
             ["tests/training/test_precision.py"]),
    # --- issue 32: one task driver
    Mutation("the RotMNIST cache is written in place", "datasets/rotmnist.py",
             "            atomic_write(path, lambda f, d=data, s=slices: torch.save((d.to_dict(), s, d.__class__), f))",
             "            torch.save((data.to_dict(), slices, data.__class__), path)",
             ["tests/test_atomic_writes.py::test_a_disk_full_half_way_through_any_cache_or_run_file_keeps_the_"
              "previous_files"]),
    Mutation("every torchrun rank takes the run folder's lock", "experiments/driver.py",
             "            ranks.on_main(start)\n", "            start()\n",
             ["tests/experiments/test_torchrun.py::test_rotmnist_trains_and_resumes_under_torchrun"]),
    Mutation("the trainer's loss runs without its autocast", "training/trainer.py",
             "            with autocast_context(self.device, self.autocast):\n                loss = ",
             "            with autocast_context(self.device, None):\n                loss = ",
             ["tests/training/test_trainer.py::test_the_trainer_runs_every_loss_and_evaluation_under_its_autocast"]),
    Mutation("a task's evaluation takes a checkpoint file again", "experiments/rotmnist.py",
             '    split: str = setting("test", "the split to evaluate", choices=("test", "valid"))\n',
             '    split: str = setting("test", "the split to evaluate", choices=("test", "valid"))\n'
             '    checkpoint: Optional[str] = setting(None, "a checkpoint file")\n',
             ["tests/experiments/test_vocabulary.py"]),
    Mutation("a renamed RotMNIST setting is dropped from old runs", "experiments/migration.py",
             '    "rotmnist": {"train_limit": "train_size", "valid_limit": "valid_size", "test_limit": "test_size"},',
             '    "rotmnist": {},',
             ["tests/experiments/test_config.py"]),
    Mutation("continuous kernel input keeps the log's cut", "groups/base.py",
             "            g = self.exp(ab.to(work))\n",
             "            g = self.exp(ab.to(work)) + 0.3 * ab.to(work)[..., :1, None]\n",
             ["tests/models/test_hamiltonian.py::test_continuous_kernel_is_fourth_order_on_many_random_systems_away_"
              "from_the_lifts_singular_point"]),
    # --- one task driver, library half: entry points, renamed names, the forward plan's checks
    Mutation("image model standardises in forward only (forward_lifted skips it)", "models/image.py",
             "        return (x - self.input_mean) / self.input_std\n",
             "        return x\n\n    def forward(self, x, pos, batch=None, frames=None, num_graphs=None):\n"
             "        return super().forward((x - self.input_mean) / self.input_std, pos, batch, frames, num_graphs)\n",
             ["tests/models/test_entry_points.py"]),
    Mutation("a user group's pos_flags of the wrong length is not caught", "lift.py",
             "    if not isinstance(flags, Tensor) or flags.shape != (NUM_POS_FLAGS,):\n", "    if False:\n",
             ["tests/test_input_checks.py::test_a_user_groups_pos_flags_of_the_wrong_form_raise_naming_the_group_"
              "and_method"]),
    Mutation("a renamed keyword is not passed on under its new name", "_deprecation.py",
             "                    kwargs[new] = kwargs.pop(old)\n", "                    pass\n",
             ["tests/test_deprecations.py"]),
    Mutation("a renamed keyword warns without a DeprecationWarning", "_deprecation.py",
             "f\"in 0.3; use '{new}'\", DeprecationWarning, stacklevel=2)",
             "f\"in 0.3; use '{new}'\", UserWarning, stacklevel=2)",
             ["tests/test_deprecations.py"]),
    Mutation("a LiftGraph pickled before the rename loads without its settings", "transforms.py",
             "                state.setdefault(new, state.pop(old))\n", "                pass\n",
             ["tests/test_deprecations.py"]),
    Mutation("__version__ hard-coded again", "__init__.py",
             "__version__ = _version()\n", "__version__ = \"0.1.0\"\n",
             ["tests/test_deprecations.py"]),
    # --- issue 33: precision
    Mutation("issue 33: precision: QM9 prediction left in bfloat16 under autocast", "models/qm9.py",
             "    y = h.to(torch.promote_types(h.dtype, module.target_std.dtype)) * module.target_std + module.target_mean",
             "    y = h * module.target_std + module.target_mean",
             ["tests/models/test_precisions.py::test_each_precision_gives_finite_outputs_of_its_dtype_equal_to_the_float64_run"
              "[QM9SchNet-bfloat16]"]),
    Mutation("issue 33: precision: float32 kernel inputs rounded to float16", "conv.py",
             "        return self.kernel(edge_attr)\n",
             "        return self.kernel(edge_attr.half().float() if edge_attr.dtype == torch.float32 else edge_attr)\n",
             ["tests/models/test_precisions.py::test_each_precision_gives_finite_outputs_of_its_dtype_equal_to_the_float64_run"
              "[HamiltonianLieConv-float32]"]),
    Mutation("issue 33: precision: LieResNet rounds float64 input through float32", "models/lieresnet.py",
             "        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value",
             "        return value.to(torch.float32).to(dtype) if value.is_floating_point() else value",
             ["tests/models/test_precisions.py::test_float64_runs_resolve_input_changes_far_below_float32_rounding"
              "[QM9LieConv]"]),
    Mutation("issue 33: precision: dynamics centre positions through float32", "dynamics.py",
             "    return q - centroid[batch]", "    return (q - centroid[batch]).float().to(q.dtype)",
             ["tests/models/test_precisions.py::test_float64_runs_resolve_input_changes_far_below_float32_rounding[OGN]"]),
    Mutation("issue 33: precision: kinetic energy through float32", "dynamics.py",
             "    per_particle = p.pow(2).sum(-1) / (2 * broadcast_rows(m, p.dim() - 1))",
             "    per_particle = p.float().pow(2).sum(-1).to(p.dtype) / (2 * broadcast_rows(m, p.dim() - 1))",
             ["tests/models/test_precisions.py::test_float64_runs_resolve_input_changes_far_below_float32_rounding"
              "[HamiltonianFC]"]),
    Mutation("issue 33: precision: HLieConv frames built in float32", "models/hamiltonian.py",
             "        return rotation2d(angle.unsqueeze(-1) + offsets)",
             "        return rotation2d((angle.unsqueeze(-1) + offsets).float())",
             ["tests/models/test_precisions.py::test_float64_runs_resolve_input_changes_far_below_float32_rounding"
              "[HamiltonianLieConv]"]),
    Mutation("issue 33: precision: the image geometry cache ignores the dtype", "models/shared_geometry.py",
             "        return (tuple(pattern.shape), pattern.dtype, pattern.device, num_graphs, candidate_radius, lift_samples)",
             "        return (tuple(pattern.shape), pattern.device, num_graphs, candidate_radius, lift_samples)",
             ["tests/models/test_precisions.py::test_image_model_on_a_pixel_grid_computes_the_float64_function_in_float32"
              "[T2]"]),
    Mutation("issue 33: precision: positions rounded to bfloat16 before the lift under autocast", "models/lieresnet.py",
             "        x, pos = self._checked_features(x), self._in_model_dtype(pos)",
             "        x, pos = self._checked_features(x), self._in_model_dtype("
             "pos.to(torch.bfloat16) if torch.is_autocast_enabled(\"cpu\") else pos)",
             ["tests/models/test_precisions.py::test_lieconv_balls_select_the_same_pairs_in_every_precision"
              "[QM9LieConv-SE3-bfloat16]"]),
    Mutation("issue 33: precision: the ball keeps pairs 2e-3 outside its radius", "graph.py",
             "            valid = slot_mask & (dist[slots] < radius)",
             "            valid = slot_mask & (dist[slots] < radius * (1 + 2e-3))",
             ["tests/models/test_precisions.py::test_lieconv_balls_select_the_same_pairs_in_every_precision"]),
    Mutation("issue 33: precision: the candidate search 2e-3 narrower than the ball", "graph.py",
             "bound * (1 + 1e-6) + 1e-9", "bound * (1 - 2e-3)",
             ["tests/models/test_precisions.py::test_lieconv_balls_select_the_same_pairs_in_every_precision"]),
    Mutation("issue 33: precision: SchNet's radius graph from a Gram matrix (bfloat16 under autocast)", "models/qm9.py",
             "        edge_index = torch_cluster.radius_graph(pos, self.cutoff, batch, max_num_neighbors=self.max_num_neighbors)\n",
             "        gram = pos @ pos.T\n"
             "        square = gram.diagonal().unsqueeze(0)\n"
             "        close = (square + square.T - 2 * gram < self.cutoff**2) & (batch.unsqueeze(0) == batch.unsqueeze(1))\n"
             "        edge_index = close.fill_diagonal_(False).nonzero().T\n",
             ["tests/models/test_precisions.py::test_schnet_radius_graph_is_the_pairs_within_the_cutoff_in_every_precision"
              "[bfloat16]"]),
    # --- issue 33: branches
    Mutation("issue 33: branches: masked BatchNorm updates running stats it does not track", "conv.py",
             "        if self.training and self.track_running_stats:\n", "        if self.training:\n",
             ["tests/test_conv_branches.py::test_masked_batch_norm_without_running_stats_uses_the_masked_rows_statistics"]),
    Mutation("issue 33: branches: LieConv accepts mc_samples = 0", "conv.py",
             "        if mc_samples < 1:", "        if mc_samples < 0:",
             ["tests/test_conv_branches.py::test_bad_sampling_arguments_are_refused_by_name"]),
    Mutation("issue 33: branches: no-grad chunks all use the first block's rows", "conv.py",
             "                outs.append(self._neighborhood_pass(*args))",
             "                outs.append(self._neighborhood_pass(x, edge_index, edge_attr, chosen[: self.chunk_size],"
             " valid[: self.chunk_size]))",
             ["tests/test_conv_branches.py::test_chunked_layer_without_autograd_equals_the_unchunked_layer"]),
    Mutation("issue 33: branches: explain without a mask fails inside instead of by name", "conv.py",
             "        if self._edge_mask is None:\n", "        if False:\n",
             ["tests/test_conv_branches.py::test_explain_without_an_edge_mask_is_refused_by_name"]),
    Mutation("issue 33: branches: scatter backward gates the kernel gradient on the features' flag", "_contraction.py",
             "        if ctx.needs_input_grad[2]:", "        if ctx.needs_input_grad[0]:",
             ["tests/test_conv_branches.py::test_scatter_backward_with_one_input_needing_a_gradient_equals_bmm"]),
    Mutation("issue 33: branches: a [B, 1] Hamiltonian is accepted", "dynamics.py",
             "        if energy.dim() != 1:", "        if energy.dim() > 2:",
             ["tests/test_core_branches.py::test_a_hamiltonian_with_more_than_one_energy_per_system_is_refused"]),
    Mutation("issue 33: branches: assert_equivariant never raises", "equivariance.py",
             "    if report.max_abs_error > atol and report.max_rel_error > rtol:",
             "    if report.max_abs_error > atol and report.max_rel_error > rtol and False:",
             ["tests/test_core_branches.py::test_assert_equivariant_raises_when_both_errors_exceed_their_tolerances"]),
    Mutation("issue 33: branches: graph sizes ignore a given number of graphs", "graph.py",
             "        if num_graphs is None:\n            num_graphs = int(batch[-1]) + 1",
             "        if True:\n            num_graphs = int(batch[-1]) + 1",
             ["tests/test_core_branches.py::test_graph_sizes_with_a_known_number_of_graphs_count_the_empty_trailing_graphs"]),
    Mutation("issue 33: branches: an uncapped radius search capped at the smallest graph", "graph.py",
             "        max_num_neighbors = int(torch.bincount(batch).max())",
             "        max_num_neighbors = int(torch.bincount(batch).min())",
             ["tests/test_core_branches.py::test_radius_candidates_without_a_cap_are_every_pair_within_the_radius"]),
    Mutation("issue 33: branches: an unsorted radius search is kept unsorted", "graph.py",
             "        if not is_sorted:\n            edge_index = edge_index[:, torch.argsort(edge_index[1], stable=True)]",
             "        if False:\n            edge_index = edge_index[:, torch.argsort(edge_index[1], stable=True)]",
             ["tests/test_core_branches.py::test_an_unsorted_radius_search_is_sorted_by_target_with_the_same_edges"]),
    Mutation("issue 33: branches: a name's alpha silently overrides the alpha passed", "groups/__init__.py",
             "        if alpha is not None:\n            raise ValueError(f\"group name",
             "        if False:\n            raise ValueError(f\"group name",
             ["tests/test_core_branches.py::test_a_group_name_that_sets_alpha_refuses_a_second_alpha"]),
    Mutation("issue 33: branches: random_rotations makes 3x3 rotations for dim 4", "groups/_rotations.py",
             "    if dim == 3:\n        q = torch.randn", "    if dim >= 3:\n        q = torch.randn",
             ["tests/test_core_branches.py::test_random_rotations_only_in_2d_and_3d"]),
    Mutation("issue 33: branches: act reads any larger matrix as affine", "groups/base.py",
             "        if n == d + 1:", "        if n >= d + 1:",
             ["tests/test_core_branches.py::test_act_of_matrices_of_a_foreign_size_is_refused_not_misread"]),
    Mutation("issue 33: branches: check_pos checks only for NaN, not the origin", "groups/base.py",
             "        if bool(self.pos_flags(pos).any()):", "        if bool(self.pos_flags(pos)[0]):",
             ["tests/test_core_branches.py::test_check_pos_passes_liftable_points_and_names_the_bad_ones"]),
    Mutation("issue 33: branches: source-checkout version cut at the first dot", "__init__.py",
             "r'^version = \"([^\"]+)\"'", "r'^version = \"([^\".]+)'",
             ["tests/test_core_branches.py::test_a_source_checkout_reads_its_version_from_pyproject"]),
    Mutation("issue 33: branches: QM9 split caps of 0 accepted", "datasets/qm9.py",
             "        if size is not None and int(size) < 1:", "        if size is not None and int(size) < 0:",
             ["tests/datasets/test_datasets_branches.py::test_a_split_cap_below_one_is_refused_by_name"]),
    Mutation("issue 33: branches: SafeQM9 insists on raw/qm9_v3.pt (RDKit's layout refused)", "datasets/qm9.py",
             "        if os.path.exists(raw):\n            safe_torch_load(raw)",
             "        if True:\n            safe_torch_load(raw)",
             ["tests/datasets/test_datasets_branches.py::test_safe_qm9_vets_the_raw_pt_file_only_when_there_is_one"]),
    Mutation("issue 33: branches: RotMNIST accepts label 10", "datasets/rotmnist.py",
             "int(labels.max()) >= self.num_classes", "int(labels.max()) > self.num_classes",
             ["tests/datasets/test_datasets_branches.py::test_rotmnist_refuses_labels_that_are_not_digits"]),
    Mutation("issue 33: branches: a failed RotMNIST download deletes the user's files in raw/", "datasets/rotmnist.py",
             "set(os.listdir(self.raw_dir)) - before if", "set(os.listdir(self.raw_dir)) if",
             ["tests/datasets/test_datasets_branches.py::test_a_failed_download_removes_what_it_wrote_and_keeps_the_users_files"]),
    Mutation("issue 33: branches: an interrupted RotMNIST download reported as a download error", "datasets/rotmnist.py",
             "            if isinstance(error, (OSError, ValueError)):", "            if True:",
             ["tests/datasets/test_datasets_branches.py::test_an_interrupted_download_is_reraised_as_it_is_and_cleaned_up"]),
    Mutation("issue 33: branches: safe_load trusts the data class a file names", "datasets/safe_load.py",
             "        if not (isinstance(data_cls, type) and issubclass(data_cls, BaseData)):", "        if False:",
             ["tests/datasets/test_datasets_branches.py::test_safe_load_reads_a_two_part_file_as_data_and_refuses_what_is_not_a_dataset"]),
    Mutation("issue 33: branches: 3D planets start along a random direction, not a tangent", "datasets/springs.py",
             "            tangent = w - (w * direction).sum(-1, keepdim=True) * direction", "            tangent = w",
             ["tests/datasets/test_datasets_branches.py::test_3d_gravity_starts_planets_on_circular_orbits_in_random_planes"]),
    Mutation("issue 33: branches: graph-network block reset skips the node MLP", "models/baselines.py",
             "        for layer in list(self.edge_mlp) + list(self.node_mlp):", "        for layer in list(self.edge_mlp):",
             ["tests/models/test_models_branches.py::test_graph_network_block_reset_redraws_its_construction_weights"]),
    Mutation("issue 33: branches: dynamics model reset only its direct children", "models/hamiltonian.py",
             "        for module in self.modules():", "        for module in self.children():",
             ["tests/models/test_models_branches.py::test_dynamics_model_reset_redraws_every_parameter_at_its_default_scale"]),
    Mutation("issue 33: branches: HLieConv accepts 3D rotation frames", "models/hamiltonian.py",
             "        if group.frame_dim is not None and group.frame_dim != 2:", "        if False:",
             ["tests/models/test_models_branches.py::test_hamiltonian_lieconv_refuses_3d_rotation_frames"]),
    Mutation("issue 33: branches: mapping arguments are not plain data", "models/hub.py",
             "    if isinstance(value, Mapping):", "    if False:",
             ["tests/models/test_models_branches.py::test_mapping_arguments_are_recorded_as_plain_data_and_bad_entries_named"]),
    Mutation("issue 33: branches: a model without float weights is cast to the first float", "models/hub.py",
             "        if floating:  # a float64 run comes back in float64", "        if True:",
             ["tests/models/test_models_branches.py::test_a_model_without_floating_weights_comes_back_with_its_integer_buffers"]),
    Mutation("issue 33: branches: extra positional arguments silently dropped", "models/hub.py",
             "                    if value:\n", "                    if False:\n",
             ["tests/models/test_models_branches.py::test_a_starred_constructor_records_its_named_arguments_and_refuses_extra_positionals"]),
    Mutation("issue 33: branches: duplicate QM9 species accepted", "models/qm9.py",
             " or len(set(self.species)) < len(self.species):", ":",
             ["tests/models/test_models_branches.py::test_qm9_model_species_are_checked_by_name"]),
    Mutation("issue 33: branches: every non-finite input blamed on the species", "models/qm9.py",
             "            if unknown:\n", "            if True:\n",
             ["tests/models/test_models_branches.py::test_a_non_finite_input_of_known_species_is_not_blamed_on_the_species"]),
    Mutation("issue 33: branches: dense reference always divides by the neighbourhood size", "testing/dense_reference.py",
             "    if conv.mean:\n", "    if True:\n",
             ["tests/test_testing_branches.py::test_dense_reference_of_a_sum_layer_equals_the_layer"]),
    Mutation("issue 33: branches: reference radius graph left in the search's order", "testing/reference_graphs.py",
             "    if target.numel() > 1 and bool((target[1:] < target[:-1]).any()):", "    if False:",
             ["tests/test_testing_branches.py::test_radius_pairs_are_every_pair_within_the_radius_sorted_by_target"]),
    Mutation("issue 33: branches: orbit origin of an unknown group defaults to 3D zeros", "testing/group_reference.py",
             "        return torch.stack([q[:, 0], zero, zero], -1)\n    raise KeyError(name)",
             "        return torch.stack([q[:, 0], zero, zero], -1)\n    return torch.zeros(n, 3, dtype=q.dtype)",
             ["tests/test_testing_branches.py::test_group_references_cover_every_group_and_refuse_unknown_names"]),
    Mutation("issue 33: branches: QM9 fixture places an overlapping atom when it gives up", "testing/qm9_fixture.py",
             "    raise RuntimeError(\"could not place an atom\")", "    return anchor + length * _unit(g)",
             ["tests/test_testing_branches.py::test_qm9_fixture_gives_up_on_an_atom_that_cannot_be_placed"]),
    Mutation("a missing relative QM9 folder reads as read-only", "datasets/qm9.py",
             "    probe = os.path.abspath(path)  # a relative path climbs to the working directory, not to ''",
             "    probe = path",
             ["tests/datasets/test_datasets_branches.py::test_a_missing_relative_folder_under_a_writable_directory_"
              "is_writable"]),
    Mutation("a float64 QM9 model computes its atom features in float32", "models/qm9.py",
             "        x = self.atom_features(z, pos.dtype)  # z/9 computed in the positions' precision",
             "        x = self.atom_features(z).to(pos.dtype)",
             ["tests/models/test_precisions.py::test_a_float64_qm9_model_computes_its_atom_features_in_float64"]),
    # --- issue 34: geometry once
    Mutation("issue 34: rotation augmentation skipped for every group", "experiments/rotmnist.py",
             "    return isinstance(group, ROTATIONS_ABOUT_THE_CENTRE)\n", "    return True\n",
             ["tests/models/test_image_geometry.py"]),
    Mutation("issue 34: replicated graphs keep the first copy's edge ids", "models/shared_geometry.py",
             "table.slots.unsqueeze(0) + (copies * num_edges).view(-1, 1, 1)",
             "table.slots.unsqueeze(0) + 0 * copies.view(-1, 1, 1)", ["tests/models/test_image_geometry.py"]),
    Mutation("issue 34: remembered samples stored under other starts", "models/shared_geometry.py",
             "            table[fill] = geometry.sample(ratio, fill)\n",
             "            table[fill] = geometry.sample(ratio, fill.flip(0))\n", ["tests/models/test_image_geometry.py"]),
    Mutation("issue 34: farthest point sampling ignores the starts it is given", "pool.py",
             "    if start is None:\n        start = farthest_point_starts(counts, generator)\n",
             "    start = farthest_point_starts(counts, generator)\n", ["tests/models/test_image_geometry.py"]),
    Mutation("issue 34: geometry cache keyed without the candidate radius", "models/image.py",
             "            key = GeometryCache.key(pattern, num_graphs, self.graph_radius(0, plan.radii), k)\n",
             "            key = GeometryCache.key(pattern, num_graphs, None, k)\n", ["tests/models/test_image_geometry.py"]),
    Mutation("issue 34: first candidate graph without headroom", "models/image.py",
             "            return rounded_candidate_radius(radius, self.candidate_headroom)\n",
             "            return radius\n", ["tests/models/test_image_geometry.py"]),
    Mutation("issue 34: every ball starts at the first block's fill", "models/image.py",
             "math.ceil(self.blocks[i].conv.fill * within.numel())", "math.ceil(self.blocks[0].conv.fill * within.numel())",
             ["tests/models/test_image_geometry.py"]),
    Mutation("issue 34: radius from the data overwrites balls already used", "models/image.py",
             "fresh = [i for j, i in enumerate(balls) if math.isnan(values[2 * j])\n",
             "fresh = [i for j, i in enumerate(balls) if True\n", ["tests/models/test_image_geometry.py"]),
    Mutation("issue 34: shared samples connect the later blocks image by image", "models/image.py",
             "            self._chosen = (graph, single)\n", "            self._chosen = None\n",
             ["tests/models/test_image_geometry.py"]),
    Mutation("the data's initial ball radius is not capped at the reference's", "models/image.py",
             "            radius = torch.clamp((inside + nxt) / 2, max=float(self.blocks[i].conv.initial_radius))",
             "            radius = (inside + nxt) / 2",
             ["tests/models/test_image_geometry.py::test_the_ball_radii_start_at_the_fill_of_the_data"]),
    Mutation("a model without blocks asks for the largest of no ball radii", "models/lieresnet.py",
             "        return max(used, default=0.0)  # no block (num_layers=0): no ball needs a pair",
             "        return max(used)",
             ["tests/test_model_branches_2.py::test_forward_of_a_model_without_blocks_agrees_with_forward_lifted"]),
    Mutation("the last-batch graph cache ignores the candidate radius", "models/shared_geometry.py",
             "            if (cached_radius == candidate_radius and cached_pos.dtype == pos.dtype",
             "            if (True and cached_pos.dtype == pos.dtype",
             ["tests/test_model_branches_2.py::test_lifted_graph_cache_misses_on_a_different_key_and_hits_on_the_same"]),
    Mutation("radii from the data on many points take the first ones, not evenly spaced ones", "models/image.py",
             "                lifted = lifted.index_select(torch.linspace(0, m - 1, max_points, device=pos.device).round().long())",
             "                lifted = lifted.index_select(torch.arange(max_points, device=pos.device))",
             ["tests/test_model_branches_2.py::test_radii_from_data_on_too_many_points_equals_the_evenly_spaced_subset"]),
    Mutation("the image model drops a given number of lift samples", "models/image.py",
             "        if lift_samples is None:\n            lift_samples = 2 if group.frame_dim else 1",
             "        if True:\n            lift_samples = 2 if group.frame_dim else 1",
             ["tests/test_model_branches_2.py::test_image_model_keeps_given_lift_samples"]),
    Mutation("subsampling at ratio 1 keeps only the first point of each graph", "pool.py",
             "        return torch.arange(num_nodes, device=device)",
             "        return torch.arange(min(num_nodes, 1), device=device)",
             ["tests/test_model_branches_2.py::test_farthest_point_subsample_keeps_every_point_at_ratio_one"]),
    # --- issue 34: speed
    Mutation("issue 34: SE(2) pair log rotated by +theta/2 instead of -theta/2", "groups/planar.py",
             "[d, cos_h * rx + sin_h * ry, cos_h * ry - sin_h * rx]",
             "[d, cos_h * rx - sin_h * ry, cos_h * ry + sin_h * rx]", ["tests/groups/test_groups.py"]),
    Mutation("issue 34: SE(2) pair log without the theta/2 / sin(theta/2) scale", "groups/planar.py",
             "        scale = 1 / torch.sinc(half / torch.pi)", "        scale = torch.ones_like(half)",
             ["tests/groups/test_groups.py"]),
    Mutation("issue 34: grid rotation turns the content clockwise", "transforms.py",
             "source = torch.stack([cos * p[:, 0] + sin * p[:, 1], -sin * p[:, 0] + cos * p[:, 1]], dim=-1)",
             "source = torch.stack([cos * p[:, 0] - sin * p[:, 1], sin * p[:, 0] + cos * p[:, 1]], dim=-1)",
             ["tests/test_transforms.py"]),
    Mutation("issue 34: grid rotation with the image upside down", "transforms.py",
             "grid = torch.stack([source[:, 0] / (self.width / 2), -source[:, 1] / (self.height / 2)], dim=-1)",
             "grid = torch.stack([source[:, 0] / (self.width / 2), source[:, 1] / (self.height / 2)], dim=-1)",
             ["tests/test_transforms.py"]),
    Mutation("issue 34: T(2) training rotates the points again", "experiments/rotmnist.py",
             "    return RandomRotateOnGrid(180, RotMNIST.image_size, RotMNIST.image_size)",
             "    return RandomRotate(180)", ["tests/models/test_image_geometry.py"]),
    Mutation("issue 34: traced messages of padding slots not masked", "conv.py",
             "            return self.kernel(edge_attr, slot_valid).masked_fill(~slot_valid.unsqueeze(-1), 0.0)",
             "            return self.kernel(edge_attr, slot_valid)", ["tests/test_export.py"]),
    Mutation("issue 34: the radius operator drops the last pair", "graph.py",
             "    return edge_index[:, torch.argsort(edge_index[1], stable=True)]",
             "    return edge_index[:, torch.argsort(edge_index[1], stable=True)][:, :-1]", ["tests/test_export.py"]),
    Mutation("issue 34: padding slots of the aggregation weigh one", "conv.py",
             "            w = inputs.new_zeros(num_targets * width, inputs.shape[1]).index_copy(0, position, inputs)",
             "            w = inputs.new_ones(num_targets * width, inputs.shape[1]).index_copy(0, position, inputs)",
             ["tests/test_contraction.py"]),
    Mutation("issue 34: bf16 bmm chosen by avx512_bf16 instead of AMX", "_contraction.py",
             'bool(capabilities().get("amx_bf16", False))', 'bool(capabilities().get("avx512_bf16", False))',
             ["tests/test_contraction.py"]),
    Mutation("issue 34: the trainer's Adam never fused", "training/optimisation.py",
             "    return torch.optim.Adam(parameters, fused=fused or None, **kwargs)",
             "    return torch.optim.Adam(parameters, **kwargs)", ["tests/training/test_trainer.py"]),
    Mutation("issue 34: matrix pair logs per point with source and target swapped", "groups/base.py",
             "            ab = self.log(self.exp(-a_work)[src] @ self.exp(a_work)[dst]).to(a.dtype)",
             "            ab = self.log(self.exp(-a_work)[dst] @ self.exp(a_work)[src]).to(a.dtype)",
             ["tests/groups/test_groups.py"]),
    Mutation("issue 34: matrix pair logs per point without the inverse", "groups/base.py",
             "            ab = self.log(self.exp(-a_work)[src] @ self.exp(a_work)[dst]).to(a.dtype)",
             "            ab = self.log(self.exp(a_work)[src] @ self.exp(a_work)[dst]).to(a.dtype)",
             ["tests/groups/test_groups.py"]),
    # --- issue 33: facts
    Mutation("issue 33: series switch 100x lower (closed forms cancel)", "groups/_series.py",
             "SERIES_THRESHOLD = 0.25", "SERIES_THRESHOLD = 0.0025", ["tests/groups/test_series_branches.py"]),
    Mutation("issue 33: sincc series truncated after 4 terms", "groups/_series.py",
             "_SINCC = [(-1) ** k / math.factorial(2 * k + 3) for k in range(10)]",
             "_SINCC = [(-1) ** k / math.factorial(2 * k + 3) for k in range(4)]",
             ["tests/groups/test_series_branches.py"]),
    Mutation("issue 33: Bernoulli B_6 = 1/40 in the half-cot series", "groups/_series.py",
             "1 / 42, -1 / 30, 5 / 66", "1 / 40, -1 / 30, 5 / 66", ["tests/groups/test_series_branches.py"]),
    Mutation("issue 33: SO(3) log series with s^2/5 for s^2/6", "groups/spatial.py",
             "    w_small = s * (1 + s2 / 6 + 3 * s2 * s2 / 40).unsqueeze(-1)",
             "    w_small = s * (1 + s2 / 5 + 3 * s2 * s2 / 40).unsqueeze(-1)",
             ["tests/groups/test_series_branches.py"]),
    Mutation("issue 33: SO(3) log series used up to sin^2 = 1e-2", "groups/spatial.py",
             "_SMALL_SIN2 = 1e-8", "_SMALL_SIN2 = 1e-2", ["tests/groups/test_series_branches.py"]),
    Mutation("issue 33: SO(3) log near-pi axis formula used from small angles", "groups/spatial.py",
             "    obtuse = cos < 0\n", "    obtuse = cos < 0.99999\n", ["tests/groups/test_series_branches.py"]),
    Mutation("issue 33: planar log cut at -pi instead of -pi + delta", "groups/planar.py",
             "    return torch.where(theta <= -torch.pi + BRANCH_CUT_SHIFT, theta + 2 * torch.pi, theta)",
             "    return torch.where(theta <= -torch.pi, theta + 2 * torch.pi, theta)",
             ["tests/groups/test_series_branches.py"]),
    Mutation("issue 33: kinetic energy p^2 m / 2", "dynamics.py",
             "    per_particle = p.pow(2).sum(-1) / (2 * broadcast_rows(m, p.dim() - 1))",
             "    per_particle = p.pow(2).sum(-1) / 2 * broadcast_rows(m, p.dim() - 1)",
             ["tests/test_physics_closed_forms.py"]),
    Mutation("issue 33: spring potential halves every spring", "datasets/springs.py",
             "        return broadcast_rows(k_total, kq2.dim()) * kq2 - kq.pow(2).sum(-1)",
             "        return 0.5 * (broadcast_rows(k_total, kq2.dim()) * kq2 - kq.pow(2).sum(-1))",
             ["tests/test_physics_closed_forms.py"]),
    Mutation("issue 33: gravity counts every pair twice", "datasets/springs.py",
             "        return -0.5 * self.gravity * per_system_sum(pair, batch[dst], num_systems)",
             "        return -self.gravity * per_system_sum(pair, batch[dst], num_systems)",
             ["tests/test_physics_closed_forms.py"]),
    Mutation("issue 33: spring closed-form field moves q at p m", "datasets/springs.py",
             "        return join_state(p / m, -2 * k * (k_total * q - kq))",
             "        return join_state(p * m, -2 * k * (k_total * q - kq))",
             ["tests/test_physics_closed_forms.py"]),
    Mutation("issue 33: Hamiltonian field with q and p swapped", "dynamics.py",
             "    return join_state(dh_dp, -dh_dq)", "    return join_state(-dh_dq, dh_dp)",
             ["tests/test_physics_closed_forms.py"]),
    Mutation("issue 33: separable model takes the last parameter as the mass", "models/hamiltonian.py",
             "        return kinetic_energy(p, params[:, 0], batch, num_systems) + self.potential(",
             "        return kinetic_energy(p, params[:, -1], batch, num_systems) + self.potential(",
             ["tests/test_physics_closed_forms.py"]),
    Mutation("issue 33: the sampler is never told the epoch", "training/trainer.py",
             "        self.sampler.set_epoch(self.epoch)", "        self.sampler.set_epoch(0)",
             ["tests/training/test_data_order.py"]),
    Mutation("issue 33: the data order ignores the seed", "training/distributed.py",
             "shuffle=True, seed=seed,", "shuffle=True, seed=0,", ["tests/training/test_data_order.py"]),
    Mutation("issue 33: each rank shuffles with its own seed", "training/distributed.py",
             "shuffle=True, seed=seed,", "shuffle=True, seed=seed + self.rank,",
             ["tests/training/test_data_order.py::test_union_of_the_ranks_kth_batches_is_the_single_process_kth_batch"]),
    Mutation("issue 33: the sampler counts its own epochs (restarts on resume)", "training/trainer.py",
             "        self.sampler.set_epoch(self.epoch)", "        self.sampler.set_epoch(self.sampler.epoch + 1)",
             ["tests/training/test_data_order.py::test_resume_continues_the_same_order"]),
    Mutation("issue 33: atomic_write writes straight to the final path", "_files.py",
             "    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f\".{os.path.basename(path)}.\", suffix=\".tmp\")\n"
             "    try:\n"
             "        with os.fdopen(fd, \"wb\" if binary else \"w\", **({} if binary else {\"newline\": \"\"})) as f:\n"
             "            write(f)\n"
             "            f.flush()\n"
             "            os.fsync(f.fileno())\n"
             "        os.replace(tmp, path)\n"
             "    except BaseException:\n"
             "        with contextlib.suppress(OSError):\n"
             "            os.remove(tmp)\n"
             "        raise\n",
             "    with open(path, \"wb\" if binary else \"w\", **({} if binary else {\"newline\": \"\"})) as f:\n"
             "        write(f)\n"
             "        f.flush()\n"
             "        os.fsync(f.fileno())\n",
             ["tests/test_atomic_writes.py"]),
    Mutation("issue 33: atomic_write leaves its temporary file after a crash", "_files.py",
             "            os.remove(tmp)\n", "            pass\n", ["tests/test_atomic_writes.py"]),
    Mutation("issue 33: checkpoints written straight to the final path", "training/checkpoints.py",
             "        atomic_write(self.last_path, lambda f: torch.save(state, f))",
             "        torch.save(state, self.last_path)",
             ["tests/test_atomic_writes.py::test_a_checkpoint_save_crashing_half_way_keeps_the_previous_checkpoints"]),
    Mutation("issue 33: metrics.csv written straight to the final path", "training/metrics.py",
             "        atomic_write(self.path, write, binary=False)",
             "        with open(self.path, \"w\", newline=\"\") as f:\n            write(f)",
             ["tests/test_atomic_writes.py::test_a_metrics_csv_write_crashing_half_way_keeps_the_previous_rows"]),
    Mutation("issue 33: QM9 split file written straight to the final path", "datasets/qm9.py",
             "    write_json(path, {k: v.tolist() for k, v in splits.items()}, indent=None)",
             "    with open(path, \"w\") as f:\n        json.dump({k: v.tolist() for k, v in splits.items()}, f)",
             ["tests/test_atomic_writes.py::test_a_qm9_split_file_write_crashing_half_way_keeps_the_previous_splits"]),
    Mutation("issue 33: spring cache written by PyG's save (straight to the final path)", "datasets/springs.py",
             "        atomic_write(self.processed_paths[0], lambda f: torch.save((data.to_dict(), slices, data.__class__), f))",
             "        self.save(data_list, self.processed_paths[0])",
             ["tests/test_atomic_writes.py::test_a_disk_full_half_way_through_any_cache_or_run_file_keeps_the_previous_files"]),
]


def run_pytest(tree: str, tests: Sequence[str], timeout: float) -> int:
    env = {**os.environ, "PYTHONPATH": tree, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        return subprocess.run(cmd, cwd=tree, env=env, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return -1


def check(mutation: Mutation, timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="mutation-") as tree:
        shutil.copytree(os.path.join(ROOT, PKG), os.path.join(tree, PKG))
        shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(tree, "tests"))
        shutil.copytree(os.path.join(ROOT, "examples"), os.path.join(tree, "examples"))
        shutil.copy(os.path.join(ROOT, "pyproject.toml"), tree)
        path = os.path.join(tree, PKG, mutation.path)
        with open(path) as f:
            source = f.read()
        if source.count(mutation.old) != 1:
            return f"STALE (snippet found {source.count(mutation.old)} times)"
        with open(path, "w") as f:
            f.write(source.replace(mutation.old, mutation.new))
        code = run_pytest(tree, mutation.tests, timeout)
    return "caught" if code != 0 else "MISSED"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="run the mutations whose name contains this text")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutation's test run")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.only is None or args.only.lower() in m.name.lower()]
    failures = 0
    print("| mutation | tests | result |\n|---|---|---|", flush=True)
    for mutation in chosen:
        start = time.perf_counter()
        result = check(mutation, args.timeout)
        failures += result != "caught"
        print(f"| {mutation.name} | {', '.join(t.split('/')[-1] for t in mutation.tests)} | {result} "
              f"({time.perf_counter() - start:.0f} s) |", flush=True)
    print(f"\n{len(chosen) - failures} of {len(chosen)} mutations caught")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
