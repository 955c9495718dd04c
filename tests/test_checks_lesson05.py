"""Checkers of lesson 05 (`minigpt.checks.lesson05`): the references pass, typical wrong
answers fail with the message that names the mistake."""

import numpy as np
import pytest
from tinygrad import GlobalCounters, Tensor

from minigpt.checks import (
    ExerciseFailed,
    check_count_kernels,
    check_fused_standardize,
    check_rmse_one_kernel,
    reference_count_kernels,
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


def test_a_wrong_count_gets_no_guess_at_the_cause():
    def one_too_many(make):
        GlobalCounters.reset()
        make().realize()
        return GlobalCounters.kernel_count + 1, GlobalCounters.global_mem

    with pytest.raises(ExerciseFailed, match=r"got 2 kernel\(s\)") as refusal:
        check_count_kernels(one_too_many)
    assert "hint" not in str(refusal.value)


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
    with pytest.raises(ExerciseFailed, match=r"variance ~4e-6[\s\S]*hint: the 1e-5 is missing"):
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
