"""The global random state: one seeded NumPy Generator behind every nncore random draw
(randn/rand, nn.init, DataLoader shuffling, dropout seeds)."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["manual_seed", "seed", "initial_seed", "default_generator", "get_rng_state",
           "set_rng_state"]

_state: dict = {"seed": None, "rng": np.random.default_rng()}


def manual_seed(seed: int) -> np.random.Generator:
    """Seed nncore's global generator; the same seed gives the same draws."""
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"manual_seed: seed must be non-negative, got {seed}")
    _state["seed"] = seed
    _state["rng"] = np.random.default_rng(seed)
    return _state["rng"]


def seed() -> int:
    """Seed the global generator from OS entropy; return the seed used."""
    s = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(s)
    return s


def initial_seed() -> int | None:
    return _state["seed"]


def default_generator() -> np.random.Generator:
    """The global NumPy Generator (PCG64)."""
    return _state["rng"]


def get_rng_state() -> dict[str, Any]:
    """A copy of the generator's state (for checkpoints)."""
    return _state["rng"].bit_generator.state


def set_rng_state(state: dict[str, Any]) -> None:
    _state["rng"].bit_generator.state = state
