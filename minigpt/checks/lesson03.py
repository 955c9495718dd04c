"""Checkers for lesson 03 · The transformer block."""

from collections.abc import Callable

import numpy as np
from tinygrad import Tensor
from tinygrad.nn.state import get_parameters

from minigpt.checks.core import (
    ExerciseFailed,
    checker,
    compare,
    name_mistake,
    run_learner,
    to_numpy,
)
from minigpt.model import GPTConfig, MiniGPT
from minigpt.transformer import Block


def reference_layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Exercise 1: normalise the last axis to mean 0, variance 1 (biased), then scale and shift."""
    mean = x.mean(axis=-1, keepdim=True)  # (..., 1)
    var = ((x - mean) ** 2).mean(axis=-1, keepdim=True)  # (..., 1), divide by C
    return (x - mean) / (var + eps).sqrt() * weight + bias


def reference_count_params(config: GPTConfig) -> int:
    """Exercise 2: MiniGPT's parameter count from its config alone."""
    V, S, L, C = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    attention = C * 3 * C + 3 * C + C * C + C  # c_attn and c_proj, weights and biases
    mlp = C * 4 * C + 4 * C + 4 * C * C + C  # c_fc and c_proj
    block = attention + mlp + 2 * 2 * C  # two LayerNorms, weight and bias each
    head = 0 if config.tie_weights else V * C  # a tied head reuses the token embedding
    return V * C + S * C + L * block + 2 * C + head


def reference_block_forward(x: Tensor, ln1, attn, ln2, mlp) -> Tensor:
    """Exercise 3: the pre-norm block, x + attn(ln1(x)), then + mlp(ln2(.))."""
    x = x + attn(ln1(x))  # (B, T, C)
    return x + mlp(ln2(x))  # (B, T, C)


def _np_layer_norm(x, weight, bias, eps=1e-5, ddof=0, axis=-1):
    mean = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True, ddof=ddof)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


@checker("Exercise 1")
def check_layer_norm(fn: Callable) -> str:
    """`fn(x, weight, bias, eps)` = layer normalisation over the last axis, against numpy."""
    rng = np.random.default_rng(30)
    for shape in [(2, 3, 8), (4, 16)]:
        C = shape[-1]
        x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
        x[0, ..., :] = 2.0  # constant rows: variance 0 (C is a power of 2, so the mean is exact)
        x[1, ..., :] = 2.0 + 1e-3 * x[1, ..., :]  # variance about 1e-5, comparable to eps
        weight = rng.standard_normal(C).astype(np.float32)
        bias = rng.standard_normal(C).astype(np.float32)
        case = f"x of shape {shape} (x[0] constant, x[1] nearly), eps=1e-5"
        got = to_numpy(run_learner("Exercise 1", fn, Tensor(x), Tensor(weight), Tensor(bias), 1e-5))
        x64 = x.astype(np.float64)
        expected = _np_layer_norm(x64, weight, bias)
        if got.shape == expected.shape and not np.all(np.isfinite(got)):
            raise ExerciseFailed(
                f"Exercise 1: for {case}, the output has NaN or inf: a constant row has variance 0."
                "\nhint: add eps inside the square root: (x - mean) / sqrt(var + eps)."
            )
        mistakes = {
            "the variance is the unbiased one (divided by C - 1); layer norm divides by C.": (
                _np_layer_norm(x64, weight, bias, ddof=1)
            ),
            "the statistics are taken over the wrong axis: each position normalises its own C "
            "features, so use axis=-1 with keepdim=True.": _np_layer_norm(
                x64, weight, bias, axis=0
            ),
            "eps is added outside the square root: use sqrt(var + eps).": (
                (x64 - x64.mean(-1, keepdims=True)) / (x64.std(-1, keepdims=True) + 1e-5) * weight
                + bias
            ),
        }
        name_mistake("Exercise 1", case, got, expected, mistakes)
        compare(
            "Exercise 1",
            case,
            expected,
            got,
            "(x - mean) / sqrt(var + eps) * weight + bias, mean and (biased) var over the last axis.",
            rtol=1e-4,
            atol=1e-4,
        )
    return "matches numpy, including a constant row."


