"""Checkers for lesson 07 · Speed: counting the work of generation, attention over a KV cache."""

import math
import statistics
from collections.abc import Callable

import numpy as np
from tinygrad import Tensor
from tinygrad.nn.state import get_state_dict

from course.checks import (
    Case,
    ExerciseFailed,
    InPlace,
    cached_copies,
    checker,
    compare,
    expect_int,
    run_learner,
    to_numpy,
)
from minigpt.attention import scaled_dot_product_attention
from minigpt.model import GPTConfig, MiniGPT

DecodeStep = Callable[..., tuple]  # (q, k, v, cache_k, cache_v, pos) -> (out, cache_k, cache_v)


def reference_positions_processed(prompt_len: int, new_tokens: int, use_cache: bool) -> int:
    """Positions run through the model to sample `new_tokens` after a prompt (all within the block)."""
    if new_tokens == 0:
        return 0
    if use_cache:
        return prompt_len + new_tokens - 1  # the prompt once, then one position per later token
    return sum(prompt_len + i for i in range(new_tokens))  # the whole text before each new token


def reference_decode_step(
    q: Tensor, k: Tensor, v: Tensor, cache_k: Tensor, cache_v: Tensor, pos: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Exercise 2: one token at position `pos`: write its k, v (B, nh, 1, hs) into slot `pos` of
    the caches (B, nh, S, hs), then attend with q (B, nh, 1, hs) over slots 0 .. pos."""
    S = cache_k.shape[2]
    here = (Tensor.arange(S) == pos).reshape(1, 1, S, 1)  # slot pos, broadcast over B, nh, hs
    cache_k, cache_v = here.where(k, cache_k), here.where(v, cache_v)  # (B, nh, S, hs)
    scores = q @ cache_k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, nh, 1, S)
    visible = (Tensor.arange(S) <= pos).reshape(1, 1, 1, S)  # slots past pos hold stale numbers
    weights = visible.where(scores, -math.inf).softmax(axis=-1)  # (B, nh, 1, S)
    return weights @ cache_v, cache_k, cache_v  # (B, nh, 1, hs), the updated caches


def reference_steady_tokens_per_second(
    seconds: list[float], tokens_per_step: int, warmup: int = 2
) -> float:
    """Throughput of the calls after `warmup`, from their median time."""
    return tokens_per_step / statistics.median(seconds[warmup:])


def _positions_cases() -> list[Case]:
    """Small hand-picked lengths, nothing to sample, and random ones, with and without the cache."""
    rng = np.random.default_rng(7)
    lengths = [(1, 1), (4, 1), (4, 2), (3, 5), (6, 0)] + [  # (6, 0): nothing to sample
        tuple(int(n) for n in rng.integers(1, 30, size=2)) for _ in range(6)
    ]
    return [
        Case(
            f"prompt_len={prompt_len}, new_tokens={new_tokens}, use_cache={use_cache}",
            {"prompt_len": prompt_len, "new_tokens": new_tokens, "use_cache": use_cache},
        )
        for prompt_len, new_tokens in lengths
        for use_cache in (False, True)
    ]


@checker("Exercise 1", cases=_positions_cases)
def check_positions_processed(fn: Callable[[int, int, bool], int]) -> str:
    """Compare the learner's count with the reference on small and random cases, both modes."""
    cases = _positions_cases()
    for case in cases:
        expected = reference_positions_processed(**case.values)
        got = run_learner("Exercise 1", fn, *case.values.values())
        got = expect_int("Exercise 1", case.name, got, "return the number of positions, an int.")
        if got != expected:
            prompt_len, new_tokens, use_cache = case.values.values()
            if use_cache:
                wrong = prompt_len + new_tokens
                why = "the last sampled token needs no further pass: with a cache the prompt "
                why += "runs once, then one position for each later token."
            else:
                wrong = sum(prompt_len + i + 1 for i in range(new_tokens))
                why = "sampling token i (from 0) runs over the prompt_len + i positions before "
                why += "it, not the token itself."
            known = why if got == wrong else None
            raise ExerciseFailed(
                f"Exercise 1: {case.name}: expected {expected} positions, got {got}."
                + (f"\nhint: {known}" if known else "")
            )
    return f"{len(cases)} cases agree, with and without the cache."


def _attend64(q: np.ndarray, keys: np.ndarray, values: np.ndarray, scale: float) -> np.ndarray:
    """softmax(q keys^T * scale) values in float64; q (B, nh, 1, hs), keys (B, nh, n, hs)."""
    scores = q @ keys.swapaxes(-1, -2) * scale  # (B, nh, 1, n)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)) @ values  # (B, nh, 1, hs)


def _decode_mistakes(q, k, v, cache_k, cache_v, pos) -> dict[str, np.ndarray]:
    """Typical wrong outputs of a decode step (float64 arrays), keyed by what went wrong."""
    scale = 1 / math.sqrt(q.shape[-1])
    new_k, new_v = cache_k.copy(), cache_v.copy()
    new_k[:, :, pos], new_v[:, :, pos] = k[:, :, 0], v[:, :, 0]
    mistakes = {
        "the query also attends to the slots after pos, which hold stale numbers: mask them "
        "with Tensor.arange(S) <= pos before the softmax.": _attend64(q, new_k, new_v, scale),
        "the scores are not scaled: divide q @ k^T by sqrt(hs).": _attend64(
            q, new_k[:, :, : pos + 1], new_v[:, :, : pos + 1], 1.0
        ),
        "the new token's k and v are not in the caches when it attends: write slot pos "
        "first, then attend (a token attends to itself).": _attend64(
            q, cache_k[:, :, : pos + 1], cache_v[:, :, : pos + 1], scale
        ),
    }
    if pos > 0:
        mistakes[
            "the mask hides the new token's own slot: it may see slots 0 .. pos, so use <= pos."
        ] = _attend64(q, new_k[:, :, :pos], new_v[:, :, :pos], scale)
    return mistakes


def _three_arrays(case: str, got, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """(out, cache_k, cache_v) as float64 arrays of the expected shapes, or a plain message."""
    if not isinstance(got, tuple | list) or len(got) != 3:
        raise ExerciseFailed(
            f"Exercise 2: for {case}, expected a tuple (out, cache_k, cache_v), got "
            f"{type(got).__name__} {got!r:.80}.\nhint: return out, cache_k, cache_v"
        )
    if all(isinstance(t, Tensor) for t in got):
        run_learner("Exercise 2", Tensor.realize, *got)  # one schedule for the three tensors
    arrays = []
    for name, value, shape in zip(("out", "cache_k", "cache_v"), got, shapes, strict=True):
        try:
            array = to_numpy(value)
        except Exception as error:
            raise ExerciseFailed(
                f"Exercise 2: for {case}, {name} could not be read as numbers: {type(value).__name__} "
                f"({error}).\nhint: return tinygrad Tensors."
            ) from error
        if array.shape != shape:
            raise ExerciseFailed(
                f"Exercise 2: for {case}, {name} should have shape {shape}, got {array.shape}.\n"
                "hint: out is (B, nh, 1, hs); the caches keep their shape (B, nh, S, hs)."
            )
        arrays.append(array)
    return arrays


def _check_caches(case: str, got_k, got_v, k, v, cache_k, cache_v, pos) -> None:
    """The caches after the step: slot pos holds k and v, every other slot is unchanged."""
    for name, got, new, old in (("cache_k", got_k, k, cache_k), ("cache_v", got_v, v, cache_v)):
        if np.allclose(got[:, :, pos], old[:, :, pos]) and not np.allclose(
            new[:, :, 0], old[:, :, pos]
        ):
            raise ExerciseFailed(
                f"Exercise 2: for {case}, slot {pos} of the returned {name} still holds the old "
                "numbers.\nhint: write the new token's entry at slot pos: "
                "(Tensor.arange(S) == pos).reshape(1, 1, S, 1).where(new, cache)."
            )
        expected = old.copy()
        expected[:, :, pos] = new[:, :, 0]
        other, other_new = (cache_v, v) if name == "cache_k" else (cache_k, k)
        swapped = other.copy()
        swapped[:, :, pos] = other_new[:, :, 0]
        mistakes = {"the caches are swapped: k goes into cache_k, v into cache_v.": swapped}
        compare("Exercise 2", f"{case}, the returned {name}", expected, got, mistakes)


@cached_copies
def _tiny_model() -> tuple[dict[str, np.ndarray], GPTConfig, np.ndarray, dict, np.ndarray]:
    """A one-layer MiniGPT with weights large enough that greedy choices are clear, a prompt, the
    greedy tokens of `generate` with and without its cache, and the full forward's logits."""
    config = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    model = MiniGPT(config)
    rng = np.random.default_rng(11)
    for name, t in get_state_dict(model).items():
        if ".ln" not in name and not name.startswith("ln_f"):
            t.assign(Tensor(rng.standard_normal(t.shape).astype(np.float32) * 0.5)).realize()
    weights = {name: t.numpy().astype(np.float64) for name, t in get_state_dict(model).items()}
    prompt, new = np.array([[3, 1, 4]]), 4
    generated = {
        cache: model.generate(prompt, new, temperature=0, use_cache=cache)
        for cache in (False, True)
    }
    logits = model(generated[False][:, :-1]).numpy()[0]  # (P + new - 1, V)
    return weights, config, prompt, generated, logits


def _layer_norm(x: np.ndarray, w: dict, name: str) -> np.ndarray:
    centered = x - x.mean(axis=-1, keepdims=True)
    scale = np.sqrt((centered**2).mean(axis=-1, keepdims=True) + 1e-5)
    return centered / scale * w[f"{name}.weight"] + w[f"{name}.bias"]


def _linear(x: np.ndarray, w: dict, name: str) -> np.ndarray:
    return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]


def _greedy_with_step(step: DecodeStep, w: dict, c: GPTConfig, prompt: np.ndarray, new: int):
    """Greedy decoding of the tiny MiniGPT (in float64 numpy) in which every attention layer runs
    the learner's decode step, the prompt included, one position at a time.

    Returns (tokens (1, P + new), logits (P + new - 1, V)).
    """
    nh, hs, S = c.n_head, c.n_embd // c.n_head, c.block_size
    caches = [[np.zeros((1, nh, S, hs))] * 2 for _ in range(c.n_layer)]
    tokens, logits = list(prompt[0]), []
    for pos in range(prompt.shape[1] + new - 1):
        x = w["tok_emb.weight"][tokens[pos]] + w["pos_emb.weight"][pos]  # (C,)
        for layer, cache in enumerate(caches):
            block = f"blocks.{layer}"
            qkv = _linear(_layer_norm(x, w, f"{block}.ln1"), w, f"{block}.attn.c_attn")  # (3C,)
            q, k, v = (t.reshape(1, nh, 1, hs) for t in np.split(qkv, 3))  # (1, nh, 1, hs)
            q_, k_, v_, *kv = [Tensor(a.astype(np.float32)).realize() for a in (q, k, v, *cache)]
            got = run_learner("Exercise 2", step, q_, k_, v_, *map(InPlace, kv), pos)
            case = f"the one-layer MiniGPT, layer {layer}, position {pos}"
            out, cache[0], cache[1] = _three_arrays(case, got, [q.shape, *(a.shape for a in cache)])
            x = x + _linear(out.reshape(c.n_embd), w, f"{block}.attn.c_proj")  # heads side by side
            h = _linear(_layer_norm(x, w, f"{block}.ln2"), w, f"{block}.mlp.c_fc")  # (4C,)
            gelu = 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
            x = x + _linear(gelu, w, f"{block}.mlp.c_proj")  # (C,)
        logits.append(_layer_norm(x, w, "ln_f") @ w["tok_emb.weight"].T)  # (V,), tied head
        if pos >= prompt.shape[1] - 1:
            tokens.append(int(logits[-1].argmax()))
    return np.array([tokens]), np.stack(logits)


def _decode_cases() -> list[Case]:
    """Steps that differ in batch, heads, slots, head size and position (the first slot and the
    last included), with stale numbers in the slots after pos. `q_all`, `k_all`, `v_all` hold
    positions 0 .. pos, for the full attention the step is compared with."""
    rng = np.random.default_rng(3)
    cases = []
    for B, nh, S, hs, pos in [(2, 3, 8, 4, 5), (1, 2, 6, 8, 0), (1, 2, 5, 2, 4)]:
        q_all, k_all, v_all = (rng.standard_normal((B, nh, pos + 1, hs)) for _ in range(3))
        cache_k, cache_v = rng.standard_normal((2, B, nh, S, hs)) * 3 + 2  # stale numbers
        cache_k[:, :, :pos], cache_v[:, :, :pos] = k_all[:, :, :pos], v_all[:, :, :pos]
        values = {
            "q": q_all[:, :, pos:],  # (B, nh, 1, hs): the new token's
            "k": k_all[:, :, pos:],
            "v": v_all[:, :, pos:],
            "cache_k": cache_k,  # (B, nh, S, hs): slots 0 .. pos-1 filled, the rest stale
            "cache_v": cache_v,
            "pos": pos,
            "q_all": q_all,  # (B, nh, pos + 1, hs): every position, for full attention
            "k_all": k_all,
            "v_all": v_all,
        }
        name = f"B={B}, nh={nh}, S={S} slots, hs={hs}, the new token at pos={pos}"
        cases.append(Case(name, values))
    return cases


@checker("Exercise 2", cases=_decode_cases)
def check_decode_step(fn: DecodeStep) -> str:
    """`fn(q, k, v, cache_k, cache_v, pos)`: one KV-cache decoding step (see reference_decode_step).

    1) against the last row of full causal attention over positions 0 .. pos, with stale numbers
    in the slots after pos (relative 1e-4, float32); 2) inside a small MiniGPT, greedy decoding
    through the learner's step must give the logits of the full forward pass and the tokens of
    `generate`, with and without the package's cache.
    """
    largest = 0.0
    for case in _decode_cases():
        q, k, v, cache_k, cache_v, pos, q_all, k_all, v_all = case.values.values()
        # realized buffers, as a model's caches are: an .assign into a slice of them sticks
        inputs = [Tensor(a.astype(np.float32)).realize() for a in (q, k, v, cache_k, cache_v)]
        caches = [InPlace(t) for t in inputs[3:]]  # a KV cache may be written in place
        got = run_learner("Exercise 2", fn, *inputs[:3], *caches, pos)
        out, got_k, got_v = _three_arrays(case.name, got, [q.shape, cache_k.shape, cache_v.shape])
        full = scaled_dot_product_attention(
            *(Tensor(a.astype(np.float32)) for a in (q_all, k_all, v_all)), causal=True
        )
        expected = full.numpy()[:, :, -1:, :]  # (B, nh, 1, hs): the newest position's row
        mistakes = _decode_mistakes(q, k, v, cache_k, cache_v, pos)
        largest = max(largest, compare("Exercise 2", case.name, expected, out, mistakes, rtol=1e-4))
        _check_caches(case.name, got_k, got_v, k, v, cache_k, cache_v, pos)
    weights, config, prompt, generated, full_logits = _tiny_model()
    new = generated[False].shape[1] - prompt.shape[1]
    tokens, logits = _greedy_with_step(fn, weights, config, prompt, new)
    compare(
        "Exercise 2",
        "the one-layer MiniGPT's logits at every position (rows), your step in every layer",
        full_logits,
        logits,
        rtol=1e-3,
        atol=1e-4,
    )
    for use_cache, reference in generated.items():
        if not np.array_equal(tokens, reference):
            raise ExerciseFailed(
                f"Exercise 2: greedy tokens through your step {tokens[0].tolist()} differ from "
                f"generate(use_cache={use_cache}) {reference[0].tolist()}, though the logits "
                "agree within the tolerance: a nearly tied choice went the other way."
            )
    return (
        f"matches full causal attention (largest difference {largest:.1e}) and, inside a "
        f"one-layer MiniGPT, generate's {new} greedy tokens with and without the cache."
    )


def _timing_cases() -> list[Case]:
    return [
        Case(
            f"seconds={seconds}, tokens_per_step={tokens}, warmup={warmup}",
            {"seconds": seconds, "tokens_per_step": tokens, "warmup": warmup},
        )
        for seconds, tokens, warmup in [
            ([10.0, 3.0, 0.5, 0.4, 0.6], 768, 2),  # compile, capture, then replays
            ([8.0, 2.0, 0.2, 0.2, 5.0, 0.2], 100, 2),  # one replay disturbed by a neighbour
            ([1.0, 0.1, 0.3], 10, 1),
            ([0.2, 0.5, 4.0, 0.3, 0.35, 0.32], 50, 1),  # the slowest call is not a warm-up call
            ([0.2, 6.0, 0.25, 0.3, 0.28, 0.26, 0.9], 64, 3),  # three warm-up calls, an even rest
        ]
    ]


@checker("Exercise 3", cases=_timing_cases)
def check_steady_tokens_per_second(fn: Callable[..., float]) -> str:
    """Throughput from the median of the calls after the warmup, on made-up timings."""
    cases = _timing_cases()
    for case in cases:
        seconds, tokens, warmup = case.values.values()
        expected = reference_steady_tokens_per_second(seconds, tokens, warmup)
        got = run_learner("Exercise 3", fn, seconds, tokens, warmup)
        rest = seconds[warmup:]
        mistakes = {
            "that is the mean of the calls after the warmup; the median is not moved by one "
            "slow call: tokens_per_step / statistics.median(seconds[warmup:]).": tokens
            / statistics.mean(rest),
            "the warm-up calls are counted: drop seconds[:warmup] first.": tokens
            / statistics.median(seconds),
        }
        compare("Exercise 3", case.name, expected, got, mistakes, rtol=1e-9)
    return f"{len(cases)} timing lists agree."
