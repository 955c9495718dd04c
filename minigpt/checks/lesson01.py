"""Checkers for lesson 01 · Tensors, laziness and autograd.

Both gradient exercises are about deriving gradients, so their checkers switch tinygrad's autograd
off while the learner's function runs: a call to `.backward()` or `.gradient()` is reported as such.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from tinygrad import Tensor

from course.checks import (
    Case,
    ExerciseFailed,
    checker,
    compare,
    run_learner,
)

# The gradients Exercise 1 returns, in the order the backward pass computes them.
MLP_GRADS = ("dlogits", "dW2", "db2", "dh", "dpre", "dW1", "db1")


class AutogradUsed(RuntimeError):
    """Raised inside the learner's function when it asks tinygrad for a gradient."""


@contextmanager
def _autograd_forbidden() -> Iterator[None]:
    """Make `Tensor.backward` and `Tensor.gradient` raise `AutogradUsed` for the block's duration."""
    saved = Tensor.backward, Tensor.gradient

    def forbidden(self, *args, **kwargs):
        raise AutogradUsed("this exercise asks for the gradient by hand, without autograd")

    Tensor.backward, Tensor.gradient = forbidden, forbidden
    try:
        yield
    finally:
        Tensor.backward, Tensor.gradient = saved


def _run_without_autograd(exercise: str, fn: Callable, *args):
    with _autograd_forbidden():
        try:
            return run_learner(exercise, fn, *args)
        except ExerciseFailed as failure:
            if isinstance(failure.__cause__, AutogradUsed):
                raise ExerciseFailed(
                    f"{exercise}: your function calls .backward() or .gradient(); here the point "
                    "is to derive the gradient yourself.\nhint: apply the chain rule by hand, one "
                    "operation at a time, from the loss back to the inputs."
                ) from None
            raise


def _np_mlp(x, y, W1, b1, W2, b2) -> dict[str, np.ndarray]:
    """Forward and backward of tanh-MLP + mean cross-entropy in float64; every intermediate."""
    N = len(y)
    pre = x @ W1 + b1  # (N, H)
    h = np.tanh(pre)  # (N, H)
    logits = h @ W2 + b2  # (N, K)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)  # (N, K)
    one_hot = np.eye(W2.shape[1])[y]  # (N, K)
    dlogits = (probs - one_hot) / N  # (N, K): the mean's 1/N lands here
    dh = dlogits @ W2.T  # (N, H)
    dpre = dh * (1 - h**2)  # (N, H): tanh' = 1 - tanh^2
    return {
        "pre": pre,
        "h": h,
        "probs": probs,
        "one_hot": one_hot,
        "dlogits": dlogits,
        "dW2": h.T @ dlogits,  # (H, K)
        "db2": dlogits.sum(axis=0),  # (K,)
        "dh": dh,
        "dpre": dpre,
        "dW1": x.T @ dpre,  # (D, H)
        "db1": dpre.sum(axis=0),  # (H,)
    }


def reference_mlp_backward(x: Tensor, y: Tensor, W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor):
    """Exercise 1: the gradients of loss = mean cross-entropy(tanh(x @ W1 + b1) @ W2 + b2, y),
    written with tinygrad operations and no autograd. Returns them in `MLP_GRADS` order."""
    N, K = x.shape[0], W2.shape[1]
    h = (x @ W1 + b1).tanh()  # (N, H)
    logits = h @ W2 + b2  # (N, K)
    dlogits = (logits.softmax(axis=1) - y.one_hot(K)) / N  # (N, K)
    dh = dlogits @ W2.T  # (N, H)
    dpre = dh * (1 - h * h)  # (N, H)
    return dlogits, h.T @ dlogits, dlogits.sum(0), dh, dpre, x.T @ dpre, dpre.sum(0)


