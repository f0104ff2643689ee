"""Classification and language-model metrics on Tensors, ndarrays or lists (NumPy, float64).

Argument order follows torchmetrics: ``metric(preds, target)``. `preds` may be class labels
(ints, same shape as target), scores/logits with one extra trailing class axis (argmax is
taken), or probabilities of the positive class (floats, same shape as target; thresholded at
0.5). Confusion matrices put the true class on rows and the predicted class on columns.

Example:
    >>> nncore.metrics.accuracy(logits, labels)              # logits (N, C), labels (N,)
    >>> nncore.metrics.f1_score(logits, labels, average="macro")
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["accuracy", "top_k_accuracy", "confusion_matrix", "precision", "recall", "f1_score",
           "precision_recall_f1", "perplexity"]

_AVERAGES = ("micro", "macro", "weighted", "binary", None)


def _np(x: Any, name: str) -> np.ndarray:
    arr = x.data if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name}: expected numbers, got an object array")
    return arr


def _labels(x: np.ndarray, name: str) -> np.ndarray:
    if x.dtype.kind == "b":
        return x.astype(np.int64)
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise ValueError(f"{name}: class labels must be integers, got non-integral floats")
        x = x.astype(np.int64)
    elif x.dtype.kind not in "iu":
        raise TypeError(f"{name}: class labels must be integers, got dtype {x.dtype}")
    if x.size and x.min() < 0:
        raise ValueError(f"{name}: class labels must be >= 0, got {int(x.min())}")
    return x.astype(np.int64, copy=False)


def _predicted_labels(preds: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    """(predicted labels, true labels), both int64 of the target's shape."""
    p, t = _np(preds, "preds"), _labels(_np(target, "target"), "target")
    if p.ndim == t.ndim + 1:
        if p.shape[:-1] != t.shape:
            raise ValueError(f"preds of shape {p.shape} (scores with a trailing class axis) "
                             f"do not match target of shape {t.shape}")
        if p.shape[-1] == 0:
            raise ValueError("preds: the class axis is empty")
        return np.argmax(p, axis=-1), t
    if p.shape != t.shape:
        raise ValueError(f"preds of shape {p.shape} and target of shape {t.shape}: expected "
                         "the same shape (labels or probabilities) or one extra class axis")
    if p.dtype.kind == "f" and np.any(p != np.round(p)):
        return (p >= 0.5).astype(np.int64), t  # probabilities of the positive class
    return _labels(p, "preds"), t


def accuracy(preds: Any, target: Any) -> float:
    """Fraction of elements whose predicted class equals the target.

    Example: accuracy([[0.1, 0.9], [0.8, 0.2]], [1, 1]) == 0.5
    """
    p, t = _predicted_labels(preds, target)
    if t.size == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    return float(np.mean(p == t))


def top_k_accuracy(preds: Any, target: Any, k: int = 5) -> float:
    """Fraction of rows whose target class is among the k highest scores.

    preds: scores (N, C); target: labels (N,). Ties count in the target's favour (a target is
    in the top k when fewer than k classes score strictly higher).
    """
    s, t = _np(preds, "preds"), _labels(_np(target, "target"), "target")
    if s.ndim != 2 or t.shape != s.shape[:1]:
        raise ValueError(f"top_k_accuracy: expected preds (N, C) and target (N,), got "
                         f"{s.shape} and {t.shape}")
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    if t.size == 0:
        raise ValueError("top_k_accuracy of an empty batch is undefined")
    if t.max() >= s.shape[1]:
        raise ValueError(f"target label {int(t.max())} out of range for {s.shape[1]} classes")
    target_score = s[np.arange(len(t)), t]
    higher = np.sum(s > target_score[:, None], axis=1)
    return float(np.mean(higher < k))


