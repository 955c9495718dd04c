"""The checker machinery: right answers pass, wrong ones fail with a message that helps."""

import inspect
from dataclasses import dataclass

import numpy as np
import pytest
from tinygrad import Tensor, dtypes

import minigpt.checks
import neurosymbolic.checks
from course.checks import (
    MAX_ANSWER_ITEMS,
    Case,
    CheckResult,
    ExerciseFailed,
    InPlace,
    _snapshot,
    cached_copies,
    checker,
    compare,
    expect_float,
    expect_int,
    expect_tuple,
    name_mistake,
    run_learner,
)


def test_compare_accepts_a_tensor_equal_to_the_reference():
    expected = np.arange(6.0).reshape(2, 3)
    assert compare("Exercise 1", "a (2, 3) input", expected, Tensor(expected.tolist())) < 1e-6


def test_compare_reports_the_largest_difference_and_where():
    expected = np.zeros((2, 3))
    got = expected.copy()
    got[1, 2] = 0.5
    with pytest.raises(ExerciseFailed, match=r"largest difference 0\.5 at index \(1, 2\)"):
        compare("Exercise 1", "a (2, 3) input", expected, got)


def test_compare_reports_a_wrong_shape():
    with pytest.raises(ExerciseFailed, match=r"expected an output of shape \(3, 2\), got \(2, 3\)"):
        compare("Exercise 1", "x", np.zeros((3, 2)), np.zeros((2, 3)))


def test_compare_reports_nan():
    with pytest.raises(
        ExerciseFailed, match=r"\(NaN or inf\): NaN at index \(1,\) \(1 of 2 values\)"
    ):
        compare("Exercise 1", "x", np.zeros(2), np.array([0.0, np.nan]))


def test_unsolved_exercise_is_reported_not_raised():
    @checker("Exercise 3")
    def check(fn):
        run_learner("Exercise 3", fn)
        return "all cases"

    def unsolved():
        raise NotImplementedError("Exercise 3: write it")

    result = check(unsolved)
    assert isinstance(result, CheckResult) and not result.passed
    assert "not solved yet" in repr(result)
    assert check(lambda: None).passed


def test_a_crash_in_the_learners_code_is_explained():
    with pytest.raises(ExerciseFailed, match="your function raised ZeroDivisionError"):
        run_learner("Exercise 2", lambda: 1 / 0)


def test_a_typical_mistake_is_named():
    expected = np.array([1.0, 2.0])
    mistakes = {"the scale is missing.": np.array([2.0, 4.0]), "wrong sign.": -expected}
    with pytest.raises(ExerciseFailed, match="Exercise 4: for x, wrong sign"):
        name_mistake("Exercise 4", "x", -expected, expected, mistakes)
    name_mistake("Exercise 4", "x", expected, expected, mistakes)  # right: nothing to name
    name_mistake("Exercise 4", "x", expected + 1, expected, mistakes)  # unknown mistake: compare()


def test_a_wrong_answer_gets_the_hint_of_the_mistake_it_reproduces_and_no_other():
    expected = np.array([1.0, 2.0, 3.0])
    mistakes = {"the scale is missing.": expected * 2, "the sign is flipped.": -expected}
    with pytest.raises(ExerciseFailed) as refusal:
        compare("Exercise 4", "x of shape (3,)", expected, -expected, mistakes)
    message = str(refusal.value)
    assert message.endswith("hint: the sign is flipped.") and "scale" not in message
    with pytest.raises(ExerciseFailed) as refusal:
        compare("Exercise 4", "x of shape (3,)", expected, expected + 0.5, mistakes)
    message = str(refusal.value)
    assert "hint" not in message and "largest difference 0.5" in message, message
    assert "x of shape (3,)" in message and "expected 1, got 1.5" in message
    with pytest.raises(ExerciseFailed) as refusal:  # a wrong shape that is a known mistake
        compare("Exercise 4", "x", expected, np.array([1.0, 2.0]), {"one short.": [1.0, 2.0]})
    assert str(refusal.value).endswith("hint: one short.")


