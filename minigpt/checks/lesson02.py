"""Checkers for lesson 02 · Attention from scratch."""

import math
from collections.abc import Callable

import numpy as np
from tinygrad import Tensor, dtypes

from minigpt.checks.core import (
    ExerciseFailed,
    checker,
    compare,
    name_mistake,
    run_learner,
    to_numpy,
)


def reference_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Exercise 1: causal softmax(q k^T / sqrt(hs)) v for q, k, v (B, nh, T, hs)."""
    T, hs = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T)
    visible = Tensor.ones(T, T).tril().cast(dtypes.bool)  # (T, T): query i sees keys 0..i
    return visible.where(scores, -math.inf).softmax(-1) @ v  # (B, nh, T, hs)


def reference_split_heads(x: Tensor, n_head: int) -> Tensor:
    """Exercise 2: (B, T, C) -> (B, nh, T, hs), head h holding channels h*hs .. (h+1)*hs - 1."""
    B, T, C = x.shape
    return x.reshape(B, T, n_head, C // n_head).transpose(1, 2)  # (B, nh, T, hs)


def reference_merge_heads(y: Tensor) -> Tensor:
    """Exercise 2: (B, nh, T, hs) -> (B, T, C), the inverse of split_heads."""
    B, nh, T, hs = y.shape
    return y.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, C)


def reference_causal_mask(T: int) -> Tensor:
    """Exercise 3: (T, T) booleans, True where query i may look at key j, i.e. j <= i."""
    return Tensor.ones(T, T).tril().cast(dtypes.bool)


def _np_attention(q, k, v, scale: float, causal: bool = True, axis: int = -1) -> np.ndarray:
    T = q.shape[-2]
    scores = q @ np.swapaxes(k, -1, -2) * scale  # (B, nh, T, T)
    if causal:
        scores = np.where(np.tril(np.ones((T, T), dtype=bool)), scores, -np.inf)
    scores = scores - scores.max(axis=axis, keepdims=True)
    weights = np.exp(scores)
    weights = weights / weights.sum(axis=axis, keepdims=True)
    return weights @ v


@checker("Exercise 1")
def check_attention(fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> str:
    """`fn(q, k, v)` = causal scaled dot-product attention, against numpy and tinygrad's own."""
    rng = np.random.default_rng(20)
    for shape in [(2, 3, 6, 8), (1, 2, 5, 16)]:
        q, k, v = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
        hs = shape[-1]
        case = f"q, k, v of shape {shape} (B, nh, T, hs)"
        got = to_numpy(run_learner("Exercise 1", fn, Tensor(q), Tensor(k), Tensor(v)))
        q64, k64, v64 = (a.astype(np.float64) for a in (q, k, v))
        expected = _np_attention(q64, k64, v64, 1 / math.sqrt(hs))
        builtin = Tensor(q).scaled_dot_product_attention(Tensor(k), Tensor(v), is_causal=True)
        assert np.allclose(builtin.numpy(), expected, atol=1e-4)  # the reference agrees
        mistakes = {
            "the scores are not scaled: divide q @ k^T by sqrt(hs), so their variance stays near 1.": (
                _np_attention(q64, k64, v64, 1.0)
            ),
            "the scores are divided by hs; the scale is 1 / sqrt(hs).": _np_attention(
                q64, k64, v64, 1 / hs
            ),
            "the causal mask is missing: position i must not see keys after i (set those "
            "scores to -inf before the softmax).": _np_attention(
                q64, k64, v64, 1 / math.sqrt(hs), False
            ),
            "the softmax runs over the wrong axis: each query's row (axis -1, the keys) must sum "
            "to 1.": _np_attention(q64, k64, v64, 1 / math.sqrt(hs), axis=-2),
        }
        name_mistake("Exercise 1", case, got, expected, mistakes)
        compare(
            "Exercise 1",
            case,
            expected,
            got,
            "scores = q @ k.transpose(-2, -1) / sqrt(hs); hide j > i with -inf; softmax over "
            "the last axis; multiply by v.",
        )
    return "matches numpy and Tensor.scaled_dot_product_attention(is_causal=True)."


@checker("Exercise 2")
def check_split_merge_heads(split: Callable[[Tensor, int], Tensor], merge: Callable) -> str:
    """`split(x, n_head)`: (B, T, C) -> (B, nh, T, hs); `merge(y)` undoes it."""
    rng = np.random.default_rng(21)
    for B, T, nh, hs in [(2, 5, 3, 4), (1, 4, 2, 6)]:
        x = rng.standard_normal((B, T, nh * hs)).astype(np.float32)
        case = f"x of shape {(B, T, nh * hs)}, n_head={nh}"
        got = to_numpy(run_learner("Exercise 2", split, Tensor(x), nh))
        expected = x.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)
        if got.shape == expected.shape and np.allclose(got, x.reshape(B, nh, T, hs)):
            raise ExerciseFailed(
                f"Exercise 2: split_heads for {case} reshapes straight to (B, nh, T, hs), which "
                "mixes positions into heads.\nhint: reshape to (B, T, nh, hs) first (the channels "
                "of one position split into heads), then swap axes 1 and 2."
            )
        compare(
            "Exercise 2",
            f"split_heads, {case}",
            expected,
            got,
            "x.reshape(B, T, nh, hs).transpose(1, 2)",
        )
        y = rng.standard_normal((B, nh, T, hs)).astype(np.float32)
        got = to_numpy(run_learner("Exercise 2", merge, Tensor(y)))
        expected = y.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)
        if got.shape == expected.shape and np.allclose(got, y.reshape(B, T, nh * hs)):
            raise ExerciseFailed(
                f"Exercise 2: merge_heads for y of shape {y.shape} reshapes without moving the "
                "head axis back.\nhint: y.transpose(1, 2) to (B, T, nh, hs) first, then reshape "
                "to (B, T, C)."
            )
        compare(
            "Exercise 2",
            f"merge_heads, y of shape {y.shape}",
            expected,
            got,
            "y.transpose(1, 2).reshape(B, T, nh * hs)",
        )
    return "split_heads and merge_heads are each other's inverse and keep positions apart."


@checker("Exercise 3")
def check_causal_mask(fn: Callable[[int], Tensor]) -> str:
    """`fn(T)` returns a (T, T) mask, True (or 1) where query i may attend to key j <= i."""
    for T in (4, 7, 1):
        got = to_numpy(run_learner("Exercise 3", fn, T))
        expected = np.tril(np.ones((T, T)))
        if got.shape == expected.shape and T > 1:
            if np.array_equal(got, expected.T):
                raise ExerciseFailed(
                    f"Exercise 3: for T={T}, the mask is transposed: row i (a query) must allow "
                    "columns j <= i (earlier keys), which is the lower triangle.\nhint: .tril()"
                )
            if np.array_equal(got, np.tril(np.ones((T, T)), -1)):
                raise ExerciseFailed(
                    f"Exercise 3: for T={T}, the diagonal is hidden: a position may attend to "
                    "itself (and position 0 has nothing else to attend to).\nhint: .tril() with "
                    "the default diagonal 0."
                )
        compare(
            "Exercise 3",
            f"T={T}",
            expected,
            got,
            "Tensor.ones(T, T).tril(): ones on and below the diagonal.",
        )
    return "lower-triangular masks for T = 4, 7 and 1."
