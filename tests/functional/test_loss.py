"""Loss functions through autograd, against NumPy and (when installed) PyTorch."""
import numpy as np
import pytest

import nncore
import nncore.functional as F
from tests.helpers import check_op, rng, torch_or_skip


def _log_softmax(x):
    m = x.max(1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(1, keepdims=True))


@pytest.mark.parametrize("n,c", [(1, 1), (7, 3), (97, 10), (5, 101)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(n, c, reduction):
    x = rng(0).standard_normal((n, c))
    t = rng(1).integers(0, c, n)
    red = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    check_op(lambda a: F.cross_entropy(a, t, reduction=reduction),
             lambda a: red(-_log_softmax(a)[np.arange(n), t]), [x])
    check_op(lambda a: F.nll_loss(a, t, reduction=reduction),
             lambda a: red(-a[np.arange(n), t]), [x])


def test_cross_entropy_spatial_targets():
    x = rng(2).standard_normal((2, 4, 3, 5))
    t = rng(3).integers(0, 4, (2, 3, 5))
    ref = lambda a: -np.take_along_axis(  # noqa: E731
        _log_softmax(np.moveaxis(a, 1, -1).reshape(-1, 4)), t.reshape(-1, 1), 1).mean()
    check_op(lambda a: F.cross_entropy(a, t), ref, [x])


def test_out_of_range_label_raises_index_error():
    x = nncore.randn(4, 5)
    with pytest.raises(IndexError, match="5"):
        F.cross_entropy(x, np.array([0, 1, 5, 2]))
    with pytest.raises(IndexError):
        F.nll_loss(x, np.array([0, -3, 1, 2]))


def test_target_errors():
    x = nncore.randn(4, 5)
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(x, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="shape"):
        F.cross_entropy(x, np.zeros(3, np.int64))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_bce(reduction):
    r = rng(4)
    x, y = r.standard_normal((7, 3)), r.standard_normal((7, 3))
    p, t = r.uniform(0.05, 0.95, (7, 3)), r.integers(0, 2, (7, 3)).astype(np.float64)
    red = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    check_op(lambda a, b: F.mse_loss(a, b, reduction), lambda a, b: red((a - b) ** 2), [x, y])
    check_op(lambda a: F.binary_cross_entropy(a, nncore.Tensor(t.astype(a.dtype)),
                                              reduction=reduction),
             lambda a: red(-(t * np.log(a) + (1 - t) * np.log(1 - a))), [p])
    check_op(lambda a: F.binary_cross_entropy_with_logits(a, nncore.Tensor(t.astype(a.dtype)),
                                                          reduction=reduction),
             lambda a: red(-(t * np.log(1 / (1 + np.exp(-a)))
                             + (1 - t) * np.log(1 - 1 / (1 + np.exp(-a))))), [x])


def test_bce_with_logits_gradient_at_zero():
    x = nncore.zeros(3, requires_grad=True)
    F.binary_cross_entropy_with_logits(x, nncore.tensor([1.0, 0.0, 1.0]), reduction="sum")\
        .backward()
    np.testing.assert_allclose(x.grad.numpy(), [-0.5, 0.5, -0.5])


def test_losses_match_torch():
    torch = torch_or_skip()
    r = rng(5)
    x = r.standard_normal((6, 4)).astype(np.float32)
    t = np.array([0, 3, -100, 1, 2, 3])
    for ls in (0.0, 0.1):
        ours = F.cross_entropy(nncore.tensor(x), t, ignore_index=-100, label_smoothing=ls)
        theirs = torch.nn.functional.cross_entropy(torch.from_numpy(x), torch.from_numpy(t),
                                                   ignore_index=-100, label_smoothing=ls)
        np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-5)
    pw = np.array([2.0, 0.5, 1.0, 3.0], np.float32)
    tt = r.integers(0, 2, (6, 4)).astype(np.float32)
    ours = F.binary_cross_entropy_with_logits(nncore.tensor(x), nncore.tensor(tt),
                                              pos_weight=nncore.tensor(pw))
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(x), torch.from_numpy(tt), pos_weight=torch.from_numpy(pw))
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-5)