def _mlp_mistakes(name: str, r: dict[str, np.ndarray], N: int) -> dict[str, np.ndarray]:
    """Typical wrong values of gradient `name`, each keyed by what went wrong."""
    if name == "dlogits":
        return {
            "dlogits is missing the 1/N of the mean: the loss averages over the N rows.": (
                r["dlogits"] * N
            ),
            "dlogits is the softmax alone: subtract the one-hot targets, softmax(logits) - "
            "one_hot(y).": r["probs"] / N,
            "dlogits has the wrong sign: it is (softmax - one_hot) / N.": -r["dlogits"],
        }
    if name == "dpre":
        return {
            "dpre uses 1 - pre^2: tanh'(pre) = 1 - tanh(pre)^2 = 1 - h^2.": (
                r["dh"] * (1 - r["pre"] ** 2)
            ),
            "dpre is missing the tanh derivative: multiply dh by 1 - h^2.": r["dh"],
            "dpre uses 1 - h instead of 1 - h^2.": r["dh"] * (1 - r["h"]),
        }
    if name in ("db1", "db2"):
        return {
            f"{name} averages over the batch; a bias is added to every row, so its gradient "
            "sums the rows.": r[name] / N,
        }
    return {}


def _mlp_cases() -> list[Case]:
    """Two networks that differ in every size (N, D, H, K); the labels include the first and the
    last class, so a one-hot that drops either shows."""
    rng = np.random.default_rng(13)
    cases = []
    for N, D, H, K in [(5, 4, 6, 3), (8, 3, 7, 5)]:
        y = rng.permutation(np.concatenate([[0, K - 1], rng.integers(0, K, N - 2)]))  # (N,)
        values = {
            "x": rng.standard_normal((N, D)),
            "y": y,
            "W1": rng.standard_normal((D, H)) / np.sqrt(D),
            "b1": rng.standard_normal(H) * 0.5,
            "W2": rng.standard_normal((H, K)) / np.sqrt(H),
            "b2": rng.standard_normal(K) * 0.5,
        }
        cases.append(Case(f"x ({N}, {D}), W1 ({D}, {H}), W2 ({H}, {K}), N={N} rows", values))
    return cases


@checker("Exercise 1", cases=_mlp_cases)
def check_mlp_backward(fn: Callable) -> str:
    """`fn(x, y, W1, b1, W2, b2)` returns the 7 gradients of `MLP_GRADS`, by hand.

    Compared with a float64 numpy derivation, which in turn agrees with tinygrad's autograd;
    tolerance rtol 1e-4 plus 1e-5 of the tensor's largest entry (float32 answers pass).
    """
    for case in _mlp_cases():
        x, y, W1, b1, W2, b2 = case.values.values()
        N = len(y)
        params = [Tensor(a.astype(np.float32)) for a in (W1, b1, W2, b2)]
        inputs = [Tensor(x.astype(np.float32)), Tensor(y.astype(np.int32)), *params]
        got = _run_without_autograd("Exercise 1", fn, *inputs)
        if any(p.grad is not None for p in params):
            raise ExerciseFailed(
                f"Exercise 1: for {case.name}, after your function ran, the parameters have a "
                ".grad: autograd filled it.\nhint: compute each gradient from the forward values "
                "with the chain rule; do not call .backward()."
            )
        if not isinstance(got, tuple | list) or len(got) != len(MLP_GRADS):
            length = f" of length {len(got)}" if isinstance(got, tuple | list) else ""
            raise ExerciseFailed(
                f"Exercise 1: for {case.name}, expected {len(MLP_GRADS)} gradients, got "
                f"{type(got).__name__}{length}.\nhint: return {', '.join(MLP_GRADS)}, in that "
                "order."
            )
        r = _np_mlp(x, y, W1, b1, W2, b2)
        for name, value in zip(MLP_GRADS, got, strict=True):
            where = f"{name} (the first gradient that differs), {case.name}"
            if not isinstance(value, Tensor | np.ndarray | list | float):
                raise ExerciseFailed(
                    f"Exercise 1: for {case.name}, {name} is {type(value).__name__}, expected a "
                    f"tensor of shape {r[name].shape}.\nhint: return every gradient as a "
                    "tinygrad Tensor."
                )
            scale = float(np.abs(r[name]).max())
            compare(
                "Exercise 1",
                where,
                r[name],
                value,
                _mlp_mistakes(name, r, N),
                rtol=1e-4,
                atol=1e-5 * scale,
            )
    return "all seven gradients match, tensor by tensor, on two shapes, without autograd."


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


