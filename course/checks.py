"""The machinery every exercise checker shares (lessons 01-11).

A checker takes the learner's function, runs it on a few inputs beside the reference from the
package, and answers in plain words: which input, expected against got, the largest difference, and
a hint. A right answer returns a `CheckResult` that reads as one line in the notebook; a wrong one
raises `ExerciseFailed`; an exercise still raising ``NotImplementedError`` is reported as not done.

A checker never crashes on a strange answer: None, a string, a ragged list, a wrong shape, NaN or a
tensor that fails to compute each get their own sentence, and anything else that goes wrong while
reading the answer becomes an `ExerciseFailed` message instead of a traceback.

A hint names a mistake only when the checker established it: it computed the answer that mistake
gives on the same case (a value of `mistakes`) and the learner's answer matched it. Otherwise the
message gives the case, expected against got and the largest difference, and guesses nothing. An
answer whose only fault is its dtype (the reference rounded to float16, or cut to integers, matches
it) is told so.

A checker draws its inputs from `Case`s that it exposes (``check.cases()``), so that a test can
assert that two of them differ in every value the learner's function reads.

`run_learner` isolates the learner's function: it is called on fresh copies of its inputs, so the
checker's own inputs (from which it computes the reference) stay pristine; the copies are compared
before and after the call, and a function that changed one is told so; an iterator it returns is
read up to `MAX_ANSWER_ITEMS` items, never drained.
"""

import copy
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tinygrad import Tensor
from tinygrad.uop.ops import Ops

from course.solutions import remember

# Float answers are compared as |got - expected| <= atol + rtol * |expected|, and rtol is never
# tighter than this: a right answer computed in float32 (24-bit mantissa, about 6e-8 per rounding)
# differs from the float64 reference by a few dozen roundings at most.
FLOAT32_RTOL = 4e-6

# An iterator returned by the learner is read into a list of at most this many items: enough for
# any answer of the course (a plan, a sequence of tokens), and a bound on an endless generator.
MAX_ANSWER_ITEMS = 100_000


@dataclass(frozen=True)
class Case:
    """One input an exercise is checked on. `name` says it in words (every message about it quotes
    it); `values` are what the learner's function reads, by parameter name, with a config's field
    as ``"config.lr"``, so that two cases can be seen to differ in each."""

    name: str
    values: dict[str, Any]

    def __getitem__(self, key: str):
        return self.values[key]


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
        raise UnreadableAnswer("expected numbers, got None.")
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
    """Loose on purpose: a typical mistake computed in float32 still matches its float64 model.
    NaN matches NaN and inf the same inf, so an overflow can be matched to the mistake behind it."""
    if a.size == 1 and b.size == 1:  # one value matches one value, whatever the shapes
        a, b = a.reshape(()), b.reshape(())
    if a.shape != b.shape:
        return False
    with np.errstate(invalid="ignore"):
        same = (a == b) | (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= atol + rtol * np.abs(b))
    return bool(np.all(same))


def _established(got: np.ndarray, mistakes: dict) -> str | None:
    """The explanation (key) of the first typical wrong answer (value) that `got` matches."""
    for explanation, wrong in mistakes.items():
        if _matches(got, to_numpy(wrong)):
            return explanation
    return None


def name_mistake(exercise: str, case: str, got, expected, mistakes: dict) -> None:
    """If `got` is wrong but equals a typical wrong answer (a value of `mistakes`, computed on the
    same case), raise `ExerciseFailed` with that mistake's explanation (its key); otherwise do
    nothing."""
    try:
        got = to_numpy(got)
    except UnreadableAnswer:
        return  # compare() explains what is wrong with the answer itself
    if _matches(got, to_numpy(expected)):
        return
    explanation = _established(got, mistakes)
    if explanation is not None:
        raise ExerciseFailed(f"{exercise}: for {case}, {explanation}")


_NARROW = {"float16": 2**-11, "bfloat16": 2**-8}  # a dtype's relative rounding step


