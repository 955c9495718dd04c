"""Lesson 07 checkers: the references pass, typical wrong answers fail with the right hint."""

import math
import statistics

import pytest
from tinygrad import Tensor

from minigpt.checks import (
    ExerciseFailed,
    check_decode_step,
    check_positions_processed,
    check_steady_tokens_per_second,
    reference_decode_step,
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


def _decode(q, k, v, cache_k, cache_v, pos, *, write=True, scale=True, visible="<="):
    """A decode step with one of the typical slips switched on."""
    S = cache_k.shape[2]
    if write:
        here = (Tensor.arange(S) == pos).reshape(1, 1, S, 1)
        cache_k, cache_v = here.where(k, cache_k), here.where(v, cache_v)
    scores = q @ cache_k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1.0)
    slots = Tensor.arange(S).reshape(1, 1, 1, S)
    if visible != "all":
        mask = slots <= pos if visible == "<=" else slots < pos
        scores = mask.where(scores, -math.inf)
    return scores.softmax(axis=-1) @ cache_v, cache_k, cache_v


def test_decode_step_by_hand_equals_the_reference():
    check_decode_step(lambda *args: _decode(*args))  # the helper without slips is right


@pytest.mark.parametrize(
    ("slip", "message"),
    [
        ({"visible": "all"}, "also attends to the slots after pos, which hold stale numbers"),
        ({"visible": "<"}, r"hides the new token's own slot|NaN or inf"),
        ({"scale": False}, r"not scaled: divide q @ k\^T by sqrt\(hs\)"),
        ({"write": False}, "k and v are not in the caches when it attends"),
    ],
    ids=["no mask", "mask < pos", "no scale", "no write"],
)
def test_decode_step_slips_are_named(slip, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_decode_step(lambda *args: _decode(*args, **slip))


def test_decode_step_that_attends_right_but_does_not_return_the_written_cache():
    def old_caches(q, k, v, cache_k, cache_v, pos):
        out, _, _ = reference_decode_step(q, k, v, cache_k, cache_v, pos)
        return out, cache_k, cache_v

    with pytest.raises(ExerciseFailed, match=r"slot 5 of the returned cache_k still holds the old"):
        check_decode_step(old_caches)


def test_decode_step_that_assigns_into_the_caches_in_place_passes():
    def in_place(q, k, v, cache_k, cache_v, pos):
        cache_k[:, :, pos : pos + 1].assign(k)  # writes into the caller's buffer
        cache_v[:, :, pos : pos + 1].assign(v)
        Tensor.realize(cache_k, cache_v)
        scores = q @ cache_k[:, :, : pos + 1].transpose(-2, -1) / math.sqrt(q.shape[-1])
        return scores.softmax(-1) @ cache_v[:, :, : pos + 1], cache_k, cache_v

    check_decode_step(in_place)


def test_decode_step_with_swapped_caches_is_caught():
    def swapped(*args):
        out, cache_k, cache_v = reference_decode_step(*args)
        return out, cache_v, cache_k

    with pytest.raises(ExerciseFailed, match="k goes into cache_k, v into cache_v"):
        check_decode_step(swapped)


def test_decode_step_returning_only_the_output_gets_a_message():
    with pytest.raises(ExerciseFailed, match=r"expected a tuple \(out, cache_k, cache_v\)"):
        check_decode_step(lambda *args: reference_decode_step(*args)[0])


def test_decode_step_with_a_wrong_shape_gets_a_message():
    def squeezed(*args):
        out, cache_k, cache_v = reference_decode_step(*args)
        return out[:, :, 0], cache_k, cache_v

    with pytest.raises(
        ExerciseFailed, match=r"out should have shape \(2, 3, 1, 4\), got \(2, 3, 4\)"
    ):
        check_decode_step(squeezed)


def test_decode_step_that_only_works_at_the_small_cases_is_caught_inside_the_model():
    def ignores_earlier_slots_after_position_2(q, k, v, cache_k, cache_v, pos):
        out, cache_k, cache_v = reference_decode_step(q, k, v, cache_k, cache_v, pos)
        if pos in (1, 2, 3):  # positions the small cases do not try
            out = out * 0
        return out, cache_k, cache_v

    with pytest.raises(ExerciseFailed, match="MiniGPT's logits at every position"):
        check_decode_step(ignores_earlier_slots_after_position_2)


def test_mean_instead_of_median_is_caught():
    def with_mean(seconds, tokens_per_step, warmup=2):
        return tokens_per_step / statistics.mean(seconds[warmup:])

    with pytest.raises(ExerciseFailed, match="that is the mean of the calls after the warmup"):
        check_steady_tokens_per_second(with_mean)


def test_keeping_the_compile_call_is_caught():
    def with_warmup(seconds, tokens_per_step, warmup=2):
        return tokens_per_step / statistics.median(seconds)

    with pytest.raises(ExerciseFailed, match="drop seconds\\[:warmup\\]"):
        check_steady_tokens_per_second(with_warmup)
