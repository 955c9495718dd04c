"""Checkers of lesson 06 (`minigpt.checks.lesson06`): the references pass, typical wrong
answers fail with the message that names the mistake."""

import numpy as np
import pytest
from tinygrad import Tensor, dtypes

from minigpt import ops
from minigpt.checks import (
    ExerciseFailed,
    check_gelu_kernel,
    check_logsumexp,
    check_softplus,
    reference_gelu_backward,
    reference_gelu_forward,
    reference_logsumexp,
    reference_softplus,
)
from minigpt.checks.lesson06 import GELU_C

# Lesson 06


def test_naive_softplus_overflows_and_is_caught():
    with pytest.raises(
        ExerciseFailed, match=r"(?s)NaN or inf.*hint: log\(1 \+ exp\(x\)\) overflows"
    ):
        check_softplus(lambda x: (x.exp() + 1).log())


def test_a_softplus_that_overwrites_its_input_is_refused():
    def zeroes_x(x: Tensor) -> Tensor:
        out = (x.maximum(0) + (1 + (-x.abs()).exp()).log()).realize()
        x.assign(x * 0).realize()
        return out

    with pytest.raises(ExerciseFailed, match="changed its first argument"):
        check_softplus(zeroes_x)


def test_softplus_as_relu_is_caught():
    with pytest.raises(ExerciseFailed, match="wrong values"):
        check_softplus(lambda x: x.relu())


def test_softplus_through_numpy_has_no_gradient():
    def numpy_softplus(x):
        return Tensor(np.logaddexp(0, x.numpy()))

    with pytest.raises(ExerciseFailed, match="gradient"):
        check_softplus(numpy_softplus)


def test_numpy_answers_are_told_they_need_a_tensor_for_the_gradient():
    with pytest.raises(ExerciseFailed, match="returned ndarray, not a tinygrad Tensor"):
        check_softplus(lambda x: np.logaddexp(0, x.numpy()))
    with pytest.raises(ExerciseFailed, match="returned ndarray, not a tinygrad Tensor"):
        check_logsumexp(lambda x, axis=-1: np.logaddexp.reduce(x.numpy(), axis=axis))


def _tanh_u(v):
    return (GELU_C * (v + 0.044715 * v * v * v)).tanh()


@pytest.mark.parametrize(
    ("wrong_backward", "message"),
    [
        (lambda v: 0.5 * (1 + _tanh_u(v)), "product rule also needs"),
        (
            lambda v: 0.5 * (1 + _tanh_u(v)) + 0.5 * v * (1 - _tanh_u(v) * _tanh_u(v)),
            "chain rule stops at tanh",
        ),
        (
            lambda v: (
                0.5 * (1 + _tanh_u(v))
                + 0.5 * v * (1 - _tanh_u(v)) * GELU_C * (1 + 3 * 0.044715 * v * v)
            ),
            r"not 1 - tanh\(u\)",
        ),
        (
            lambda v: (
                0.5 * (1 + _tanh_u(v))
                + 0.5 * v * (1 - _tanh_u(v) * _tanh_u(v)) * GELU_C * (1 + 0.044715 * v * v)
            ),
            "the 3\nfrom the power rule|the 3 from the power rule",
        ),
        (lambda v: reference_gelu_backward(v) * 1.1, "wrong values for the gradient"),
    ],
    ids=["no product rule", "no chain rule", "1 - tanh", "no 3", "10% too large"],
)
def test_wrong_gelu_backwards_are_named(wrong_backward, message):
    def gelu_kernel(x):
        return ops.elementwise_kernel(x, reference_gelu_forward, wrong_backward, name="gelu")

    with pytest.raises(ExerciseFailed, match=message):
        check_gelu_kernel(gelu_kernel)


def test_gelu_from_tinygrads_own_ops_is_not_a_custom_kernel():
    with pytest.raises(ExerciseFailed, match="backward is autograd's, not yours"):
        check_gelu_kernel(lambda x: x.gelu())


def test_gelu_with_the_erf_forward_is_caught():
    def erf_forward(v):
        return ops.elementwise_kernel(
            v, lambda u: 0.5 * u * (1 + (u * 0.7071067811865476).erf()), reference_gelu_backward
        )

    with pytest.raises(ExerciseFailed, match=r"(?s)wrong values.*the exact GELU"):
        check_gelu_kernel(erf_forward)


def test_naive_logsumexp_is_caught():
    with pytest.raises(ExerciseFailed, match=r"(?s)NaN or inf.*hint: exp overflowed"):
        check_logsumexp(lambda x, axis=-1: x.exp().sum(axis=axis).log())


@pytest.mark.parametrize("shift", ["min", "mean"])
def test_logsumexp_shifted_by_the_min_or_mean_is_caught(shift):
    def shifted(x, axis=-1):
        m = getattr(x, shift)(axis=axis, keepdim=True)
        return (x - m).exp().sum(axis=axis).log() + m.squeeze(axis)

    with pytest.raises(
        ExerciseFailed,
        match=r"(?s)\[\[1000, -1000, 0\].*hint: exp overflowed: with no shift, or a shift by the row minimum or mean",
    ):
        check_logsumexp(shifted)


def test_logsumexp_without_the_max_added_back_is_caught():
    def forgot_max(x, axis=-1):
        return (x - x.max(axis=axis, keepdim=True)).exp().sum(axis=axis).log()

    with pytest.raises(ExerciseFailed, match="wrong values[\\s\\S]*hint: the maximum is not added"):
        check_logsumexp(forgot_max)


def test_logsumexp_keeping_the_axis_is_caught():
    with pytest.raises(ExerciseFailed, match=r"expected an output of shape \(3,\), got \(3, 1\)"):
        check_logsumexp(lambda x, axis=-1: x.logsumexp(axis=axis, keepdim=True))


def test_logsumexp_ignoring_axis_is_caught():
    with pytest.raises(ExerciseFailed, match=r"shape \(5,\), got \(3,\)"):
        check_logsumexp(lambda x, axis=-1: reference_logsumexp(x, -1))


def test_nan_gradient_is_caught():
    def nan_below_zero(x, axis=-1):  # the where() pitfall: the unused branch's NaN gradient leaks
        return reference_logsumexp(x, axis) + (x > 1e9).where(x.sqrt(), 0).sum(axis=axis)

    with pytest.raises(ExerciseFailed, match="gradient contains NaN or inf"):
        check_logsumexp(nan_below_zero)


def test_a_float32_answer_to_the_float64_gradient_check_is_named_a_dtype_problem():
    def in_float32(x):
        return reference_softplus(x.float()) if x.dtype == dtypes.float64 else reference_softplus(x)

    with pytest.raises(
        ExerciseFailed, match=r"for a float64 input, your function returned a float32 tensor"
    ):
        check_softplus(in_float32)
