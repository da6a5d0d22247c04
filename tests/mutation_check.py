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
             "        dataset.transform = rotation\n", "        dataset.transform = None\n",
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
             "        [LiftedGraph, (LiftedGraph, \"torch_geometric_lieconv.lift.LiftedGraph\")]  # before 0.2",
             "        []",
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
    Mutation("old flat settings forget the behaviour of options added later", "experiments/config.py",
             "        flat: Dict[str, Any] = dict(self.old_defaults)",
             "        flat: Dict[str, Any] = {}",
             ["tests/experiments/test_config.py::test_flat_forms_from_before_0_2_read_back"]),
    Mutation("upgrade leaves the run's config.json in the old form", "experiments/common.py",
             '            write_json(config, upgraded["config"])',
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
    Mutation("continuous kernel input keeps the log's cut", "groups/base.py",
             "            g = self.exp(ab.to(work))\n",
             "            g = self.exp(ab.to(work)) + 0.3 * ab.to(work)[..., :1, None]\n",
             ["tests/models/test_hamiltonian.py::test_continuous_kernel_is_fourth_order_on_many_random_systems_away_"
              "from_the_lifts_singular_point"]),
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