def test_a_wrong_dtype_is_named_as_a_dtype_problem():
    expected = np.array([0.1234567, 1.2345678, 12.345678])
    with pytest.raises(ExerciseFailed, match="your answer is float16; the reference rounded"):
        compare("Exercise 1", "x", expected, expected.astype(np.float16), rtol=1e-6)
    with pytest.raises(ExerciseFailed, match="your answer is float16"):
        compare("Exercise 1", "x", expected, Tensor(expected).half(), rtol=1e-6)
    with pytest.raises(ExerciseFailed, match="your answer is int64, whole numbers"):
        compare("Exercise 1", "x", expected, expected.astype(np.int64))
    with pytest.raises(ExerciseFailed) as refusal:  # float16 but wrong beyond its rounding
        compare("Exercise 1", "x", expected, (expected * 1.1).astype(np.float16))
    assert "hint" not in str(refusal.value)


def test_compare_centres_the_preview_on_the_largest_difference():
    expected = np.zeros((3, 20))
    got = expected.copy()
    got[2, 15] = 1.0  # the first values agree: a preview of them would hide the mistake
    with pytest.raises(ExerciseFailed) as failure:
        compare("Exercise 1", "x", expected, got)
    message = str(failure.value)
    assert "at index (2, 15) (expected 0, got 1)" in message
    assert "got     [2, 12:19]: [0, 0, 0, 1, 0, 0, 0]" in message


def test_compare_is_relative_so_float32_answers_pass():
    expected = np.array([0.95970001, 1234.5678, 1e-3], dtype=np.float64)
    compare("Exercise 1", "x", expected, expected.astype(np.float32), rtol=0, atol=1e-9)
    compare("Exercise 1", "x", np.float64(0.9597), Tensor([0.9597]), rtol=1e-9, atol=1e-12)
    with pytest.raises(ExerciseFailed, match="largest difference"):
        compare("Exercise 1", "x", expected, expected * 1.001)


def test_compare_exact_when_asked():
    with pytest.raises(ExerciseFailed, match="largest difference 1 at index"):
        compare("Exercise 1", "x", np.array([3, 4]), np.array([3, 5]), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("got", "sentence"),
    [
        (None, "expected numbers, got None"),
        ("0.5", "expected numbers, got the text '0.5'"),
        ([[1.0, 2.0], [3.0]], "numpy cannot read as one"),
        (np.zeros((3, 2)), r"expected an output of shape \(2, 3\), got \(3, 2\) \(the axes are"),
        (np.zeros((2, 3, 1)), "one axis too many: keepdim=True where"),
        (np.array([[0.0, np.inf, 0.0], [0.0, 0.0, 0.0]]), r"\(NaN or inf\): inf at index \(0, 1\)"),
        (np.full((2, 3), np.nan), r"\(NaN or inf\): NaN at index \(0, 0\) \(6 of 6 values"),
    ],
    ids=["none", "text", "ragged", "transposed", "extra-axis", "inf", "nan"],
)
def test_compare_names_each_malformed_answer(got, sentence):
    with pytest.raises(ExerciseFailed, match=sentence):
        compare("Exercise 1", "x of shape (2, 3)", np.zeros((2, 3)), got)


def test_compare_names_a_missing_keepdim():
    with pytest.raises(ExerciseFailed, match="keepdim=True"):
        compare("Exercise 1", "x", np.zeros((4, 1)), np.zeros(4))


