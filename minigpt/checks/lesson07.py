"""Checkers for lesson 07 · Speed: counting the work of generation, attention over a KV cache."""

import math
import statistics
from collections.abc import Callable

import numpy as np
from tinygrad import Tensor
from tinygrad.nn.state import get_state_dict

from course.checks import (
    ExerciseFailed,
    InPlace,
    cached_copies,
    checker,
    compare,
    expect_int,
    name_mistake,
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
            case = f"prompt_len={prompt_len}, new_tokens={new_tokens}, use_cache={use_cache}"
            got = run_learner("Exercise 1", fn, int(prompt_len), int(new_tokens), use_cache)
            got = expect_int("Exercise 1", case, got, "return the number of positions, an int.")
            if got != expected:
                hint = (
                    "with a cache the prompt runs once and each later token costs one position; "
                    "the last sampled token needs no further pass."
                    if use_cache
                    else "sampling token i (from 0) runs over prompt_len + i positions."
                )
                raise ExerciseFailed(
                    f"Exercise 1: {case}: expected {expected} positions, got {got}.\nhint: {hint}"
                )
    return f"{len(cases) * 2} cases agree, with and without the cache."


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
        compare(
            "Exercise 2",
            f"{case}, the returned {name}",
            expected,
            got,
            f"only slot pos={pos} changes; every other slot keeps its cached entry "
            "(k goes into cache_k, v into cache_v).",
        )


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


@checker("Exercise 2")
def check_decode_step(fn: DecodeStep) -> str:
    """`fn(q, k, v, cache_k, cache_v, pos)`: one KV-cache decoding step (see reference_decode_step).

    1) against the last row of full causal attention over positions 0 .. pos, with stale numbers
    in the slots after pos (relative 1e-4, float32); 2) inside a small MiniGPT, greedy decoding
    through the learner's step must give the logits of the full forward pass and the tokens of
    `generate`, with and without the package's cache.
    """
    rng = np.random.default_rng(3)
    largest = 0.0
    for B, nh, S, hs, pos in [(2, 3, 8, 4, 5), (1, 2, 8, 4, 0), (1, 2, 8, 4, 7)]:
        q_all, k_all, v_all = (rng.standard_normal((B, nh, pos + 1, hs)) for _ in range(3))
        stale = rng.standard_normal((2, B, nh, S, hs)) * 3 + 2  # what the unused slots hold
        cache_k, cache_v = stale[0].copy(), stale[1].copy()
        cache_k[:, :, :pos], cache_v[:, :, :pos] = k_all[:, :, :pos], v_all[:, :, :pos]
        q, k, v = q_all[:, :, pos:], k_all[:, :, pos:], v_all[:, :, pos:]  # (B, nh, 1, hs)
        case = f"B={B}, nh={nh}, S={S} slots, hs={hs}, the new token at pos={pos}"
        # realized buffers, as a model's caches are: an .assign into a slice of them sticks
        inputs = [Tensor(a.astype(np.float32)).realize() for a in (q, k, v, cache_k, cache_v)]
        caches = [InPlace(t) for t in inputs[3:]]  # a KV cache may be written in place
        got = run_learner("Exercise 2", fn, *inputs[:3], *caches, pos)
        out, got_k, got_v = _three_arrays(case, got, [q.shape, cache_k.shape, cache_v.shape])
        full = scaled_dot_product_attention(
            *(Tensor(a.astype(np.float32)) for a in (q_all, k_all, v_all)), causal=True
        )
        expected = full.numpy()[:, :, -1:, :]  # (B, nh, 1, hs): the newest position's row
        mistakes = _decode_mistakes(q, k, v, cache_k, cache_v, pos)
        name_mistake("Exercise 2", case, out, expected, mistakes)
        hint = "scores = q @ cache_k^T / sqrt(hs) over slots 0 .. pos (mask the rest), softmax, @ cache_v."
        largest = max(largest, compare("Exercise 2", case, expected, out, hint, rtol=1e-4))
        _check_caches(case, got_k, got_v, k, v, cache_k, cache_v, pos)
    weights, config, prompt, generated, full_logits = _tiny_model()
    new = generated[False].shape[1] - prompt.shape[1]
    tokens, logits = _greedy_with_step(fn, weights, config, prompt, new)
    compare(
        "Exercise 2",
        "the one-layer MiniGPT's logits at every position (rows), your step in every layer",
        full_logits,
        logits,
        "the small cases passed, so look at what differs inside a model: the step is called "
        "with pos = 0, 1, 2, ... and the caches it returned the call before.",
        rtol=1e-3,
        atol=1e-4,
    )
    for use_cache, reference in generated.items():
        if not np.array_equal(tokens, reference):
            raise ExerciseFailed(
                f"Exercise 2: greedy tokens through your step {tokens[0].tolist()} differ from "
                f"generate(use_cache={use_cache}) {reference[0].tolist()}.\n"
                "hint: the logits agree within the tolerance, so a nearly tied choice went the "
                "other way: compute out in float32 from the caches you return."
            )
    return (
        f"matches full causal attention (largest difference {largest:.1e}) and, inside a "
        f"one-layer MiniGPT, generate's {new} greedy tokens with and without the cache."
    )


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
