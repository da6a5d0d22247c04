r"""A small generic trainer: Adam, cosine schedule with warm-up, checkpoints, exact resume, DDP.

Used by the QM9, springs and RotMNIST experiments. The user supplies a model, a training dataset
(a PyG dataset or a list of :class:`~torch_geometric.data.Data`, or anything PyG's ``DataLoader``
collates), a ``loss_fn(model, batch) -> Tensor`` (a scalar, the **mean** over the batch) and
optionally an ``evaluate_fn(model) -> Dict[str, float]`` called after every epoch.

:class:`Trainer` is the loop; each job around it is a module of its own:

* :mod:`.distributed`: the device, the ranks under ``torchrun``, DDP, the epoch permutations;
* :mod:`.optimisation`: Adam, :func:`cosine_warmup_lambda`, gradient clipping;
* :mod:`.checkpoints` and :mod:`.randomness`: the checkpoint files and the RNG states of an exact resume;
* :mod:`.metrics`: ``metrics.csv``, TensorBoard, ``learning_curve.png``;
* :mod:`.batches`: moving batches to the device and dtype;
* :mod:`.precision`: what ``--precision auto`` picks on a device for a model's width.
"""
from ..runs import RUNTIME_KEYS, check_config
from .batches import move_to
from .checkpoints import load_checkpoint
from .distributed import cleanup_distributed, init_distributed, is_main_process, training_device
from .optimisation import cosine_warmup_lambda
from .randomness import seed_everything
from .trainer import Trainer

__all__ = [
    "seed_everything",
    "cosine_warmup_lambda",
    "Trainer",
    "load_checkpoint",
    "check_config",
    "move_to",
    "init_distributed",
    "cleanup_distributed",
    "is_main_process",
    "training_device",
    "RUNTIME_KEYS",
]