def test_expect_helpers_read_numbers_and_tuples_or_say_why_not():
    assert expect_int("Exercise 1", "x", np.int64(7), "") == 7
    assert expect_int("Exercise 1", "x", Tensor([7.0]), "") == 7
    assert expect_float("Exercise 1", "x", Tensor(0.5), "") == 0.5
    with pytest.raises(ExerciseFailed, match="got None"):
        expect_int("Exercise 1", "x", None, "")
    with pytest.raises(ExerciseFailed, match="a bool"):
        expect_int("Exercise 1", "x", True, "")
    with pytest.raises(ExerciseFailed, match="expected a whole number, got 2.5"):
        expect_int("Exercise 1", "x", 2.5, "")
    with pytest.raises(ExerciseFailed, match="expected a finite number, got nan"):
        expect_float("Exercise 1", "x", float("nan"), "")
    with pytest.raises(ExerciseFailed, match=r"but bytes is None"):
        expect_tuple("Exercise 1", "x", (3, None), ("kernels", "bytes"), "")
    with pytest.raises(ExerciseFailed, match=r"expected a tuple of 2 \(kernels, bytes\), got the"):
        expect_tuple("Exercise 1", "x", 3, ("kernels", "bytes"), "")


def test_the_checker_turns_any_error_reading_an_answer_into_a_message():
    @checker("Exercise 5")
    def check(fn):
        return f"{run_learner('Exercise 5', fn)[3]}"  # indexing a short answer fails

    with pytest.raises(ExerciseFailed, match=r"Exercise 5: the checker could not use your answer"):
        check(lambda: [1, 2])
    with pytest.raises(ExerciseFailed, match=r"expected your function, got the number 3"):
        check(3)


@dataclass
class _Config:
    lr: float
    sizes: list


def test_run_learner_hands_over_copies_so_the_checkers_inputs_stay_pristine():
    x, config = np.arange(3.0), _Config(0.1, [1, 2])

    def careless(x, config):
        x[0] = 99.0  # writes into its input
        return x

    with pytest.raises(ExerciseFailed, match=r"changed its first argument \(a numpy array"):
        run_learner("Exercise 1", careless, x, config)
    assert x[0] == 0.0  # the checker's own array, from which it computes the reference

    def edits_config(x, config):
        config.sizes.append(3)
        return x

    with pytest.raises(ExerciseFailed, match=r"changed its second argument \(a _Config\)"):
        run_learner("Exercise 1", edits_config, x, config)
    assert config.sizes == [1, 2]
    assert np.array_equal(run_learner("Exercise 1", lambda x, c: x * c.lr, x, config), x * 0.1)


def test_run_learner_watches_tensors_and_leaves_alone_what_is_changed_in_place():
    x = Tensor([1.0, 2.0]).realize()
    with pytest.raises(ExerciseFailed, match=r"changed its first argument \(a tinygrad Tensor"):
        run_learner("Exercise 1", lambda t: t.assign(t * 2).realize(), x)
    lazy = Tensor([1.0, 2.0]) + 1
    assert run_learner("Exercise 1", lambda t: t.realize(), lazy) is lazy  # realizing is no change
    for host in (np.array([1.0, 2.0]), np.ones((2, 3), np.float32)):
        from_host = Tensor(host)  # lazy: a copy waiting to happen
        with pytest.raises(ExerciseFailed, match=r"changed its first argument \(a tinygrad Tensor"):
            run_learner("Exercise 1", lambda t: t.assign(t * 2).realize(), from_host)
    history: list = []
    run_learner("Exercise 1", lambda log: log.append(1), InPlace(history))
    assert history == [1]  # an input the exercise trains or fills is handed over as it is


def test_run_learner_reads_an_iterator_answer_up_to_a_cap():
    assert run_learner("Exercise 1", lambda: (i * i for i in range(3))) == [0, 1, 4]

    def endless():
        i = 0
        while True:
            yield i
            i += 1

    with pytest.raises(ExerciseFailed, match=f"more than {MAX_ANSWER_ITEMS} items"):
        run_learner("Exercise 1", endless)


# Every checker of both packages, found by name: `check_X` is a checker, `reference_X` its answer.
CHECKERS = {
    name: (
        getattr(package, name),
        getattr(package, "reference_" + name.removeprefix("check_"), None),
    )
    for package in (minigpt.checks, neurosymbolic.checks)
    for name in dir(package)
    if name.startswith("check_") and hasattr(getattr(package, name), "needs_tensor")
}