def _dtype_of(value) -> str | None:
    """The dtype name of an array or Tensor answer ('float16', 'int32'), None for anything else."""
    if isinstance(value, Tensor):
        return {"half": "float16", "float": "float32", "double": "float64"}.get(
            value.dtype.name, value.dtype.name
        )
    if isinstance(value, np.ndarray | np.generic):
        return str(value.dtype)
    return None


def _dtype_problem(dtype: str | None, expected: np.ndarray, got: np.ndarray) -> str | None:
    """A sentence when the reference, rounded to the answer's dtype, matches the answer (within two
    of a float16's rounding steps, or exactly once cut to whole numbers): then the dtype alone is
    what is wrong."""
    if dtype is None or not np.all(np.isfinite(expected)):
        return None
    if dtype in _NARROW:
        step = _NARROW[dtype]
        if np.all(np.abs(got - expected) <= 2 * step * np.abs(expected) + 1e-6):
            return (
                f"your answer is {dtype}; the reference rounded to {dtype} gives it, so the "
                f"dtype is the problem: {dtype} keeps about {int(-np.log10(step))} digits. "
                "Compute in float32 (no .half() or .cast()), as the inputs are."
            )
        return None
    integer = dtype.startswith(("int", "uint")) or dtype == "bool"
    if integer and not np.array_equal(expected, np.round(expected)):
        for cut in (np.trunc, np.round, np.floor):
            if np.array_equal(got, cut(expected)):
                return (
                    f"your answer is {dtype}, whole numbers: the reference cut to whole numbers "
                    "gives it, so the dtype is the problem. Keep the values as floats (no "
                    "astype(int), // or .cast(dtypes.int))."
                )
    return None


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
    mistakes: dict | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> float:
    """Raise `ExerciseFailed` unless `got` matches `expected`; return the largest absolute difference.

    `case` describes the input in words ("q, k, v of shape (2, 3, 8, 4), causal"), so the learner
    can reproduce it. The test is ``|got - expected| <= atol + rtol * |expected|`` elementwise, with
    rtol at least `FLOAT32_RTOL` so that float32 answers pass; ``rtol=0, atol=0`` asks for an exact
    match (integers, indices). A one-value answer matches a scalar whatever its shape.
    `mistakes` maps an explanation to the answer that mistake gives on this case: a wrong answer
    that matches one gets that explanation as its hint, any other wrong answer no hint at all.
    """
    expected = to_numpy(expected)
    dtype = _dtype_of(got)
    try:
        got = to_numpy(got)
    except UnreadableAnswer as error:
        raise ExerciseFailed(f"{exercise}: for {case}, {error}") from None
    if expected.size == 1 and got.size == 1:
        expected, got = expected.reshape(()), got.reshape(())
    known = _established(got, mistakes or {}) if not _matches(got, expected) else None
    hint = f"hint: {known}\n" if known else ""
    if got.shape != expected.shape:
        raise ExerciseFailed(
            f"{exercise}: for {case}, {_shape_sentence(expected, got)}.\n{hint}".strip()
        )
    for bad, test in (("NaN", np.isnan), ("inf", np.isinf)):
        if np.any(test(got) & ~test(expected)):
            where = tuple(np.argwhere(test(got) & ~test(expected))[0])
            raise ExerciseFailed(
                f"{exercise}: for {case}, the output is not finite (NaN or inf): {bad} at index "
                f"{_index(where)} "
                f"({int(test(got).sum())} of {got.size} values); the reference is finite there.\n"
                f"{_window(expected, got, where)}{hint}".strip()
            )
    exact = rtol == 0 and atol == 0
    rtol = rtol if exact else max(rtol, FLOAT32_RTOL)
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf counts as equal
        difference = np.where(got == expected, 0.0, np.abs(got - expected))
    if np.all(difference <= atol + rtol * np.abs(expected)):
        return float(difference.max(initial=0.0))
    excess = difference - (atol + rtol * np.abs(expected))
    where = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.ndim else ()
    if not hint:
        problem = _dtype_problem(dtype, expected, got)
        hint = f"hint: {problem}\n" if problem else ""
    raise ExerciseFailed(
        f"{exercise}: wrong values for {case}.\n"
        f"  largest difference {difference[where]:.4g} at index {_index(where)} "
        f"(expected {expected[where]:.6g}, got {got[where]:.6g})\n"
        f"{_window(expected, got, where)}{hint}".strip()
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


@dataclass(frozen=True)
class InPlace:
    """An input the exercise is meant to change (a network it trains, an optimizer): `run_learner`
    hands it over as it is, neither copied nor watched. ``run_learner(ex, fn, InPlace(model), x)``."""

    value: object


class _Anything:
    """Equal to every value: the snapshot of a lazy Tensor, which reading would compute."""

    def __eq__(self, other) -> bool:
        return True

    __hash__ = None


def _snapshot(value, depth: int = 0):
    """A comparable picture of `value`'s contents: equal before and after a call that left it alone.

    Realized Tensors are read; lazy ones are not (reading them would run kernels), so they compare
    equal to anything. Objects are pictured through their attributes, a few levels deep.
    """
    if depth > 8 or isinstance(value, InPlace):
        return _Anything()
    if isinstance(value, Tensor):
        if not value.uop.is_realized:
            return _Anything()
        return ("Tensor", value.dtype.name, tuple(value.shape), value.numpy().tobytes())
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return ("array", value.shape, [_snapshot(v, depth + 1) for v in value.ravel()])
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, float | np.floating):
        return ("float", repr(float(value)))  # repr: NaN equals NaN
    if value is None or isinstance(value, bool | int | str | bytes | np.generic):
        return value
    if isinstance(value, tuple | list):
        return (type(value).__name__, [_snapshot(v, depth + 1) for v in value])
    if isinstance(value, dict):
        return ("dict", [(repr(k), _snapshot(v, depth + 1)) for k, v in value.items()])
    if isinstance(value, set | frozenset):
        return ("set", sorted(map(repr, value)))
    if callable(value) or not hasattr(value, "__dict__"):
        return ("object", id(value))
    return (type(value).__qualname__, _snapshot(vars(value), depth + 1))


