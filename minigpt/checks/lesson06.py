"""Checkers for lesson 06 · Custom operations and gradient checking."""

import math
from collections.abc import Callable

import numpy as np
from tinygrad import Tensor
from tinygrad.uop.ops import UOp

from course.checks import (
    Case,
    ExerciseFailed,
    _preview,
    checker,
    compare,
    describe,
    run_learner,
)
from minigpt.fusion import kernel_report
from minigpt.ops import elementwise_kernel, gradcheck

LARGE = [-1000.0, -100.0, -30.0, -1.0, 0.5, 30.0, 100.0, 1000.0]  # where naive formulas overflow


def reference_softplus(x: Tensor) -> Tensor:
    """Exercise 1: log(1 + e^x) written as max(x, 0) + log(1 + e^-|x|), so exp never overflows."""
    return x.maximum(0) + ((-x.abs()).exp() + 1).log()


GELU_C = math.sqrt(2 / math.pi)  # GPT-2's GELU: 0.5 v (1 + tanh(GELU_C (v + 0.044715 v^3)))


def reference_gelu_forward(v: UOp) -> UOp:
    """Exercise 2, forward: GELU (tanh form) of one element inside a kernel."""
    return 0.5 * v * (1 + (GELU_C * (v + 0.044715 * v * v * v)).tanh())


def reference_gelu_backward(v: UOp) -> UOp:
    """Exercise 2, backward: d GELU / dv = 0.5 (1 + t) + 0.5 v (1 - t^2) u'(v), t = tanh(u)."""
    t = (GELU_C * (v + 0.044715 * v * v * v)).tanh()
    du = GELU_C * (1 + 3 * 0.044715 * v * v)  # derivative of the tanh's argument u(v)
    return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du


def reference_gelu_kernel(x: Tensor) -> Tensor:
    """Exercise 2: GELU as one hand-written kernel whose backward is a hand-written kernel too."""
    return elementwise_kernel(x, reference_gelu_forward, reference_gelu_backward, name="gelu")


def reference_logsumexp(x: Tensor, axis: int = -1) -> Tensor:
    """Exercise 3: log(sum(exp(x))) along `axis` (removed), with the maximum taken out first."""
    m = x.max(axis=axis, keepdim=True).detach()  # the shift cancels; its gradient would be 0
    return (x - m).exp().sum(axis=axis).log() + m.squeeze(axis)


_NUMPY_NAMES = {"double": "float64", "float": "float32", "half": "float16"}  # tinygrad's names


def _gradient_ok(exercise: str, fn: Callable, x: Tensor, hint: str, tol: float) -> str:
    """Run gradcheck on the learner's function and explain a failure; `hint` is for an answer
    that is no Tensor, the one failure here whose cause is known."""
    out = run_learner(exercise, fn, x)
    if not isinstance(out, Tensor):  # numpy values are right but autograd cannot follow them
        raise ExerciseFailed(
            f"{exercise}: the values are right, but your function returned "
            f"{type(out).__name__}, not a tinygrad Tensor, so it has no gradient.\nhint: {hint}"
        )
    if out.dtype != x.dtype:  # a dtype problem, named as one: float32 rounding fails the check
        given, got = (_NUMPY_NAMES.get(t.dtype.name, t.dtype.name) for t in (x, out))
        raise ExerciseFailed(
            f"{exercise}: for a {given} input, your function returned a {got} tensor; the "
            f"gradient check runs in {given}, where {got} rounding "
            "shows as a wrong gradient.\nhint: keep the input's dtype: no .float() or .cast(), "
            "and constants as Python numbers, which take the tensor's dtype."
        )
    grad = run_learner(exercise, lambda: out.sum().gradient(x)[0].numpy())
    if not np.all(np.isfinite(grad)):  # gradcheck's ratios would hide a NaN gradient
        raise ExerciseFailed(
            f"{exercise}: for x of shape {tuple(x.shape)} ({x.dtype.name}), the gradient "
            f"contains NaN or inf: {_preview(grad)}"
        )
    result = run_learner(exercise, gradcheck, fn, [x])
    if result.max_rel_error > tol:
        raise ExerciseFailed(
            f"{exercise}: for x of shape {tuple(x.shape)} ({x.dtype.name}), the values are right "
            f"but the gradient is not: {result}."
        )
    return f"{result.max_rel_error:.0e}"