def _square_loss_cases() -> list[Case]:
    rng = np.random.default_rng(11)
    return [
        Case(f"x of shape {(n, d)}, w of shape {(d, k)}", {
            "x": rng.standard_normal((n, d)), "w": rng.standard_normal((d, k))
        })
        for n, d, k in [(4, 3, 2), (2, 5, 3)]
    ]  # fmt: skip


@checker("Exercise 2", cases=_square_loss_cases)
def check_square_loss_grads(fn: Callable) -> str:
    """`fn(x, w)` returns (dz/dx, dz/dw) for z = sum((x @ w)^2), derived by hand (autograd is off),
    compared with tinygrad's autograd; rtol 1e-6."""
    for case in _square_loss_cases():
        x, w = case["x"], case["w"]
        tx, tw = Tensor(x), Tensor(w)
        expected = ((tx @ tw) ** 2).sum().gradient(tx, tw)
        got = _run_without_autograd("Exercise 2", fn, x, w)
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise ExerciseFailed(
                f"Exercise 2: for {case.name}, expected a pair (dz/dx, dz/dw), got "
                f"{type(got).__name__}.\nhint: return grad_x, grad_w"
            )
        for name, exp, value in zip(("dz/dx", "dz/dw"), expected, got, strict=True):
            half = {"the factor 2 is missing: dz/dh = 2h for z = sum(h^2).": exp.numpy() / 2}
            compare("Exercise 2", f"{name}, {case.name}", exp, value, half, rtol=1e-6)
    return "both gradients match tinygrad's autograd on two shapes."


def _sgd_cases() -> list[Case]:
    """Two problems that differ in every input, the learning rate and the bias included."""
    rng = np.random.default_rng(12)
    cases = []
    for n, d, b, lr in [(8, 3, 0.5, 0.1), (5, 1, -1.3, 0.03)]:
        values = {
            "w": rng.standard_normal(d),
            "b": b,
            "x": rng.standard_normal((n, d)),
            "y": rng.standard_normal(n),
            "lr": lr,
        }
        cases.append(Case(f"x of shape {(n, d)}, b={b}, lr={lr}", values))
    return cases


@checker("Exercise 3", cases=_sgd_cases)
def check_sgd_step(fn: Callable) -> str:
    """`fn(w, b, x, y, lr)` returns the weights after one gradient step on the mean squared error
    (rtol 1e-6: float32 answers pass)."""
    for case in _sgd_cases():
        expected = reference_sgd_step(**case.values)
        got = run_learner("Exercise 3", fn, *case.values.values())
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise ExerciseFailed(
                f"Exercise 3: for {case.name}, expected a pair (new_w, new_b), got "
                f"{type(got).__name__}.\nhint: return w - lr * grad_w, b - lr * grad_b"
            )
        w, b, lr = case["w"], case["b"], case["lr"]
        for i, name in enumerate(("w", "b")):
            start, step = (w, b)[i], expected[i] - (w, b)[i]  # step = -lr * gradient
            mistakes = {
                "the step goes up the gradient: step against it, w - lr * dL/dw.": start - step,
                "the factor 2 of d(r^2)/dr = 2r is missing.": start + step / 2,
                "the step uses the lesson's lr=0.1, not the lr argument.": start + step / lr * 0.1,
            }
            compare(
                "Exercise 3", f"new {name}, {case.name}", expected[i], got[i], mistakes, rtol=1e-6
            )
    return "one step of gradient descent on the mean squared error, as in numpy."
