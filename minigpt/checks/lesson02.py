"""Checkers for lesson 02 · Attention from scratch."""

import math
from collections.abc import Callable

import numpy as np
from tinygrad import Tensor, dtypes
from tinygrad.nn.state import get_parameters

from course.checks import (
    Case,
    checker,
    compare,
    run_learner,
)
from minigpt.attention import MultiHeadAttention


def reference_multi_head_attention(
    x: Tensor, w_attn: Tensor, b_attn: Tensor, w_proj: Tensor, b_proj: Tensor, n_head: int
) -> Tensor:
    """Exercise 1: causal multi-head self-attention from the fused projection's weights.

    Weights are stored as nn.Linear stores them, (out, in): a projection is x @ w.T + b.
    """
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = (x @ w_attn.T + b_attn).split(C, dim=2)  # (B, T, 3C) -> 3 x (B, T, C)
    q, k, v = (t.reshape(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T)
    visible = Tensor.ones(T, T).tril().cast(dtypes.bool)  # (T, T): query i sees keys 0..i
    y = visible.where(scores, -math.inf).softmax(-1) @ v  # (B, nh, T, hs)
    y = y.transpose(1, 2).reshape(B, T, C)  # (B, nh, T, hs) -> (B, T, C)
    return y @ w_proj.T + b_proj  # (B, T, C)


def _np_mha(
    x,
    w_attn,
    b_attn,
    w_proj,
    b_proj,
    n_head,
    *,
    causal=True,
    scale=True,
    split="heads",
    order=(0, 1, 2),
    merge="heads",
    project=True,
) -> np.ndarray:
    """float64 numpy multi-head attention, with switches that reproduce typical mistakes."""
    B, T, C = x.shape
    hs = C // n_head
    qkv = np.split(x @ w_attn.T + b_attn, 3, axis=2)  # 3 x (B, T, C)
    q, k, v = (qkv[i] for i in order)
    if split == "heads":
        q, k, v = (t.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3) for t in (q, k, v))
    else:  # reshaped straight to (B, nh, T, hs): cuts the sequence, not the channels
        q, k, v = (t.reshape(B, n_head, T, hs) for t in (q, k, v))
    scores = q @ k.transpose(0, 1, 3, 2) / (math.sqrt(hs) if scale else 1.0)  # (B, nh, T, T)
    if causal:  # causal="zero": the hidden scores set to 0 (tril() on the scores), not -inf
        fill = 0.0 if causal == "zero" else -np.inf
        scores = np.where(np.tril(np.ones((T, T), dtype=bool)), scores, fill)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    y = weights / weights.sum(-1, keepdims=True) @ v  # (B, nh, T, hs)
    y = y.transpose(0, 2, 1, 3).reshape(B, T, C) if merge == "heads" else y.reshape(B, T, C)
    return y @ w_proj.T + b_proj if project else y


_MHA_MISTAKES = {
    "the causal mask is missing: query i must not see keys after position i (set those "
    "scores to -inf before the softmax).": dict(causal=False),
    "the hidden scores are 0, not -inf (tril() on the scores writes zeros): exp(0) = 1 still "
    "gives the later keys weight; use visible.where(scores, -inf) before the softmax.": dict(
        causal="zero"
    ),
    "the scores are not scaled: divide q @ k^T by sqrt(hs), hs = C // n_head.": dict(scale=False),
    "the heads are cut the wrong way: reshaping (B, T, C) straight to (B, nh, T, hs) mixes "
    "positions; reshape to (B, T, nh, hs), then transpose(1, 2).": dict(split="positions"),
    "the heads are merged without moving the head axis back: transpose(1, 2) to (B, T, nh, hs) "
    "before reshaping to (B, T, C).": dict(merge="positions"),
    "q and k are swapped: the fused output is [q | k | v] along the channels, in that order.": (
        dict(order=(1, 0, 2))
    ),
    "the values are not the last third: split the fused output as q, k, v = ...split(C, dim=2).": (
        dict(order=(0, 2, 1))
    ),
    "the output projection c_proj is missing: finish with y @ w_proj.T + b_proj.": dict(
        project=False
    ),
}


