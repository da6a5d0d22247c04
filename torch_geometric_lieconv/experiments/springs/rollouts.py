r"""Rollouts of a dynamics model: the training objective (Eq. 11) and the long test rollouts with their
conservation curves (energy error, linear and angular momentum drift)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from ...datasets.springs import system_from_name, system_params
from ...dynamics import conservation_metrics, rollout, rollout_mse
from ...training import move_to


class RolloutObjective:
    r"""Roll a dynamics model out from the first state of each item's trajectory and compare (Eq. 11).

    The model is integrated with ``method`` (fixed-step RK4 by default) on the item's time grid shifted
    to start at 0 (the systems are autonomous), with ``substeps`` steps per sample interval (1 in
    training, as the reference). RK4 keeps linear invariants (total linear momentum) to rounding for
    any step, but quadratic ones (angular momentum, energy) only to its truncation error,
    :math:`O(h^4)`: more substeps show angular momentum conservation closer to machine precision.

    Args:
        param_keys (Sequence[str]): the systems' parameter names, mass first.
        method (str, optional): the :func:`torchdiffeq.odeint` method. (default: :obj:`"rk4"`)
        rtol (float, optional): relative tolerance of adaptive methods. (default: :obj:`1e-4`)
        atol (float, optional): absolute tolerance of adaptive methods. (default: :obj:`1e-6`)
        substeps (int, optional): integrator steps per sample interval. (default: :obj:`1`)
    """

    def __init__(self, param_keys: Sequence[str], method: str = "rk4", rtol: float = 1e-4, atol: float = 1e-6,
                 substeps: int = 1) -> None:
        if substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {substeps}")
        self.param_keys, self.method, self.rtol, self.atol = tuple(param_keys), method, rtol, atol
        self.substeps = int(substeps)

    def rollout(self, model: nn.Module, batch, steps: Optional[int] = None) -> Tensor:
        """Predicted states ``[N, T, 2d]`` for the items of ``batch`` (``steps``: only the first ones).

        Args:
            model (torch.nn.Module): a dynamics model ``model(t, z, params, batch, num_systems)``.
            batch (torch_geometric.data.Batch): items of
                :class:`~torch_geometric_lieconv.datasets.ParticleDynamics`.
            steps (int, optional): roll out the first ``steps`` times only. (default: :obj:`None`)
        """
        t = batch.t[0] - batch.t[0, 0]
        if steps is not None:
            t = t[:steps]
        params = system_params(batch, self.param_keys)
        b = batch.num_graphs
        field = lambda tt, z: model(tt, z, params, batch.batch, b)  # noqa: E731
        step = float(t[1] - t[0]) / self.substeps if (self.substeps > 1 and t.numel() > 1) else None
        return rollout(field, batch.traj[:, 0], t, method=self.method, rtol=self.rtol, atol=self.atol, step_size=step)

    def loss(self, model: nn.Module, batch) -> Tensor:
        """The rollout MSE of ``batch`` (Eq. 11).

        Args:
            model (torch.nn.Module): a dynamics model ``model(t, z, params, batch, num_systems)``.
            batch (torch_geometric.data.Batch): items of
                :class:`~torch_geometric_lieconv.datasets.ParticleDynamics`.
        """
        return rollout_mse(self.rollout(model, batch), batch.traj)

    def mse(self, model: nn.Module, dataset, batch_size: int, device, dtype) -> float:
        """Mean rollout MSE over ``dataset`` (systems weighted equally).

        Args:
            model (torch.nn.Module): the dynamics model.
            dataset (Sequence): items of :class:`~torch_geometric_lieconv.datasets.ParticleDynamics`.
            batch_size (int): systems per batch.
            device (torch.device): where to evaluate.
            dtype (torch.dtype): the states' dtype.
        """
        from torch_geometric.loader import DataLoader

        total, count = 0.0, 0
        with torch.no_grad():
            for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
                batch = move_to(batch, device, dtype)
                total += float(self.loss(model, batch)) * batch.num_graphs
                count += batch.num_graphs
        return total / max(count, 1)


@torch.no_grad()
def long_rollouts(model: nn.Module, dataset, objective: RolloutObjective, batch_size: int, device, dtype,
                  steps: Optional[int] = None, progress: bool = False) -> Dict[str, Tensor]:
    """Roll out from ``t = 0`` over the whole trajectories; return predictions, targets and per-system curves.

    Returns ``pred``/``true`` ``[N, T, 2d]``, ``batch`` ``[N]``, and ``[B, T]`` curves: ``sq_error`` (mean
    squared error of the state at each time), and for the prediction and the ground truth the relative
    energy error (true Hamiltonian) and the linear / angular momentum drifts. ``progress`` shows a bar
    over the systems (a batch of long rollouts can take minutes).

    Args:
        model (torch.nn.Module): the dynamics model.
        dataset (Sequence): items of :class:`~torch_geometric_lieconv.datasets.ParticleDynamics`.
        objective (RolloutObjective): how to roll out.
        batch_size (int): systems per batch.
        device (torch.device): where to evaluate.
        dtype (torch.dtype): the states' dtype.
        steps (int, optional): roll out the first ``steps`` times only. (default: :obj:`None`)
        progress (bool, optional): show a progress bar. (default: :obj:`False`)
    """
    from torch_geometric.loader import DataLoader
    from tqdm import tqdm

    system = system_from_name(dataset.system)
    parts: Dict[str, List[Tensor]] = {}
    offset = 0
    bar = tqdm(total=len(dataset), desc="rollouts", unit="system", leave=False, disable=not progress)
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        batch = move_to(batch, device, dtype)
        true = batch.traj if steps is None else batch.traj[:, :steps]
        pred = objective.rollout(model, batch, true.shape[1])
        params = system_params(batch, objective.param_keys)
        b = batch.num_graphs
        energy = lambda q, p: system.hamiltonian(q, p, params, batch.batch, b)  # noqa: E731
        err = (pred - true).pow(2).mean(-1)
        sq = torch.zeros(b, true.shape[1], dtype=err.dtype, device=err.device).index_add_(0, batch.batch, err)
        sq = sq / torch.bincount(batch.batch, minlength=b).unsqueeze(-1).to(sq.dtype)
        entries = {"pred": pred, "true": true, "batch": batch.batch + offset, "sq_error": sq}
        for name, traj in (("pred", pred), ("true", true)):
            for key, value in conservation_metrics(traj, batch.batch, b, energy).items():
                entries[f"{name}_{key}"] = value
        for key, value in entries.items():
            parts.setdefault(key, []).append(value.cpu())
        offset += b
        bar.update(b)
    bar.close()
    return {key: torch.cat(values) for key, values in parts.items()}


def summarise(curves: Dict[str, Tensor], horizons: Sequence[int]) -> Dict[str, float]:
    """Scalars from :func:`long_rollouts`: MSE over the first ``h`` states for each horizon, and the
    energy error / momentum drifts at the last state, averaged over systems (model and ground truth),
    and their medians over systems (``*_drift_median``: one rollout that blows up does not hide the rest).

    Args:
        curves (Dict[str, torch.Tensor]): :func:`long_rollouts`'s result.
        horizons (Sequence[int]): the rollout lengths of the MSEs.
    """
    out: Dict[str, float] = {}
    total = curves["sq_error"].shape[1]
    for h in horizons:  # horizons beyond the trajectory are clipped to its length
        h_eff = min(int(h), total)
        out[f"mse_{h_eff}"] = float(curves["sq_error"][:, :h_eff].mean())
    for name in ("pred", "true"):
        prefix = "" if name == "pred" else "data_"
        for key in ("energy", "linear_momentum", "angular_momentum"):
            out[f"{prefix}{key}_drift"] = float(curves[f"{name}_{key}"][:, -1].mean())
            out[f"{prefix}{key}_drift_median"] = float(curves[f"{name}_{key}"][:, -1].median())
    return out
