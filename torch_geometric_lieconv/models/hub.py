r"""Models that rebuild themselves from a checkpoint (as PyG's ``nn/model_hub.py``: ``cls(**kwargs)``,
load the weights, eval).

Every model of this package records the arguments it was built with (:attr:`Rebuildable.arguments`,
plain values only: numbers, strings, lists, a group by its :func:`~torch_geometric_lieconv.groups.group_spec`),
and a checkpoint stores them beside the weights under :data:`CLASS_KEY` and :data:`ARGUMENTS_KEY`.
:meth:`Rebuildable.from_checkpoint` then rebuilds any of them from the file or its run folder alone:

.. code-block:: python

    import os, tempfile

    import torch
    from torch_geometric_lieconv import QM9LieConv

    model = QM9LieConv("T3", hidden_channels=32, num_layers=2)
    path = os.path.join(tempfile.mkdtemp(), "checkpoint_best.pt")
    torch.save(model.checkpoint_entries(), path)
    same = QM9LieConv.from_checkpoint(path)       # or the run folder that holds it

Loading reads with ``torch.load(weights_only=True)`` and builds only classes of this package (looked
up by name among :data:`MODEL_CLASSES`), so a checkpoint cannot run code.
"""
from __future__ import annotations

import functools
import inspect
import os
from typing import Any, Dict, Mapping, Type, TypeVar

import torch
from torch import Tensor, nn

from .._errors import first_line
from ..groups import LieGroup, group_spec

__all__ = ["Rebuildable", "MODEL_CLASSES", "CLASS_KEY", "ARGUMENTS_KEY", "read_checkpoint", "checkpoint_path",
           "checkpoint_file", "CHECKPOINTS",
           "plain_argument", "model_class"]

#: checkpoint key of the model's class name
CLASS_KEY = "model_class"
#: checkpoint key of the model's constructor arguments
ARGUMENTS_KEY = "model_arguments"
#: every model class that can be rebuilt, by name
MODEL_CLASSES: Dict[str, Type["Rebuildable"]] = {}

M = TypeVar("M", bound="Rebuildable")


