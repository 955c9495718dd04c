"""Checkers of lessons 05 and 06: the references pass, typical wrong answers fail with a helpful message."""

import numpy as np
import pytest
from tinygrad import GlobalCounters, Tensor

from minigpt.checks import (
    ExerciseFailed,
    check_count_kernels,
    check_fused_standardize,
    check_logsumexp,
    check_rmse_one_kernel,
    check_softplus,
    check_swish_grad,
    reference_count_kernels,
    reference_logsumexp,
)

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

    with pytest.raises(ExerciseFailed, match="global_ops counts FLOPs"):
        check_count_kernels(flops)


def test_count_wrong_return_type_is_caught():
    with pytest.raises(ExerciseFailed, match=r"expected a tuple \(kernels, bytes\)"):
        check_count_kernels(lambda make: reference_count_kernels(make)[0])


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

    with pytest.raises(ExerciseFailed, match="not length - 1"):
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


@pytest.mark.parametrize(
    ("wrong", "why"),
    [
        (lambda v: 1 / (1 + (-v).exp()), "sigmoid only"),
        (lambda v: (s := 1 / (1 + (-v).exp())) * (1 - s), "derivative of the sigmoid"),
        (lambda v: v * (s := 1 / (1 + (-v).exp())) * (1 - s), "product rule half"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_wrong_swish_derivatives_are_caught(wrong, why):
    with pytest.raises(ExerciseFailed, match=r"(?s)wrong values.*product rule"):
        check_swish_grad(wrong)


def test_swish_derivative_that_only_works_on_numpy_is_caught():
    def numpy_only(v):
        s = 1 / (1 + np.exp(-v.numpy()))
        return Tensor(s * (1 + v.numpy() * (1 - s)))

    with pytest.raises(ExerciseFailed, match="your function raised"):
        check_swish_grad(numpy_only)


def test_naive_logsumexp_is_caught():
    with pytest.raises(ExerciseFailed, match=r"(?s)NaN or inf.*m = max"):
        check_logsumexp(lambda x, axis=-1: x.exp().sum(axis=axis).log())


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
