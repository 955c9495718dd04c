"""Checkers for lesson 05 · Lazy evaluation and kernel fusion."""

from collections.abc import Callable

import numpy as np
from tinygrad import GlobalCounters, Tensor

from minigpt.checks.core import ExerciseFailed, checker, compare, run_learner, to_numpy
from minigpt.fusion import KernelReport, kernel_report

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