def plain_argument(value: Any, name: str = "argument") -> Any:
    """``value`` as plain data a weights-only checkpoint can hold (groups by their name, tensors and
    tuples as lists); raises ``ValueError`` naming ``name`` for anything else.

    Args:
        value (Any): a constructor argument.
        name (str, optional): its name, for the error. (default: :obj:`"argument"`)
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, LieGroup):
        return group_spec(value)
    if isinstance(value, Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain_argument(v, name) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain_argument(v, f"{name}.{k}") for k, v in value.items()}
    raise ValueError(f"the model argument {name} is a {type(value).__name__}, which a checkpoint cannot "
                     f"store as plain data; pass a number, string or list (a group by its name)")


#: the checkpoints a run folder holds: the one of the best epoch and the one of the last
CHECKPOINTS = ("best", "last")


def checkpoint_file(run: str, checkpoint: str = "best") -> str:
    """``run/checkpoint_{checkpoint}.pt``: the one place that names a run's checkpoint files.

    Args:
        run (str): a run folder (it need not exist yet).
        checkpoint (str, optional): ``"best"`` or ``"last"``. (default: :obj:`"best"`)
    """
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    return os.path.join(run, f"checkpoint_{checkpoint}.pt")


def checkpoint_path(path_or_run: str, checkpoint: str = "best") -> str:
    """The checkpoint file: ``path_or_run`` itself, or ``checkpoint_{checkpoint}.pt`` in a run folder.

    Args:
        path_or_run (str): a checkpoint file or a run folder.
        checkpoint (str, optional): ``"best"`` or ``"last"`` in a run folder. (default: :obj:`"best"`)
    """
    if os.path.isdir(path_or_run):
        return checkpoint_file(path_or_run, checkpoint)
    return path_or_run


def read_checkpoint(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``: tensors and plain data, no code.

    Args:
        path (str): the file.
        map_location (Any, optional): where tensors go, as for :func:`torch.load`. (default: :obj:`"cpu"`)
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}; train first or pass the right path")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # corrupt or foreign file
        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}: {first_line(error)})") from None


class Rebuildable(nn.Module):
    r"""Base of the models that record their constructor arguments and rebuild themselves.

    A subclass needs nothing more than an ``__init__``: the arguments of the outermost constructor call
    (defaults included) are recorded before it runs, and the class is registered in
    :data:`MODEL_CLASSES` under its name.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        MODEL_CLASSES[class_name(cls)] = cls
        init = cls.__dict__.get("__init__")
        if init is not None:
            cls.__init__ = _recording(init)

    @property
    def arguments(self) -> Dict[str, Any]:
        """The constructor arguments as plain data (``cls(**model.arguments)`` builds the same model)."""
        return {name: plain_argument(value, name) for name, value in self.__dict__["_arguments"].items()}

    def checkpoint_entries(self) -> Dict[str, Any]:
        """What a checkpoint needs to rebuild this model: its class, its arguments and its weights."""
        return {CLASS_KEY: class_name(type(self)), ARGUMENTS_KEY: self.arguments, "model": self.state_dict()}

    @classmethod
    def from_checkpoint(cls: Type[M], path_or_run: str, checkpoint: str = "best",
                        map_location: Any = "cpu") -> M:
        r"""The model saved in a checkpoint, in eval mode.

        Args:
            path_or_run (str): a checkpoint file, or a run folder (``lieconv train ...``).
            checkpoint (str, optional): in a run folder, ``"best"`` or ``"last"``. (default: :obj:`"best"`)
            map_location (optional): where to load the tensors. (default: :obj:`"cpu"`)
        """
        path = checkpoint_path(path_or_run, checkpoint)
        return cls.from_state(read_checkpoint(path, map_location), path)

    @classmethod
    def from_state(cls: Type[M], state: Mapping[str, Any], where: str = "the checkpoint") -> M:
        """The model of a loaded checkpoint ``state`` (see :meth:`from_checkpoint`), in eval mode.

        Args:
            state (Mapping[str, Any]): a checkpoint's content.
            where (str, optional): what it is, for errors. (default: :obj:`"the checkpoint"`)
        """
        if CLASS_KEY not in state:
            raise ValueError(
                f"{where} stores no model arguments (it was written before 0.2, or for a model built with "
                f"a custom group); convert a run's checkpoints once with `lieconv upgrade <task> --run "
                f"{where}` (the tasks' evaluate commands read old checkpoints as they are)")
        name = state[CLASS_KEY]
        found = model_class(name, where)
        if not issubclass(found, cls):
            raise ValueError(f"{where} holds a {name}, not a {cls.__name__}; load it with {name}.from_checkpoint")
        model = found(**dict(state[ARGUMENTS_KEY]))
        weights = state["model"]
        floating = [t.dtype for t in weights.values() if isinstance(t, Tensor) and t.is_floating_point()]
        if floating:  # a float64 run comes back in float64
            model = model.to(floating[0])
        model.load_state_dict(weights)
        return model.eval()


def model_class(name: str, where: str = "the checkpoint") -> Type[Rebuildable]:
    """The registered model class called ``name`` (a ``ValueError`` naming ``where`` if none is).

    Args:
        name (str): a class name of :data:`MODEL_CLASSES`.
        where (str, optional): where the name came from, for the error. (default: :obj:`"the checkpoint"`)
    """
    found = MODEL_CLASSES.get(name)
    if found is None:
        raise ValueError(f"{where} holds a {name}, which is not a model of this package nor of an "
                         f"imported module (known: {', '.join(sorted(MODEL_CLASSES))})")
    return found


def class_name(cls: type) -> str:
    """The name a checkpoint stores: ``QM9LieConv`` for this package's models, the module-qualified
    name for a user's subclass (whose module must be imported before loading)."""
    if cls.__module__.startswith("torch_geometric_lieconv."):
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


def _recording(init):
    """``init`` that first records the arguments of the outermost constructor call on the instance."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def recording_init(self, *args, **kwargs) -> None:
        if "_arguments" not in self.__dict__:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments: Dict[str, Any] = {}
            for name, value in list(bound.arguments.items())[1:]:
                kind = signature.parameters[name].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    arguments.update(value)
                elif kind is inspect.Parameter.VAR_POSITIONAL:
                    if value:
                        raise TypeError(f"{type(self).__name__} takes no extra positional arguments")
                else:
                    arguments[name] = value
            object.__setattr__(self, "_arguments", arguments)
        init(self, *args, **kwargs)

    return recording_init
