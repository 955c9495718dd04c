"""Checkers for lesson 12 · A learned heuristic for A*.

Exercise 1 is the asymmetric loss the heuristic net learns from: a squared error over the cells
that reach the goal, an over-estimate weighted more than an under-estimate. It is compared with a
float64 numpy version (relative tolerance 1e-4, fits float32) on batches that differ in shape, in
which cells are masked out (a whole map among them) and in the weight.
"""

from collections.abc import Callable

import numpy as np
from tinygrad import Tensor

from course.checks import Case, checker, compare, run_learner
from neurosymbolic.heuristic_net import asymmetric_loss

reference_asymmetric_loss = asymmetric_loss  # Exercise 1 is the net's own loss


def _loss(predicted, target, mask, on_over: float, on_under: float, *, per: str = "mask") -> float:
    """The masked weighted squared error in float64, and the typical wrong versions of it."""
    error = predicted - target
    weighted = np.where(error > 0, on_over, on_under) * error**2 * mask
    divisor = {"mask": mask.sum(), "cells": mask.size, "weights": (weighted / error**2).sum()}
    return float(weighted.sum() / divisor[per])


def _loss_cases() -> list[Case]:
    rng = np.random.default_rng(12)
    target = rng.exponential(2.0, (2, 1, 5, 6))  # (B, 1, H, W) detours in cells, >= 0
    mask = rng.random((2, 1, 5, 6)) < 0.8  # 80% of cells reach the goal
    small_target = rng.exponential(4.0, (3, 1, 4, 7))
    small_mask = rng.random((3, 1, 4, 7)) < 0.6
    small_mask[1] = False  # a map whose goal no cell reaches: it must not count at all
    return [
        Case(
            "predicted ~ target + N(0, 2), 80% of the (2, 1, 5, 6) cells reach the goal, "
            "over_weight 4",
            dict(
                predicted=target + rng.normal(0.0, 2.0, target.shape),
                target=target,
                mask=mask.astype(np.float64),
                over_weight=4.0,
            ),
        ),
        Case(
            "predicted ~ N(3, 3), (3, 1, 4, 7) with the second map cut off entirely, over_weight 0.5",
            dict(
                predicted=rng.normal(3.0, 3.0, small_target.shape),
                target=small_target,
                mask=small_mask.astype(np.float64),
                over_weight=0.5,
            ),
        ),
    ]


def _mistakes(predicted, target, mask, weight: float) -> dict[str, float]:
    """The typical wrong losses on one case, each with what it shows."""
    return {
        "the weight went to the under-estimates: an over-estimate is predicted > target, "
        "error = predicted - target > 0.": _loss(predicted, target, mask, 1.0, weight),
        "the weight is missing: multiply the over-estimates' squared errors by over_weight.": _loss(
            predicted, target, mask, 1.0, 1.0
        ),
        "the cells that do not reach the goal were counted: multiply the squared errors by "
        "the mask before summing.": _loss(predicted, target, np.ones_like(mask), weight, 1.0)
        * mask.size
        / mask.sum(),
        "that is a mean over every cell; divide by the number of cells that reach the goal, "
        "mask.sum().": _loss(predicted, target, mask, weight, 1.0, per="cells"),
        "you divided by the total weight; divide by the number of masked cells, mask.sum().": (
            _loss(predicted, target, mask, weight, 1.0, per="weights")
        ),
        "that is the sum over the cells; the loss is their mean over the masked cells.": (
            _loss(predicted, target, mask, weight, 1.0) * mask.sum()
        ),
    }


@checker("Exercise 1", cases=_loss_cases)
def check_asymmetric_loss(fn: Callable[[Tensor, Tensor, Tensor, float], Tensor]) -> str:
    """`fn(predicted, target, mask, over_weight)` is the squared error over the masked cells, an
    over-estimate (predicted > target) weighted `over_weight` times, divided by the masked cells."""
    for case in _loss_cases():
        predicted, target, mask, weight = case.values.values()
        expected = _loss(predicted, target, mask, weight, 1.0)
        # realized, so that run_learner can see an input the function changed
        as_tensor = lambda a: Tensor(a.astype(np.float32)).realize()  # noqa: E731
        got = run_learner(
            "Exercise 1", fn, as_tensor(predicted), as_tensor(target), as_tensor(mask), weight
        )
        mistakes = _mistakes(predicted, target, mask, weight)
        compare("Exercise 1", case.name, expected, got, mistakes, rtol=1e-4, atol=1e-6)
    return "the asymmetric loss matches float64 numpy, a map with no reachable cell included."
