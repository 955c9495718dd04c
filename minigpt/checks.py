"""Exercise checkers for the minigpt lessons (01-07).

A checker takes the learner's function, runs it on a few random inputs beside the reference from the
package, and answers in plain words: which input, expected against got, the largest difference, and
a hint. A right answer returns a `CheckResult` that reads as one line in the notebook; a wrong one
raises `ExerciseFailed`; an exercise still raising ``NotImplementedError`` is reported as not done.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tinygrad import Tensor, dtypes
from tinygrad.nn.state import get_parameters

from minigpt.model import GPTConfig, MiniGPT
from minigpt.transformer import Block


class ExerciseFailed(AssertionError):
    """The learner's answer differs from the reference; the message says where and gives a hint."""


@dataclass(frozen=True)
class CheckResult:
    """What a checker found: `passed` is False only for an exercise not attempted yet."""

    passed: bool
    message: str

    def __repr__(self) -> str:
        return self.message


def to_numpy(value) -> np.ndarray:
    """A learner may return a Tensor, a numpy array, a list or a number: compare them all as float64."""
    if isinstance(value, Tensor):
        value = value.numpy()
    return np.asarray(value, dtype=np.float64)


def _preview(array: np.ndarray, count: int = 4) -> str:
    return np.array2string(array.reshape(-1)[:count], precision=4, separator=", ")


