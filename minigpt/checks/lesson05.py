"""Checkers for lesson 05 · Lazy evaluation and kernel fusion."""

from collections.abc import Callable

import numpy as np
from tinygrad import GlobalCounters, Tensor

from course.checks import (
    Case,
    ExerciseFailed,
    checker,
    compare,
    expect_int,
    expect_tuple,
    run_learner,
    to_numpy,
)
from minigpt.fusion import KernelReport, kernel_report

STANDARDIZE_EPS = (
    1e-5  # added to the variance in Exercise 3, so a constant row does not divide by 0
)


def reference_rmse_one_kernel(pred: Tensor, target: Tensor) -> Tensor:
    """Exercise 1: root mean squared error, one fused kernel (the sqrt runs after the sum)."""
    return ((pred - target) ** 2).mean().sqrt()


def reference_count_kernels(make: Callable[[], Tensor]) -> tuple[int, int]:
    """Exercise 2: (kernels, bytes) that realizing ``make()`` costs, read from GlobalCounters."""
    out = make()
    GlobalCounters.reset()  # after building the graph (which runs nothing), before running it
    out.realize()
    return GlobalCounters.kernel_count, GlobalCounters.global_mem


def reference_fused_standardize(x: Tensor) -> Tensor:
    """Exercise 3: every row shifted to mean 0 and scaled to variance 1, in three kernels."""
    centered = x - x.mean(axis=1, keepdim=True)  # (rows, cols)
    variance = (centered * centered).mean(axis=1, keepdim=True)  # (rows, 1), population variance
    return centered / (variance + STANDARDIZE_EPS).sqrt()


