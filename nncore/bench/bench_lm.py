"""A whole language-model training step, in tokens/s: Embedding(V=10,000, E=128) -> LSTM(128,
256) -> Linear(256, 10,000) -> cross-entropy over batch 32 x T 35 tokens, backward, Adam
(lr 1e-3); float32; the same weights and tokens for nncore, torch and a NumPy step built on the
per-step NumPy LSTM of nncore/bench/baseline_rnn.py; each (backend, threads) in its own process.

    python -m nncore.bench.bench_lm [--threads 1,2] [--repeat 7] [--quick]
"""
from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nncore.bench import harness
from nncore.bench.training_step import adam_step

__all__ = ["V", "E", "H", "B", "T", "CASE", "init_lm_weights", "make_step", "lm_worker"]

V, E, H, B, T = 10_000, 128, 256, 32, 35
CASE = f"lm step V{V} E{E} H{H} b{B}xT{T} adam"
TOKENS = B * T


def init_lm_weights(seed: int = 0, V: int = V, E: int = E,
                    H: int = H) -> dict[str, np.ndarray]:
    """PyTorch-named float32 state dict: encoder.weight, rnn.{weight,bias}_{ih,hh}_l0,
    decoder.weight/bias (U(-0.1, 0.1) embedding/decoder, U(-1/sqrt(H), 1/sqrt(H)) LSTM)."""
    rng = np.random.default_rng(seed)

    def u(bound: float, *shape: int) -> np.ndarray:
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    k = 1 / np.sqrt(H)
    return {"encoder.weight": u(0.1, V, E),
            "rnn.weight_ih_l0": u(k, 4 * H, E), "rnn.weight_hh_l0": u(k, 4 * H, H),
            "rnn.bias_ih_l0": u(k, 4 * H), "rnn.bias_hh_l0": u(k, 4 * H),
            "decoder.weight": u(0.1, V, H), "decoder.bias": np.zeros(V, np.float32)}


def make_tokens(seed: int = 1, V: int = V, T: int = T,
                B: int = B) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) int64 of shape (T, B): a random stream and the stream shifted by one."""
    stream = np.random.default_rng(seed).integers(0, V, (T + 1, B), dtype=np.int64)
    return np.ascontiguousarray(stream[:-1]), np.ascontiguousarray(stream[1:])


def _dims(state: dict) -> tuple[int, int, int]:
    """(V, E, H) of a state dict from init_lm_weights."""
    V, E = state["encoder.weight"].shape
    return V, E, state["rnn.weight_hh_l0"].shape[1]


def _model(lib: Any, state: dict) -> Any:
    nn = lib.nn
    V, E, H = _dims(state)

    class LM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Embedding(V, E)
            self.rnn = nn.LSTM(E, H)
            self.decoder = nn.Linear(H, V)

        def forward(self, x: Any) -> Any:
            out, _ = self.rnn(self.encoder(x))
            return self.decoder(out.reshape(-1, H))

    return LM()


def _nncore_step(state: dict, x: np.ndarray, y: np.ndarray, threads: int) -> Callable:
    return adam_step("nncore", lambda lib: _model(lib, state), state, x, y.reshape(-1), threads)


def _torch_step(state: dict, x: np.ndarray, y: np.ndarray, threads: int) -> Callable:
    return adam_step("torch", lambda lib: _model(lib, state), state, x, y.reshape(-1), threads)


def _numpy_step(state: dict, x: np.ndarray, y: np.ndarray, threads: int) -> Callable | None:
    """The same step in NumPy: fancy-index gather, 5a's per-step NumPy LSTM
    (nncore/bench/baseline_rnn.py), `@` decoder, stable softmax cross-entropy, np.add.at
    scatter for the embedding gradient, PyTorch's Adam (numpy_baseline.NumpyAdam)."""
    try:
        from nncore.bench.baseline_rnn import lstm_backward, lstm_forward
    except ImportError:
        return None
    from nncore.bench.numpy_baseline import NumpyAdam, softmax_cross_entropy

    p = {k: v.copy() for k, v in state.items()}
    _, E, H = _dims(state)
    T, B = x.shape
    names = list(p)
    opt = NumpyAdam([p[k] for k in names], lr=1e-3)
    zeros = np.zeros((B, H), np.float32)
    ids, labels = x.reshape(-1), y.reshape(-1)

    def step() -> float:
        emb = p["encoder.weight"][x]                                   # (T, B, E)
        out, _, _, cache = lstm_forward(emb, zeros, zeros, p["rnn.weight_ih_l0"],
                                        p["rnn.weight_hh_l0"], p["rnn.bias_ih_l0"],
                                        p["rnn.bias_hh_l0"])
        hid = out.reshape(-1, H)
        logits = hid @ p["decoder.weight"].T + p["decoder.bias"]      # (T*B, V)
        loss, dlogits = softmax_cross_entropy(logits, labels)
        grads = {"decoder.weight": dlogits.T @ hid, "decoder.bias": dlogits.sum(axis=0)}
        dout = (dlogits @ p["decoder.weight"]).reshape(T, B, H)
        dx, _, _, dw_ih, dw_hh, db = lstm_backward(dout, zeros, zeros, cache)
        dtable = np.zeros_like(p["encoder.weight"])
        np.add.at(dtable, ids, dx.reshape(-1, E))
        grads.update({"encoder.weight": dtable, "rnn.weight_ih_l0": dw_ih,
                      "rnn.weight_hh_l0": dw_hh, "rnn.bias_ih_l0": db, "rnn.bias_hh_l0": db})
        opt.step([grads[k] for k in names])
        return loss

    return step


_BUILDERS = {"nncore": _nncore_step, "numpy": _numpy_step, "torch": _torch_step}


def make_step(backend: str, threads: int, seed: int = 0,
              dims: tuple[int, int, int, int, int] = (V, E, H, B, T)) -> Callable | None:
    """A zero-argument training-step callable for `backend` (None: NumPy baseline missing).
    `dims` = (V, E, H, B, T); smaller ones make quick correctness tests."""
    if backend not in _BUILDERS:
        raise ValueError(f"make_step: unknown backend {backend!r}, expected one of "
                         f"{sorted(_BUILDERS)}")
    v, e, h, b, t = dims
    x, y = make_tokens(seed + 1, v, t, b)
    return _BUILDERS[backend](init_lm_weights(seed, v, e, h), x, y, threads)


def lm_worker(backends: Sequence[str], threads: int, repeats: int = 7, min_time: float = 0.2,
              warmup: int = 3) -> list[dict]:
    """Measure the step for each backend in this process; one record per backend. The
    record's `batch` is the token count, so the table's samples/s column is tokens/s."""
    records = []
    for backend in backends:
        try:
            step = make_step(backend, threads)
            if step is None:
                continue
            stats = harness.measure(step, repeats=repeats, min_time=min_time, warmup=warmup)
            records.append(harness.record("lm", CASE, backend, threads, stats, "ms",
                                          batch=TOKENS))
        except Exception:
            records.append(harness.error_record("lm", CASE, backend, threads,
                                                traceback.format_exc()))
    return records


def main(argv: Sequence[str] | None = None) -> None:
    harness.family_main("bench_lm", lm_worker, __doc__, argv,
                        header=f"{CASE}: {TOKENS} tokens per step; 'samples/s' rows are tokens/s")


if __name__ == "__main__":
    main()