def compare(
    exercise: str,
    case: str,
    expected,
    got,
    hint: str,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> float:
    """Raise `ExerciseFailed` unless `got` matches `expected`; return the largest absolute difference.

    `case` describes the input in words ("q, k, v of shape (2, 3, 8, 4), causal"), so the learner
    can reproduce it.
    """
    expected, got = to_numpy(expected), to_numpy(got)
    if got.shape != expected.shape:
        raise ExerciseFailed(
            f"{exercise}: for {case}, expected an output of shape {expected.shape}, got {got.shape}.\n"
            f"hint: {hint}"
        )
    if not np.all(np.isfinite(got)):
        raise ExerciseFailed(
            f"{exercise}: for {case}, the output contains NaN or inf: {_preview(got)}\nhint: {hint}"
        )
    difference = np.abs(got - expected)
    if np.all(difference <= atol + rtol * np.abs(expected)):
        return float(difference.max(initial=0.0))
    where = np.unravel_index(int(difference.argmax()), difference.shape)
    raise ExerciseFailed(
        f"{exercise}: wrong values for {case}.\n"
        f"  expected (first values): {_preview(expected)}\n"
        f"  got      (first values): {_preview(got)}\n"
        f"  largest difference {difference.max():.4g} at index {tuple(int(i) for i in where)}\n"
        f"hint: {hint}"
    )


def run_learner(exercise: str, fn: Callable, *args, **kwargs):
    """Call the learner's function; a NotImplementedError propagates, other errors are explained."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:
        raise ExerciseFailed(
            f"{exercise}: your function raised {type(error).__name__}: {error}\n"
            "hint: run it by hand on a small input and read the traceback above."
        ) from error


def checker(exercise: str) -> Callable[[Callable[..., str]], Callable[..., CheckResult]]:
    """Turn a function that runs the comparisons and returns a success line into a checker.

    The wrapped checker reports an unsolved exercise (``NotImplementedError``) without failing,
    so a lesson runs top to bottom before the learner has written anything.
    """

    def wrap(check: Callable[..., str]) -> Callable[..., CheckResult]:
        def run(*args, **kwargs) -> CheckResult:
            try:
                summary = check(*args, **kwargs)
            except NotImplementedError as error:
                return CheckResult(False, f"{exercise}: not solved yet ({error}).")
            return CheckResult(True, f"{exercise}: correct. {summary}")

        run.__name__, run.__doc__ = check.__name__, check.__doc__
        return run

    return wrap


# ---------------------------------------------------------------------------------------------
# Lesson 01 · Tensors, laziness and autograd
# ---------------------------------------------------------------------------------------------

FD_EPS = (
    1e-3  # step the checker passes to Exercise 1: large enough that a one-sided difference shows
)


def reference_central_difference(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float):
    """Exercise 1: df/dx[i] ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for every element i."""
    x = np.array(x, dtype=np.float64)  # a copy: the caller's array stays untouched
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        original = x[i]
        x[i] = original + eps
        above = f(x)
        x[i] = original - eps
        below = f(x)
        x[i] = original
        grad[i] = (above - below) / (2 * eps)
    return grad


def reference_square_loss_grads(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exercise 2: z = sum((x @ w)^2); dz/dx = 2 (x @ w) w^T and dz/dw = x^T 2 (x @ w)."""
    h = x @ w  # (n, k)
    return 2 * h @ w.T, x.T @ (2 * h)


def reference_sgd_step(w, b, x, y, lr: float):
    """Exercise 3: one gradient step on L = mean((x @ w + b - y)^2); returns the new (w, b)."""
    w, b, x, y = (np.asarray(a, dtype=np.float64) for a in (w, b, x, y))
    residual = x @ w + b - y  # (n,)
    grad_w = 2 * x.T @ residual / len(y)  # (d,)
    grad_b = 2 * residual.mean()
    return w - lr * grad_w, b - lr * grad_b


def _smooth_functions() -> dict[str, tuple[Callable[[np.ndarray], float], np.ndarray]]:
    rng = np.random.default_rng(10)
    a = rng.standard_normal((3, 3))
    return {
        "f(x) = sum(sin(x) * x^2), x of shape (5,)": (
            lambda x: float(np.sum(np.sin(x) * x**2)),
            rng.standard_normal(5),
        ),
        "f(x) = sum(exp(A @ x)), x of shape (3,)": (
            lambda x: float(np.sum(np.exp(a @ x))),
            rng.standard_normal(3),
        ),
        "f(x) = sum(x^3), x of shape (2, 3)": (
            lambda x: float(np.sum(x**3)),
            rng.standard_normal((2, 3)) * 2,
        ),
    }


@checker("Exercise 1")
def check_central_difference(fn: Callable) -> str:
    """`fn(f, x, eps)` estimates the gradient of the scalar numpy function f at x, element by element."""
    hint = (
        "for each element i: (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), and put x[i] back "
        "afterwards; a one-sided difference (f(x + eps) - f(x)) / eps is only accurate to O(eps)."
    )
    for case, (f, x) in _smooth_functions().items():
        before = x.copy()
        got = run_learner("Exercise 1", fn, f, x, FD_EPS)
        if not np.array_equal(x, before):
            raise ExerciseFailed(
                f"Exercise 1: for {case}, your function changed the input x.\n"
                "hint: restore x[i] after each nudge (or work on a copy: x = x.astype(float))."
            )
        expected = reference_central_difference(f, x, FD_EPS)
        compare("Exercise 1", f"{case}, eps={FD_EPS}", expected, got, hint, rtol=1e-7, atol=1e-9)
    return "central differences agree to 1e-7 on three functions."


@checker("Exercise 2")
def check_square_loss_grads(fn: Callable) -> str:
    """`fn(x, w)` returns (dz/dx, dz/dw) for z = sum((x @ w)^2), in numpy, compared with tinygrad."""
    rng = np.random.default_rng(11)
    for n, d, k in [(4, 3, 2), (2, 5, 3)]:
        x, w = rng.standard_normal((n, d)), rng.standard_normal((d, k))
        tx, tw = Tensor(x), Tensor(w)
        expected = ((tx @ tw) ** 2).sum().gradient(tx, tw)
        got = run_learner("Exercise 2", fn, x, w)
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise ExerciseFailed(
                f"Exercise 2: expected a pair (dz/dx, dz/dw), got {type(got).__name__}.\n"
                "hint: return grad_x, grad_w"
            )
        case = f"x of shape {(n, d)}, w of shape {(d, k)}"
        for name, exp, value in zip(("dz/dx", "dz/dw"), expected, got, strict=True):
            compare(
                "Exercise 2",
                f"{name}, {case}",
                exp,
                value,
                "with h = x @ w, dz/dh = 2h; then dz/dx = dz/dh @ w.T (shape of x) and "
                "dz/dw = x.T @ dz/dh (shape of w). Check the factor 2 and which side w.T goes.",
                rtol=1e-8,
            )
    return "both gradients match tinygrad's autograd on two shapes."


@checker("Exercise 3")
def check_sgd_step(fn: Callable) -> str:
    """`fn(w, b, x, y, lr)` returns the weights after one gradient step on the mean squared error."""
    rng = np.random.default_rng(12)
    for n, d in [(8, 3), (5, 1)]:
        x, y = rng.standard_normal((n, d)), rng.standard_normal(n)
        w, b = rng.standard_normal(d), 0.5
        expected = reference_sgd_step(w, b, x, y, 0.1)
        got = run_learner("Exercise 3", fn, w.copy(), b, x, y, 0.1)
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise ExerciseFailed(
                f"Exercise 3: expected a pair (new_w, new_b), got {type(got).__name__}.\n"
                "hint: return w - lr * grad_w, b - lr * grad_b"
            )
        hint = (
            "L = mean((x @ w + b - y)^2): dL/dw = 2 x.T @ r / n and dL/db = 2 mean(r) with "
            "r = x @ w + b - y; step against the gradient: w - lr * dL/dw."
        )
        case = f"x of shape {(n, d)}, lr=0.1"
        compare("Exercise 3", f"new w, {case}", expected[0], got[0], hint, rtol=1e-6)
        compare("Exercise 3", f"new b, {case}", expected[1], got[1], hint, rtol=1e-6)
    return "one step of gradient descent on the mean squared error, as in numpy."


# ---------------------------------------------------------------------------------------------
# Lesson 02 · Attention from scratch
# ---------------------------------------------------------------------------------------------


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


def _matches(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and np.allclose(a, b, atol=1e-4)


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
        assert _matches(builtin.numpy().astype(np.float64), expected)  # the reference agrees
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
        if not _matches(got, expected):
            for hint, wrong in mistakes.items():
                if _matches(got, wrong):
                    raise ExerciseFailed(f"Exercise 1: for {case}, {hint}")
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


# ---------------------------------------------------------------------------------------------
# Lesson 03 · The transformer block
# ---------------------------------------------------------------------------------------------


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
        if not _matches(got, expected):
            for hint, wrong in mistakes.items():
                if _matches(got, wrong):
                    raise ExerciseFailed(f"Exercise 1: for {case}, {hint}")
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
    if not _matches(got, expected):
        for hint, wrong in mistakes.items():
            if _matches(got, wrong.numpy()):
                raise ExerciseFailed(f"Exercise 3: for x of shape (2, 5, 16), {hint}")
    compare(
        "Exercise 3",
        "x of shape (2, 5, 16) and a Block(16, 2)'s parts",
        expected,
        got,
        "x = x + attn(ln1(x)); then x = x + mlp(ln2(x)); return x.",
    )
    return "your block gives the same output as minigpt's Block."


# ---------------------------------------------------------------------------------------------
# Lesson 04 · MiniGPT
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Lesson 05 · Lazy evaluation and kernel fusion
# ---------------------------------------------------------------------------------------------

from tinygrad import GlobalCounters  # noqa: E402

from minigpt.fusion import KernelReport, kernel_report  # noqa: E402

STANDARDIZE_EPS = (
    1e-5  # added to the variance in Exercise 3, so a constant row does not divide by 0
)


def reference_rmse(pred: Tensor, target: Tensor) -> Tensor:
    """Exercise 1: root mean squared error, one fused kernel (the sqrt runs after the sum)."""
    return ((pred - target) ** 2).mean().sqrt()


def reference_count_kernels(make: Callable[[], Tensor]) -> tuple[int, int]:
    """Exercise 2: (kernels, bytes) that realizing ``make()`` costs, read from GlobalCounters."""
    out = make()
    GlobalCounters.reset()  # after building the graph (which runs nothing), before running it
    out.realize()
    return GlobalCounters.kernel_count, GlobalCounters.global_mem


def reference_standardize_rows(x: Tensor) -> Tensor:
    """Exercise 3: every row shifted to mean 0 and scaled to variance 1, in three kernels."""
    centered = x - x.mean(axis=1, keepdim=True)  # (rows, cols)
    variance = (centered * centered).mean(axis=1, keepdim=True)  # (rows, 1), population variance
    return centered / (variance + STANDARDIZE_EPS).sqrt()


def _learner_report(exercise: str, fn: Callable, *args) -> tuple[KernelReport, Tensor]:
    """Run the learner's function under `kernel_report`; it must return a lazy Tensor."""
    results: list = []
    report = kernel_report(lambda: results.append(run_learner(exercise, fn, *args)))
    if not isinstance(results[0], Tensor):
        raise ExerciseFailed(
            f"{exercise}: your function returned {type(results[0]).__name__}, expected a Tensor.\n"
            "hint: return the tinygrad expression itself; .numpy(), .item() and .tolist() "
            "leave tinygrad and end the fusion."
        )
    out = results[0]
    report_after = kernel_report(out.realize)  # the kernels that were still waiting to run
    merged = KernelReport(
        kernels=report.kernels + report_after.kernels,
        names=report.names + report_after.names,
        flops=report.flops + report_after.flops,
        bytes=report.bytes + report_after.bytes,
        seconds=report.seconds + report_after.seconds,
        copies=report.copies + report_after.copies,
    )
    return merged, out


def _inputs(seed: int, *shapes: tuple[int, ...]) -> list[Tensor]:
    rng = np.random.default_rng(seed)
    return [Tensor(rng.standard_normal(s).astype(np.float32)).realize() for s in shapes]


@checker("Exercise 1")
def check_rmse_one_kernel(fn: Callable[[Tensor, Tensor], Tensor]) -> str:
    """`fn(pred, target)` returns the root mean squared error, realized in exactly one kernel."""
    for seed, shape in enumerate([(8, 16), (3, 5, 7), (1000,)]):
        pred, target = _inputs(seed, shape, shape)
        case = f"pred and target of shape {shape}"
        report, out = _learner_report("Exercise 1", fn, pred, target)
        p64, t64 = to_numpy(pred), to_numpy(target)
        compare(
            "Exercise 1",
            case,
            np.sqrt(np.mean((p64 - t64) ** 2)),
            out,
            "square the differences, take the mean over every element, then the square root.",
            rtol=1e-5,
        )
        if report.kernels != 1 or report.copies:
            raise ExerciseFailed(
                f"Exercise 1: for {case}, the value is right but it ran {report.kernels} kernel(s) "
                f"and {report.copies} copies ({', '.join(report.names)}), expected 1 kernel and "
                "no copies.\nhint: build one expression and let the caller realize it; every "
                ".realize(), .numpy() or Tensor(numpy array) in the middle cuts the fusion."
            )
    return "RMSE of three shapes, each in one kernel."


@checker("Exercise 2")
def check_count_kernels(fn: Callable[[Callable[[], Tensor]], tuple[int, int]]) -> str:
    """`fn(make)` returns (kernels, bytes) for realizing ``make()``; compared with kernel_report."""
    a, b = _inputs(0, (32, 32), (32, 32))
    cases = {
        "(a @ b.T + a).sum()": lambda: (a @ b.T + a).sum(),
        "(a @ b.T).contiguous().sum()": lambda: (a @ b.T).contiguous().sum(),
        "a.softmax(axis=1)": lambda: a.softmax(axis=1),
        "(a * 2 + 1).relu()": lambda: (a * 2 + 1).relu(),
    }
    for name, make in cases.items():
        expected = kernel_report(lambda make=make: make().realize())
        got = run_learner("Exercise 2", fn, make)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise ExerciseFailed(
                f"Exercise 2: for {name}, expected a tuple (kernels, bytes), got {got!r}.\n"
                "hint: return GlobalCounters.kernel_count, GlobalCounters.global_mem"
            )
        if tuple(got) != (expected.kernels, expected.bytes):
            hint = (
                "nothing ran: realize make()'s tensor between reset and reading the counters."
                if got[0] == 0
                else "call GlobalCounters.reset() right before realizing, so earlier kernels do "
                "not count; bytes are GlobalCounters.global_mem (global_ops counts FLOPs)."
            )
            raise ExerciseFailed(
                f"Exercise 2: for {name}, expected {expected.kernels} kernel(s) and "
                f"{expected.bytes:,} bytes (kernel_report), got {got[0]} kernel(s) and "
                f"{got[1]:,} bytes.\nhint: {hint}"
            )
    return f"kernels and bytes agree with kernel_report on {len(cases)} expressions."


@checker("Exercise 3")
def check_fused_standardize(fn: Callable[[Tensor], Tensor]) -> str:
    """`fn(x)` standardizes every row of x, in at most as many kernels as the fused reference."""
    for seed, shape in enumerate([(6, 10), (16, 64)]):
        (x,) = _inputs(seed, shape)
        x = (x * 3 + 2).realize()  # rows far from mean 0 and variance 1
        case = f"x of shape {shape}"
        best = kernel_report(lambda x=x: reference_standardize_rows(x).realize()).kernels
        report, out = _learner_report("Exercise 3", fn, x)
        x64 = to_numpy(x)
        centered = x64 - x64.mean(axis=1, keepdims=True)
        expected = centered / np.sqrt(centered.var(axis=1, keepdims=True) + STANDARDIZE_EPS)
        compare(
            "Exercise 3",
            case,
            expected,
            out,
            "divide (x - row mean) by sqrt(row variance + 1e-5); the variance is the mean of "
            "the squared deviations (divide by the row length, not length - 1).",
        )
        if report.kernels > best or report.copies:
            raise ExerciseFailed(
                f"Exercise 3: for {case}, the values are right but it ran {report.kernels} "
                f"kernel(s) and {report.copies} copies, the fused version needs {best} and none.\n"
                "hint: work on the whole tensor with axis=1 and keepdim=True instead of a loop "
                "over rows, and drop the .realize() calls."
            )
    return f"rows standardized in {report.kernels} kernels, as few as the fused reference."


# ---------------------------------------------------------------------------------------------
# Lesson 06 · Custom operations and gradient checking
# ---------------------------------------------------------------------------------------------

from tinygrad.uop.ops import UOp  # noqa: E402

from minigpt.ops import elementwise_kernel, gradcheck, swish_uop  # noqa: E402

LARGE = [-1000.0, -100.0, -30.0, -1.0, 0.5, 30.0, 100.0, 1000.0]  # where naive formulas overflow


def reference_softplus(x: Tensor) -> Tensor:
    """Exercise 1: log(1 + e^x) written as max(x, 0) + log(1 + e^-|x|), so exp never overflows."""
    return x.maximum(0) + ((-x.abs()).exp() + 1).log()


def reference_swish_grad(v: Tensor | UOp) -> Tensor | UOp:
    """Exercise 2: d/dv [v sigmoid(v)] = s (1 + v (1 - s)), s = sigmoid(v); for Tensors and UOps."""
    s = 1 / (1 + (-v).exp())
    return s * (1 + v * (1 - s))


def reference_logsumexp(x: Tensor, axis: int = -1) -> Tensor:
    """Exercise 3: log(sum(exp(x))) along `axis` (removed), with the maximum taken out first."""
    m = x.max(axis=axis, keepdim=True).detach()  # the shift cancels; its gradient would be 0
    return (x - m).exp().sum(axis=axis).log() + m.squeeze(axis)


def _gradient_ok(exercise: str, fn: Callable, x: Tensor, hint: str, tol: float) -> str:
    """Run gradcheck on the learner's function and explain a failure."""
    grad = run_learner(exercise, lambda: fn(x).sum().gradient(x)[0].numpy())
    if not np.all(np.isfinite(grad)):  # gradcheck's ratios would hide a NaN gradient
        raise ExerciseFailed(
            f"{exercise}: the gradient contains NaN or inf: {_preview(grad)}\nhint: {hint}"
        )
    result = run_learner(exercise, gradcheck, fn, [x])
    if result.max_rel_error > tol:
        raise ExerciseFailed(
            f"{exercise}: the values are right but the gradient is not: {result}.\nhint: {hint}"
        )
    return f"{result.max_rel_error:.0e}"


@checker("Exercise 1")
def check_softplus(fn: Callable[[Tensor], Tensor]) -> str:
    """`fn(x)` = log(1 + e^x) elementwise, finite for any x, with a gradient that checks out."""
    hint = "log(1 + exp(x)) overflows for x > 88 (float32); use max(x, 0) + log(1 + exp(-|x|))."
    rng = np.random.default_rng(0)
    normal = (rng.standard_normal((4, 5)) * 3).astype(np.float32)
    cases = {
        "x of shape (4, 5), normal with scale 3, float32": normal,
        f"x = {LARGE}, float32": np.array(LARGE, dtype=np.float32),
        f"x = {LARGE}, float64": np.array(LARGE),
    }
    for case, x in cases.items():
        got = run_learner("Exercise 1", fn, Tensor(x))
        compare("Exercise 1", case, np.logaddexp(0, x.astype(np.float64)), got, hint, rtol=1e-5)
    grad_hint = "build it from tinygrad operations (maximum, abs, exp, log) so autograd sees them."
    x = Tensor(rng.standard_normal((3, 4)) * 3)  # float64: finite differences are precise there
    error = _gradient_ok("Exercise 1", fn, x, grad_hint, tol=1e-6)
    return f"values finite up to |x| = 1000, gradient relative error {error}."


@checker("Exercise 2")
def check_swish_grad(fn: Callable) -> str:
    """`fn(v)` = d swish / dv, against central differences, then as a custom kernel's backward."""
    hint = "product rule: d/dv [v s(v)] = s + v s'(v), and s'(v) = s (1 - s) for the sigmoid s."
    x = np.linspace(-8, 8, 33)
    swish64 = lambda v: v / (1 + np.exp(-v))
    step = 1e-6
    numeric = (swish64(x + step) - swish64(x - step)) / (2 * step)
    got = run_learner("Exercise 2", fn, Tensor(x))
    compare("Exercise 2", "v = 33 points from -8 to 8 (float64)", numeric, got, hint, rtol=1e-6)
    rng = np.random.default_rng(1)
    x32 = Tensor((rng.standard_normal((3, 4)) * 2).astype(np.float32))
    as_kernel = lambda t: elementwise_kernel(t, swish_uop, fn, name="swish")
    error = _gradient_ok(
        "Exercise 2",
        as_kernel,
        x32,
        "inside a kernel v is a UOp: use + - * / and .exp() only.",
        tol=1e-4,
    )
    return f"matches finite differences; as a kernel's backward, gradcheck error {error}."


@checker("Exercise 3")
def check_logsumexp(fn: Callable[..., Tensor]) -> str:
    """`fn(x, axis)` = log(sum(exp(x), axis)), the axis removed, finite for large inputs."""
    hint = "take m = max along the axis out first: m + log(sum(exp(x - m)))."
    rng = np.random.default_rng(2)
    normal = rng.standard_normal((3, 5)).astype(np.float32)
    large = np.array([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1002.0]], dtype=np.float32)
    cases = [
        ("x of shape (3, 5), axis=-1", normal, -1),
        ("x of shape (3, 5), axis=0", normal, 0),
        ("x = [[1000, 999, 998], [-1000, -1001, -1002]] (float32), axis=-1", large, -1),
    ]
    for case, x, axis in cases:
        x64 = x.astype(np.float64)
        m = x64.max(axis=axis, keepdims=True)
        expected = (m + np.log(np.exp(x64 - m).sum(axis=axis, keepdims=True))).squeeze(axis)
        got = run_learner("Exercise 3", fn, Tensor(x), axis)
        compare("Exercise 3", case, expected, got, hint, rtol=1e-5)
    x = Tensor(rng.standard_normal((3, 4)))
    error = _gradient_ok(
        "Exercise 3",
        lambda t: fn(t, -1),
        x,
        "the gradient of logsumexp is softmax; detach the shift or keep it inside tinygrad.",
        tol=1e-6,
    )
    return f"stable for inputs of +-1000, gradient relative error {error}."
