"""The checker machinery: right answers pass, wrong ones fail with a message that helps."""

import numpy as np
import pytest
from tinygrad import Tensor

from minigpt.checks import (
    check_attend_new_token,
    check_attention,
    check_block_forward,
    check_causal_mask,
    check_central_difference,
    check_count_kernels,
    check_count_params,
    check_cross_entropy,
    check_fused_standardize,
    check_layer_norm,
    check_logsumexp,
    check_make_batch,
    check_positions_processed,
    check_rmse_one_kernel,
    check_sampling_probs,
    check_sgd_step,
    check_softplus,
    check_square_loss_grads,
    check_steady_tokens_per_second,
    check_swish_grad,
    reference_attend_new_token,
    reference_attention,
    reference_block_forward,
    reference_causal_mask,
    reference_central_difference,
    reference_count_kernels,
    reference_count_params,
    reference_cross_entropy,
    reference_layer_norm,
    reference_logsumexp,
    reference_make_batch,
    reference_positions_processed,
    reference_rmse,
    reference_sampling_probs,
    reference_sgd_step,
    reference_softplus,
    reference_square_loss_grads,
    reference_standardize_rows,
    reference_steady_tokens_per_second,
    reference_swish_grad,
)
from minigpt.checks.core import (
    CheckResult,
    ExerciseFailed,
    checker,
    compare,
    name_mistake,
    run_learner,
)
from neurosymbolic.checks import (
    check_closed_key,
    check_heuristic,
    check_local_view,
    check_mean_filter,
    check_metrics,
    check_needs_replan,
    check_plan_examples,
    check_recovery_move,
    check_success_and_optimality,
    check_successors,
    check_threshold,
    reference_closed_key,
    reference_heuristic,
    reference_local_view,
    reference_mean_filter,
    reference_metrics,
    reference_needs_replan,
    reference_plan_examples,
    reference_recovery_move,
    reference_success_and_optimality,
    reference_successors,
    reference_threshold,
)


def test_compare_accepts_a_tensor_equal_to_the_reference():
    expected = np.arange(6.0).reshape(2, 3)
    assert compare("Exercise 1", "a (2, 3) input", expected, Tensor(expected.tolist()), "") < 1e-6


def test_compare_reports_the_largest_difference_and_where():
    expected = np.zeros((2, 3))
    got = expected.copy()
    got[1, 2] = 0.5
    with pytest.raises(
        ExerciseFailed, match=r"largest difference 0\.5 at index \(1, 2\)[\s\S]*hint: scale"
    ):
        compare("Exercise 1", "a (2, 3) input", expected, got, "scale by 1/sqrt(hs)")


def test_compare_reports_a_wrong_shape():
    with pytest.raises(ExerciseFailed, match=r"expected an output of shape \(3, 2\), got \(2, 3\)"):
        compare("Exercise 1", "x", np.zeros((3, 2)), np.zeros((2, 3)), "transpose?")


def test_compare_reports_nan():
    with pytest.raises(ExerciseFailed, match="NaN or inf"):
        compare("Exercise 1", "x", np.zeros(2), np.array([0.0, np.nan]), "")


def test_unsolved_exercise_is_reported_not_raised():
    @checker("Exercise 3")
    def check(fn):
        run_learner("Exercise 3", fn)
        return "all cases"

    def unsolved():
        raise NotImplementedError("Exercise 3: write it")

    result = check(unsolved)
    assert isinstance(result, CheckResult) and not result.passed
    assert "not solved yet" in repr(result)
    assert check(lambda: None).passed


def test_a_crash_in_the_learners_code_is_explained():
    with pytest.raises(ExerciseFailed, match="your function raised ZeroDivisionError"):
        run_learner("Exercise 2", lambda: 1 / 0)


def test_a_typical_mistake_is_named():
    expected = np.array([1.0, 2.0])
    mistakes = {"the scale is missing.": np.array([2.0, 4.0]), "wrong sign.": -expected}
    with pytest.raises(ExerciseFailed, match="Exercise 4: for x, wrong sign"):
        name_mistake("Exercise 4", "x", -expected, expected, mistakes)
    name_mistake("Exercise 4", "x", expected, expected, mistakes)  # right: nothing to name
    name_mistake("Exercise 4", "x", expected + 1, expected, mistakes)  # unknown mistake: compare()


def unsolved(*args):
    raise NotImplementedError("Exercise N: write it")


@pytest.mark.parametrize(
    ("check", "reference"),
    [
        (check_central_difference, reference_central_difference),
        (check_square_loss_grads, reference_square_loss_grads),
        (check_sgd_step, reference_sgd_step),
        (check_attention, reference_attention),
        (check_causal_mask, reference_causal_mask),
        (check_layer_norm, reference_layer_norm),
        (check_count_params, reference_count_params),
        (check_block_forward, reference_block_forward),
        (check_make_batch, reference_make_batch),
        (check_sampling_probs, reference_sampling_probs),
        (check_cross_entropy, reference_cross_entropy),
        (check_rmse_one_kernel, reference_rmse),
        (check_count_kernels, reference_count_kernels),
        (check_fused_standardize, reference_standardize_rows),
        (check_softplus, reference_softplus),
        (check_swish_grad, reference_swish_grad),
        (check_logsumexp, reference_logsumexp),
        (check_heuristic, reference_heuristic),
        (check_successors, reference_successors),
        (check_closed_key, reference_closed_key),
        (check_threshold, reference_threshold),
        (check_metrics, reference_metrics),
        (check_mean_filter, reference_mean_filter),
        (check_local_view, reference_local_view),
        (check_plan_examples, reference_plan_examples),
        (check_needs_replan, reference_needs_replan),
        (check_success_and_optimality, reference_success_and_optimality),
        (check_recovery_move, reference_recovery_move),
        (check_positions_processed, reference_positions_processed),
        (check_attend_new_token, reference_attend_new_token),
        (check_steady_tokens_per_second, reference_steady_tokens_per_second),
    ],
    ids=lambda f: f.__name__,
)
def test_every_reference_passes_and_an_unsolved_exercise_is_reported(check, reference):
    """Each lesson's checker accepts the package's own solution and reports a stub as not done."""
    result = check(reference)
    assert result.passed and "correct" in repr(result), repr(result)
    pending = check(unsolved)
    assert not pending.passed and "not solved yet" in repr(pending)