def _picture(value):
    """What a case value holds, comparable with ==: a function by its code, anything else by its
    contents (course.checks' snapshot: arrays by their bytes, objects by their attributes)."""
    code = getattr(value, "__code__", None)
    if code is not None:
        return ("function", code.co_code, code.co_consts)
    if isinstance(value, tuple | list):
        return [_picture(item) for item in value]
    if isinstance(value, dict):
        return [(key, _picture(item)) for key, item in value.items()]
    return _snapshot(value)


@pytest.mark.parametrize(("check", "reference"), CHECKERS.values(), ids=CHECKERS.keys())
def test_every_checker_draws_two_cases_that_differ_in_every_value_the_function_reads(
    check, reference
):
    """A function that hard-codes any input (a learning rate, a shape, a wall) fails a case: every
    parameter of the exercise is among the values a checker's cases declare (a config's fields as
    "config.name"), and each declared value differs between two of the cases."""
    assert check.cases is not None, "the checker declares no cases: @checker(..., cases=...)"
    cases = check.cases()
    assert len(cases) >= 2 and all(isinstance(case, Case) for case in cases)
    assert len({case.name for case in cases}) == len(cases), "two cases share a name"
    keys = list(cases[0].values)
    assert all(list(case.values) == keys for case in cases), "cases declare different values"
    undeclared = [
        name
        for name in inspect.signature(reference).parameters
        if name not in keys and not any(key.startswith(name + ".") for key in keys)
    ]
    assert not undeclared, f"the function reads {undeclared}, which no case declares"
    pictures = {key: [_picture(case.values[key]) for case in cases] for key in keys}
    same = [key for key, seen in pictures.items() if all(p == seen[0] for p in seen[1:])]
    assert not same, f"every case has the same {same}: an answer that writes it in passes"


@pytest.mark.parametrize(("check", "reference"), CHECKERS.values(), ids=CHECKERS.keys())
def test_every_checker_names_the_case_a_wrong_answer_fails_on(check, reference):
    """The first case fails an answer of None; the message quotes that case's name."""
    first = check.cases()[0].name
    with pytest.raises(ExerciseFailed) as refusal:
        check(lambda *args, **kwargs: None)
    assert first in str(refusal.value), str(refusal.value)


def unsolved(*args, **kwargs):
    raise NotImplementedError("Exercise N: write it")


def test_every_checker_has_a_reference():
    missing = [name for name, (_, reference) in CHECKERS.items() if reference is None]
    assert not missing, f"checkers without a reference_ function: {missing}"


def with_answer(reference, change):
    """A learner's function that computes the reference answer, then hands back `change(answer)`."""

    def answer(*args, **kwargs):
        return change(reference(*args, **kwargs))

    return answer


def _is_float(value) -> bool:
    if isinstance(value, Tensor):
        return dtypes.is_float(value.dtype)
    if isinstance(value, np.ndarray):
        return np.issubdtype(value.dtype, np.floating)
    return isinstance(value, float | np.floating)


def _convert(value, kind: str):
    """The same float values written another way: 'float32', 'float64', 'tensor' or 'list'.

    A plain tuple or list answer has its float items converted; other values are left alone.
    """
    if type(value) in (tuple, list):
        return type(value)(_convert_one(item, kind) for item in value)
    return _convert_one(value, kind)


def _convert_one(value, kind: str):
    if not _is_float(value):
        return value
    array = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    if kind == "tensor":
        return Tensor(array.astype(np.float32))
    if kind == "list":
        return array.tolist()
    return array.astype(kind) if array.ndim else getattr(np, kind)(array)


