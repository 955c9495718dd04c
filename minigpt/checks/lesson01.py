"""Checkers for lesson 01 · Tensors, laziness and autograd."""

from collections.abc import Callable

import numpy as np
from tinygrad import Tensor

from minigpt.checks.core import (
    ExerciseFailed,
    checker,
    compare,
    run_learner,
)

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
