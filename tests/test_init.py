"""nn.init: statistics (mean/std/bounds) over large draws, gains, fans, seeding, bad input."""
import math

import numpy as np
import pytest

import nncore
from nncore.nn import Parameter, init


def _p(*shape, dtype=np.float32):
    return Parameter(np.zeros(shape, dtype))


def test_calculate_gain_matches_torch_values():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("conv2d") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", "x")
    torch = pytest.importorskip("torch")
    for nl in ["linear", "tanh", "relu", "leaky_relu", "selu", "sigmoid"]:
        assert init.calculate_gain(nl) == pytest.approx(torch.nn.init.calculate_gain(nl))


def test_uniform_and_normal_statistics():
    nncore.manual_seed(0)
    t = init.uniform_(_p(400, 500), -2.0, 3.0)
    assert t.data.min() >= -2.0 and t.data.max() < 3.0
    assert t.data.mean() == pytest.approx(0.5, abs=0.01)
    assert t.data.std() == pytest.approx(5 / math.sqrt(12), rel=0.01)
    t = init.normal_(_p(400, 500, dtype=np.float64), 1.5, 0.5)
    assert t.dtype == np.float64
    assert t.data.mean() == pytest.approx(1.5, abs=0.005)
    assert t.data.std() == pytest.approx(0.5, rel=0.01)
    t = init.trunc_normal_(_p(200, 500), 0.0, 1.0, -1.0, 1.5)
    assert t.data.min() >= -1.0 and t.data.max() <= 1.5


def test_constants_and_eye():
    t = _p(3, 4)
    assert np.all(init.ones_(t).data == 1)
    assert np.all(init.zeros_(t).data == 0)
    assert np.all(init.constant_(t, 2.5).data == 2.5)
    np.testing.assert_array_equal(init.eye_(t).data, np.eye(3, 4))
    with pytest.raises(ValueError, match="2 dimensions"):
        init.eye_(_p(3))


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3)])
def test_xavier_bounds_and_std(shape):
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    nncore.manual_seed(1)
    t = init.xavier_uniform_(_p(*shape), gain=2.0)
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(t.data).max() <= bound
    assert t.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    t = init.xavier_normal_(_p(*shape))
    assert t.data.std() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.02)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity,a", [("relu", 0), ("leaky_relu", math.sqrt(5)),
                                            ("tanh", 0)])
def test_kaiming_std(mode, nonlinearity, a):
    shape = (128, 64, 3, 3)
    fan = 64 * 9 if mode == "fan_in" else 128 * 9
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    nncore.manual_seed(2)
    t = init.kaiming_uniform_(_p(*shape), a=a, mode=mode, nonlinearity=nonlinearity)
    assert np.abs(t.data).max() <= math.sqrt(3) * std
    assert t.data.std() == pytest.approx(std, rel=0.02)
    t = init.kaiming_normal_(_p(*shape), a=a, mode=mode, nonlinearity=nonlinearity)
    assert t.data.mean() == pytest.approx(0, abs=0.05 * std)
    assert t.data.std() == pytest.approx(std, rel=0.02)


@pytest.mark.parametrize("shape", [(5, 8), (8, 5), (6, 2, 3), (1, 1)])
def test_orthogonal(shape):
    t = init.orthogonal_(_p(*shape, dtype=np.float64), gain=1.5)
    flat = t.data.reshape(shape[0], -1) / 1.5
    if flat.shape[0] <= flat.shape[1]:
        np.testing.assert_allclose(flat @ flat.T, np.eye(flat.shape[0]), atol=1e-12)
    else:
        np.testing.assert_allclose(flat.T @ flat, np.eye(flat.shape[1]), atol=1e-12)
    assert init.orthogonal_(_p(0, 3)).shape == (0, 3)


def test_seeding_is_repeatable_and_generator_overrides():
    nncore.manual_seed(7)
    a = init.kaiming_uniform_(_p(10, 10)).data.copy()
    nncore.manual_seed(7)
    b = init.kaiming_uniform_(_p(10, 10)).data.copy()
    np.testing.assert_array_equal(a, b)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(init.normal_(_p(4), generator=g1).data,
                                  init.normal_(_p(4), generator=g2).data)


def test_bad_input():
    with pytest.raises(ValueError, match="fewer than 2"):
        init.xavier_uniform_(_p(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_normal_(_p(3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(_p(4))
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(_p(4), a=1, b=0)
