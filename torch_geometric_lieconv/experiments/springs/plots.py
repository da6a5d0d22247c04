r"""The figures of the spring-dynamics task: Figure 6 (paths), Figure 7 (conservation), Figure 8 (data
efficiency)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch
from torch import Tensor

from .settings import MODELS
from .statistics import geometric_interval


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_trajectories(curves_by_model: Dict[str, Dict[str, Tensor]], path: str, system_index: int = 0,
                      steps: Optional[int] = None) -> None:
    """Figure 6: true (solid) and predicted (dashed) particle paths of one test system, one panel per model.

    Args:
        curves_by_model (Dict[str, Dict[str, torch.Tensor]]): :func:`~.rollouts.long_rollouts` results by panel
            title.
        path (str): the image file.
        system_index (int, optional): the test system to draw. (default: :obj:`0`)
        steps (int, optional): draw the first ``steps`` states. (default: :obj:`None`)
    """
    plt = _pyplot()
    names = list(curves_by_model)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        curves = curves_by_model[name]
        rows = (curves["batch"] == system_index).nonzero().flatten()
        true, pred = curves["true"][rows], curves["pred"][rows]
        if steps is not None:
            true, pred = true[:, :steps], pred[:, :steps]
        d = true.shape[-1] // 2
        for i in range(true.shape[0]):
            line = ax.plot(true[i, :, 0], true[i, :, 1], "-", lw=1.2, alpha=0.8)[0]
            ax.plot(pred[i, :, 0], pred[i, :, 1], "--", lw=1.2, color=line.get_color())
            ax.plot(true[i, :1, 0], true[i, :1, 1], "o", ms=4, color=line.get_color())
        lim = true[..., :d].abs().max().item() * 1.2
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=name, xticks=[], yticks=[])
    axes[0, 0].plot([], [], "k-", label="true")
    axes[0, 0].plot([], [], "k--", label="predicted")
    axes[0, 0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"rollouts of {true.shape[1]} steps from the same initial state (one test system)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_conservation(curves_by_label: Dict[str, Dict[str, Tensor]], dt: float, path: str, substeps: int = 1) -> None:
    """Figure 7: linear / angular momentum drift and energy error along rollouts, per model (median over systems).

    Args:
        curves_by_label (Dict[str, Dict[str, torch.Tensor]]): rollout curves by model label.
        dt (float): the time between samples.
        path (str): the image file.
        substeps (int, optional): RK4 steps per sample of the rollouts (for the title). (default: :obj:`1`)
    """
    plt = _pyplot()
    keys = (("linear_momentum", "linear momentum  |P(t)-P(0)| / Σ|p_i|"),
            ("angular_momentum", "angular momentum  |L(t)-L(0)| / Σ|q_i||p_i|"),
            ("energy", "energy  |H(t)-H(0)| / |H(0)|"))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    floor = 1e-17
    for ax, (key, title) in zip(axes, keys):
        for label, curves in curves_by_label.items():
            values = curves[f"pred_{key}"][:, 1:].clamp_min(floor)
            t = dt * torch.arange(1, values.shape[1] + 1)
            median = values.median(0).values
            lo, hi = values.quantile(0.1, dim=0), values.quantile(0.9, dim=0)
            line = ax.plot(t, median, label=label)[0]
            ax.fill_between(t, lo, hi, color=line.get_color(), alpha=0.15)
        data = next(iter(curves_by_label.values()))[f"true_{key}"][:, 1:].clamp_min(floor)
        ax.plot(dt * torch.arange(1, data.shape[1] + 1), data.median(0).values, "k:", label="ground truth (RK4)")
        ax.set(yscale="log", xlabel="time", title=title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"HLieConv rollouts (float64, RK4 with {substeps} step(s) per sample): the model's symmetry "
                 f"decides which momentum is conserved (median and 10-90% over test systems and seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_data_efficiency(results: List[Dict[str, Any]], path: str, metric: str = "test_mse") -> None:
    """Figure 8: test MSE against training set size per model; geometric mean and 95% t-interval over seeds.

    Args:
        results (List[Dict[str, Any]]): the study's rows (``model``, ``n_train``, ``metric``).
        path (str): the image file.
        metric (str, optional): the row key to plot. (default: :obj:`"test_mse"`)
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.8, 4.2))
    for model in [m for m in MODELS[1:] + MODELS[:1] if any(r["model"] == m for r in results)]:
        sizes = sorted({r["n_train"] for r in results if r["model"] == model})
        mean, lo, hi = zip(*[geometric_interval([r[metric] for r in results
                                                  if r["model"] == model and r["n_train"] == n]) for n in sizes])
        label = "HLieConv (T(2))" if model == "HLieConv" else model
        line = ax.plot(sizes, mean, marker="o", label=label)[0]
        ax.fill_between(sizes, lo, hi, color=line.get_color(), alpha=0.2)
    ax.set(xscale="log", yscale="log", xlabel="training systems N", ylabel="test MSE (5-step rollouts)",
           title="data efficiency on spring systems (95% CI over seeds)")
    all_sizes = sorted({r["n_train"] for r in results})
    ax.set_xticks(all_sizes, [str(n) for n in all_sizes])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
