"""Checkers for lesson 07 · Speed: counting the work of generation, attention over a KV cache."""

import statistics
from collections.abc import Callable

import numpy as np
from tinygrad import Tensor

from minigpt.attention import scaled_dot_product_attention
from minigpt.checks.core import ExerciseFailed, checker, compare, run_learner


def reference_positions_processed(prompt_len: int, new_tokens: int, use_cache: bool) -> int:
    """Positions run through the model to sample `new_tokens` after a prompt (all within the block)."""
    if new_tokens == 0:
        return 0
    if use_cache:
        return prompt_len + new_tokens - 1  # the prompt once, then one position per later token
    return sum(prompt_len + i for i in range(new_tokens))  # the whole text before each new token


def reference_attend_new_token(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """softmax(q kᵀ / sqrt(hs)) v for one query position (B, nh, 1, hs) over cached (B, nh, T, hs)."""
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5  # (B, nh, 1, T)
    return scores.softmax(axis=-1) @ v  # (B, nh, 1, hs)


def reference_steady_tokens_per_second(
    seconds: list[float], tokens_per_step: int, warmup: int = 2
) -> float:
    """Throughput of the calls after `warmup`, from their median time."""
    return tokens_per_step / statistics.median(seconds[warmup:])


@checker("Exercise 1")
def check_positions_processed(fn: Callable[[int, int, bool], int]) -> str:
    """Compare the learner's count with the reference on small and random cases, both modes."""
    rng = np.random.default_rng(7)
    cases = [(1, 1), (4, 1), (4, 2), (3, 5)] + [
        tuple(rng.integers(1, 30, size=2)) for _ in range(6)
    ]
    for prompt_len, new_tokens in cases:
        for use_cache in (False, True):
            expected = reference_positions_processed(int(prompt_len), int(new_tokens), use_cache)
            got = run_learner("Exercise 1", fn, int(prompt_len), int(new_tokens), use_cache)
            if got != expected:
                hint = (
                    "with a cache the prompt runs once and each later token costs one position; "
                    "the last sampled token needs no further pass."
                    if use_cache
                    else "sampling token i (from 0) runs over prompt_len + i positions."
                )
                raise ExerciseFailed(
                    f"Exercise 1: prompt_len={prompt_len}, new_tokens={new_tokens}, "
                    f"use_cache={use_cache}: expected {expected} positions, got {got}.\nhint: {hint}"
                )
    return f"{len(cases) * 2} cases agree, with and without the cache."


@checker("Exercise 2")
def check_attend_new_token(fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> str:
    """The learner's one-query attention must equal the last row of full causal attention."""
    rng = np.random.default_rng(3)
    largest = 0.0
    for B, nh, T, hs in [(1, 1, 1, 4), (2, 3, 5, 8), (1, 4, 9, 16)]:
        q, k, v = (rng.standard_normal((B, nh, T, hs)).astype(np.float32) for _ in range(3))
        full = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), causal=True)
        expected = full.numpy()[:, :, -1:, :]  # (B, nh, 1, hs): the newest position
        got = run_learner("Exercise 2", fn, Tensor(q[:, :, -1:, :]), Tensor(k), Tensor(v))
        largest = max(
            largest,
            compare(
                "Exercise 2",
                f"q (B, nh, 1, hs)=({B}, {nh}, 1, {hs}) over a cache of T={T} positions",
                expected,
                got,
                "scores = q @ k.transpose(-2, -1) / sqrt(hs), softmax over the last axis "
                "(the cached positions), then @ v.",
            ),
        )
    return f"matches full causal attention (largest difference {largest:.1e})."


@checker("Exercise 3")
def check_steady_tokens_per_second(fn: Callable[..., float]) -> str:
    """Throughput from the median of the calls after the warmup, on made-up timings."""
    cases = [
        ([10.0, 3.0, 0.5, 0.4, 0.6], 768, 2),  # compile, capture, then replays
        ([8.0, 2.0, 0.2, 0.2, 5.0, 0.2], 100, 2),  # one replay disturbed by a noisy neighbour
        ([1.0, 0.1, 0.3], 10, 1),
    ]
    for seconds, tokens, warmup in cases:
        expected = reference_steady_tokens_per_second(seconds, tokens, warmup)
        got = run_learner("Exercise 3", fn, list(seconds), tokens, warmup)
        compare(
            "Exercise 3",
            f"seconds={seconds}, tokens_per_step={tokens}, warmup={warmup}",
            expected,
            got,
            "drop seconds[:warmup], take the median (not the mean) of the rest, "
            "and divide tokens_per_step by it.",
            rtol=1e-9,
        )
    return f"{len(cases)} timing lists agree."
