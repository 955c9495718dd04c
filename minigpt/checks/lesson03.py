"""Checkers for lesson 03 · The transformer block."""

from collections.abc import Callable

import numpy as np
from tinygrad import Tensor
from tinygrad.nn.state import get_parameters, get_state_dict, load_state_dict

from course.checks import (
    Case,
    ExerciseFailed,
    checker,
    compare,
    run_learner,
)
from minigpt.model import GPTConfig, MiniGPT
from minigpt.transformer import MLP, Block, LayerNorm


def reference_count_params(config: GPTConfig) -> int:
    """Exercise 2: MiniGPT's parameter count from its config alone."""
    V, S, L, C = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    attention = C * 3 * C + 3 * C + C * C + C  # c_attn and c_proj, weights and biases
    mlp = C * 4 * C + 4 * C + 4 * C * C + C  # c_fc and c_proj
    block = attention + mlp + 2 * 2 * C  # two LayerNorms, weight and bias each
    head = 0 if config.tie_weights else V * C  # a tied head reuses the token embedding
    return V * C + S * C + L * block + 2 * C + head


def _param_count_hint(config: GPTConfig, difference: int) -> str:
    """A hint line when the difference is exactly one part of the model counted twice or left
    out, else nothing."""
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
        return ""
    return "\nhint: " + ("you counted too many: " if difference > 0 else "you missed ") + what


_COUNTED = ("vocab_size", "block_size", "n_layer", "n_embd", "tie_weights")  # what the count reads


def _count_cases() -> list[Case]:
    """Three random configs, tied and untied."""
    rng = np.random.default_rng(31)
    cases = []
    for tie in (True, False, True):
        n_head = int(rng.integers(1, 4))
        config = GPTConfig(
            vocab_size=int(rng.integers(5, 40)),
            block_size=int(rng.integers(4, 20)),
            n_layer=int(rng.integers(1, 4)),
            n_head=n_head,
            n_embd=n_head * int(rng.integers(2, 6)),
            tie_weights=tie,
        )
        values = {"config": config} | {f"config.{k}": getattr(config, k) for k in _COUNTED}
        cases.append(Case(str(config), values))
    return cases


@checker("Exercise 2", cases=_count_cases)
def check_count_params(fn: Callable[[GPTConfig], int]) -> str:
    """`fn(config)` = MiniGPT(config).num_params(), for random configs, tied and untied."""
    cases = _count_cases()
    for case in cases:
        config = case["config"]
        expected = MiniGPT(config).num_params()
        got = run_learner("Exercise 2", fn, config)
        if isinstance(got, float) and got.is_integer():
            got = int(got)
        if isinstance(got, bool) or not isinstance(got, int | np.integer):
            raise ExerciseFailed(
                f"Exercise 2: for {config}, your function returned {got!r} "
                f"({type(got).__name__}); expected a whole number of parameters, {expected:,}."
                + (
                    "\nhint: a function that ends without `return` returns None."
                    if got is None
                    else ""
                )
            )
        got = int(got)
        if got != expected:
            raise ExerciseFailed(
                f"Exercise 2: for {config}, MiniGPT has {expected:,} parameters, you counted "
                f"{got:,} (off by {got - expected:+,}).{_param_count_hint(config, got - expected)}"
            )
    return f"your formula agrees with num_params() on {len(cases)} configs, tied and untied."


