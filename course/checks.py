"""The machinery every exercise checker shares (lessons 01-11).

A checker takes the learner's function, runs it on a few inputs beside the reference from the
package, and answers in plain words: which input, expected against got, the largest difference, and
a hint. A right answer returns a `CheckResult` that reads as one line in the notebook; a wrong one
raises `ExerciseFailed`; an exercise still raising ``NotImplementedError`` is reported as not done.

A checker never crashes on a strange answer: None, a string, a ragged list, a wrong shape, NaN or a
tensor that fails to compute each get their own sentence, and anything else that goes wrong while
reading the answer becomes an `ExerciseFailed` message instead of a traceback.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tinygrad import Tensor

from course.solutions import remember

# Float answers are compared as |got - expected| <= atol + rtol * |expected|, and rtol is never
# tighter than this: a right answer computed in float32 (24-bit mantissa, about 6e-8 per rounding)
# differs from the float64 reference by a few dozen roundings at most.
FLOAT32_RTOL = 4e-6


class ExerciseFailed(AssertionError):
    """The learner's answer differs from the reference; the message says where and gives a hint."""


class UnreadableAnswer(ExerciseFailed):
    """The answer is not something the checker can compare (None, text, a ragged list...)."""


@dataclass(frozen=True)
class CheckResult:
    """What a checker found: `passed` is False only for an exercise not attempted yet."""

    passed: bool
    message: str

    def __repr__(self) -> str:
        return self.message


def describe(value) -> str:
    """A short description of any value, for messages: 'Tensor of shape (2, 3), float', 'None'."""
    if value is None:
        return "None"
    if isinstance(value, Tensor):
        return f"a tinygrad Tensor of shape {tuple(value.shape)} ({value.dtype.name})"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape} ({value.dtype})"
    if isinstance(value, str):
        text = value if len(value) <= 30 else value[:27] + "..."
        return f"the text {text!r}"
    if isinstance(value, tuple | list):
        kinds = ", ".join(type(item).__name__ for item in value[:4])
        more = ", ..." if len(value) > 4 else ""
        return f"a {type(value).__name__} of {len(value)} items ({kinds}{more})"
    if isinstance(value, bool | int | float | np.number):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"


def to_numpy(value) -> np.ndarray:
    """A learner may return a Tensor, a numpy array, a list or a number: compare them all as float64.

    Raises `UnreadableAnswer` with a plain sentence for anything that is not numbers.
    """
    if value is None:
        raise UnreadableAnswer("your function returned None. hint: did it forget `return`?")
    if isinstance(value, str | bytes | dict | set):
        raise UnreadableAnswer(f"expected numbers, got {describe(value)}.")
    if isinstance(value, Tensor):
        try:
            value = value.numpy()
        except Exception as error:
            raise UnreadableAnswer(
                f"computing the tensor you returned failed ({type(error).__name__}: {error})."
            ) from None
    elif isinstance(value, tuple | list) and any(isinstance(item, Tensor) for item in value):
        value = [to_numpy(item) for item in value]
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise UnreadableAnswer(
            f"expected an array of numbers, got {describe(value)}, which numpy cannot read as one "
            "(rows of different lengths, or something that is not a number)."
        ) from None
    return array


def _matches(a: np.ndarray, b: np.ndarray, rtol: float = 1e-4, atol: float = 1e-4) -> bool:
    """Loose on purpose: a typical mistake computed in float32 still matches its float64 model."""
    if a.shape != b.shape or not np.all(np.isfinite(a)):
        return False
    return bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def name_mistake(exercise: str, case: str, got, expected, mistakes: dict) -> None:
    """If `got` is wrong but equals a typical wrong answer (a value of `mistakes`), raise
    `ExerciseFailed` with that mistake's explanation (its key); otherwise do nothing."""
    try:
        got = to_numpy(got)
    except UnreadableAnswer:
        return  # compare() explains what is wrong with the answer itself
    if _matches(got, to_numpy(expected)):
        return
    for explanation, wrong in mistakes.items():
        if _matches(got, to_numpy(wrong)):
            raise ExerciseFailed(f"{exercise}: for {case}, {explanation}")


def _preview(array: np.ndarray, count: int = 4) -> str:
    """The first few values of an array, for a one-line message."""
    return np.array2string(np.asarray(array).reshape(-1)[:count], precision=4, separator=", ")


