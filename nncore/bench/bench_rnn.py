"""Recurrent layers: nncore's fused LSTM / GRU against the NumPy per-step baseline
(nncore/bench/baseline_rnn.py) and torch when installed, same weights and data, float32.

Cases (T=35, B=32, I=128, H=256, one layer, zero initial state):
  lstm fwd      forward only, no graph (torch/nncore under no_grad)
  lstm fwd+bwd  forward, then backward of sum(out * dout): gradients of input and weights
  gru fwd, gru fwd+bwd  the same for the GRU

    python -m nncore.bench.bench_rnn [--threads 1,2] [--repeat 7] [--quick]
"""
from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nncore.bench import baseline_rnn as nb
from nncore.bench import harness

__all__ = ["CASES", "SHAPE", "make_case", "rnn_worker"]

SHAPE = dict(T=35, B=32, I=128, H=256)
_TAG = "T{T} B{B} {I}->{H}".format(**SHAPE)


def _data(kind: str, seed: int = 0) -> dict:
    """Shared float32 weights (PyTorch init) and data for `kind` in {'lstm', 'gru'}."""
    T, B, I, H = SHAPE["T"], SHAPE["B"], SHAPE["I"], SHAPE["H"]
    G = (4 if kind == "lstm" else 3) * H
    r = np.random.default_rng(seed)
    s = 1 / np.sqrt(H)
    u = lambda *shape: r.uniform(-s, s, shape).astype(np.float32)  # noqa: E731
    return {"x": r.standard_normal((T, B, I)).astype(np.float32),
            "dout": r.standard_normal((T, B, H)).astype(np.float32),
            "h0": np.zeros((B, H), np.float32),
            "state": {"weight_ih_l0": u(G, I), "weight_hh_l0": u(G, H),
                      "bias_ih_l0": u(G), "bias_hh_l0": u(G)}}


def _numpy_case(kind: str, backward: bool) -> Callable[[], Any]:
    d = _data(kind)
    w = [d["state"][k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    x, h0, dout = d["x"], d["h0"], d["dout"]
    if kind == "lstm":
        if backward:
            return lambda: nb.lstm_forward_backward(x, h0, h0, *w, dout)
        return lambda: nb.lstm_forward(x, h0, h0, *w)
    if backward:
        return lambda: nb.gru_forward_backward(x, h0, *w, dout)
    return lambda: nb.gru_forward(x, h0, *w)


def _lib_case(lib: Any, kind: str, backward: bool) -> Callable[[], Any]:
    d = _data(kind)
    cls = lib.nn.LSTM if kind == "lstm" else lib.nn.GRU
    model = cls(SHAPE["I"], SHAPE["H"])
    model.load_state_dict({k: lib.from_numpy(v.copy()) for k, v in d["state"].items()})
    x = lib.from_numpy(d["x"])
    dout = lib.from_numpy(d["dout"])
    if not backward:
        def forward() -> Any:
            with lib.no_grad():
                return model(x)[0]
        return forward
    x.requires_grad_(True)
    params = list(model.parameters())

    def step() -> None:
        for p in params:
            p.grad = None
        x.grad = None
        out = model(x)[0]
        out.backward(dout)

    return step


def make_case(case: str, backend: str) -> Callable[[], Any]:
    """The zero-argument callable of `case` (a name in CASES) for `backend`."""
    for name, kind, backward in CASES:
        if name == case:
            if backend == "numpy":
                return _numpy_case(kind, backward)
            if backend == "nncore":
                import nncore as lib
            elif backend == "torch":
                import torch as lib
            else:
                raise ValueError(f"make_case: unknown backend {backend!r}")
            return _lib_case(lib, kind, backward)
    raise ValueError(f"make_case: unknown case {case!r}; cases: {[c[0] for c in CASES]}")


CASES: list[tuple[str, str, bool]] = [
    (f"lstm fwd {_TAG}", "lstm", False),
    (f"lstm fwd+bwd {_TAG}", "lstm", True),
    (f"gru fwd {_TAG}", "gru", False),
    (f"gru fwd+bwd {_TAG}", "gru", True),
]


def rnn_worker(backends: Sequence[str], threads: int, repeats: int = 7, min_time: float = 0.2,
               warmup: int = 3, cases: Sequence[str] | None = None) -> list[dict]:
    """Measure every case for each backend in this process; one record per (case, backend)."""
    harness.set_backend_threads(backends, threads)
    records = []
    for backend in backends:
        for name, _, _ in CASES:
            if cases is not None and name not in cases:
                continue
            try:
                stats = harness.measure(make_case(name, backend), repeats=repeats,
                                        min_time=min_time, warmup=warmup)
                records.append(harness.record("rnn", name, backend, threads, stats, "ms",
                                              batch=SHAPE["B"]))
            except Exception:
                records.append(harness.error_record("rnn", name, backend, threads,
                                                    traceback.format_exc()))
    return records


def main(argv: Sequence[str] | None = None) -> None:
    harness.family_main("bench_rnn", rnn_worker, __doc__, argv)


if __name__ == "__main__":
    main()
