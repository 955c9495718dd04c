"""Checkers of lesson 10 (`neurosymbolic.checks.lesson10`): the references pass, typical wrong
answers fail with the message that names the mistake."""

import numpy as np
import pytest
from tinygrad import Context

from neurosymbolic.checks import (
    ExerciseFailed,
    check_imitation_step,
    check_local_view,
    check_plan_examples,
    reference_imitation_step,
    reference_local_view,
    reference_plan_examples,
)
from neurosymbolic.policy import MOVE_NAMES, features

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

    with pytest.raises(
        ExerciseFailed, match=r"changed its first argument \(a numpy array of shape"
    ):
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

    with pytest.raises(ExerciseFailed, match=r"it is its last, plan\.cells\[-1\]"):
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

    with pytest.raises(
        ExerciseFailed, match=r"optimal moves[\s\S]*hint: only A\*'s own move is marked"
    ):
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
        (
            step_with(mean_ce, zero_grad=False),
            r"step 2 of 3[\s\S]*hint: the gradients of the earlier steps add up",
        ),
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