def _poison(value):
    """NaN in place of every float the answer (or a plain tuple of answers) holds; None if none."""
    if type(value) in (tuple, list):
        items = [_poison(item) for item in value]
        if all(item is None for item in items):
            return None
        return type(value)(v if p is None else p for p, v in zip(items, value, strict=True))
    if not _is_float(value):
        return None
    if isinstance(value, Tensor):
        return Tensor.full(value.shape, float("nan"))
    return np.full(np.shape(value), np.nan) if np.ndim(value) else float("nan")


@pytest.mark.parametrize(("check", "reference"), CHECKERS.values(), ids=CHECKERS.keys())
def test_every_reference_passes_and_an_unsolved_exercise_is_reported(check, reference):
    """Each lesson's checker accepts the package's own solution and reports a stub as not done."""
    result = check(reference)
    assert result.passed and "correct" in repr(result), repr(result)
    pending = check(unsolved)
    assert not pending.passed and "not solved yet" in repr(pending)


@pytest.mark.parametrize(("check", "reference"), CHECKERS.values(), ids=CHECKERS.keys())
@pytest.mark.parametrize("kind", ["float32", "float64", "tensor", "list"])
def test_every_checker_accepts_the_answer_written_another_way(check, reference, kind):
    if check.needs_tensor:
        pytest.skip("this exercise grades the tinygrad computation itself (autograd, kernels)")
    result = check(with_answer(reference, lambda answer: _convert(answer, kind)))
    assert result.passed, repr(result)


def _raise(answer):
    raise ValueError("a bug in the learner's code")


@pytest.mark.parametrize(("check", "reference"), CHECKERS.values(), ids=CHECKERS.keys())
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda answer: None, ""),
        (lambda answer: "an answer", ""),
        (_raise, "your function raised ValueError: a bug in the learner's code"),
        (_poison, ""),
    ],
    ids=["none", "text", "raises", "nan"],
)
def test_every_checker_explains_a_malformed_answer(check, reference, change, message):
    """None, text, an exception or NaN give the learner a message, never a traceback or a pass."""
    answers = []  # the reference's answers, to tell whether NaN had anything to replace

    def learner(*args, **kwargs):
        answer = reference(*args, **kwargs)
        answers.append(answer)
        changed = change(answer)
        return answer if change is _poison and changed is None else changed

    try:
        result = check(learner)
    except ExerciseFailed as error:
        assert message in str(error)
        return
    nothing_to_poison = change is _poison and all(_poison(a) is None for a in answers)
    assert result.passed and nothing_to_poison, f"accepted: {result!r}"


def test_a_cached_reference_run_hands_out_copies():
    calls = []

    @cached_copies
    def reference_run():
        calls.append(1)
        return {"w": np.zeros(2)}

    reference_run()["w"][0] = 5.0  # one attempt scribbles on what it was handed
    assert reference_run()["w"][0] == 0.0 and len(calls) == 1


def _writable(value) -> bool:
    return isinstance(value, list) or (
        isinstance(value, np.ndarray) and value.size > 0 and value.flags.writeable
    )


def _scribble(value) -> None:
    """Write into a numpy array or a list the way a careless answer would."""
    if isinstance(value, list):
        value.append(value[0] if value else 0)
    else:
        value.flat[0] = value.flat[0] + 1 if value.dtype != bool else not value.flat[0]


@pytest.mark.parametrize(("check", "reference"), CHECKERS.values(), ids=CHECKERS.keys())
def test_every_checker_names_an_answer_that_writes_into_its_inputs(check, reference):
    """The reference's answer, but the function also wrote into an array or list it was given."""

    def careless(*args, **kwargs):
        targets = [arg for arg in (*args, *kwargs.values()) if _writable(arg)]
        if not targets:
            raise LookupError("nothing to write into")  # ends the check early: nothing to learn
        answer = reference(*args, **kwargs)
        for target in targets:
            _scribble(target)
        return answer

    with pytest.raises(ExerciseFailed) as refusal:
        check(careless)
    message = str(refusal.value)
    assert "your function changed its" in message or "nothing to write into" in message, message
