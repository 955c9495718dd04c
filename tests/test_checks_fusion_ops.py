"""Checkers of lessons 05 and 06: the references pass, typical wrong answers fail with a helpful message."""

import numpy as np
import pytest
from tinygrad import GlobalCounters, Tensor

from minigpt import ops
from minigpt.checks import (
    ExerciseFailed,
    check_count_kernels,
    check_fused_standardize,
    check_gelu_kernel,
    check_logsumexp,
    check_rmse_one_kernel,
    check_softplus,
    reference_count_kernels,
    reference_gelu_backward,
    reference_gelu_forward,
    reference_logsumexp,
)
from minigpt.checks.lesson06 import GELU_C

# Lesson 05


def test_rmse_cut_by_realize_is_caught():
    def two_kernels(pred, target):
        return ((pred - target) ** 2).mean().realize().sqrt()

    with pytest.raises(ExerciseFailed, match=r"value is right but it ran 2 kernel\(s\)"):
        check_rmse_one_kernel(two_kernels)


def test_rmse_through_numpy_is_caught():
    with pytest.raises(ExerciseFailed, match="returned float32, expected a Tensor"):
        check_rmse_one_kernel(lambda p, t: np.sqrt(((p - t) ** 2).mean().numpy()))


def test_rmse_wrong_formula_is_caught():
    with pytest.raises(ExerciseFailed, match="wrong values"):
        check_rmse_one_kernel(lambda p, t: ((p - t) ** 2).mean())  # the square root forgotten
    with pytest.raises(ExerciseFailed, match="wrong values"):
        check_rmse_one_kernel(lambda p, t: (p - t).abs().mean())


def test_count_without_reset_is_caught():
    def no_reset(make):
        make().realize()
        return GlobalCounters.kernel_count, GlobalCounters.global_mem

    with pytest.raises(ExerciseFailed, match="call GlobalCounters.reset"):
        check_count_kernels(no_reset)


def test_count_without_realize_is_caught():
    def lazy(make):
        GlobalCounters.reset()
        make()  # builds the graph, runs nothing
        return GlobalCounters.kernel_count, GlobalCounters.global_mem

    with pytest.raises(ExerciseFailed, match="nothing ran"):
        check_count_kernels(lazy)


def test_count_flops_instead_of_bytes_is_caught():
    def flops(make):
        GlobalCounters.reset()
        make().realize()
        return GlobalCounters.kernel_count, GlobalCounters.global_ops

    with pytest.raises(ExerciseFailed, match="that is GlobalCounters.global_ops, the FLOPs"):
        check_count_kernels(flops)


def test_count_wrong_return_type_is_caught():
    with pytest.raises(
        ExerciseFailed, match=r"expected a tuple of 2 \(kernels, bytes\), got the number"
    ):
        check_count_kernels(lambda make: reference_count_kernels(make)[0])


def test_count_returning_none_for_bytes_gets_a_message():
    with pytest.raises(ExerciseFailed, match=r"but bytes is None"):
        check_count_kernels(lambda make: (reference_count_kernels(make)[0], None))


def test_count_swapped_bytes_and_kernels_gets_the_swap_hint():
    with pytest.raises(ExerciseFailed, match=r"you returned \(bytes, kernels\): swap them"):
        check_count_kernels(lambda make: reference_count_kernels(make)[::-1])


def test_count_written_as_numpy_numbers_passes_and_a_fraction_is_caught():
    def as_numpy(make):
        return tuple(np.int64(n) for n in reference_count_kernels(make))

    assert check_count_kernels(as_numpy).passed
    with pytest.raises(ExerciseFailed, match="expected a whole number, got 1.5"):
        check_count_kernels(lambda make: (reference_count_kernels(make)[0] + 0.5, 0))


def _standardize(x, eps_inside=True, eps=1e-5):
    centered = x - x.mean(axis=1, keepdim=True)
    variance = (centered * centered).mean(axis=1, keepdim=True)
    if eps_inside:
        return centered / (variance + eps).sqrt()
    return centered / (variance.sqrt() + eps)


def test_standardize_without_eps_is_caught():
    with pytest.raises(ExerciseFailed, match=r"variance ~4e-6, the 1e-5 is missing"):
        check_fused_standardize(lambda x: _standardize(x, eps=0.0))


def test_standardize_with_eps_outside_the_sqrt_is_caught():
    with pytest.raises(ExerciseFailed, match="added outside the square root"):
        check_fused_standardize(lambda x: _standardize(x, eps_inside=False))


def test_standardize_without_centering_is_caught():
    def not_centered(x):
        return (
            x / (((x - x.mean(axis=1, keepdim=True)) ** 2).mean(axis=1, keepdim=True) + 1e-5).sqrt()
        )

    with pytest.raises(ExerciseFailed, match="mean is not subtracted"):
        check_fused_standardize(not_centered)


def test_standardize_loop_over_rows_is_caught():
    def by_rows(x):
        rows = []
        for i in range(x.shape[0]):
            row = x[i]
            centered = (row - row.mean()).realize()
            rows.append((centered / ((centered * centered).mean() + 1e-5).sqrt()).realize())
        return Tensor.stack(*rows)

    with pytest.raises(ExerciseFailed, match=r"values are right but it ran \d+ kernel"):
        check_fused_standardize(by_rows)


def test_standardize_with_sample_variance_is_caught():
    def sample_variance(x):
        centered = x - x.mean(axis=1, keepdim=True)
        return centered / (x.var(axis=1, keepdim=True) + 1e-5).sqrt()  # divides by n - 1

    with pytest.raises(ExerciseFailed, match="divides by length - 1"):
        check_fused_standardize(sample_variance)


# Lesson 06


def test_naive_softplus_overflows_and_is_caught():
    with pytest.raises(ExerciseFailed, match=r"(?s)NaN or inf.*max\(x, 0\)"):
        check_softplus(lambda x: (x.exp() + 1).log())


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

    with pytest.raises(ExerciseFailed, match=r"(?s)wrong values.*forward: 0.5 v"):
        check_gelu_kernel(erf_forward)


def test_naive_logsumexp_is_caught():
    with pytest.raises(ExerciseFailed, match=r"(?s)NaN or inf.*m = max"):
        check_logsumexp(lambda x, axis=-1: x.exp().sum(axis=axis).log())


@pytest.mark.parametrize("shift", ["min", "mean"])
def test_logsumexp_shifted_by_the_min_or_mean_is_caught(shift):
    def shifted(x, axis=-1):
        m = getattr(x, shift)(axis=axis, keepdim=True)
        return (x - m).exp().sum(axis=axis).log() + m.squeeze(axis)

    with pytest.raises(ExerciseFailed, match=r"(?s)\[\[1000, -1000, 0\].*minimum or the mean"):
        check_logsumexp(shifted)


def test_logsumexp_without_the_max_added_back_is_caught():
    def forgot_max(x, axis=-1):
        return (x - x.max(axis=axis, keepdim=True)).exp().sum(axis=axis).log()

    with pytest.raises(ExerciseFailed, match="wrong values"):
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