def _softplus_cases() -> list[Case]:
    """Ordinary values, and values of +-1000 where log(1 + e^x) overflows, in float32 and 64."""
    rng = np.random.default_rng(0)
    return [
        Case(name, {"x": x})
        for name, x in [
            ("x of shape (4, 5), normal with scale 3, float32", rng.standard_normal((4, 5)) * 3),
            (f"x = {LARGE}, float32", np.array(LARGE)),
            (f"x = {LARGE}, float64", np.array(LARGE)),
        ]
    ]


@checker("Exercise 1", needs_tensor=True, cases=_softplus_cases)
def check_softplus(fn: Callable[[Tensor], Tensor]) -> str:
    """`fn(x)` = log(1 + e^x) elementwise, finite for any x, with a gradient that checks out."""
    for case in _softplus_cases():
        x = case["x"].astype(np.float64 if "float64" in case.name else np.float32)
        got = run_learner("Exercise 1", fn, Tensor(x))
        with np.errstate(over="ignore"):
            naive = np.log(1 + np.exp(x))  # in the input's dtype: inf where exp overflows
        mistakes = {
            "log(1 + exp(x)) overflows: exp(x) is inf past x = 88 in float32 (709 in float64); "
            "use max(x, 0) + log(1 + exp(-|x|)).": naive
        }
        expected = np.logaddexp(0, x.astype(np.float64))
        compare("Exercise 1", case.name, expected, got, mistakes, rtol=1e-5)
    grad_hint = "build it from tinygrad operations (maximum, abs, exp, log) so autograd sees them."
    x = Tensor(np.random.default_rng(1).standard_normal((3, 4)) * 3)  # float64: exact differences
    error = _gradient_ok("Exercise 1", fn, x, grad_hint, tol=1e-6)
    return f"values finite up to |x| = 1000, gradient relative error {error}."


def _gelu64(v: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """GELU's derivative in float64 at v, and the typical wrong derivatives, keyed by the slip."""
    t = np.tanh(GELU_C * (v + 0.044715 * v**3))
    du = GELU_C * (1 + 3 * 0.044715 * v**2)
    right = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du
    return right, {
        "the derivative is only 0.5 (1 + tanh(u)): the product rule also needs "
        "0.5 v * d tanh(u)/dv.": 0.5 * (1 + t),
        "the chain rule stops at tanh: d tanh(u)/dv = (1 - tanh(u)^2) * du/dv, with "
        "du/dv = sqrt(2/pi) (1 + 3 * 0.044715 v^2).": 0.5 * (1 + t) + 0.5 * v * (1 - t * t),
        "d tanh(u)/du is 1 - tanh(u)^2, not 1 - tanh(u).": 0.5 * (1 + t) + 0.5 * v * (1 - t) * du,
        "du/dv of u = sqrt(2/pi) (v + 0.044715 v^3) is sqrt(2/pi) (1 + 3 * 0.044715 v^2): the 3 "
        "from the power rule is missing.": 0.5 * (1 + t)
        + 0.5 * v * (1 - t * t) * GELU_C * (1 + 0.044715 * v**2),
    }


def _gelu_cases() -> list[Case]:
    """Points spread over [-6, 6], and a 2-d input of another size (float32)."""
    rng = np.random.default_rng(4)
    spread = np.concatenate([np.linspace(-6, 6, 25), [-0.3, 0.2, 0.7, 1.9, 3.3]])  # (30,)
    return [
        Case("x = 25 points from -6 to 6 and 5 more (float32)", {"x": spread}),
        Case("x of shape (4, 6), normal with scale 2 (float32)", {"x": rng.standard_normal((4, 6)) * 2}),
    ]  # fmt: skip


@checker("Exercise 2", needs_tensor=True, cases=_gelu_cases)
def check_gelu_kernel(fn: Callable[[Tensor], Tensor]) -> str:
    """`fn(x)` = GELU (tanh form) of every element, run as a custom kernel with its own backward.

    Values within a relative 1e-5 of float64 GELU (float32 input); the gradient of sum(fn(x))
    against the float64 derivative (relative 1e-4), naming the usual chain-rule slips; then
    `gradcheck` in float64 (relative error below 1e-6).
    """
    for case in _gelu_cases():
        x64 = case["x"].astype(np.float32).astype(np.float64)
        x = Tensor(x64.astype(np.float32)).realize()
        outs: list = []
        report = kernel_report(lambda x=x, outs=outs: outs.append(run_learner("Exercise 2", fn, x)))
        if not isinstance(outs[0], Tensor):
            raise ExerciseFailed(
                f"Exercise 2: for {case.name}, your function returned {describe(outs[0])}, expected "
                "a Tensor.\nhint: return ops.elementwise_kernel(x, gelu_forward, gelu_backward, "
                "name='gelu')."
            )
        report_after = kernel_report(outs[0].realize)  # the kernels still waiting to run
        names = report.names + report_after.names
        t = np.tanh(GELU_C * (x64 + 0.044715 * x64**3))
        erf = np.vectorize(math.erf)(x64 / math.sqrt(2))
        exact = {"this is the exact GELU, 0.5 v (1 + erf(v / sqrt(2))); the exercise asks for "
                 "the tanh form, 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))).": 0.5 * x64 * (1 + erf)}  # fmt: skip
        compare("Exercise 2", case.name, 0.5 * x64 * (1 + t), outs[0], exact, rtol=1e-5, atol=1e-6)
        if all(name.startswith(("E_", "r_")) for name in names):
            raise ExerciseFailed(
                f"Exercise 2: for {case.name}, the values are right but they came from tinygrad's "
                f"own kernels ({', '.join(names)}), so the backward is autograd's, not "
                "yours.\nhint: return ops.elementwise_kernel(x, gelu_forward, gelu_backward, "
                "name='gelu')."
            )
        grad = run_learner("Exercise 2", lambda x=x: fn(x).sum().gradient(x)[0])
        right, mistakes = _gelu64(x64)
        where = f"the gradient of fn(x).sum() at {case.name}"
        compare("Exercise 2", where, right, grad, mistakes, rtol=1e-4, atol=1e-6)
    rng = np.random.default_rng(1)
    error = _gradient_ok(
        "Exercise 2",
        fn,
        Tensor(rng.standard_normal((3, 4)) * 2),  # float64: finite differences are precise
        "inside a kernel v is a UOp: use + - * / and .tanh() only.",
        tol=1e-6,
    )
    return f"forward and backward kernels match float64 GELU; gradcheck error {error}."


def _logsumexp_cases() -> list[Case]:
    """Both axes of an ordinary input, and rows of +-1000 where exp overflows unless the row
    maximum is taken out (float32)."""
    normal = np.random.default_rng(2).standard_normal((3, 5))
    large = np.array([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1002.0]])
    wide = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 0.0, 1000.0]])
    return [
        Case(name, {"x": x.astype(np.float32), "axis": axis})
        for name, x, axis in [
            ("x of shape (3, 5), axis=-1", normal, -1),
            ("x of shape (3, 5), axis=0", normal, 0),
            ("x = [[1000, 999, 998], [-1000, -1001, -1002]] (float32), axis=-1", large, -1),
            ("x = [[1000, -1000, 0], [-1000, 0, 1000]] (float32), axis=-1", wide, -1),
        ]
    ]


