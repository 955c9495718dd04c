"""Lesson 07 checkers: the references pass, typical wrong answers fail with the right hint."""

import statistics

import pytest
from tinygrad import Tensor

from minigpt.checks import (
    ExerciseFailed,
    check_attend_new_token,
    check_positions_processed,
    check_steady_tokens_per_second,
    reference_positions_processed,
)


def test_positions_by_hand():
    assert reference_positions_processed(4, 3, use_cache=False) == 4 + 5 + 6
    assert reference_positions_processed(4, 3, use_cache=True) == 4 + 1 + 1


def test_counting_the_last_token_with_the_cache_is_caught():
    def one_too_many(prompt_len, new_tokens, use_cache):
        return (
            prompt_len + new_tokens if use_cache else sum(prompt_len + i for i in range(new_tokens))
        )

    with pytest.raises(ExerciseFailed, match="use_cache=True[\\s\\S]*last sampled token"):
        check_positions_processed(one_too_many)


def test_recounting_the_prompt_without_cache_off_by_one_is_caught():
    def off_by_one(prompt_len, new_tokens, use_cache):
        if use_cache:
            return prompt_len + new_tokens - 1
        return sum(prompt_len + i + 1 for i in range(new_tokens))

    with pytest.raises(ExerciseFailed, match="use_cache=False[\\s\\S]*prompt_len \\+ i"):
        check_positions_processed(off_by_one)


def test_attention_without_scale_is_caught():
    def no_scale(q, k, v):
        return (q @ k.transpose(-2, -1)).softmax(axis=-1) @ v

    with pytest.raises(ExerciseFailed, match="wrong values[\\s\\S]*sqrt\\(hs\\)"):
        check_attend_new_token(no_scale)


def test_softmax_over_the_wrong_axis_is_caught():
    def wrong_axis(q, k, v):
        scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
        return scores.softmax(axis=-2) @ v

    with pytest.raises(ExerciseFailed, match="Exercise 2"):
        check_attend_new_token(wrong_axis)


def test_untransposed_keys_are_caught():
    def no_transpose(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return (q * k).sum(axis=-1, keepdim=True).softmax(axis=-1) * v

    with pytest.raises(ExerciseFailed, match="Exercise 2"):
        check_attend_new_token(no_transpose)


def test_mean_instead_of_median_is_caught():
    def with_mean(seconds, tokens_per_step, warmup=2):
        return tokens_per_step / statistics.mean(seconds[warmup:])

    with pytest.raises(ExerciseFailed, match="median \\(not the mean\\)"):
        check_steady_tokens_per_second(with_mean)


def test_keeping_the_compile_call_is_caught():
    def with_warmup(seconds, tokens_per_step, warmup=2):
        return tokens_per_step / statistics.median(seconds)

    with pytest.raises(ExerciseFailed, match="drop seconds\\[:warmup\\]"):
        check_steady_tokens_per_second(with_warmup)
