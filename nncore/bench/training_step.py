"""One Adam training step (cross-entropy on a model's logits, lr 1e-3) for nncore or torch,
built from a shared PyTorch-named state dict: the nncore and torch sides of the step
benchmarks (bench_mlp, bench_cnn, bench_lm, bench_cuda)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["adam_step"]


def adam_step(backend: str, build: Callable[[Any], Any], state: dict, x: np.ndarray,
              y: np.ndarray, threads: int | None = None,
              device: str = "cpu") -> Callable[[], Any]:
    """A zero-argument step for `backend` ("nncore" or "torch"): `build(lib)` makes the model
    from the library module, `state` its weights, (x, y) the batch and integer labels; with
    `threads` the library's thread count is set first. The step returns the loss tensor; its
    `.model` attribute is the model (for tests)."""
    if backend == "nncore":
        import nncore as lib

        weights, labels = state, y
    elif backend == "torch":
        import torch as lib

        weights = {k: lib.from_numpy(np.array(v)) for k, v in state.items()}
        labels = lib.from_numpy(y).to(device)
    else:
        raise ValueError(f"adam_step: backend must be 'nncore' or 'torch', got {backend!r}")
    if threads:
        lib.set_num_threads(threads)
    model = build(lib)
    model.load_state_dict(weights)
    model.to(device)
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    xt = lib.from_numpy(x).to(device)
    loss_fn = lib.nn.functional.cross_entropy

    def step() -> Any:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), labels)
        loss.backward()
        opt.step()
        return loss

    step.model = model
    return step