def _learner_report(exercise: str, case: str, fn: Callable, *args) -> tuple[KernelReport, Tensor]:
    """Run the learner's function under `kernel_report`; it must return a lazy Tensor."""
    results: list = []
    report = kernel_report(lambda: results.append(run_learner(exercise, fn, *args)))
    if not isinstance(results[0], Tensor):
        raise ExerciseFailed(
            f"{exercise}: for {case}, your function returned {type(results[0]).__name__}, "
            "expected a Tensor.\n"
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


def _rmse_cases() -> list[Case]:
    return [
        Case(f"pred and target of shape {shape}", dict(zip(("pred", "target"), pair, strict=True)))
        for seed, shape in enumerate([(8, 16), (3, 5, 7), (1000,)])
        for pair in [_inputs(seed, shape, shape)]
    ]


@checker("Exercise 1", needs_tensor=True, cases=_rmse_cases)
def check_rmse_one_kernel(fn: Callable[[Tensor, Tensor], Tensor]) -> str:
    """`fn(pred, target)` returns the root mean squared error, realized in exactly one kernel."""
    for case in _rmse_cases():
        pred, target = case["pred"], case["target"]
        report, out = _learner_report("Exercise 1", case.name, fn, pred, target)
        p64, t64 = to_numpy(pred), to_numpy(target)
        compare("Exercise 1", case.name, np.sqrt(np.mean((p64 - t64) ** 2)), out, rtol=1e-5)
        if report.kernels != 1 or report.copies:
            raise ExerciseFailed(
                f"Exercise 1: for {case.name}, the value is right but it ran {report.kernels} "
                f"kernel(s) and {report.copies} copies ({', '.join(report.names)}), expected 1 "
                "kernel and no copies.\nhint: build one expression and let the caller realize it; "
                "every .realize(), .numpy() or Tensor(numpy array) in the middle cuts the fusion."
            )
    return "RMSE of three shapes, each in one kernel."


def _count_hint(got: tuple[int, int], expected: KernelReport, earlier: KernelReport) -> str:
    """A hint line when the numbers establish the mistake behind a wrong (kernels, bytes) answer,
    else nothing: `earlier` is the work run before the case, which an answer that never resets the
    counters includes."""
    kernels, moved = got
    if (kernels, moved) == (expected.bytes, expected.kernels):
        return "\nhint: you returned (bytes, kernels): swap them, kernels first."
    if (kernels, moved) == (0, 0):
        return (
            "\nhint: nothing ran: realize make()'s tensor between reset and reading the counters."
        )
    if kernels == expected.kernels and moved == expected.flops:
        return (
            "\nhint: that is GlobalCounters.global_ops, the FLOPs; bytes are "
            "GlobalCounters.global_mem."
        )
    if (kernels, moved) == (expected.kernels + earlier.kernels, expected.bytes + earlier.bytes):
        return (
            "\nhint: the counts include the work run before your function was called: call "
            "GlobalCounters.reset() after building make() and right before realizing it."
        )
    return ""


def _as_count_pair(name: str, got) -> tuple[int, int]:
    """(kernels, bytes) as two Python ints, or ExerciseFailed saying what came back instead."""
    fix = "return GlobalCounters.kernel_count, GlobalCounters.global_mem"
    kernels, moved = expect_tuple("Exercise 2", name, got, ("kernels", "bytes"), fix)
    return (
        expect_int("Exercise 2", f"{name}, the kernels", kernels, fix),
        expect_int("Exercise 2", f"{name}, the bytes", moved, fix),
    )


def _count_cases() -> list[Case]:
    """Expressions of a (32, 48) and b (40, 48) that run different numbers of kernels."""
    a, b = _inputs(0, (32, 48), (40, 48))
    expressions = {
        "(a @ b.T).sum()": lambda: (a @ b.T).sum(),
        "(a @ b.T).contiguous().sum()": lambda: (a @ b.T).contiguous().sum(),
        "a.softmax(axis=1)": lambda: a.softmax(axis=1),
        "(a * 2 + 1).relu()": lambda: (a * 2 + 1).relu(),
    }
    return [Case(name, {"make": make}) for name, make in expressions.items()]


@checker("Exercise 2", cases=_count_cases)
def check_count_kernels(fn: Callable[[Callable[[], Tensor]], tuple[int, int]]) -> str:
    """`fn(make)` returns (kernels, bytes) for realizing ``make()``; compared with kernel_report.

    Counts are exact integers, so they must equal kernel_report's. Before every case a few kernels
    run, so an answer that never resets the counters includes them.
    """
    cases = _count_cases()
    (before,) = _inputs(1, (16, 64))  # work run before every case, which is not to be counted
    for case in cases:
        name, make = case.name, case["make"]
        expected = kernel_report(lambda make=make: make().realize())
        GlobalCounters.reset()  # so that an answer without a reset counts exactly `earlier` too
        earlier = kernel_report(lambda: (before * 2).realize())
        got = _as_count_pair(name, run_learner("Exercise 2", fn, make))
        if got != (expected.kernels, expected.bytes):
            raise ExerciseFailed(
                f"Exercise 2: for {name}, expected {expected.kernels} kernel(s) and "
                f"{expected.bytes:,} bytes (kernel_report), got {got[0]:,} kernel(s) and "
                f"{got[1]:,} bytes.{_count_hint(got, expected, earlier)}"
            )
    return f"kernels and bytes agree with kernel_report on {len(cases)} expressions."


def _standardize_mistakes(x64: np.ndarray) -> dict[str, np.ndarray]:
    """Typical wrong standardizations of x (rows, cols), keyed by what went wrong."""
    centered = x64 - x64.mean(axis=1, keepdims=True)
    variance = centered.var(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 is one of the mistakes
        return {
            "the 1e-5 is missing: without it a row with a tiny variance is blown up to variance "
            "1 (and a constant row becomes 0 / 0); divide by sqrt(variance + 1e-5).": centered
            / np.sqrt(variance),
            "the 1e-5 is added outside the square root, sqrt(variance) + 1e-5; it belongs inside, "
            "sqrt(variance + 1e-5) (as in layer norm).": centered
            / (np.sqrt(variance) + STANDARDIZE_EPS),
            "the variance divides by length - 1 (sample variance); use the mean of the squared "
            "deviations (divide by the row length).": centered
            / np.sqrt(x64.var(axis=1, ddof=1, keepdims=True) + STANDARDIZE_EPS),
            "the mean is not subtracted before dividing; scale x - mean, not x.": x64
            / np.sqrt(variance + STANDARDIZE_EPS),
        }


def _standardize_cases() -> list[Case]:
    """Rows far from mean 0 and variance 1, rows with a variance near 1e-5 where the place of the
    eps shows, and a constant row."""
    rng = np.random.default_rng(5)
    wide = rng.standard_normal((6, 10)) * 3 + 2  # rows far from mean 0 and variance 1
    tiny = rng.standard_normal((16, 64)) * 2e-3 + 0.01  # variance ~4e-6, close to eps
    constant = rng.standard_normal((4, 8))
    constant[2] = 0.5  # variance 0: only the eps keeps 0 / 0 away
    return [
        Case(name, {"x": Tensor(array.astype(np.float32)).realize()})
        for name, array in [
            ("x of shape (6, 10), rows with mean ~2 and variance ~9", wide),
            ("x of shape (16, 64), rows with variance ~4e-6", tiny),
            ("x of shape (4, 8) whose row 2 is constant", constant),
        ]
    ]


@checker("Exercise 3", needs_tensor=True, cases=_standardize_cases)
def check_fused_standardize(fn: Callable[[Tensor], Tensor]) -> str:
    """`fn(x)` standardizes every row of x, in at most as many kernels as the fused reference;
    values within a relative 1e-4 of a float64 reference (float32 rounding)."""
    for case in _standardize_cases():
        x = case["x"]
        best = kernel_report(lambda x=x: reference_fused_standardize(x).realize()).kernels
        report, out = _learner_report("Exercise 3", case.name, fn, x)
        x64 = to_numpy(x)
        centered = x64 - x64.mean(axis=1, keepdims=True)
        expected = centered / np.sqrt(centered.var(axis=1, keepdims=True) + STANDARDIZE_EPS)
        mistakes = _standardize_mistakes(x64)
        compare("Exercise 3", case.name, expected, out, mistakes, rtol=1e-4, atol=1e-4)
        if report.kernels > best or report.copies:
            raise ExerciseFailed(
                f"Exercise 3: for {case.name}, the values are right but it ran {report.kernels} "
                f"kernel(s) and {report.copies} copies, the fused version needs {best} and none.\n"
                "hint: work on the whole tensor with axis=1 and keepdim=True instead of a loop "
                "over rows, and drop the .realize() calls."
            )
    return f"rows standardized in {report.kernels} kernels, as few as the fused reference."