def _logsumexp_mistakes(x: np.ndarray, axis: int) -> dict[str, np.ndarray]:
    """What the usual slips give on x, computed in x's own dtype (float32), overflow included."""

    def shifted(m: np.ndarray) -> np.ndarray:  # log(sum(exp(x - m))) + m, the axis kept
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m

    top = x.max(axis=axis, keepdims=True)
    mistakes = {
        "exp overflowed: with no shift, or a shift by the row minimum or mean, a row that spans "
        "-1000 to 1000 still meets exp(+1000). Only the row maximum m makes every exponent "
        "x - m <= 0: m + log(sum(exp(x - m))).": shifted(np.zeros_like(top)),
        "the maximum is not added back: log(sum(exp(x - m))) + m.": shifted(top) - top,
    }
    return {k: v.squeeze(axis) for k, v in mistakes.items()}


@checker("Exercise 3", needs_tensor=True, cases=_logsumexp_cases)
def check_logsumexp(fn: Callable[..., Tensor]) -> str:
    """`fn(x, axis)` = log(sum(exp(x), axis)), the axis removed, finite for large inputs."""
    for case in _logsumexp_cases():
        x, axis = case["x"], case["axis"]
        x64 = x.astype(np.float64)
        m = x64.max(axis=axis, keepdims=True)
        expected = (m + np.log(np.exp(x64 - m).sum(axis=axis, keepdims=True))).squeeze(axis)
        got = run_learner("Exercise 3", fn, Tensor(x), axis)
        compare("Exercise 3", case.name, expected, got, _logsumexp_mistakes(x, axis), rtol=1e-5)
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((3, 4)))
    error = _gradient_ok(
        "Exercise 3",
        lambda t: fn(t, -1),
        x,
        "the gradient of logsumexp is softmax; detach the shift or keep it inside tinygrad.",
        tol=1e-6,
    )
    return f"stable for inputs of +-1000, gradient relative error {error}."