def _fresh_copy(value):
    """A deep copy of an input for the learner, so that nothing it does reaches the checker's own.

    Tensors are handed over as they are (their identity matters to autograd and to kernel counts;
    `_snapshot` watches them instead), and so is anything that cannot be copied.
    """
    if isinstance(value, Tensor | InPlace) or callable(value):
        return value
    memo: dict = {}
    _keep_tensors(value, memo, depth=0)
    try:
        return copy.deepcopy(value, memo)
    except Exception:
        return value


def _loaded(value):
    """`value`, realized first when it is a Tensor still waiting to be copied from host memory
    (``Tensor(array)``): a copy, no kernel, and the Tensor's contents can then be compared after
    the call (`_snapshot` reads only realized Tensors), so an ``assign`` into it is seen."""
    copying = isinstance(value, Tensor) and value.uop.op is Ops.COPY
    if copying and {u.op for u in value.uop.toposort()} <= _HOST_COPY:
        value.realize()
    return value


_HOST_COPY = {Ops.COPY, Ops.BUFFER, Ops.RESHAPE, Ops.STACK, Ops.CONST}  # Tensor(array)'s graph


def _keep_tensors(value, memo: dict, depth: int) -> None:
    """Enter every Tensor inside `value` in deepcopy's memo as its own copy: shared, not copied."""
    if depth > 8:
        return
    if isinstance(value, Tensor):
        memo[id(value)] = value
    elif isinstance(value, tuple | list | set | frozenset):
        for item in value:
            _keep_tensors(item, memo, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _keep_tensors(item, memo, depth + 1)
    elif hasattr(value, "__dict__") and not callable(value):
        _keep_tensors(vars(value), memo, depth + 1)


def cached_copies(build: Callable[..., object]) -> Callable[..., object]:
    """Like `functools.cache` for a checker's costly reference run, but every call gets its own
    deep copy: an attempt that writes into what it is handed cannot poison the next attempt."""
    built: dict = {}

    def pristine(*args):
        if args not in built:
            built[args] = build(*args)
        return copy.deepcopy(built[args])

    pristine.__name__, pristine.__doc__ = build.__name__, build.__doc__
    return pristine


def _ordinal(position: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(
        position, f"{position}th"
    )


def _bounded(exercise: str, answer):
    """An iterator answer (a generator, a map) read into a list, up to `MAX_ANSWER_ITEMS` items."""
    if not isinstance(answer, Iterator):
        return answer
    items = list(itertools.islice(answer, MAX_ANSWER_ITEMS + 1))
    if len(items) > MAX_ANSWER_ITEMS:
        raise ExerciseFailed(
            f"{exercise}: your function returned an iterator with more than {MAX_ANSWER_ITEMS} "
            "items; the checker stopped reading it there.\n"
            "hint: return a list (or an array) of the items the exercise asks for."
        )
    return items


def run_learner(exercise: str, fn: Callable, *args, **kwargs):
    """Call the learner's function on fresh copies of the inputs; return its answer.

    A NotImplementedError propagates; other errors are explained. An input the function changed
    (an array assigned into, a config edited) is reported as the learner's mistake, unless it is
    wrapped in `InPlace`. An iterator answer comes back as a list (see `_bounded`).
    """
    if not callable(fn):
        raise ExerciseFailed(
            f"{exercise}: expected your function, got {describe(fn)}.\n"
            "hint: pass the function itself, without calling it: check(my_function)."
        )
    given_args = tuple(_loaded(_fresh_copy(arg)) for arg in args)
    given_kwargs = {name: _loaded(_fresh_copy(value)) for name, value in kwargs.items()}
    before = (
        [_snapshot(arg) for arg in given_args],
        {k: _snapshot(v) for k, v in given_kwargs.items()},
    )
    given_args = tuple(arg.value if isinstance(arg, InPlace) else arg for arg in given_args)
    given_kwargs = {k: v.value if isinstance(v, InPlace) else v for k, v in given_kwargs.items()}
    try:
        answer = fn(*given_args, **given_kwargs)
    except NotImplementedError:
        raise
    except Exception as error:
        raise ExerciseFailed(
            f"{exercise}: your function raised {type(error).__name__}: {error}\n"
            f"  it was called with: {describe_arguments(given_args, given_kwargs)}\n"
            "hint: run it by hand on a small input like this one; the traceback above shows the line."
        ) from error
    inputs = [(f"its {_ordinal(i + 1)} argument", arg) for i, arg in enumerate(given_args)]
    inputs += [(f"its argument {name}=", value) for name, value in given_kwargs.items()]
    pictures = before[0] + list(before[1].values())
    for (where, value), picture in zip(inputs, pictures, strict=True):
        if _snapshot(value) != picture:
            raise ExerciseFailed(
                f"{exercise}: your function changed {where} ({describe(value)}): its contents "
                "differ after the call.\n"
                "hint: leave the inputs as they are and build new values (x = x.copy() first, "
                "or y = x + ... rather than x += ..., x[...] = ... or x.assign(...))."
            )
    return _bounded(exercise, answer)


def checker(
    exercise: str,
    needs_tensor: bool = False,
    cases: Callable[[], list[Case]] | None = None,
) -> Callable[[Callable[..., str]], Callable[..., CheckResult]]:
    """Turn a function that runs the comparisons and returns a success line into a checker.

    The wrapped checker reports an unsolved exercise (``NotImplementedError``) without failing,
    so a lesson runs top to bottom before the learner has written anything. A wrong answer raises
    `ExerciseFailed` with a short traceback; any other error while reading the answer becomes one.
    `needs_tensor` records that the exercise wants a tinygrad Tensor back (kernel counts, autograd);
    `cases` is the seeded generator of the `Case`s the checker runs, kept as ``check.cases``.
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
        run.needs_tensor, run.cases = needs_tensor, cases
        return run

    return wrap