def _index(where: tuple) -> str:
    return str(tuple(int(i) for i in where))


def _window(expected: np.ndarray, got: np.ndarray, where: tuple, half: int = 3) -> str:
    """The values around `where` along the last axis, for expected and got, one line each."""
    if not where:
        return f"  expected {expected.item():.6g}\n  got      {got.item():.6g}\n"
    last = int(where[-1])
    lo, hi = max(0, last - half), min(expected.shape[-1], last + half + 1)
    row = tuple(int(i) for i in where[:-1])
    span = f"[{', '.join(map(str, row))}{', ' if row else ''}{lo}:{hi}]"
    fmt = {"float_kind": lambda v: f"{v:.4g}"}
    exp_part = np.array2string(expected[row][lo:hi], separator=", ", formatter=fmt)
    got_part = np.array2string(got[row][lo:hi], separator=", ", formatter=fmt)
    return f"  expected{span}: {exp_part}\n  got     {span}: {got_part}\n"


def _shape_sentence(expected: np.ndarray, got: np.ndarray) -> str:
    sentence = f"expected an output of shape {expected.shape}, got {got.shape}"
    same_size = got.size == expected.size
    if got.shape == expected.shape[::-1] and got.ndim > 1:
        return sentence + " (the axes are reversed: a transpose too many or too few?)"
    if same_size and got.ndim == expected.ndim - 1:
        return sentence + " (one axis short: keepdim=True on a reduction?)"
    if same_size and got.ndim == expected.ndim + 1:
        return sentence + " (one axis too many: keepdim=True where the axis should go?)"
    if same_size:
        return sentence + " (the right number of values in another shape: a reshape or transpose?)"
    if got.ndim != expected.ndim:
        return sentence + f" ({got.ndim} axes instead of {expected.ndim})"
    return sentence


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
    can reproduce it. The test is ``|got - expected| <= atol + rtol * |expected|`` elementwise, with
    rtol at least `FLOAT32_RTOL` so that float32 answers pass; ``rtol=0, atol=0`` asks for an exact
    match (integers, indices). A one-value answer matches a scalar whatever its shape.
    """
    expected = to_numpy(expected)
    try:
        got = to_numpy(got)
    except UnreadableAnswer as error:
        raise ExerciseFailed(f"{exercise}: for {case}, {error}\nhint: {hint}") from None
    if expected.size == 1 and got.size == 1:
        expected, got = expected.reshape(()), got.reshape(())
    if got.shape != expected.shape:
        raise ExerciseFailed(
            f"{exercise}: for {case}, {_shape_sentence(expected, got)}.\nhint: {hint}"
        )
    for bad, test in (("NaN", np.isnan), ("inf", np.isinf)):
        if np.any(test(got) & ~test(expected)):
            where = tuple(np.argwhere(test(got) & ~test(expected))[0])
            raise ExerciseFailed(
                f"{exercise}: for {case}, the output is not finite (NaN or inf): {bad} at index "
                f"{_index(where)} "
                f"({int(test(got).sum())} of {got.size} values); the reference is finite there.\n"
                f"{_window(expected, got, where)}"
                f"hint: {hint}"
            )
    exact = rtol == 0 and atol == 0
    rtol = rtol if exact else max(rtol, FLOAT32_RTOL)
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf counts as equal
        difference = np.where(got == expected, 0.0, np.abs(got - expected))
    if np.all(difference <= atol + rtol * np.abs(expected)):
        return float(difference.max(initial=0.0))
    excess = difference - (atol + rtol * np.abs(expected))
    where = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.ndim else ()
    raise ExerciseFailed(
        f"{exercise}: wrong values for {case}.\n"
        f"  largest difference {difference[where]:.4g} at index {_index(where)} "
        f"(expected {expected[where]:.6g}, got {got[where]:.6g})\n"
        f"{_window(expected, got, where)}"
        f"hint: {hint}"
    )


def expect_float(exercise: str, case: str, got, hint: str) -> float:
    """Read a single number (Python, numpy or a one-value Tensor) or raise a plain message."""
    try:
        array = to_numpy(got)
    except UnreadableAnswer as error:
        raise ExerciseFailed(f"{exercise}: for {case}, {error}\nhint: {hint}") from None
    if array.size != 1:
        raise ExerciseFailed(
            f"{exercise}: for {case}, expected one number, got {describe(got)}.\nhint: {hint}"
        )
    value = float(array.reshape(()))
    if not math.isfinite(value):
        raise ExerciseFailed(
            f"{exercise}: for {case}, expected a finite number, got {value}.\nhint: {hint}"
        )
    return value


def expect_int(exercise: str, case: str, got, hint: str) -> int:
    """Read a whole number (3, np.int64(3), 3.0 or a one-value Tensor) or raise a plain message."""
    if isinstance(got, bool | np.bool_):
        raise ExerciseFailed(
            f"{exercise}: for {case}, expected a whole number, got {got!r} (a bool).\nhint: {hint}"
        )
    value = expect_float(exercise, case, got, hint)
    if value != int(value):
        raise ExerciseFailed(
            f"{exercise}: for {case}, expected a whole number, got {value}.\nhint: {hint}"
        )
    return int(value)


def expect_tuple(exercise: str, case: str, got, names: Sequence[str], hint: str) -> tuple:
    """Check that `got` is a tuple or list with one item per name (e.g. ("kernels", "bytes"))."""
    wanted = f"a tuple of {len(names)} ({', '.join(names)})"
    if not isinstance(got, tuple | list) or len(got) != len(names):
        raise ExerciseFailed(
            f"{exercise}: for {case}, expected {wanted}, got {describe(got)}.\nhint: {hint}"
        )
    for name, item in zip(names, got, strict=True):
        if item is None:
            raise ExerciseFailed(
                f"{exercise}: for {case}, expected {wanted}, but {name} is None.\nhint: {hint}"
            )
    return tuple(got)


def describe_arguments(args: tuple, kwargs: dict) -> str:
    parts = [describe(arg) for arg in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    return ", ".join(parts) if parts else "no arguments"


def run_learner(exercise: str, fn: Callable, *args, **kwargs):
    """Call the learner's function; a NotImplementedError propagates, other errors are explained."""
    if not callable(fn):
        raise ExerciseFailed(
            f"{exercise}: expected your function, got {describe(fn)}.\n"
            "hint: pass the function itself, without calling it: check(my_function)."
        )
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:
        raise ExerciseFailed(
            f"{exercise}: your function raised {type(error).__name__}: {error}\n"
            f"  it was called with: {describe_arguments(args, kwargs)}\n"
            "hint: run it by hand on a small input like this one; the traceback above shows the line."
        ) from error