def reference_block_forward(x: Tensor, weights: dict[str, Tensor], n_head: int) -> Tensor:
    """Exercise 1: a pre-norm block from its state dict: x + attn(ln1(x)), then + mlp(ln2(.)).

    Linear weights are (out, in) as nn.Linear stores them; GELU in its tanh form (Tensor.gelu).
    """

    def norm(h: Tensor, name: str) -> Tensor:  # layer norm over the last axis, biased variance
        mean = h.mean(-1, keepdim=True)  # (B, T, 1)
        var = ((h - mean) ** 2).mean(-1, keepdim=True)  # (B, T, 1)
        return (h - mean) / (var + 1e-5).sqrt() * weights[f"{name}.weight"] + weights[
            f"{name}.bias"
        ]

    def linear(h: Tensor, name: str) -> Tensor:
        return h @ weights[f"{name}.weight"].T + weights[f"{name}.bias"]

    B, T, C = x.shape
    hs = C // n_head
    q, k, v = linear(norm(x, "ln1"), "attn.c_attn").split(C, dim=2)  # 3 x (B, T, C)
    q, k, v = (t.reshape(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
    y = q.scaled_dot_product_attention(k, v, is_causal=True)  # (B, nh, T, hs)
    x = x + linear(y.transpose(1, 2).reshape(B, T, C), "attn.c_proj")  # (B, T, C)
    hidden = linear(norm(x, "ln2"), "mlp.c_fc").gelu()  # (B, T, 4C)
    return x + linear(hidden, "mlp.c_proj")  # (B, T, C)


def _unbiased_norm(norm: LayerNorm) -> Callable[[Tensor], Tensor]:
    def apply(h: Tensor) -> Tensor:
        C = h.shape[-1]
        mean = h.mean(-1, keepdim=True)
        var = ((h - mean) ** 2).sum(-1, keepdim=True) / (C - 1)
        return (h - mean) / (var + norm.eps).sqrt() * norm.weight + norm.bias

    return apply


def _relu_mlp(mlp: MLP) -> Callable[[Tensor], Tensor]:
    return lambda h: mlp.c_proj(mlp.c_fc(h).relu())


def _block_cases() -> list[Case]:
    """Two blocks that differ in width, heads and batch; in the second, rows of x so small that
    the layer norm's eps (1e-5) is comparable to their variance (2.5e-5)."""
    cases = []
    for seed, (B, T, C, nh, scale) in enumerate([(2, 5, 16, 2, 2.0), (3, 4, 24, 3, 0.005)]):
        Tensor.manual_seed(32 + seed)
        block = Block(n_embd=C, n_head=nh)
        for norm in (block.ln1, block.ln2):  # move the norms off 1 and 0 so every mix-up shows
            norm.weight = (Tensor.rand(C) + 0.5).realize()  # realized one by one: two lazy draws
            norm.bias = (Tensor.rand(C) - 0.5).realize()  # in one graph could share their numbers
        Tensor.realize(*get_parameters(block))
        values = {
            "x": (Tensor.randn(B, T, C) * scale).realize(),  # (B, T, C)
            "weights": get_state_dict(block),
            "n_head": nh,
        }
        name = f"x of shape {(B, T, C)} (values about {scale}), n_head={nh}, a Block({C}, {nh})"
        cases.append(Case(name, values))
    return cases


@checker("Exercise 1", cases=_block_cases)
def check_block_forward(fn: Callable) -> str:
    """`fn(x, weights, n_head)` = Block's output, `weights` being its state dict; rtol 1e-4."""
    for case in _block_cases():
        x, weights, nh = case["x"], case["weights"], case["n_head"]
        block = Block(n_embd=x.shape[-1], n_head=nh)
        load_state_dict(block, dict(weights), verbose=False)
        expected = block(x).numpy()
        got = run_learner("Exercise 1", fn, x, dict(weights), nh)
        ln1, attn, ln2, mlp = block.ln1, block.attn, block.ln2, block.mlp
        after_attn = x + attn(ln1(x))  # (B, T, C)
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
            "the MLP uses ReLU; GPT-2's MLP uses GELU (Tensor.gelu(), the tanh form).": after_attn
            + _relu_mlp(mlp)(ln2(after_attn)),
            "the layer norms use the unbiased variance (divide by C - 1); layer norm divides by C.": (
                lambda h: h + mlp(_unbiased_norm(ln2)(h))
            )(x + attn(_unbiased_norm(ln1)(x))),
            "the MLP's output is not added back: the second residual is x = x + mlp(ln2(x)).": mlp(
                ln2(after_attn)
            ),
            "the MLP reads ln1(x), the normalised input of attention; it reads ln2 of x after "
            "attention: x = x + attn(ln1(x)), then x = x + mlp(ln2(x)).": after_attn + mlp(ln1(x)),
            "ln1's weights are used for both norms: the MLP's input is normalised by ln2.": (
                after_attn + mlp(ln1(after_attn))
            ),
        }
        compare("Exercise 1", case.name, expected, got, mistakes, rtol=1e-4, atol=1e-5)
    return "your block gives the same output as minigpt's Block, on two block sizes."
