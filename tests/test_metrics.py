"""nncore.metrics on hand-computed cases (and sklearn where installed)."""
import math

import numpy as np
import pytest

import nncore
from nncore import metrics as M

# 3 classes, 8 samples. Confusion matrix (rows true, cols pred):
#   true 0: pred 0,0,1      -> [2, 1, 0]
#   true 1: pred 1,1,2      -> [0, 2, 1]
#   true 2: pred 2,0        -> [1, 0, 1]
TARGET = [0, 0, 0, 1, 1, 1, 2, 2]
PRED = [0, 0, 1, 1, 1, 2, 2, 0]
CM = [[2, 1, 0], [0, 2, 1], [1, 0, 1]]
# per class: tp = [2, 2, 1]; fp = [1, 1, 1]; fn = [1, 1, 1]; support = [3, 3, 2]
P = [2 / 3, 2 / 3, 1 / 2]
R = [2 / 3, 2 / 3, 1 / 2]
F1 = [2 / 3, 2 / 3, 1 / 2]


def test_accuracy_labels_logits_probabilities():
    assert M.accuracy(PRED, TARGET) == 5 / 8
    logits = np.eye(3)[PRED] * 2.0 - 0.5
    assert M.accuracy(nncore.Tensor(logits), nncore.Tensor(np.array(TARGET))) == 5 / 8
    assert M.accuracy([0.2, 0.7, 0.5, 0.1], [0, 1, 1, 1]) == 0.75  # thresholded at 0.5
    seq = np.zeros((2, 3, 4))
    seq[..., 1] = 1
    assert M.accuracy(seq, [[1, 1, 0], [1, 2, 1]]) == 4 / 6


def test_top_k_accuracy():
    scores = np.array([[0.1, 0.5, 0.4],   # target 2: rank 2
                       [0.6, 0.3, 0.1],   # target 0: rank 1
                       [0.2, 0.3, 0.5],   # target 0: rank 3
                       [0.3, 0.3, 0.4]])  # target 1: tied 2nd with class 0 -> counts for k=2
    target = [2, 0, 0, 1]
    assert M.top_k_accuracy(scores, target, k=1) == 0.25
    assert M.top_k_accuracy(scores, target, k=2) == 0.75
    assert M.top_k_accuracy(scores, target, k=3) == 1.0
    with pytest.raises(ValueError, match="out of range"):
        M.top_k_accuracy(scores, [3, 0, 0, 0], k=1)
    with pytest.raises(ValueError, match="positive integer"):
        M.top_k_accuracy(scores, target, k=0)


def test_confusion_matrix():
    np.testing.assert_array_equal(M.confusion_matrix(PRED, TARGET), CM)
    cm = M.confusion_matrix(PRED, TARGET, num_classes=5)
    assert cm.shape == (5, 5) and cm.sum() == 8 and cm[:3, :3].tolist() == CM
    with pytest.raises(ValueError, match="out of range for num_classes=2"):
        M.confusion_matrix(PRED, TARGET, num_classes=2)


def test_precision_recall_f1_averages():
    p, r, f = M.precision_recall_f1(PRED, TARGET, average=None)
    np.testing.assert_allclose(p, P)
    np.testing.assert_allclose(r, R)
    np.testing.assert_allclose(f, F1)
    assert M.precision(PRED, TARGET, "macro") == pytest.approx(np.mean(P))
    assert M.recall(PRED, TARGET, "micro") == pytest.approx(5 / 8)  # micro = accuracy
    assert M.f1_score(PRED, TARGET, "micro") == pytest.approx(5 / 8)
    w = np.array([3, 3, 2]) / 8
    assert M.f1_score(PRED, TARGET, "weighted") == pytest.approx(float(np.dot(F1, w)))


def test_binary_and_zero_division():
    # class 1 is never predicted: precision 0/0 -> zero_division
    pred, target = [0, 0, 0, 0], [0, 1, 0, 1]
    assert M.precision(pred, target, "binary") == 0.0
    assert M.precision(pred, target, "binary", zero_division=1.0) == 1.0
    assert M.recall(pred, target, "binary") == 0.0
    p, r, f = M.precision_recall_f1([1, 1, 0, 1], [1, 0, 0, 1], average="binary")
    assert (p, r, f) == (pytest.approx(2 / 3), 1.0, pytest.approx(0.8))
    # num_classes makes absent classes count (with zero_division) in the macro mean
    assert M.precision([0, 1], [0, 1], "macro", num_classes=4) == 0.5
    assert M.precision([0, 1], [0, 1], "macro") == 1.0


def test_against_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    for avg in ["micro", "macro", "weighted"]:
        assert M.f1_score(p, t, avg) == pytest.approx(sk.f1_score(t, p, average=avg))
        assert M.precision(p, t, avg) == pytest.approx(sk.precision_score(t, p, average=avg))
    np.testing.assert_array_equal(M.confusion_matrix(p, t), sk.confusion_matrix(t, p))


def test_perplexity():
    # uniform logits over V tokens: perplexity V
    assert M.perplexity(np.zeros((4, 7)), [0, 1, 2, 3]) == pytest.approx(7.0)
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    want = math.exp(-(math.log(0.5) + math.log(0.8)) / 2)
    assert M.perplexity(logits, [0, 1]) == pytest.approx(want)
    # ignore_index positions are skipped; (N, T, V) shapes work
    seq = np.stack([logits, logits])
    assert M.perplexity(seq, [[0, 1], [-100, -100]]) == pytest.approx(want)
    assert M.perplexity(nncore.tensor(math.log(3.0))) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="out of range"):
        M.perplexity(logits, [0, 3])
    with pytest.raises(ValueError, match="no target tokens"):
        M.perplexity(logits, [-100, -100])


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        M.accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match=">= 0"):
        M.accuracy([0, 1], [0, -1])
    with pytest.raises(ValueError, match="non-integral"):
        M.confusion_matrix([0, 1], [0.5, 1])
    with pytest.raises(ValueError, match="average must be one of"):
        M.f1_score(PRED, TARGET, average="samples")
    with pytest.raises(ValueError, match="empty"):
        M.accuracy([], [])
