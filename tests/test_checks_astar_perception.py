"""Checkers of lessons 08 and 09: the references pass, typical wrong answers fail with a helpful message."""

import heapq
import math

import pytest
from tinygrad import Tensor

from neurosymbolic.checks import (
    ExerciseFailed,
    check_astar,
    check_mean_filter,
    check_perception_loss,
    check_successors,
    check_training,
    check_worlds,
    exact_costs_to_go,
    plan_with_closed_key,
    reference_successors,
)
from neurosymbolic.planner import NoPlanError, bfs_plan_cost
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


def test_some_check_worlds_defeat_a_key_that_counts_the_delivered_objects():
    """The 3- and 4-object worlds are there because (cell, held, len(delivered)) fails on them."""
    longer = 0
    for world in check_worlds():
        try:
            plan = plan_with_closed_key(world, lambda s: (s.cell, s.held, len(s.delivered)))
            longer += plan.cost > bfs_plan_cost(world)
        except NoPlanError:
            longer += 1
    assert longer >= 2


def make_astar(
    key=lambda s: s, goal_on_push=False, close_on_push=False, lazy=True, order="f", flip=False
):
    """A* with one typical mistake switched on (or none): the learner's loop, written wrong."""

    def search(start, successors, heuristic, is_goal):
        cost, came_from, closed, counter = {key(start): 0.0}, {}, set(), 0
        frontier = [(heuristic(start), 0, 0.0, start)]
        found = None
        while frontier and found is None:
            _, _, g, state = heapq.heappop(frontier)
            if lazy and not close_on_push and key(state) in closed:
                continue
            if is_goal(state):
                found = state
                break
            closed.add(key(state))
            for action, nxt, step_cost in successors(state):
                new_cost = g + step_cost
                if key(nxt) in closed or new_cost >= cost.get(key(nxt), math.inf):
                    continue
                cost[key(nxt)], came_from[key(nxt)] = new_cost, (state, action)
                if goal_on_push and is_goal(nxt):
                    found = nxt
                    break
                if close_on_push:
                    closed.add(key(nxt))
                counter += 1
                priority = {"f": new_cost + heuristic(nxt), "g": new_cost, "h": heuristic(nxt)}
                heapq.heappush(frontier, (priority[order], counter, new_cost, nxt))
        if found is None:
            return None
        actions, state = [], found
        while key(state) in came_from and state != start:
            state, action = came_from[key(state)]
            actions.append(action)
        return actions if flip else actions[::-1]

    return search


def id_key_astar(start, successors, heuristic, is_goal):
    """Closed set keyed by id(state), no cost table: equal states are never recognised."""
    frontier, closed, counter = [(heuristic(start), 0, 0.0, start, [])], set(), 0
    while frontier:
        _, _, g, state, path = heapq.heappop(frontier)
        if id(state) in closed:
            continue
        if is_goal(state):
            return path
        closed.add(id(state))
        for action, nxt, step_cost in successors(state):
            counter += 1
            heapq.heappush(frontier, (g + step_cost + heuristic(nxt), counter, g + step_cost,
                                      nxt, [*path, action]))  # fmt: skip
    return None


def test_a_correct_astar_passes():
    assert check_astar(make_astar()).passed


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (make_astar(goal_on_push=True), r"costs 5, the cheapest 2[\s\S]*when you pop a goal"),
        (make_astar(close_on_push=True), r"costs 5[\s\S]*not when you push it"),
        (make_astar(order="h"), r"costs 5[\s\S]*lowest f = g \+ h"),
        (make_astar(lazy=False), r"expanded B more than once[\s\S]*lazy deletion"),
        (id_key_astar, r"expanded S more than once[\s\S]*not id\(state\)"),
        (make_astar(key=lambda s: s.cell), "differ only in the object held"),
        (make_astar(key=lambda s: (s.cell, s.held)), "differ only in the delivered set"),
        (
            make_astar(key=lambda s: (s.cell, s.held, len(s.delivered))),
            r"3 object\(s\), your plan costs 46[\s\S]*which objects are delivered, not how many",
        ),
        (make_astar(order="g"), r"g \+ h is at least[\s\S]*not by g alone"),
        (make_astar(flip=True), "reverse order"),
        (lambda *args: None, "return None only when the frontier is empty"),
        (lambda *args: "up", "you returned str"),
        (lambda *args: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_astar_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_astar(wrong)


def weighted_bce(on_walls, on_free, reduce="mean", log_sigmoid=True):
    def loss(z, y, w):
        if log_sigmoid:
            log_p, log_q = z.logsigmoid(), (-z).logsigmoid()
        else:
            log_p, log_q = z.sigmoid().log(), (1 - z.sigmoid()).log()
        wall_w = w if on_walls else 1.0
        free_w = w if on_free else 1.0
        terms = -(wall_w * y * log_p + free_w * (1 - y) * log_q)
        return terms.sum() if reduce == "sum" else terms.mean()

    return loss


def test_perception_loss_written_by_hand_passes():
    assert check_perception_loss(weighted_bce(True, False)).passed
    assert check_perception_loss(lambda z, y, w: weighted_bce(True, False)(z, y, w).item()).passed


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (weighted_bce(False, True), "multiplies the free cells"),
        (weighted_bce(False, False), "wall weight is missing"),
        (weighted_bce(True, False, reduce="sum"), "sum over the cells"),
        (weighted_bce(True, False, log_sigmoid=False), r"-40 to 40[\s\S]*NaN or inf"),
        (
            lambda z, y, w: weighted_bce(True, False, "sum")(z, y, w) / (y * (w - 1) + 1).sum(),
            "divided by the total weight",
        ),
        (lambda z, y, w: weighted_bce(True, False)(z, 1 - y, w), "swapped"),
    ],
)
def test_perception_loss_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_perception_loss(wrong)


def test_training_loop_reference_passes_and_mistakes_are_named():
    """One run each (training is the slow part): the reference, no optimizer step, no learning."""
    from neurosymbolic.checks import reference_training

    assert check_training(reference_training).passed
    with pytest.raises(ExerciseFailed, match="weights did not change"):
        check_training(lambda model, steps, seed: [1.0] * steps)
    with pytest.raises(ExerciseFailed, match="expected 60 finite losses"):
        check_training(lambda model, steps, seed: [1.0])


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
