"""Checkers for lesson 06 · Custom operations and gradient checking."""

from collections.abc import Callable

import numpy as np
from tinygrad import Tensor
from tinygrad.uop.ops import UOp

from minigpt.checks.core import ExerciseFailed, _preview, checker, compare, run_learner
from minigpt.ops import elementwise_kernel, gradcheck, swish_uop

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