def _mha_cases() -> list[Case]:
    """Two attentions that differ in batch, length, heads and head size, with their weights."""
    cases = []
    for seed, (B, T, nh, hs) in enumerate([(2, 6, 3, 4), (1, 5, 2, 8)]):
        C = nh * hs
        Tensor.manual_seed(120 + seed)
        attn = MultiHeadAttention(C, nh)
        Tensor.realize(*get_parameters(attn))
        values = {
            "x": (Tensor.randn(B, T, C) * 2).realize(),  # (B, T, C)
            "w_attn": attn.c_attn.weight,
            "b_attn": attn.c_attn.bias,
            "w_proj": attn.c_proj.weight,
            "b_proj": attn.c_proj.bias,
            "n_head": nh,
        }
        name = f"x of shape {(B, T, C)} (B, T, C), n_head={nh}, weights of a MultiHeadAttention"
        cases.append(Case(name, values))
    return cases


@checker("Exercise 1", cases=_mha_cases)
def check_multi_head_attention(fn: Callable) -> str:
    """`fn(x, w_attn, b_attn, w_proj, b_proj, n_head)` = MultiHeadAttention's output with those
    weights, for every query position (not only the first); rtol 1e-4 (float32 passes)."""
    for case in _mha_cases():
        *arrays, nh = case.values.values()
        got = run_learner("Exercise 1", fn, *case.values.values())
        args64 = [a.numpy().astype(np.float64) for a in arrays]
        expected = _np_mha(*args64, nh)  # (B, T, C), float64
        mistakes = {why: _np_mha(*args64, nh, **switch) for why, switch in _MHA_MISTAKES.items()}
        compare("Exercise 1", case.name, expected, got, mistakes, rtol=1e-4, atol=1e-5)
    return "your attention equals MultiHeadAttention at every position, on two shapes."


def reference_causal_mask(Tq: int, Tk: int) -> Tensor:
    """Exercise 2: (Tq, Tk) booleans for Tq queries that are the LAST Tq of Tk positions:
    query i sits at position Tk - Tq + i and may look at keys j <= Tk - Tq + i."""
    return Tensor.ones(Tq, Tk).tril(Tk - Tq).cast(dtypes.bool)


def _mask_cases() -> list[Case]:
    return [
        Case(f"Tq={Tq} queries, the last of Tk={Tk} positions", {"Tq": Tq, "Tk": Tk})
        for Tq, Tk in [(4, 4), (3, 7), (1, 5), (2, 3)]
    ]


@checker("Exercise 2", cases=_mask_cases)
def check_causal_mask(fn: Callable[[int, int], Tensor]) -> str:
    """`fn(Tq, Tk)` returns a (Tq, Tk) mask, True (or 1) where a query may attend to a key."""
    for case in _mask_cases():
        Tq, Tk = case["Tq"], case["Tk"]
        got = run_learner("Exercise 2", fn, Tq, Tk)
        expected = np.tril(np.ones((Tq, Tk)), Tk - Tq)
        mistakes = {
            "the mask starts at the top-left corner (tril() without an offset), as if the "
            "queries were the first Tq positions; they are the last Tq.": np.tril(
                np.ones((Tq, Tk))
            ),
            "the mask hides the diagonal: a query may attend to its own position.": np.tril(
                np.ones((Tq, Tk)), Tk - Tq - 1
            ),
            "the mask is the upper triangle: query i may see the keys BEFORE it, the lower "
            "triangle.": np.triu(np.ones((Tq, Tk)), Tk - Tq),
        }
        compare("Exercise 2", case.name, expected, got, mistakes, rtol=0, atol=0)
    return "masks for square and rectangular (Tq < Tk) attention."
