"""Checkers of lesson 02 (`minigpt.checks.lesson02`): the references pass, typical wrong
answers fail with the message that names the mistake."""

import math

import pytest
from tinygrad import Tensor, dtypes

from minigpt.checks import (
    ExerciseFailed,
    check_causal_mask,
    check_multi_head_attention,
    reference_multi_head_attention,
)

# Lesson 02


def mha_with(change: str):
    """The reference multi-head attention with one typical mistake."""

    def attend(x, w_attn, b_attn, w_proj, b_proj, n_head):
        B, T, C = x.shape
        hs = C // n_head
        q, k, v = (x @ w_attn.T + b_attn).split(C, dim=2)
        if change == "qk-swapped":
            q, k = k, q
        if change == "split-positions":
            q, k, v = (t.reshape(B, n_head, T, hs) for t in (q, k, v))
        else:
            q, k, v = (t.reshape(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / (1.0 if change == "no-scale" else math.sqrt(hs))
        if change == "zero-mask":
            scores = scores.tril()  # the hidden scores become 0, which softmax still weighs
        elif change != "no-mask":
            scores = Tensor.ones(T, T).tril().cast(dtypes.bool).where(scores, -math.inf)
        y = scores.softmax(-1) @ v
        y = (
            y.reshape(B, T, C)
            if change == "merge-positions"
            else y.transpose(1, 2).reshape(B, T, C)
        )
        return y if change == "no-proj" else y @ w_proj.T + b_proj

    return attend


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no-mask", "causal mask is missing"),
        ("zero-mask", "hidden scores are 0, not -inf"),
        ("no-scale", "not scaled"),
        ("split-positions", "heads are cut the wrong way"),
        ("merge-positions", "merged without moving the head axis back"),
        ("qk-swapped", "q and k are swapped"),
        ("no-proj", "c_proj is missing"),
    ],
)
def test_multi_head_attention_mistakes_are_named(change, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_multi_head_attention(mha_with(change))


def test_multi_head_attention_with_untransposed_weights_is_explained():
    def untransposed(x, w_attn, b_attn, w_proj, b_proj, n_head):
        return reference_multi_head_attention(x, w_attn.T, b_attn, w_proj, b_proj, n_head)

    with pytest.raises(ExerciseFailed, match="your function raised"):
        check_multi_head_attention(untransposed)


def test_multi_head_attention_wrong_only_past_position_zero_is_caught():
    def first_query_only(x, *weights):
        out = reference_multi_head_attention(x, *weights)
        return out[:, :1].expand(out.shape)  # right at position 0, wrong after it

    with pytest.raises(ExerciseFailed, match="wrong values"):
        check_multi_head_attention(first_query_only)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda Tq, Tk: Tensor.ones(Tq, Tk).tril(), "top-left corner"),
        (lambda Tq, Tk: Tensor.ones(Tq, Tk).tril(Tk - Tq - 1), "hides the diagonal"),
        (lambda Tq, Tk: Tensor.ones(Tq, Tk).triu(Tk - Tq), "upper triangle"),
        (lambda Tq, Tk: Tensor.ones(Tq, Tk), r"wrong values for Tq=4"),
        (lambda Tq, Tk: Tensor.ones(Tk, Tq).tril(), r"shape \(3, 7\), got \(7, 3\)"),
    ],
    ids=["top-left", "no-diagonal", "upper", "all-ones", "transposed-shape"],
)
def test_causal_mask_mistakes_are_caught(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_causal_mask(wrong)
