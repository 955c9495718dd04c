"""Checkers of lesson 09 (`neurosymbolic.checks.lesson09`): the references pass, typical wrong
answers fail with the message that names the mistake."""

import pytest
from tinygrad import Tensor

from neurosymbolic.checks import (
    ExerciseFailed,
    check_mean_filter,
    check_perception_loss,
    check_training,
)

# Lesson 09


def weighted_bce(on_walls, on_free, reduce="mean", log_sigmoid=True):
    def loss(z, y, w):
        if log_sigmoid:
            log_p, log_q = z.logsigmoid(), (-z).logsigmoid()
        else:
            log_p, log_q = z.sigmoid().log(), (1 - z.sigmoid()).log()
        wall_w = w if on_walls else 1.0
        free_w = w if on_free else 1.0
        terms = -(wall_w * y * log_p + free_w * (1 - y) * log_q)
        return terms.sum() if reduce == "sum" else terms.mean()

    return loss


def test_perception_loss_written_by_hand_passes():
    assert check_perception_loss(weighted_bce(True, False)).passed
    assert check_perception_loss(lambda z, y, w: weighted_bce(True, False)(z, y, w).item()).passed


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (weighted_bce(False, True), "multiplies the free cells"),
        (weighted_bce(False, False), "wall weight is missing"),
        (weighted_bce(True, False, reduce="sum"), "sum over the cells"),
        (weighted_bce(True, False, log_sigmoid=False), r"-40 to 40[\s\S]*NaN or inf"),
        (
            lambda z, y, w: weighted_bce(True, False, "sum")(z, y, w) / (y * (w - 1) + 1).sum(),
            "divided by the total weight",
        ),
        (lambda z, y, w: weighted_bce(True, False)(z, 1 - y, w), "swapped"),
    ],
)
def test_perception_loss_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_perception_loss(wrong)


def test_training_loop_reference_passes_and_mistakes_are_named():
    """One run each (training is the slow part): the reference, no optimizer step, no learning."""
    from neurosymbolic.checks import reference_training

    assert check_training(reference_training).passed
    with pytest.raises(ExerciseFailed, match="weights did not change"):
        check_training(lambda model, steps, seed: [1.0] * steps)
    with pytest.raises(ExerciseFailed, match="steps=6, seed=1, expected 6 finite losses"):
        check_training(lambda model, steps, seed: [1.0])
    with pytest.raises(ExerciseFailed, match="steps=6, seed=1, expected 6 finite losses"):
        check_training(lambda model, steps, seed: reference_training(model, 60, seed))


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda obs: obs.conv2d(Tensor.ones(1, 1, 3, 3) / 9), "expected an output of shape"),
        (lambda obs: obs.conv2d(Tensor.ones(1, 1, 3, 3) / 8, padding=1), "wrong values"),
        (
            lambda obs: obs.conv2d(Tensor.ones(1, 1, 3, 3) / 9, padding=1).numpy(),
            "expected a Tensor",
        ),
    ],
)
def test_mean_filter_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_mean_filter(wrong)
