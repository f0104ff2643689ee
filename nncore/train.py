"""A small, optional training loop: `fit()` / `Trainer` (plain loops stay first-class).

Per epoch: train over `train_loader` (model.train()), evaluate over `val_loader` under
no_grad (model.eval()), compute metrics on the epoch's outputs, step the scheduler, save the
best checkpoint, and stop early when the monitored value stops improving. Progress bars use
tqdm (live loss and samples/s) when it is installed; loss/metric curves are saved as PNG when
matplotlib is installed and `plot_path` is given.

Example:
    >>> history = nncore.train.fit(model, nn.CrossEntropyLoss(), opt, train_loader,
    ...                            val_loader, epochs=5, metrics=["accuracy"])
    >>> history["val_accuracy"][-1]
"""
from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from . import io as _io
from . import metrics as _metrics
from .autograd import no_grad
from .optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau
from .tensor import Tensor

__all__ = ["Trainer", "fit", "plot_history"]

MetricFn = Callable[[Any, Any], float]


# Metrics that only need predicted labels: an epoch keeps argmax labels, not full scores.
_LABEL_METRICS = (_metrics.accuracy, _metrics.precision, _metrics.recall, _metrics.f1_score)


def _resolve_metrics(metrics: Any) -> dict[str, MetricFn]:
    if metrics is None:
        return {}
    if isinstance(metrics, Mapping):
        items = list(metrics.items())
    elif isinstance(metrics, str):
        items = [(metrics, metrics)]
    else:
        items = [(m if isinstance(m, str) else getattr(m, "__name__", f"metric{i}"), m)
                 for i, m in enumerate(metrics)]
    out = {}
    for name, fn in items:
        if isinstance(fn, str):
            if fn not in _metrics.__all__:
                raise ValueError(f"unknown metric {fn!r}; choose from {_metrics.__all__} or "
                                 "pass a callable(preds, target) -> float")
            fn = getattr(_metrics, fn)
        if not callable(fn):
            raise TypeError(f"metric {name!r} must be a name or a callable, got {fn!r}")
        out[name] = fn
    return out


