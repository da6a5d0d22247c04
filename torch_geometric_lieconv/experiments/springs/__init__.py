r"""``lieconv train|evaluate|study|upgrade springs``: learning Hamiltonian dynamics (the paper's §6,
Figures 6-8).

* ``lieconv train springs --model HLieConv --group T2`` trains a dynamics model on 5-step windows of
  spring-system trajectories (loss: MSE of the RK4 rollout, Eq. 11), reports the validation MSE after
  every epoch (``checkpoint_best.pt`` by it), and finally evaluates on the test systems
  (:mod:`.task`).
* ``lieconv evaluate springs --run DIR`` rolls the model out from the start of every test trajectory and
  reports the rollout MSE over the training window and over 100 and 500 steps, the relative error of the
  true energy along the rollout, and the drift of total linear and angular momentum (all in float64 by
  default, so exact conservation shows at machine precision).
* ``lieconv study springs`` reproduces Figure 7 (momentum conservation by symmetry group), Figure 8 (test
  MSE against training set size for FC, HFC, OGN, HOGN and HLieConv, bands over seeds) and Figure 6
  (predicted against true particle paths) at a CPU scale; ``--full`` uses the paper's sizes
  (:mod:`.study`, figures in :mod:`.plots`).

The settings (:mod:`.settings`) are saved in the run folder and in every checkpoint. The data are
generated on first use and cached under ``--root`` (default ``data/springs``), one file per
generation setting.

Examples::

    lieconv train springs --model HLieConv --group T2 --preset quick
    lieconv evaluate springs --run runs/springs-HLieConv-T2-quick
    lieconv study springs --out runs/springs-study --figures docs/figures
"""
from .rollouts import RolloutObjective, long_rollouts, summarise
from .settings import MODELS, SETTINGS, model_arguments
from .task import TASK, DynamicsEvaluateSettings, SpringsTask, format_results

__all__ = ["TASK", "SpringsTask", "DynamicsEvaluateSettings", "format_results", "RolloutObjective", "long_rollouts",
           "summarise", "SETTINGS", "MODELS", "model_arguments"]
