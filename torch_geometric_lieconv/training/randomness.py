r"""Seeding and the state of every random number generator, for exact resume."""
from __future__ import annotations

import random
from typing import Any, Dict, Mapping

import numpy as np
import torch

__all__ = ["seed_everything", "rng_state", "set_rng_state"]


def seed_everything(seed: int) -> None:
    r"""Seed Python's ``random``, NumPy and PyTorch (CPU and every CUDA device).

    Args:
        seed (int): the seed (NumPy gets it modulo :math:`2^{32}`).
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def rng_state() -> Dict[str, Any]:
    r"""The states of Python's, NumPy's, PyTorch's and CUDA's generators as plain tensors and tuples
    (loadable with ``torch.load(weights_only=True)``)."""
    np_state = np.random.get_state()
    state: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    r"""Restore the generators from :func:`rng_state`'s ``state``.

    Args:
        state (Mapping[str, Any]): a :func:`rng_state`.
    """
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
