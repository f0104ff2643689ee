"""The NumPy baseline: what a good NumPy programmer writes for the benchmarked workloads.

Vectorised, float32, `@` for every matrix product (NumPy's BLAS, OpenBLAS in the wheels),
parameter gradients and optimizer state updated in place into buffers allocated once. Kept
honest by tests/test_benchmarks.py, which checks it against nncore to float32 rounding.

Shapes: N batch, D_in/D_out layer widths, C classes. Weights are (out, in) as in PyTorch.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "MLP_SIZES",
    "NumpyAdam",
    "NumpyMLP",
    "cross_entropy_forward_backward",
    "init_mlp_weights",
    "linear_relu_forward_backward",
    "make_batch",
    "relu_forward",
    "softmax_cross_entropy",
    "train_step",
]

MLP_SIZES = (784, 128, 64, 10)


def init_mlp_weights(sizes: Sequence[int] = MLP_SIZES, seed: int = 0,
                     dtype: type = np.float32) -> dict[str, np.ndarray]:
    """PyTorch-style Linear init U(-1/sqrt(in), 1/sqrt(in)) as a Sequential state dict.

    Keys "0.weight", "0.bias", "2.weight", ... (Linear layers at even indices, ReLU between),
    so one dict can be loaded into nncore, torch and `NumpyMLP` alike.
    """
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1.0 / math.sqrt(fan_in)
        state[f"{2 * i}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(dtype)
        state[f"{2 * i}.bias"] = rng.uniform(-bound, bound, fan_out).astype(dtype)
    return state


def make_batch(batch: int = 64, features: int = 784, classes: int = 10, seed: int = 1,
               dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """An MNIST-like batch: pixels in [0, 1] (about 80% zeros) normalised, int64 labels."""
    rng = np.random.default_rng(seed)
    pixels = rng.random((batch, features))
    pixels[rng.random((batch, features)) < 0.8] = 0.0
    x = ((pixels - 0.1307) / 0.3081).astype(dtype)
    y = rng.integers(0, classes, batch, dtype=np.int64)
    return x, y


class NumpyMLP:
    """Linear-ReLU-...-Linear MLP with a hand-written backward.

    forward(x (N, D_in)) -> logits (N, C), caching each layer's input; backward(dlogits)
    fills `dweights`/`dbiases` in place (dW = dout.T @ a, db = dout.sum(0), da = dout @ W).
    """

    def __init__(self, sizes: Sequence[int] = MLP_SIZES, seed: int = 0,
                 dtype: type = np.float32) -> None:
        self.sizes = tuple(sizes)
        state = init_mlp_weights(sizes, seed, dtype)
        self.weights = [state[f"{2 * i}.weight"] for i in range(len(sizes) - 1)]
        self.biases = [state[f"{2 * i}.bias"] for i in range(len(sizes) - 1)]
        self.dweights = [np.zeros_like(w) for w in self.weights]
        self.dbiases = [np.zeros_like(b) for b in self.biases]
        self._inputs: list[np.ndarray] = []

    def load_from(self, state: Mapping[str, np.ndarray]) -> NumpyMLP:
        """Copy weights from a Sequential state dict ("0.weight", "0.bias", "2.weight", ...)."""
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            src_w = np.asarray(state[f"{2 * i}.weight"])
            src_b = np.asarray(state[f"{2 * i}.bias"])
            if src_w.shape != w.shape or src_b.shape != b.shape:
                raise ValueError(f"load_from: layer {2 * i} expects weight {w.shape} and bias "
                                 f"{b.shape}, got {src_w.shape} and {src_b.shape}")
            w[...] = src_w
            b[...] = src_b
        return self

    def parameters(self) -> list[np.ndarray]:
        """[W0, b0, W1, b1, ...]: the order of nncore's / torch's model.parameters()."""
        return [p for wb in zip(self.weights, self.biases) for p in wb]

    def gradients(self) -> list[np.ndarray]:
        """[dW0, db0, dW1, db1, ...], aligned with `parameters()`."""
        return [g for gb in zip(self.dweights, self.dbiases) for g in gb]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, C) for x (N, D_in); ReLU after every layer but the last."""
        self._inputs = []
        a = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            self._inputs.append(a)
            h = a @ w.T
            h += b
            if i < last:
                np.maximum(h, 0, out=h)
            a = h
        return a

    def backward(self, dlogits: np.ndarray) -> None:
        """Gradients of the loss w.r.t. every parameter, given dL/dlogits (N, C)."""
        dout = dlogits
        for i in range(len(self.weights) - 1, -1, -1):
            a = self._inputs[i]
            np.matmul(dout.T, a, out=self.dweights[i])
            np.sum(dout, axis=0, out=self.dbiases[i])
            if i > 0:  # the network input needs no gradient
                dout = dout @ self.weights[i]
                dout *= a > 0  # a is the previous ReLU's output: ReLU' is its mask


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of logits (N, C) against int labels (N,) and its gradient (N, C).

    Stable: subtract the row max, loss = log-sum-exp - logit[label]; dlogits = (softmax -
    onehot) / N.
    """
    n = logits.shape[0]
    rows = np.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sums = exp.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(sums[:, 0]) - shifted[rows, labels]))
    exp /= sums
    exp[rows, labels] -= 1.0
    exp /= n
    return loss, exp


class NumpyAdam:
    """Adam (or L2-regularised Adam with weight_decay) with PyTorch's exact update.

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps); all updates in place.
    """

    def __init__(self, params: Sequence[np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.exp_avg = [np.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [np.zeros_like(p) for p in self.params]
        self._scratch = [np.empty_like(p) for p in self.params]
        self.step_count = 0

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update of every parameter from `grads` (aligned with `params`)."""
        self.step_count += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1.0 - beta1 ** self.step_count)
        bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** self.step_count)
        for p, g, m, v, tmp in zip(self.params, grads, self.exp_avg, self.exp_avg_sq,
                                   self._scratch):
            if self.weight_decay:
                g = g + self.weight_decay * p
            m *= beta1
            np.multiply(g, 1.0 - beta1, out=tmp)
            m += tmp
            v *= beta2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - beta2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp /= bias_correction2_sqrt
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp


def train_step(model: NumpyMLP, opt: NumpyAdam, x: np.ndarray, y: np.ndarray) -> float:
    """Forward, softmax cross-entropy, backward and one optimizer step; returns the loss."""
    logits = model.forward(x)
    loss, dlogits = softmax_cross_entropy(logits, y)
    model.backward(dlogits)
    opt.step(model.gradients())
    return loss


def linear_relu_forward_backward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                                 dout: np.ndarray, relu: bool = True) -> tuple[np.ndarray, ...]:
    """y = relu(x @ W.T + b) and the gradients (dx, dW, db) for upstream dout (N, D_out)."""
    y = x @ weight.T
    y += bias
    if relu:
        np.maximum(y, 0, out=y)
        dh = dout * (y > 0)
    else:
        dh = dout
    dweight = dh.T @ x
    dbias = dh.sum(axis=0)
    dx = dh @ weight
    return y, dx, dweight, dbias


def cross_entropy_forward_backward(logits: np.ndarray,
                                   labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and dL/dlogits (the op-benchmark entry point)."""
    return softmax_cross_entropy(logits, labels)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """max(x, 0) into a new array."""
    return np.maximum(x, 0)


def relu_forward_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """y = max(x, 0), then dx = dout where y > 0 (the gradient a training step needs)."""
    y = np.maximum(x, 0)
    return dout * (y > 0)
