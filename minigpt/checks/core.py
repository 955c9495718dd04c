"""The machinery every exercise checker shares (lessons 01-11).

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


def _matches(a: np.ndarray, b: np.ndarray, atol: float = 1e-4) -> bool:
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and np.allclose(a, b, atol=atol)


def name_mistake(exercise: str, case: str, got, expected, mistakes: dict) -> None:
    """If `got` is wrong but equals a typical wrong answer (a value of `mistakes`), raise
    `ExerciseFailed` with that mistake's explanation (its key); otherwise do nothing."""
    got = to_numpy(got)
    if _matches(got, to_numpy(expected)):
        return
    for explanation, wrong in mistakes.items():
        if _matches(got, to_numpy(wrong)):
            raise ExerciseFailed(f"{exercise}: for {case}, {explanation}")


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
