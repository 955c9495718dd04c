"""Custom ops from minigpt.ops: values against numpy float64, gradients against finite differences."""

import math

import numpy as np
import pytest
from tinygrad import Tensor, dtypes

from minigpt.fusion import kernel_report, kernel_sources
from minigpt.ops import (
    elementwise_kernel,
    gelu_erf,
    gelu_tanh,
    gradcheck,
    log_softmax,
    swish,
    swish_grad_uop,
    swish_kernel,
    swish_uop,
)

XS = np.linspace(-6, 6, 25)  # covers both saturated tails and the bend around zero


def ref_swish(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


def ref_gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def ref_gelu_erf(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def ref_log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


OPS = [
    (swish, ref_swish, 1e-12),
    (gelu_tanh, ref_gelu_tanh, 1e-12),
    (gelu_erf, ref_gelu_erf, 1e-6),  # Tensor.erf is a polynomial accurate to 1.5e-7
    (log_softmax, ref_log_softmax, 1e-12),
    (swish_kernel, ref_swish, 1e-12),
]
IDS = [op.__name__ for op, _, _ in OPS]


@pytest.fixture(scope="module")
def x32() -> Tensor:
    Tensor.manual_seed(1)
    return (Tensor.randn(3, 4) * 2).realize()  # (3, 4): 12 elements, 24 evaluations per check


@pytest.mark.parametrize(("op", "ref", "atol"), OPS, ids=IDS)
def test_values_match_numpy_in_float64(op, ref, atol):
    x = XS.reshape(5, 5)
    got = op(Tensor(x)).numpy()
    np.testing.assert_allclose(got, ref(x), rtol=1e-9, atol=atol)


@pytest.mark.parametrize(("op", "ref", "atol"), OPS, ids=IDS)
def test_values_match_numpy_in_float32(op, ref, atol):
    x = XS.reshape(5, 5).astype(np.float32)
    got = op(Tensor(x)).numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref(x.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_matches_tinygrad_builtins(x32):
    np.testing.assert_allclose(swish(x32).numpy(), x32.silu().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gelu_tanh(x32).numpy(), x32.gelu().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        log_softmax(x32).numpy(), x32.log_softmax().numpy(), rtol=1e-6, atol=1e-6
    )


def test_log_softmax_is_stable_for_large_inputs():
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]])
    got = log_softmax(Tensor(x.astype(np.float32))).numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref_log_softmax(x), atol=1e-5)
    np.testing.assert_allclose(
        log_softmax(Tensor(x), axis=0).numpy(), ref_log_softmax(x, axis=0), atol=1e-12
    )


@pytest.mark.parametrize("op", [op for op, _, _ in OPS], ids=IDS)
def test_gradients_float32(op, x32):
    result = gradcheck(op, [x32])
    assert result.max_rel_error < 1e-4, str(result)
    assert result.checked == 12


@pytest.mark.parametrize("op", [op for op, _, _ in OPS], ids=IDS)
def test_gradients_float64(op, x32):
    result = gradcheck(op, [x32.cast(dtypes.float64).realize()])
    assert result.max_rel_error < 1e-7, str(result)


def test_gradcheck_with_two_inputs():
    rng = np.random.default_rng(0)
    a, b = Tensor(rng.standard_normal((3, 4))), Tensor(rng.standard_normal((4, 2)))
    result = gradcheck(lambda p, q: log_softmax((p @ q).tanh()), [a, b])
    assert result.max_rel_error < 1e-7 and result.checked == 20


def test_custom_kernel_runs_hand_written_forward_and_backward(x32):
    sources = kernel_sources(lambda: swish_kernel(x32).realize())
    assert [s.name for s in sources] == ["swish"] and "for (" in sources[0].source
    grad = swish_kernel(x32).sum().gradient(x32)[0]
    report = kernel_report(lambda: grad.realize())
    assert "swish_backward" in report.names
    x = x32.numpy().astype(np.float64)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(grad.numpy(), s * (1 + x * (1 - s)), rtol=1e-5, atol=1e-6)


def test_custom_kernel_reads_views_and_lazy_inputs(x32):
    x = x32.numpy()
    np.testing.assert_allclose(swish_kernel(x32.T).numpy(), ref_swish(x.T), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        swish_kernel(x32 * 2).numpy(), ref_swish(2 * x), rtol=1e-5, atol=1e-6
    )


def test_wrong_backward_is_caught(x32):
    scaled = gradcheck(
        lambda t: elementwise_kernel(t, swish_uop, lambda v: swish_grad_uop(v) * 1.1), [x32]
    )
    assert scaled.max_rel_error == pytest.approx(0.1 / 1.1, rel=1e-3)  # 1 - 1/1.1 everywhere
    sigmoid_only = gradcheck(
        lambda t: elementwise_kernel(t, swish_uop, lambda v: 1 / (1 + (-v).exp())), [x32]
    )
    assert sigmoid_only.max_rel_error > 1e-2


def test_gradcheck_points_at_the_wrong_element(x32):
    def df(v):  # right for v < 1, doubled above: only elements above 1 are wrong
        return (v < 1).where(swish_grad_uop(v), swish_grad_uop(v) * 2)

    result = gradcheck(lambda t: elementwise_kernel(t, swish_uop, df), [x32])
    assert result.max_rel_error > 0.4
    assert x32.numpy()[result.index] > 1
    assert result.analytic == pytest.approx(2 * result.numeric, rel=1e-4)


def test_bad_inputs_give_clear_errors(x32):
    with pytest.raises(TypeError, match="fn must be callable"):
        gradcheck(42, [x32])
    with pytest.raises(TypeError, match="non-empty list of Tensors"):
        gradcheck(swish, x32)
    with pytest.raises(TypeError, match="non-empty list of Tensors"):
        gradcheck(swish, [])
    with pytest.raises(TypeError, match=r"inputs\[0\] must be a tinygrad Tensor"):
        gradcheck(swish, [np.ones(3)])
    with pytest.raises(
        TypeError, match=r"(?s)inputs\[0\] must have a floating-point dtype.*\.float\(\)"
    ):
        gradcheck(swish, [Tensor([1, 2, 3])])
    with pytest.raises(TypeError, match="no device"):
        gradcheck(swish, [Tensor(2.0)])
    with pytest.raises(ValueError, match="eps and floor must be positive"):
        gradcheck(swish, [x32], eps=0)
    with pytest.raises(ValueError, match="2 evaluations|two evaluations"):
        gradcheck(swish, [Tensor.ones(100, 100)])
    with pytest.raises(TypeError, match="must return a floating-point Tensor"):
        gradcheck(lambda t: t.numpy(), [x32])
    with pytest.raises(TypeError, match="f and df must be callables"):
        elementwise_kernel(x32, 3, swish_grad_uop)
    with pytest.raises(TypeError, match="floating-point dtype"):
        swish_kernel(Tensor([1, 2]))


def test_gradcheck_reports_a_nan_gradient_as_the_worst_error():
    def nan_backward(x: Tensor) -> Tensor:
        return elementwise_kernel(x, f=lambda v: v * v, df=lambda v: v * float("nan"))

    result = gradcheck(nan_backward, [Tensor([[0.5, -1.0]])])
    assert result.max_rel_error == float("inf")