def _param_count_hint(config: GPTConfig, difference: int) -> str:
    V, S, L, C = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    parts = {
        V * C: "the head: untied it is its own V x C matrix; tied it reuses the token embedding "
        "and adds nothing.",
        S * C: "the position embedding, block_size x C.",
        4 * C * L + 2 * C: "the LayerNorms: two a block plus the final one, C weights and C "
        "biases each.",
        9 * C * L: "the biases of a block's four Linear layers: 3C + C + 4C + C.",
    }
    what = parts.get(abs(difference))
    if what is None:
        return "count per block: attention 4C^2 + 4C, MLP 8C^2 + 5C, LayerNorms 4C."
    return ("you counted too many; " if difference > 0 else "you missed ") + what


@checker("Exercise 2")
def check_count_params(fn: Callable[[GPTConfig], int]) -> str:
    """`fn(config)` = MiniGPT(config).num_params(), for random configs, tied and untied."""
    rng = np.random.default_rng(31)
    configs = []
    for tie in (True, False, True):
        n_head = int(rng.integers(1, 4))
        configs.append(
            GPTConfig(
                vocab_size=int(rng.integers(5, 40)),
                block_size=int(rng.integers(4, 20)),
                n_layer=int(rng.integers(1, 4)),
                n_head=n_head,
                n_embd=n_head * int(rng.integers(2, 6)),
                tie_weights=tie,
            )
        )
    for config in configs:
        expected = MiniGPT(config).num_params()
        got = run_learner("Exercise 2", fn, config)
        if got != expected:
            raise ExerciseFailed(
                f"Exercise 2: for {config}, MiniGPT has {expected:,} parameters, you counted "
                f"{got:,} (off by {got - expected:+,}).\nhint: check {_param_count_hint(config, got - expected)}"
            )
    return f"your formula agrees with num_params() on {len(configs)} configs, tied and untied."


@checker("Exercise 3")
def check_block_forward(fn: Callable) -> str:
    """`fn(x, ln1, attn, ln2, mlp)` = the pre-norm Block's output, given its parts."""
    Tensor.manual_seed(32)
    block = Block(n_embd=16, n_head=2)
    for norm in (block.ln1, block.ln2):  # move the norms off 1 and 0 so every mix-up shows
        norm.weight = (Tensor.rand(16) + 0.5).realize()  # realized one by one: two lazy draws
        norm.bias = (Tensor.rand(16) - 0.5).realize()  # in one graph could share their numbers
    Tensor.realize(*get_parameters(block))
    x = (Tensor.randn(2, 5, 16) * 2).realize()  # (B, T, C)
    parts = (block.ln1, block.attn, block.ln2, block.mlp)
    expected = block(x).numpy()
    got = to_numpy(run_learner("Exercise 3", fn, x, *parts))
    ln1, attn, ln2, mlp = parts
    mistakes = {
        "this is the post-norm block (normalising after the residual add); pre-norm feeds ln(x) "
        "to each sublayer and adds the result to x itself.": (lambda h: ln2(h + mlp(h)))(
            ln1(x + attn(x))
        ),
        "the residual connections are missing: add each sublayer's output to its input.": mlp(
            ln2(attn(ln1(x)))
        ),
        "the MLP reads the block's input x instead of x after attention: update x first, then "
        "apply ln2 and the MLP to it.": x + attn(ln1(x)) + mlp(ln2(x)),
    }
    name_mistake("Exercise 3", "x of shape (2, 5, 16)", got, expected, mistakes)
    compare(
        "Exercise 3",
        "x of shape (2, 5, 16) and a Block(16, 2)'s parts",
        expected,
        got,
        "x = x + attn(ln1(x)); then x = x + mlp(ln2(x)); return x.",
    )
    return "your block gives the same output as minigpt's Block."
