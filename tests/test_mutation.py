"""The mutation harness (tests/mutation.py) and a sample of its mutants, checker by checker.

`make mutation` runs every mutant of every reference; here each checker meets a few of them, drawn
with a fixed seed, so that a checker that lets a wrong answer through fails in CI too.
"""

import random

import numpy as np
import pytest
from mutation import checkers, compile_mutant, equivalent_mutants, mutants, verdict

CHECKERS = checkers()
EQUIVALENT = equivalent_mutants()
# Checkers that train a network run for seconds a mutant: one mutant each here, all in make mutation.
TRAINS = {"check_training", "check_imitation_step"}


def _sample(name: str, reference) -> list:
    candidates = [m for m in mutants(reference) if (name, m.key) not in EQUIVALENT]
    return random.Random(name).sample(candidates, min(len(candidates), 1 if name in TRAINS else 2))


def example(x: np.ndarray, w: np.ndarray, axis: int = 0) -> np.ndarray:
    """A function with one of everything the mutator changes."""
    if x.ndim < 2 and not False:
        x = -x
    return np.maximum(x @ w + 1.5, 0).sum(axis=1) / 2


def test_the_mutator_makes_every_kind_of_change_and_each_mutant_runs():
    found = mutants(example)
    keys = " ".join(m.key for m in found)
    for change in (
        "Add -> Sub",  # an operator swapped
        "1.5 -> 3.0",  # a constant changed
        "2 -> 3",  # off by one
        "axis=1 -> 0",  # another axis
        "right term dropped",  # a term dropped
        "first two arguments swapped",
        "Lt -> LtE",  # a comparison flipped
        "USub dropped",
    ):
        assert change in keys, f"no mutant made by '{change}' in: {keys}"
    x, w = np.arange(6.0).reshape(2, 3), np.ones((3, 2))
    outputs = []
    for mutant in found:
        try:
            outputs.append(compile_mutant(example, mutant)(x, w))
        except Exception:
            outputs.append(None)  # a mutant may crash: the checker then refuses it
    changed = [out is None or not np.array_equal(out, example(x, w)) for out in outputs]
    assert sum(changed) > len(found) // 2  # most mutants compute something else (not all can)
    assert len({m.key for m in found}) == len(found)


def test_every_listed_equivalent_mutant_exists_and_says_why():
    for (name, key), reason in EQUIVALENT.items():
        assert name in CHECKERS, f"{name} in the equivalent list is not a checker"
        keys = {m.key for m in mutants(CHECKERS[name][1])}
        assert key in keys, f"{name} has no mutant '{key}' (the reference changed?)"
        assert len(reason.split()) >= 4, f"{name} | {key}: say why it is equivalent"


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_a_sample_of_mutants_is_refused(name):
    check, reference = CHECKERS[name]
    for mutant in _sample(name, reference):
        outcome = verdict(check, compile_mutant(reference, mutant))
        assert outcome != "survived", f"{name} accepted the mutant {mutant.key}"
