"""Checkers of lessons 08 and 09: the references pass, typical wrong answers fail with a helpful message."""

import numpy as np
import pytest
from tinygrad import Tensor

from neurosymbolic.checks import (
    ExerciseFailed,
    check_closed_key,
    check_heuristic,
    check_mean_filter,
    check_metrics,
    check_successors,
    check_threshold,
    check_worlds,
    exact_costs_to_go,
    reference_successors,
)
from neurosymbolic.planner import bfs_plan_cost, heuristic_value
from neurosymbolic.world import ACTIONS, MOVES, State


def test_exact_costs_agree_with_bfs_and_the_world_rules():
    for world in check_worlds():
        exact = exact_costs_to_go(world)
        assert exact[world.initial_state()] == bfs_plan_cost(world)
        for state, cost in exact.items():  # Bellman: one action leads to a state one step closer
            if not world.is_solved(state):
                nexts = {world.step(state, a) for a in ACTIONS} - {state}
                assert min(exact[s] for s in nexts) == cost - 1
        for state in exact:  # the reference successors are exactly the actions that change it
            by_rules = {(a, world.step(state, a)) for a in ACTIONS} - {(a, state) for a in ACTIONS}
            assert {(a, s) for a, s, _ in reference_successors(world, state)} == by_rules


def collect_sum(world, state):
    """Sums the trips instead of taking the longest: not admissible."""
    (row, col), (goal_row, goal_col) = state.cell, world.goal
    total = abs(row - goal_row) + abs(col - goal_col)
    for name, (r, c) in world.objects.items():
        if name != state.held and name not in state.delivered:
            total += abs(row - r) + abs(col - c) + abs(r - goal_row) + abs(c - goal_col)
    return total


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda w, s: 3 * heuristic_value(w, s, "collect"), "overestimates"),
        (collect_sum, "overestimates"),
        (lambda w, s: heuristic_value(w, s, "manhattan") * (s.cell[0] % 2), "not consistent"),
        (lambda w, s: heuristic_value(w, s, "manhattan"), "Manhattan distance to the"),
        (lambda w, s: 0.0, "Manhattan distance to the"),
        (lambda w, s: str(heuristic_value(w, s, "collect")), "return a plain number"),
    ],
)
def test_heuristic_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_heuristic(wrong)


def with_bumps(world, state):
    moves = [(a, world.step(state, a), 1.0) for a in MOVES]
    return moves + [t for t in reference_successors(world, state) if t[0] not in MOVES]


def pickup_delivered_too(world, state):
    children = [t for t in reference_successors(world, state) if t[0] != "pickup"]
    if state.held is None:
        for name, cell in world.objects.items():
            if cell == state.cell:
                children.append(("pickup", state._replace(held=name), 1.0))
    return children


def drop_anywhere(world, state):
    children = [t for t in reference_successors(world, state) if t[0] != "drop"]
    if state.held is not None:
        children.append(("drop", State(state.cell, None, state.delivered | {state.held}), 1.0))
    return children


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (with_bumps, "a bump changes nothing"),
        (lambda w, s: [t for t in reference_successors(w, s) if t[0] != "pickup"], "pick up"),
        (pickup_delivered_too, "not yet delivered"),
        (drop_anywhere, "standing on the goal"),
        (lambda w, s: reference_successors(w, s) * 2, "list each successor once"),
        (lambda w, s: [(a, n) for a, n, _ in reference_successors(w, s)], "triples"),
        (lambda w, s: [(a, n, 0.0) for a, n, _ in reference_successors(w, s)], "cost 1.0"),
    ],
)
def test_successor_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_successors(wrong)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda s: s.cell, "found no plan at all"),
        (lambda s: (s.cell, s.held), "found no plan at all"),
        (lambda s: (s.cell, s.delivered), "found no plan at all"),
        (lambda s: [s.cell, s.held, s.delivered], "unhashable"),
    ],
)
def test_closed_key_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_closed_key(wrong)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda obs: obs >= 0.5, "exactly 0.5 counts as free"),
        (lambda obs: obs > 0.0, "wrong values"),
        (lambda obs: (obs > 0.5).astype(np.float32), "expected bool"),
    ],
)
def test_threshold_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_threshold(wrong)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda g, w: ((g == w).mean(), (g & w).sum() / g.sum()), "thresholded noisy"),  # precision
        (lambda g, w: ((g == w).sum(), (g & w).sum() / w.sum()), "thresholded noisy"),  # a count
        (lambda g, w: ((g == w).mean(), (g & w).sum() / max(w.sum(), 1)), "without walls"),
        (lambda g, w: (g == w).mean(), "expected a pair"),
    ],
)
def test_metric_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_metrics(wrong)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda obs: obs.conv2d(Tensor.ones(1, 1, 3, 3) / 9), "expected an output of shape"),
        (lambda obs: obs.conv2d(Tensor.ones(1, 1, 3, 3) / 8, padding=1), "wrong values"),
        (
            lambda obs: obs.conv2d(Tensor.ones(1, 1, 3, 3) / 9, padding=1).numpy(),
            "expected a Tensor",
        ),
    ],
)
def test_mean_filter_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_mean_filter(wrong)
