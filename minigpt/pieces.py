"""The learner's pieces of a GPT (lesson 13, the first capstone).

The capstone trains a MiniGPT with the functions written in lessons 2, 3, 4 and 7. Inside a
compiled (TinyJit) step every piece must be tinygrad code: lesson 4's exercises take numpy, so
their tinygrad forms (same signatures, Tensors in and out) are checked here by running lesson 4's
checkers through an adapter that hands the learner Tensors and insists on Tensors back. The
learning rate is computed in Python before each step, so lesson 4's schedule works as it is.
"""

from collections.abc import Callable

import numpy as np
from tinygrad import Tensor, dtypes

from course.checks import CheckResult
from course.solutions import Choice, Piece
from minigpt.checks import (
    check_adamw_update,
    check_block_forward,
    check_clip_scale,
    check_cross_entropy,
    check_decode_step,
    check_learning_rate,
    check_multi_head_attention,
)
from minigpt.train import TrainConfig, clip_scale, cross_entropy, learning_rate

ADAM_EPS = 1e-8  # the eps of minigpt.train's AdamW


def adamw_update(
    param: Tensor, grad: Tensor, m: Tensor, v: Tensor, t: Tensor, lr: Tensor, config: TrainConfig
) -> tuple[Tensor, Tensor, Tensor]:
    """Lesson 4's AdamW update in tinygrad: `t` (the step, from 1) and `lr` are (1,) Tensors,
    because a Python number would be frozen into the compiled step."""
    b1, b2 = config.betas
    m = b1 * m + (1 - b1) * grad  # first moment
    v = b2 * v + (1 - b2) * grad * grad  # second moment
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)  # bias correction
    decay = config.weight_decay if param.ndim >= 2 else 0.0  # matrices and embeddings only
    return param - lr * (m_hat / (v_hat.sqrt() + ADAM_EPS) + decay * param), m, v


def _tensor(value, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{name} returned {type(value).__name__}, not a tinygrad Tensor: the compiled "
            "training step cannot run numpy. Write it with Tensor methods (x.exp(), x.log(), "
            "x.max(axis=-1, keepdim=True), x.sqrt(), ...)."
        )
    return value


def _f32(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float32))


def check_tensor_cross_entropy(fn: Callable) -> CheckResult:
    """Lesson 4's Exercise 1 on Tensors: `fn(logits, targets)` returns a one-value Tensor."""

    def on_tensors(logits, targets):
        targets = Tensor(np.asarray(targets, dtype=np.int32), dtype=dtypes.int32)
        return _tensor(fn(_f32(logits), targets), "your loss")

    return check_cross_entropy(on_tensors)


def check_tensor_clip_scale(fn: Callable) -> CheckResult:
    """Lesson 4's Exercise 3 on Tensors: `fn(grads, max_norm)` returns the factor as a Tensor."""
    return check_clip_scale(
        lambda grads, max_norm: _tensor(fn([_f32(g) for g in grads], max_norm), "your clip scale")
    )


def check_tensor_adamw_update(fn: Callable) -> CheckResult:
    """Lesson 4's Exercise 4 on Tensors: param, grad, m, v Tensors, t and lr (1,) Tensors."""

    def on_tensors(param, grad, m, v, t, lr, config):
        got = fn(*(_f32(a) for a in (param, grad, m, v)), _f32([t]), _f32([lr]), config)
        if isinstance(got, tuple | list):
            for item in got:
                _tensor(item, "your AdamW update")
        return got

    return check_adamw_update(on_tensors)


PIECES = [
    Piece(
        "attention", "02 · Exercise 1", check_multi_head_attention, check_multi_head_attention, None
    ),
    Piece("block", "03 · Exercise 1", check_block_forward, check_block_forward, None),
    Piece(
        "loss", "04 · Exercise 1", check_cross_entropy, check_tensor_cross_entropy, cross_entropy
    ),
    Piece("schedule", "04 · Exercise 2", check_learning_rate, check_learning_rate, learning_rate),
    Piece("clip", "04 · Exercise 3", check_clip_scale, check_tensor_clip_scale, clip_scale),
    Piece("update", "04 · Exercise 4", check_adamw_update, check_tensor_adamw_update, None),
    Piece("decode step", "07 · Exercise 2", check_decode_step, check_decode_step, None),
]


def use(choices: list[Choice]) -> tuple[dict, dict, Callable | None]:
    """The chosen pieces as the keyword arguments of `MiniGPT` and `train`, and the decode step
    for `generate`; a piece that fell back passes the package's default."""
    fn = {c.piece.name: c.fn for c in choices}
    model = {"attention": fn["attention"], "block": fn["block"]}
    training = {k: fn[k] for k in ("loss", "schedule", "clip", "update")}
    return model, training, fn["decode step"]