def confusion_matrix(preds: Any, target: Any, num_classes: int | None = None) -> np.ndarray:
    """Counts (num_classes, num_classes): entry [i, j] = #elements of true class i predicted j.

    num_classes defaults to 1 + the largest label seen.
    """
    p, t = _predicted_labels(preds, target)
    p, t = p.reshape(-1), t.reshape(-1)
    seen = int(max(p.max(initial=-1), t.max(initial=-1))) + 1
    if num_classes is None:
        num_classes = seen
    elif seen > num_classes:
        raise ValueError(f"label {seen - 1} out of range for num_classes={num_classes}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def _div(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    out = np.full(num.shape, float(zero_division))
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_f1(preds: Any, target: Any, average: str | None = "macro",
                        num_classes: int | None = None, zero_division: float = 0.0,
                        pos_label: int = 1) -> tuple[Any, Any, Any]:
    """(precision, recall, F1) for single-label classification.

    average: "micro" (global counts; equals accuracy when every class is included), "macro"
    (unweighted mean over classes), "weighted" (mean weighted by each class's support),
    "binary" (the `pos_label` class only), or None (per-class arrays). Classes are
    0..num_classes-1 when num_classes is given, else the labels present in preds or target.
    A 0/0 ratio is `zero_division`.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    cm = confusion_matrix(preds, target, num_classes)
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    support = cm.sum(axis=1).astype(np.float64)
    if average == "binary":
        if pos_label >= len(tp):
            return float(zero_division), float(zero_division), float(zero_division)
        keep = np.array([pos_label])
    elif num_classes is None:
        keep = np.flatnonzero(cm.sum(axis=0) + cm.sum(axis=1))
    else:
        keep = np.arange(len(tp))
    tp, fp, fn, support = tp[keep], fp[keep], fn[keep], support[keep]
    if average == "micro":
        tp, fp, fn = tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True)
    prec = _div(tp, tp + fp, zero_division)
    rec = _div(tp, tp + fn, zero_division)
    f1 = _div(2 * tp, 2 * tp + fp + fn, zero_division)
    if average is None:
        return prec, rec, f1
    if average == "weighted":
        total = support.sum()
        w = support / total if total > 0 else np.zeros_like(support)
        return float(prec @ w), float(rec @ w), float(f1 @ w)
    if len(prec) == 0:
        return float(zero_division), float(zero_division), float(zero_division)
    return float(prec.mean()), float(rec.mean()), float(f1.mean())


def precision(preds: Any, target: Any, average: str | None = "macro",
              num_classes: int | None = None, zero_division: float = 0.0) -> Any:
    """tp / (tp + fp), averaged as in `precision_recall_f1`."""
    return precision_recall_f1(preds, target, average, num_classes, zero_division)[0]


def recall(preds: Any, target: Any, average: str | None = "macro",
           num_classes: int | None = None, zero_division: float = 0.0) -> Any:
    """tp / (tp + fn), averaged as in `precision_recall_f1`."""
    return precision_recall_f1(preds, target, average, num_classes, zero_division)[1]


def f1_score(preds: Any, target: Any, average: str | None = "macro",
             num_classes: int | None = None, zero_division: float = 0.0) -> Any:
    """2 tp / (2 tp + fp + fn) (the harmonic mean of precision and recall), averaged."""
    return precision_recall_f1(preds, target, average, num_classes, zero_division)[2]


def perplexity(preds: Any, target: Any = None, ignore_index: int | None = -100) -> float:
    """exp(mean negative log-likelihood of the target tokens).

    perplexity(logits, target): logits (..., V) unnormalised scores, target (...) token ids;
    positions equal to ignore_index are skipped. perplexity(mean_loss): exp(loss) for a mean
    cross-entropy already computed (a float or 1-element Tensor).
    """
    if target is None:
        loss = _np(preds, "preds")
        if loss.size != 1:
            raise ValueError(f"perplexity(loss): expected one mean loss, got shape {loss.shape}")
        return float(np.exp(float(loss.reshape(-1)[0])))
    logits = _np(preds, "preds").astype(np.float64)
    t = _np(target, "target")
    if t.dtype.kind not in "iu":
        raise TypeError(f"target: token ids must be integers, got dtype {t.dtype}")
    if logits.ndim != t.ndim + 1 or logits.shape[:-1] != t.shape:
        raise ValueError(f"perplexity: logits {logits.shape} must be target {t.shape} plus a "
                         "trailing vocabulary axis")
    logits, t = logits.reshape(-1, logits.shape[-1]), t.reshape(-1)
    keep = t != ignore_index if ignore_index is not None else np.ones(t.shape, bool)
    logits, t = logits[keep], t[keep]
    if t.size == 0:
        raise ValueError("perplexity: no target tokens (all ignored or empty)")
    if t.min() < 0 or t.max() >= logits.shape[1]:
        raise ValueError(f"target token id out of range [0, {logits.shape[1]})")
    m = logits.max(axis=1, keepdims=True)
    logz = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    nll = logz - logits[np.arange(len(t)), t]
    return float(np.exp(nll.mean()))
