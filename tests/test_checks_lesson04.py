"""Checkers of lesson 04 (`minigpt.checks.lesson04`): the references pass, typical wrong
answers fail with the message that names the mistake."""

import math

import numpy as np
import pytest
from tinygrad import Tensor

from minigpt.checks import (
    ExerciseFailed,
    check_adamw_update,
    check_clip_scale,
    check_cross_entropy,
    check_learning_rate,
    reference_adamw_update,
    reference_clip_scale,
    reference_cross_entropy,
    reference_learning_rate,
)
from minigpt.train import TrainConfig

# Lesson 04


def test_cross_entropy_mean_of_row_means_is_caught():
    def row_means(logits, targets):
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        picked = np.take_along_axis(log_probs, np.where(targets != -1, targets, 0)[..., None], -1)
        losses = np.where(targets != -1, -picked[..., 0], 0.0)
        return (losses.sum(1) / (targets != -1).sum(1)).mean()

    with pytest.raises(ExerciseFailed, match="mean of each row's mean"):
        check_cross_entropy(row_means)


def test_cross_entropy_averaged_over_all_positions_is_caught():
    def over_all(logits, targets):
        return reference_cross_entropy(logits, targets) * (targets != -1).mean()

    with pytest.raises(ExerciseFailed, match="averaged over all 18 positions; only the 12"):
        check_cross_entropy(over_all)


def test_cross_entropy_without_the_max_shift_is_caught():
    def naive(logits, targets):
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        scored = targets != -1
        picked = np.take_along_axis(probs, np.where(scored, targets, 0)[..., None], -1)[..., 0]
        return -np.log(picked[scored]).mean()

    with np.errstate(all="ignore"), pytest.raises(ExerciseFailed, match="NaN or inf"):
        check_cross_entropy(naive)


def test_cross_entropy_per_position_array_is_explained():
    with pytest.raises(ExerciseFailed, match=r"expected one number, got an array of shape"):
        check_cross_entropy(lambda logits, targets: logits.max(-1))


def test_cross_entropy_in_tinygrad_passes():
    def in_tinygrad(logits, targets):
        lg, tg = Tensor(logits.astype(np.float32)), Tensor(targets.astype(np.int32))
        return lg.sparse_categorical_crossentropy(tg, reduction="sum") / (tg != -1).sum()

    assert check_cross_entropy(in_tinygrad).passed


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (
            lambda s, c: c.lr * s / c.warmup if s < c.warmup else reference_learning_rate(s, c),
            "warmup starts at 0",
        ),
        (
            lambda s, c: (
                reference_learning_rate(s, c)
                if s < c.warmup
                else c.lr * 0.5 * (1 + math.cos(math.pi * (s - c.warmup) / (c.steps - c.warmup)))
            ),
            "cosine ends at 0",
        ),
        (
            lambda s, c: (
                reference_learning_rate(s, c)
                if s < c.warmup
                else c.min_lr + (c.lr - c.min_lr) * 0.5 * (1 + math.cos(math.pi * s / c.steps))
            ),
            "cosine runs over all `steps`",
        ),
        (lambda s, c: None, r"expected one number, got None"),
    ],
    ids=["warmup-from-0", "cosine-to-0", "cosine-over-all-steps", "none"],
)
def test_learning_rate_mistakes_are_named(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_learning_rate(wrong)


def test_learning_rate_as_a_float32_tensor_passes():
    assert check_learning_rate(lambda s, c: Tensor([reference_learning_rate(s, c)])).passed


def sum_of_squares(grads):
    return sum(float((g.astype(np.float64) ** 2).sum()) for g in grads)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (
            lambda g, m: min(1.0, m / (sum(np.linalg.norm(a) for a in g) + 1e-6)),
            "sum of the tensors' norms",
        ),
        (lambda g, m: m / (math.sqrt(sum_of_squares(g)) + 1e-6), r"take min\(1, \.\.\.\)"),
        (lambda g, m: min(1.0, m / (sum_of_squares(g) + 1e-6)), "missing its square root"),
        (
            lambda g, m: min(1.0, m / (max(np.linalg.norm(a) for a in g) + 1e-6)),
            "largest tensor's norm",
        ),
    ],
    ids=["sum-of-norms", "no-min", "no-sqrt", "largest-tensor"],
)
def test_clip_scale_mistakes_are_named(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_clip_scale(wrong)


def adamw_with(change: str):
    def update(param, grad, m, v, t, lr, config):
        b1, b2 = config.betas
        wd = config.weight_decay if (param.ndim >= 2 or change == "decay-all") else 0.0
        if change == "coupled":
            grad, wd = grad + wd * param, 0.0
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad**2
        m_hat, v_hat = (m, v) if change == "no-correction" else (m / (1 - b1**t), v / (1 - b2**t))
        return param - lr * (m_hat / (np.sqrt(v_hat) + 1e-8) + wd * param), m, v

    return update


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("decay-all", r"linear.bias \(shape \(3,\)\) at step 1[\s\S]*decay is applied to every"),
        ("no-correction", "bias correction is missing"),
        ("coupled", "AdamW decouples"),
    ],
)
def test_adamw_mistakes_are_named(change, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_adamw_update(adamw_with(change))


def test_adamw_wrong_only_from_step_two_names_the_step():
    def forgets_m(param, grad, m, v, t, lr, config):
        return reference_adamw_update(param, grad, np.zeros_like(m), v, t, lr, config)

    with pytest.raises(ExerciseFailed, match="at step 2 of AdamW"):
        check_adamw_update(forgets_m)


def test_adamw_with_the_lessons_betas_and_decay_written_in_is_refused_naming_the_setting():
    def fixed_numbers(param, grad, m, v, t, lr, config):
        lesson = TrainConfig(betas=(0.9, 0.99), weight_decay=0.1)
        return reference_adamw_update(param, grad, m, v, t, lr, lesson)

    with pytest.raises(ExerciseFailed, match=r"step 1 of AdamW with betas=\(0.8, 0.95\)"):
        check_adamw_update(fixed_numbers)


def test_adamw_returning_only_the_parameter_is_explained():
    with pytest.raises(ExerciseFailed, match=r"expected a triple \(param, m, v\)"):
        check_adamw_update(lambda *args: reference_adamw_update(*args)[0])


def test_adamw_in_float32_tinygrad_passes():
    def in_tinygrad(param, grad, m, v, t, lr, config):
        return tuple(
            Tensor(a.astype(np.float32))
            for a in reference_adamw_update(param, grad, m, v, t, lr, config)
        )

    assert check_adamw_update(in_tinygrad).passed


def test_clip_scale_as_a_numpy_float32_passes():
    assert check_clip_scale(lambda g, m: np.float32(reference_clip_scale(g, m))).passed
