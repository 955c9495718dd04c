"""Exercise checkers for the minigpt lessons (01-07).

A checker takes the learner's function, runs it on a few random inputs beside the reference from the
package, and answers in plain words: which input, expected against got, the largest difference, and
a hint. A right answer returns a `CheckResult` that reads as one line in the notebook; a wrong one
raises `ExerciseFailed`; an exercise still raising ``NotImplementedError`` is reported as not done.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tinygrad import Tensor


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