def _batch_size(y: Any) -> int:
    arr = y.data if isinstance(y, Tensor) else np.asarray(y)
    return int(arr.shape[0]) if arr.ndim else 1


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _tqdm() -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class Trainer:
    """Holds the model, loss, optimizer and options; `fit()` runs the epochs.

    Args:
        model: an nn.Module; called as model(x) on each batch (x, y).
        loss_fn: callable(output, y) -> scalar Tensor.
        optimizer: an nncore.optim optimizer.
        scheduler: optional; ReduceLROnPlateau steps on the monitored value each epoch,
            OneCycleLR after every batch, any other scheduler once per epoch.
        metrics: names from nncore.metrics ("accuracy", "f1_score", ...), callables
            (preds, target) -> float, or a {name: either} dict; computed on each epoch's
            concatenated outputs and targets. "auto" (default): accuracy when the targets
            are integer class labels and the outputs have a class axis, else nothing.
        monitor: the history key watched for early stopping and the best checkpoint
            ("val_loss" by default, "train_loss" without validation data).
        mode: "min" or "max" for `monitor`.
        early_stopping_patience: stop once this many epochs in a row did not improve
            `monitor` (as Keras' and Lightning's EarlyStopping).
        checkpoint_path: save a checkpoint (model, optimizer, scheduler, RNG, history) here
            whenever the monitored value improves.
        progress: show tqdm bars (or one printed line per epoch without tqdm).
        plot_path: save loss/metric curves to this PNG after training (needs matplotlib).
    """

    def __init__(self, model: Any, loss_fn: Callable, optimizer: Any, scheduler: Any = None,
                 metrics: Any = "auto", monitor: str | None = None, mode: str = "min",
                 early_stopping_patience: int | None = None,
                 checkpoint_path: str | None = None, progress: bool = True,
                 plot_path: str | None = None) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if early_stopping_patience is not None and early_stopping_patience < 0:
            raise ValueError(f"early_stopping_patience must be >= 0, got "
                             f"{early_stopping_patience}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.scheduler = scheduler
        self._auto_metrics = isinstance(metrics, str) and metrics == "auto"
        self.metrics = _resolve_metrics("accuracy" if self._auto_metrics else metrics)
        self._labels_only = all(fn in _LABEL_METRICS for fn in self.metrics.values())
        self.monitor, self.mode = monitor, mode
        self.early_stopping_patience = early_stopping_patience
        self.checkpoint_path = checkpoint_path
        self.progress = progress
        self.plot_path = plot_path
        self.history: dict[str, list] = {}

    # ---------------------------------------------------------------------- one pass
    def _run_epoch(self, loader: Iterable, train: bool, desc: str) -> dict[str, float]:
        was_training = self.model.training
        self.model.train(train)
        tqdm = _tqdm() if self.progress else None
        total = len(loader) if hasattr(loader, "__len__") else None
        bar = tqdm(total=total, desc=desc, leave=False, file=sys.stderr,
                   dynamic_ncols=True) if tqdm is not None else None
        loss_sum, seen, outputs, targets = 0.0, 0, [], []
        start = time.perf_counter()
        try:
            for x, y in loader:
                n = _batch_size(y)
                if train:
                    self.optimizer.zero_grad()
                    out = self.model(x)
                    loss = self.loss_fn(out, y)
                    loss.backward()
                    self.optimizer.step()
                    if isinstance(self.scheduler, OneCycleLR):
                        self.scheduler.step()
                else:
                    with no_grad():
                        out = self.model(x)
                        loss = self.loss_fn(out, y)
                value = float(loss.item())
                if not math.isfinite(value):
                    warnings.warn(f"{desc}: non-finite loss {value} after {seen} samples",
                                  RuntimeWarning, stacklevel=3)
                loss_sum += value * n
                seen += n
                if self.metrics:
                    o, t = _array(out), _array(y)
                    if self._labels_only and o.ndim == t.ndim + 1:
                        # labels suffice: keep N ints, not N*C floats (flat: any seq length)
                        o, t = np.argmax(o, axis=-1).reshape(-1), t.reshape(-1)
                    outputs.append(np.array(o, copy=True))
                    targets.append(np.array(t, copy=True))
                if bar is not None:
                    rate = seen / max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", samples_s=f"{rate:.0f}",
                                    refresh=False)
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            if not train:
                self.model.train(was_training)  # evaluation leaves the mode as it found it
        if seen == 0:
            raise ValueError(f"{desc}: the data loader yielded no batches")
        elapsed = time.perf_counter() - start
        result = {"loss": loss_sum / seen, "samples_per_s": seen / max(elapsed, 1e-9),
                  "time_s": elapsed}
        if self.metrics:
            preds, target = np.concatenate(outputs), np.concatenate(targets)
            if self._auto_metrics and (target.dtype.kind not in "iu" or
                                       preds.ndim not in (target.ndim, target.ndim + 1) or
                                       preds.dtype.kind == "f" and preds.ndim == target.ndim):
                return result  # not single-label classification: no automatic accuracy
            for name, fn in self.metrics.items():
                result[name] = float(fn(preds, target))
        return result

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        """Loss and metrics over `loader` without gradients (in eval mode, then restored)."""
        return self._run_epoch(loader, train=False, desc="eval")

    def train_epoch(self, loader: Iterable) -> dict[str, float]:
        """One optimisation pass over `loader`; returns loss, metrics, samples/s."""
        return self._run_epoch(loader, train=True, desc="train")

    # ---------------------------------------------------------------------- the loop
    def _record(self, key: str, value: float) -> None:
        self.history.setdefault(key, []).append(value)

    def _improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best if self.mode == "min" else value > best

    def fit(self, train_loader: Iterable, val_loader: Iterable | None = None,
            epochs: int = 1) -> dict[str, list]:
        """Train for `epochs` epochs; returns the history {"train_loss": [...], ...}."""
        if int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs}")
        monitor = self.monitor or ("val_loss" if val_loader is not None else "train_loss")
        best, bad_epochs = None, 0
        self.history = {"epoch": []}
        for epoch in range(1, int(epochs) + 1):
            lr = float(self.optimizer.param_groups[0]["lr"])
            logs = {f"train_{k}": v for k, v in self.train_epoch(train_loader).items()}
            if val_loader is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(val_loader).items()
                             if k != "time_s"})
            logs["lr"] = lr
            self._record("epoch", epoch)
            for k, v in logs.items():
                self._record(k, v)
            if monitor not in logs:
                raise KeyError(f"monitor {monitor!r} is not among the logged values "
                               f"{sorted(logs)}")
            current = logs[monitor]
            if self.scheduler is not None and not isinstance(self.scheduler, OneCycleLR):
                if isinstance(self.scheduler, ReduceLROnPlateau):
                    self.scheduler.step(current)
                else:
                    self.scheduler.step()
            if self.progress:
                shown = {k: v for k, v in logs.items() if not k.endswith(("time_s", "_per_s"))}
                line = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
                rate = logs["train_samples_per_s"]
                print(f"epoch {epoch}/{epochs} {line} ({rate:.0f} samples/s)", file=sys.stderr)
            if self._improved(current, best):
                best, bad_epochs = current, 0
                if self.checkpoint_path is not None:
                    _io.save_checkpoint(self.checkpoint_path, model=self.model,
                                        optimizer=self.optimizer, scheduler=self.scheduler,
                                        epoch=epoch, extra={"history": self.history,
                                                            "monitor": monitor, "best": best})
            else:
                bad_epochs += 1
                if self.early_stopping_patience is not None and \
                        bad_epochs >= self.early_stopping_patience:
                    if self.progress:
                        print(f"early stopping: {monitor} did not improve for {bad_epochs} "
                              "epochs", file=sys.stderr)
                    break
        if self.plot_path is not None:
            plot_history(self.history, self.plot_path)
        return self.history


