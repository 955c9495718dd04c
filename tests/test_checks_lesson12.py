"""Checkers of lesson 12 (`neurosymbolic.checks.lesson12`): the reference passes, typical wrong
answers fail with the message that names the mistake."""

import pytest
from tinygrad import Tensor

from neurosymbolic.checks import ExerciseFailed, check_asymmetric_loss, reference_asymmetric_loss

# Lesson 12 · Exercise 1: the asymmetric loss


def test_reference_and_a_float_answer_pass():
    assert check_asymmetric_loss(reference_asymmetric_loss).passed
    assert check_asymmetric_loss(lambda *args: reference_asymmetric_loss(*args).item()).passed


def test_unsolved_exercise_is_reported_not_failed():
    def unsolved(predicted, target, mask, over_weight):
        raise NotImplementedError("Exercise 1: the asymmetric loss")

    result = check_asymmetric_loss(unsolved)
    assert not result.passed and "not solved yet" in result.message


def weighted(over: bool, use_mask: bool = True, divide_by: str = "mask", mean: bool = True):
    """A loss with one choice made wrong: which side gets the weight, the mask, the divisor."""

    def loss(predicted: Tensor, target: Tensor, mask: Tensor, over_weight: float) -> Tensor:
        error = predicted - target
        weight = ((error > 0) if over else (error < 0)).where(over_weight, 1.0)
        terms = weight * error.square() * (mask if use_mask else 1.0)
        if not mean:
            return terms.sum()
        divisor = {"mask": mask.sum(), "cells": mask.numel(), "weights": (weight * mask).sum()}
        return terms.sum() / divisor[divide_by]

    return loss


@pytest.mark.parametrize(
    "wrong, message",
    [
        (weighted(over=False), "the weight went to the under-estimates"),
        (weighted(over=True, use_mask=False), "cells that do not reach the goal were counted"),
        (weighted(over=True, divide_by="cells"), "a mean over every cell"),
        (weighted(over=True, divide_by="weights"), "divided by the total weight"),
        (weighted(over=True, mean=False), "the sum over the cells"),
    ],
)
def test_typical_mistakes_are_named(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_asymmetric_loss(wrong)


def test_plain_masked_mse_is_caught():
    def plain(predicted, target, mask, over_weight):
        return ((predicted - target).square() * mask).sum() / mask.sum()

    with pytest.raises(ExerciseFailed, match="the weight is missing"):
        check_asymmetric_loss(plain)


def test_an_unknown_mistake_gets_no_hint_and_none_is_refused():
    def absolute(predicted, target, mask, over_weight):
        error = predicted - target
        weight = (error > 0).where(over_weight, 1.0)
        return (weight * error.abs() * mask).sum() / mask.sum()

    with pytest.raises(ExerciseFailed, match=r"wrong values") as refused:
        check_asymmetric_loss(absolute)
    assert "hint" not in str(refused.value)  # the checker did not reproduce this mistake
    with pytest.raises(ExerciseFailed, match="got None"):
        check_asymmetric_loss(lambda predicted, target, mask, over_weight: None)


def test_a_loss_that_changes_its_mask_is_refused():
    def zeroes_the_mask(predicted, target, mask, over_weight):
        error = predicted - target
        weight = (error > 0).where(over_weight, 1.0)
        loss = ((weight * error.square() * mask).sum() / mask.sum()).realize()
        mask.assign(mask * 0).realize()
        return loss

    with pytest.raises(ExerciseFailed, match="changed its third argument"):
        check_asymmetric_loss(zeroes_the_mask)
