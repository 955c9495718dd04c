"""Checkers of lessons 10 and 11: the references pass, typical wrong answers fail with a helpful message."""

import math

import numpy as np
import pytest
from tinygrad import Context, Tensor

from neurosymbolic.agent import needs_replan
from neurosymbolic.checks import (
    ExerciseFailed,
    check_imitation_step,
    check_local_view,
    check_needs_replan,
    check_plan_examples,
    check_recovery_move,
    check_sense,
    check_success_and_optimality,
    reference_imitation_step,
    reference_local_view,
    reference_plan_examples,
    reference_recovery_move,
    reference_sense,
    reference_success_and_optimality,
)
from neurosymbolic.policy import MOVE_NAMES, features
from neurosymbolic.world import MOVES

# Lesson 10 · Exercise 1: the local view


def test_view_padded_with_free_cells_is_caught():
    def zero_padded(belief, cell, window):
        half = window // 2
        return np.pad(belief, half)[cell[0] : cell[0] + window, cell[1] : cell[1] + window]

    with pytest.raises(ExerciseFailed, match=r"must read 1\.0 \(a wall\), not 0\.0"):
        check_local_view(zero_padded)


def test_view_that_writes_into_the_belief_is_caught():
    def marks_the_cell(belief, cell, window):
        view = reference_local_view(belief, cell, window)
        belief[cell] = 0.0  # "visited": later views (and the agent) would read it
        return view

    with pytest.raises(ExerciseFailed, match="changed the belief map it was given"):
        check_local_view(marks_the_cell)


def test_transposed_view_is_caught():
    with pytest.raises(ExerciseFailed, match="rows and columns are swapped"):
        check_local_view(lambda b, c, w: reference_local_view(b, c, w).T)


def test_view_not_centred_is_caught():
    def uncentred(belief, cell, window):
        padded = np.pad(belief, window, constant_values=1.0)  # pads a whole window, not half
        return padded[cell[0] : cell[0] + window, cell[1] : cell[1] + window]

    with pytest.raises(ExerciseFailed, match="wrong values for a 5x5 belief map, cell"):
        check_local_view(uncentred)


# Lesson 10 · Exercise 2: plans to examples


def test_examples_with_the_goal_cell_are_caught():
    def one_too_many(walls, plan, window):
        x = np.stack(
            [features(walls.astype(np.float32), c, plan.cells[-1], window) for c in plan.cells]
        )
        y = np.array([MOVE_NAMES.index(a) for a in plan.actions] + [0])
        return x, y, np.zeros((len(y), 4), bool)

    with pytest.raises(ExerciseFailed, match="a path of n cells has n - 1 actions"):
        check_plan_examples(one_too_many)


def test_views_after_the_move_are_caught():
    def after(walls, plan, window):
        b = walls.astype(np.float32)
        x = np.stack([features(b, c, plan.cells[-1], window) for c in plan.cells[1:]])
        return x, *reference_plan_examples(walls, plan, window)[1:]

    with pytest.raises(ExerciseFailed, match="views after each move"):
        check_plan_examples(after)


def test_wrong_target_and_labels_are_caught():
    def toward_start(walls, plan, window):
        b = walls.astype(np.float32)
        x = np.stack([features(b, c, plan.cells[0], window) for c in plan.cells[:-1]])
        return x, *reference_plan_examples(walls, plan, window)[1:]

    with pytest.raises(ExerciseFailed, match="the target is the path's last cell"):
        check_plan_examples(toward_start)

    def action_order(walls, plan, window):  # indexes ACTIONS-like sorted names, not MOVE_NAMES
        x, _, optimal = reference_plan_examples(walls, plan, window)
        return x, np.array([sorted(MOVE_NAMES).index(a) for a in plan.actions]), optimal

    with pytest.raises(ExerciseFailed, match=r"MOVE_NAMES\.index\(action\)"):
        check_plan_examples(action_order)


# Lesson 10 · Exercise 2: labels that are not move indices


def test_action_names_as_labels_get_a_message():
    def names(walls, plan, window):
        x, _, optimal = reference_plan_examples(walls, plan, window)
        return x, np.array(plan.actions), optimal

    with pytest.raises(ExerciseFailed, match=r"dtype <U\d+[\s\S]*move indices"):
        check_plan_examples(names)


def test_optimal_moves_without_ties_are_caught():
    def only_the_label(walls, plan, window):
        x, y, _ = reference_plan_examples(walls, plan, window)
        return x, y, np.eye(4, dtype=bool)[y]  # only A*'s own move, ties forgotten

    with pytest.raises(ExerciseFailed, match=r"optimal moves[\s\S]*one step closer"):
        check_plan_examples(only_the_label)


# Lesson 10 · Exercise 3: one training step


def step_with(loss_of, zero_grad=True, step=True, lazy_item=False):
    def train_step(model, opt, xb, yb):
        with Context(TRAINING=1):
            if zero_grad:
                opt.zero_grad()
            loss = loss_of(model(xb), yb).backward()
            if not step:
                return loss.item()
            if lazy_item:
                opt.step()
                return loss.item()
            loss.realize(*opt.schedule_step())
        return loss.item()

    return train_step


def mean_ce(logits, y):
    return logits.sparse_categorical_crossentropy(y)


def test_imitation_step_reference_and_a_tensor_loss_pass():
    assert check_imitation_step(reference_imitation_step).passed

    def tensor_loss(model, opt, xb, yb):
        with Context(TRAINING=1):
            opt.zero_grad()
            loss = model(xb).sparse_categorical_crossentropy(yb).backward()
            return loss.realize(*opt.schedule_step())

    assert check_imitation_step(tensor_loss).passed


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (step_with(mean_ce, zero_grad=False), r"step 2 of 3[\s\S]*opt\.zero_grad\(\)"),
        (step_with(mean_ce, step=False), "the parameters did not change"),
        (step_with(mean_ce, lazy_item=True), "tinygrad is lazy"),
        (
            step_with(lambda z, y: z.sparse_categorical_crossentropy(y, reduction="sum")),
            "summed cross-entropy",
        ),
    ],
)
def test_imitation_step_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_imitation_step(wrong)


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

    with pytest.raises(ExerciseFailed, match="a fraction in"):
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
