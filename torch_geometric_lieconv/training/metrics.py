r"""Where the per-epoch metrics go: ``metrics.csv``, TensorBoard events and ``learning_curve.png``.

Each sink takes the whole history (a list of rows ``{"epoch": e, "train_loss": ..., metric: ...}``)
after every epoch (:meth:`MetricSink.write`), the restored history on resume
(:meth:`MetricSink.restore`) and once at the end of a call to ``fit`` (:meth:`MetricSink.close`).
"""
from __future__ import annotations

import csv
import os
from typing import Dict, List, Optional, Sequence

from ..runs import atomic_write

__all__ = ["TIMING_KEYS", "MetricSink", "CSVSink", "TensorBoardSink", "LearningCurvePlot", "metric_sinks"]

#: the columns of the metric history that are not metrics
TIMING_KEYS = ("epoch", "train_loss", "lr", "time_s", "cpu_s")

History = Sequence[Dict[str, float]]


class MetricSink:
    """A destination of the metric history."""

    def write(self, history: History) -> None:
        """After every epoch: ``history`` holds every epoch so far, the new one last."""

    def restore(self, history: History) -> None:
        """On resume, with the checkpoint's history."""

    def close(self, history: History) -> None:
        """At the end of ``fit``."""


class CSVSink(MetricSink):
    r"""``metrics.csv``: one row per epoch, rewritten atomically (a resumed run's file is complete).

    Args:
        path (str): the file.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, history: History) -> None:
        keys: List[str] = []
        for row in history:
            keys += [k for k in row if k not in keys]

        def write(f) -> None:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)

        atomic_write(self.path, write, binary=False)

    def restore(self, history: History) -> None:
        if history:  # a crash after the checkpoint but before metrics.csv lost no row
            self.write(history)


class TensorBoardSink(MetricSink):
    r"""TensorBoard events of every metric, by epoch.

    Args:
        folder (str): the events' folder.
        required (bool, optional): raise when ``tensorboard`` is not installed (``None``: skip
            silently then). (default: :obj:`None`)
    """

    def __init__(self, folder: str, required: Optional[bool] = None) -> None:
        self.folder, self.required = folder, required
        self._writer = None
        self._unavailable = False

    def write(self, history: History) -> None:
        if self._unavailable:
            return
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                if self.required:
                    raise ValueError("tensorboard=True but the tensorboard package is not installed")
                self._unavailable = True
                return
            self._writer = SummaryWriter(self.folder)
        row = history[-1]
        for key, value in row.items():
            if key != "epoch":
                self._writer.add_scalar(key, value, int(row["epoch"]))
        self._writer.flush()

    def close(self, history: History) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class LearningCurvePlot(MetricSink):
    r"""``learning_curve.png`` at the end: the training loss and every evaluated metric per epoch
    (log scale where the values span more than a decade; needs matplotlib).

    Args:
        path (str): the image file.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def close(self, history: History) -> None:
        try:
            import matplotlib
        except ImportError:
            print("learning_curve.png skipped: matplotlib is not installed (pip install "
                  "'torch-geometric-lieconv[experiments]')", flush=True)
            return
        if not history:
            return
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [row["epoch"] for row in history]
        metrics = [k for k in history[-1] if k not in TIMING_KEYS]
        fig, axes = plt.subplots(1, 2 if metrics else 1, figsize=(10 if metrics else 5, 3.6), squeeze=False)
        axes[0, 0].plot(epochs, [row["train_loss"] for row in history], marker="o", ms=3)
        axes[0, 0].set(xlabel="epoch", ylabel="training loss", title="training loss")
        if metrics:
            for key in metrics:
                axes[0, 1].plot(epochs, [row.get(key, float("nan")) for row in history], marker="o", ms=3,
                                label=key)
            axes[0, 1].set(xlabel="epoch", title="evaluation")
            axes[0, 1].legend()
        for ax in axes.flat:
            values = [v for line in ax.get_lines() for v in line.get_ydata() if v == v]
            if values and min(values) > 0 and max(values) / min(values) > 10:
                ax.set_yscale("log")  # only where the values span more than a decade
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(self.path, dpi=120)
        plt.close(fig)


def metric_sinks(out_dir: str, tensorboard: Optional[bool] = None, plot: bool = True) -> List[MetricSink]:
    """The sinks of a run folder: CSV always, TensorBoard unless ``tensorboard=False``, the plot if ``plot``.

    Args:
        out_dir (str): the run folder.
        tensorboard (bool, optional): TensorBoard events (``None``: when installed). (default: :obj:`None`)
        plot (bool, optional): ``learning_curve.png``. (default: :obj:`True`)
    """
    sinks: List[MetricSink] = [CSVSink(os.path.join(out_dir, "metrics.csv"))]
    if tensorboard is not False:
        sinks.append(TensorBoardSink(os.path.join(out_dir, "tensorboard"), required=tensorboard))
    if plot:
        sinks.append(LearningCurvePlot(os.path.join(out_dir, "learning_curve.png")))
    return sinks
