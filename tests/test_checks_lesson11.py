"""Checkers of lesson 11 (`neurosymbolic.checks.lesson11`): the references pass, typical wrong
answers fail with the message that names the mistake."""

import math

import numpy as np
import pytest
from tinygrad import Tensor

from neurosymbolic.agent import needs_replan
from neurosymbolic.checks import (
    ExerciseFailed,
    check_needs_replan,
    check_recovery_move,
    check_sense,
    check_success_and_optimality,
    reference_recovery_move,
    reference_sense,
    reference_success_and_optimality,
)
from neurosymbolic.world import MOVES

# Lesson 11 · Exercise 1: the monitor


def test_monitor_that_looks_only_at_the_next_cell_is_caught():
    def next_only(cell, ahead, believed):
        return not ahead or cell != ahead[0] or (len(ahead) > 1 and bool(believed[ahead[1]]))

    with pytest.raises(ExerciseFailed, match="a wall on the plan's last cell, far ahead"):
        check_needs_replan(next_only)


def test_monitor_that_ignores_slips_or_replans_on_any_wall_is_caught():
    def ignores_position(cell, ahead, believed):
        return not ahead or any(believed[c] for c in ahead)

    with pytest.raises(ExerciseFailed, match="slipped one cell off the plan"):
        check_needs_replan(ignores_position)

    def any_wall(cell, ahead, believed):
        return not ahead or cell != ahead[0] or bool(believed.any())

    with pytest.raises(ExerciseFailed, match="a wall beside it"):
        check_needs_replan(any_wall)


def test_monitor_without_plan_check_is_caught():
    def crashes_or_keeps(cell, ahead, believed):
        return bool(ahead) and (cell != ahead[0] or any(believed[c] for c in ahead))

    with pytest.raises(ExerciseFailed, match=r"no plan yet"):
        check_needs_replan(crashes_or_keeps)


def test_monitor_returning_none_for_keep_is_caught_and_a_tensor_bool_passes():
    def none_for_keep(cell, ahead, believed):
        return True if needs_replan(cell, ahead, believed) else None

    with pytest.raises(ExerciseFailed, match="got None"):
        check_needs_replan(none_for_keep)
    with pytest.raises(ExerciseFailed, match="got 'False'"):
        check_needs_replan(lambda cell, ahead, believed: str(needs_replan(cell, ahead, believed)))
    check_needs_replan(lambda cell, ahead, believed: Tensor(needs_replan(cell, ahead, believed)))
    check_needs_replan(lambda cell, ahead, believed: np.bool_(needs_replan(cell, ahead, believed)))


# Lesson 11 · Exercise 2: the sensing update


def sense_sliced(row_start, row_stop, col_start, col_stop):
    def sense(believed, walls, cell, radius):
        (row, col), sensed = cell, believed.copy()
        rows = slice(row_start(row, radius), row_stop(row, radius))
        cols = slice(col_start(col, radius), col_stop(col, radius))
        sensed[rows, cols] = walls[rows, cols]
        return sensed

    return sense


def low(v, r):
    return max(v - r, 0)


def high(v, r):
    return v + r + 1


def test_sensing_reference_and_a_list_answer_pass():
    assert check_sense(reference_sense).passed
    assert check_sense(lambda *args: reference_sense(*args).astype(float).tolist()).passed


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (sense_sliced(lambda v, r: v - r, high, lambda v, r: v - r, high), "negative slice start"),
        (sense_sliced(low, lambda v, r: v + r, low, lambda v, r: v + r), r"2 \* radius \+ 1"),
        (lambda believed, walls, cell, radius: walls.copy(), "not the whole map"),
        (lambda believed, walls, cell, radius: believed, "nothing changed"),
        (
            lambda believed, walls, cell, radius: reference_sense(
                believed, walls, cell[::-1], radius
            ),
            "rows and columns are swapped",
        ),
    ],
)
def test_sensing_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_sense(wrong)


def test_success_and_optimality_with_none_gets_a_message():
    with pytest.raises(ExerciseFailed, match="came back as None, not a number"):
        check_success_and_optimality(lambda episodes, optimum: (None, None))


# Lesson 11 · Exercise 3: success rate and optimality


def test_success_and_optimality_as_one_array_passes():
    def as_array(episodes, optimum):
        return np.array(reference_success_and_optimality(episodes, optimum), dtype=np.float32)

    check_success_and_optimality(as_array)
    check_success_and_optimality(lambda e, o: Tensor(list(reference_success_and_optimality(e, o))))


def test_optimality_over_failed_episodes_is_caught():
    def all_episodes(episodes, optimum):
        rate = float(np.mean([e.success for e in episodes]))
        return rate, float(np.mean([e.steps / o for e, o in zip(episodes, optimum, strict=True)]))

    with pytest.raises(ExerciseFailed, match="over the solved episodes only"):
        check_success_and_optimality(all_episodes)


def test_inverted_ratio_and_counts_are_caught():
    def inverted(episodes, optimum):
        rate, _ = reference_success_and_optimality(episodes, optimum)
        ratios = [o / e.steps for e, o in zip(episodes, optimum, strict=True) if e.success]
        return rate, float(np.mean(ratios)) if ratios else math.nan

    with pytest.raises(ExerciseFailed, match="the ratio is >= 1"):
        check_success_and_optimality(inverted)

    def counts(episodes, optimum):
        return float(sum(e.success for e in episodes)), 1.0

    with pytest.raises(ExerciseFailed, match="that is the number of solved episodes"):
        check_success_and_optimality(counts)


def test_missing_nan_is_caught():
    def zero_when_none(episodes, optimum):
        rate, optimality = reference_success_and_optimality(episodes, optimum)
        return rate, 0.0 if math.isnan(optimality) else optimality

    with pytest.raises(ExerciseFailed, match=r"return math\.nan"):
        check_success_and_optimality(zero_when_none)


# Lesson 11 · Exercise 4: slip recovery


def test_recovery_going_the_wrong_way_is_caught():
    def backwards(cell, plan_cell, believed):
        step = (cell[0] - plan_cell[0], cell[1] - plan_cell[1])
        return next((m for m, d in MOVES.items() if d == step), None)

    with pytest.raises(ExerciseFailed, match="goes the other way"):
        check_recovery_move(backwards)


def test_recovery_with_swapped_axes_is_caught():
    def swapped(cell, plan_cell, believed):
        step = (plan_cell[1] - cell[1], plan_cell[0] - cell[0])
        return next((m for m, d in MOVES.items() if d == step), None)

    with pytest.raises(ExerciseFailed, match="rows and columns are mixed up"):
        check_recovery_move(swapped)


def test_recovery_on_diagonals_and_walls_is_caught():
    def row_first(cell, plan_cell, believed):
        d_row, d_col = plan_cell[0] - cell[0], plan_cell[1] - cell[1]
        if d_row:
            return "down" if d_row > 0 else "up"
        if d_col:
            return "right" if d_col > 0 else "left"
        return None

    with pytest.raises(ExerciseFailed, match="plan cell diagonal to the agent"):
        check_recovery_move(row_first)

    def ignores_walls(cell, plan_cell, believed):
        return reference_recovery_move(cell, plan_cell, np.zeros_like(believed))

    with pytest.raises(ExerciseFailed, match="now believed to be a wall"):
        check_recovery_move(ignores_walls)