def checker(
    exercise: str, needs_tensor: bool = False
) -> Callable[[Callable[..., str]], Callable[..., CheckResult]]:
    """Turn a function that runs the comparisons and returns a success line into a checker.

    The wrapped checker reports an unsolved exercise (``NotImplementedError``) without failing,
    so a lesson runs top to bottom before the learner has written anything. A wrong answer raises
    `ExerciseFailed` with a short traceback; any other error while reading the answer becomes one.
    `needs_tensor` records that the exercise wants a tinygrad Tensor back (kernel counts, autograd).
    """

    def wrap(check: Callable[..., str]) -> Callable[..., CheckResult]:
        def run(*args, **kwargs) -> CheckResult:
            try:
                summary = check(*args, **kwargs)
            except NotImplementedError as error:
                return CheckResult(False, f"{exercise}: not solved yet ({error}).")
            except UnreadableAnswer as error:
                message = str(error)
                prefix = "" if message.startswith(exercise) else f"{exercise}: "
                raise ExerciseFailed(prefix + message) from None
            except ExerciseFailed as error:
                # The message without the checker's frames; a crash in the learner's own code
                # keeps its traceback (the cause) so they can find the line.
                raise ExerciseFailed(str(error)) from error.__cause__
            except Exception as error:
                raise ExerciseFailed(
                    f"{exercise}: the checker could not use your answer "
                    f"({type(error).__name__}: {error}).\n"
                    "hint: return what the exercise asks for (its docstring gives the type and "
                    "shape); try your function by hand on a small input."
                ) from None
            answer = args[0] if args else next(iter(kwargs.values()), None)
            saved = remember(check, answer)  # a notebook's function, kept for the capstones
            kept = f" Saved for the capstones: {saved}" if saved else ""
            return CheckResult(True, f"{exercise}: correct. {summary}{kept}")

        run.__name__, run.__doc__, run.__wrapped__ = check.__name__, check.__doc__, check
        run.needs_tensor = needs_tensor
        return run

    return wrap
