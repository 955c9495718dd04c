"""Checkers of lesson 08 (`neurosymbolic.checks.lesson08` and `lesson08_astar`): the references pass,
typical wrong answers fail with the message that names the mistake."""

import heapq
import math

import pytest

from neurosymbolic.checks import (
    ExerciseFailed,
    check_astar,
    check_successors,
    check_worlds,
    exact_costs_to_go,
    plan_with_closed_key,
    reference_astar,
    reference_successors,
)
from neurosymbolic.planner import NoPlanError, bfs_plan_cost
from neurosymbolic.world import ACTIONS, MOVES, State

# Lesson 08


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
                priority = {
                    "f": new_cost + heuristic(nxt),
                    "g": new_cost,
                    "h": heuristic(nxt),
                    "weighted": new_cost + 2 * heuristic(nxt),  # weighted A*, w = 2
                }
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
        (make_astar(order="weighted"), r"delivery world \d of 7 \(below\)[\s\S]*your plan costs"),
        (make_astar(flip=True), "reverse order"),
        (lambda *args: None, "return None only when the frontier is empty"),
        (lambda *args: "up", "you returned str"),
        (lambda *args: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_astar_mistakes(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_astar(wrong)


def test_the_worlds_put_a_wall_and_the_edge_on_every_side_of_some_state():
    """A successor function that checks walls or the map's edge in one direction only fails."""
    blocked = set()
    for world in check_worlds():
        H, W = world.walls.shape
        for state in exact_costs_to_go(world):
            for action, (d_row, d_col) in MOVES.items():
                row, col = state.cell[0] + d_row, state.cell[1] + d_col
                inside = 0 <= row < H and 0 <= col < W
                if not inside or world.walls[row, col]:
                    blocked.add((action, "wall" if inside else "edge"))
    assert blocked == {(action, kind) for action in MOVES for kind in ("wall", "edge")}


def test_a_graph_hint_only_when_its_mistake_reproduces_what_the_search_did():
    def looks_ahead_first(start, successors, heuristic, is_goal):
        successors(start)  # an extra expansion that no typical mistake makes
        return reference_astar(start, successors, heuristic, is_goal)

    with pytest.raises(ExerciseFailed) as refusal:
        check_astar(looks_ahead_first)
    assert "expanded S more than once" in str(refusal.value)
    assert "hint" not in str(refusal.value)
