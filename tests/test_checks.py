"""The checker machinery: right answers pass, wrong ones fail with a message that helps."""

import numpy as np
import pytest
from tinygrad import Tensor

from minigpt.checks.core import (
    CheckResult,
    ExerciseFailed,
    checker,
    compare,
    name_mistake,
    run_learner,
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