def fit(model: Any, loss_fn: Callable, optimizer: Any, train_loader: Iterable,
        val_loader: Iterable | None = None, epochs: int = 1, scheduler: Any = None,
        metrics: Any = "auto", early_stopping_patience: int | None = None,
        checkpoint_path: str | None = None, progress: bool = True,
        plot_path: str | None = None, monitor: str | None = None,
        mode: str = "min") -> dict[str, list]:
    """Train `model` for `epochs` epochs and return the history (see `Trainer`).

    History keys: "epoch", "lr", "train_loss", "train_<metric>", "train_samples_per_s",
    "train_time_s", and with val_loader "val_loss", "val_<metric>", "val_samples_per_s".
    """
    trainer = Trainer(model, loss_fn, optimizer, scheduler=scheduler, metrics=metrics,
                      monitor=monitor, mode=mode, early_stopping_patience=early_stopping_patience,
                      checkpoint_path=checkpoint_path, progress=progress, plot_path=plot_path)
    return trainer.fit(train_loader, val_loader, epochs)


def plot_history(history: Mapping[str, list], path: str) -> bool:
    """Save loss (and metric) curves per epoch as a PNG; False if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("plot_path given but matplotlib is not installed; no plot saved",
                      RuntimeWarning, stacklevel=2)
        return False
    skip = ("epoch", "lr")
    names = sorted({k.split("_", 1)[1] for k in history if k.startswith(("train_", "val_"))
                    and not k.endswith(("time_s", "_per_s"))} - set(skip))
    names.sort(key=lambda n: (n != "loss", n))
    epochs = history.get("epoch") or list(range(1, len(history.get("train_loss", [])) + 1))
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for split in ("train", "val"):
            key = f"{split}_{name}"
            if key in history:
                ax.plot(epochs, history[key], marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
