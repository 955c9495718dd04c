"""Checkers for lesson 04 · MiniGPT."""

from collections.abc import Callable

import numpy as np

from minigpt.checks.core import ExerciseFailed, checker, compare, run_learner, to_numpy


def reference_make_batch(tokens: np.ndarray, starts: np.ndarray, block_size: int):
    """Exercise 1: windows x[b] = tokens[s : s + T], targets y[b] = tokens[s + 1 : s + T + 1]."""
    x = np.stack([tokens[s : s + block_size] for s in starts])  # (B, T)
    y = np.stack([tokens[s + 1 : s + block_size + 1] for s in starts])  # (B, T)
    return x, y


def reference_sampling_probs(logits: np.ndarray, temperature: float, top_k: int | None):
    """Exercise 2: the distribution a token is drawn from: softmax(logits / temperature) over the
    top_k largest logits (all when top_k is None), zero elsewhere."""
    logits = np.asarray(logits, dtype=np.float64) / temperature  # (B, V)
    if top_k is not None:
        kth = np.sort(logits, axis=-1)[:, -top_k][:, None]  # (B, 1), the k-th largest
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return probs / probs.sum(axis=-1, keepdims=True)


def reference_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Exercise 3: mean of -log softmax(logits)[target] over the positions whose target is not -1."""
    logits = np.asarray(logits, dtype=np.float64)  # (B, T, V)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    scored = targets != -1  # (B, T)
    picked = np.take_along_axis(log_probs, np.where(scored, targets, 0)[..., None], -1)[..., 0]
    return float(-picked[scored].mean())


@checker("Exercise 1")
def check_make_batch(fn: Callable) -> str:
    """`fn(tokens, starts, block_size)` returns x (B, T) and y (B, T), y = x shifted by one token."""
    tokens = np.arange(100, 140, dtype=np.int32)  # each token names its position: 100 + i
    starts = np.array([0, 7, 31])
    for T in (4, 8):
        case = f"tokens = [100, 101, ..., 139], starts = {starts.tolist()}, block_size={T}"
        got = run_learner("Exercise 1", fn, tokens, starts, T)
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise ExerciseFailed(f"Exercise 1: expected a pair (x, y), got {type(got).__name__}.")
        x, y = (to_numpy(a) for a in got)
        expected_x, expected_y = reference_make_batch(tokens, starts, T)
        if x.shape == y.shape == expected_x.shape and np.array_equal(x, y):
            raise ExerciseFailed(
                f"Exercise 1: for {case}, y equals x: the target at each position is the NEXT "
                "token.\nhint: y = tokens[s + 1 : s + block_size + 1]"
            )
        if y.shape == expected_y.shape and np.array_equal(y, expected_x - 1):
            raise ExerciseFailed(
                f"Exercise 1: for {case}, y is shifted the wrong way (the previous token).\n"
                "hint: y[b, t] must be the token after x[b, t]: tokens[s + t + 1]."
            )
        hint = "x = tokens[s : s + block_size], y = tokens[s + 1 : s + block_size + 1]"
        compare("Exercise 1", f"x, {case}", expected_x, x, hint, rtol=0, atol=0)
        compare("Exercise 1", f"y, {case}", expected_y, y, hint, rtol=0, atol=0)
    return "x and y are the same windows, y one token ahead."


@checker("Exercise 2")
def check_sampling_probs(fn: Callable) -> str:
    """`fn(logits, temperature, top_k)` returns the sampling distribution (B, V) for numpy logits."""
    rng = np.random.default_rng(40)
    logits = rng.standard_normal((3, 10)) * 2  # (B, V)
    for temperature, top_k in [(1.0, None), (0.5, None), (2.0, 3), (0.8, 1), (1.0, 10)]:
        case = f"logits of shape (3, 10), temperature={temperature}, top_k={top_k}"
        got = to_numpy(run_learner("Exercise 2", fn, logits.copy(), temperature, top_k))
        expected = reference_sampling_probs(logits, temperature, top_k)
        if (
            temperature != 1.0
            and got.shape == expected.shape
            and not np.allclose(got, expected)
            and np.allclose(
                got, reference_sampling_probs(logits * temperature**2, temperature, top_k)
            )
        ):
            raise ExerciseFailed(
                f"Exercise 2: for {case}, the logits are multiplied by the temperature; divide "
                "them: a low temperature must sharpen the distribution.\nhint: logits / temperature"
            )
        if top_k is not None and got.shape == expected.shape:
            kept = (got > 0).sum(axis=-1)
            if not np.all(kept == top_k):
                raise ExerciseFailed(
                    f"Exercise 2: for {case}, rows keep {kept.tolist()} tokens, expected {top_k} "
                    "each.\nhint: keep the logits >= the k-th largest (np.sort(l)[:, -top_k]) and "
                    "set the others to -inf before the softmax."
                )
        compare(
            "Exercise 2",
            case,
            expected,
            got,
            "divide by the temperature, set all but the top_k logits to -inf, then softmax "
            "along the last axis.",
            rtol=1e-6,
            atol=1e-9,
        )
    return "temperature and top-k filtering agree with the reference on five settings."


@checker("Exercise 3")
def check_cross_entropy(fn: Callable) -> str:
    """`fn(logits, targets)`: mean cross-entropy over the targets that are not -1 (numpy in)."""
    rng = np.random.default_rng(41)
    logits = rng.standard_normal((2, 6, 5)) * 3  # (B, T, V)
    targets = rng.integers(0, 5, (2, 6))
    masked = targets.copy()
    masked[:, :3] = -1  # the question half of a synthetic task is not scored
    large = logits * 300  # logits in the hundreds: exp overflows without the max shift
    cases = [
        ("logits (2, 6, 5), all targets scored", logits, targets),
        ("logits (2, 6, 5), the first 3 targets of each row -1", logits, masked),
        ("logits of size up to ~2000, first 3 targets -1", large, masked),
    ]
    for case, lg, tg in cases:
        got = to_numpy(run_learner("Exercise 3", fn, lg.copy(), tg.copy()))
        expected = reference_cross_entropy(lg, tg)
        if got.shape == () and np.isfinite(got) and (tg == -1).any():
            scored = (tg != -1).sum()
            if np.isclose(got, expected * scored / tg.size, rtol=1e-6):
                raise ExerciseFailed(
                    f"Exercise 3: for {case}, the loss is averaged over all {tg.size} positions; "
                    f"only the {scored} scored ones count.\nhint: divide the sum by (targets != -1).sum()."
                )
        compare(
            "Exercise 3",
            case,
            expected,
            got,
            "log_softmax = l - max - log(sum(exp(l - max))) along V; pick each target's entry; "
            "average -log p over the positions with target != -1.",
            rtol=1e-6,
        )
    return "matches numpy, with ignored positions and with very large logits."
