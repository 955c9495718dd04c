"""Checkers for lesson 08 · Grid worlds and A*."""

from collections import deque
from collections.abc import Callable, Hashable
from numbers import Real

from minigpt.checks.core import ExerciseFailed, checker, run_learner
from neurosymbolic.planner import (
    NoPlanError,
    Plan,
    astar,
    bfs_plan_cost,
    heuristic_value,
)
from neurosymbolic.world import ACTIONS, MOVES, GridWorld, State


def check_worlds() -> list[GridWorld]:
    """Small worlds the lesson 8 checkers search exhaustively: random ones and two made by hand
    (an object in a dead end at the map's edge; two objects, one of them behind the goal)."""
    return [
        *(GridWorld.random(6, 0.2, n, seed) for seed, n in enumerate([1, 2, 2, 3, 1])),
        GridWorld.from_ascii("a#...\n.#.#.\nS..#G"),
        GridWorld.from_ascii("S...G.a\n.##.##.\nb......"),
    ]


def reference_heuristic(world: GridWorld, state: State) -> float:
    """Exercise 1: the object-collection heuristic of `heuristic_value` (consistent, informative)."""
    return heuristic_value(world, state, "collect")


def reference_successors(world: GridWorld, state: State) -> list[tuple[str, State, float]]:
    """Exercise 2: every action that changes the state, as (action, next state, cost 1.0).

    Moves go onto free cells only (a bump changes nothing, so it is no successor); ``pickup``
    needs empty hands and an object not yet delivered on the cell; ``drop`` needs a held object
    and the goal cell.
    """
    children = []
    row, col = state.cell
    for action, (d_row, d_col) in MOVES.items():
        target = (row + d_row, col + d_col)
        if world.is_free(target):
            children.append((action, state._replace(cell=target), 1.0))
    lying_here = world.object_at(state)
    if state.held is None and lying_here is not None:
        children.append(("pickup", state._replace(held=lying_here), 1.0))
    if state.held is not None and state.cell == world.goal:
        children.append(("drop", State(state.cell, None, state.delivered | {state.held}), 1.0))
    return children


def reference_closed_key(state: State) -> Hashable:
    """Exercise 3: the whole state. Cell, held object and delivered set all change what is left."""
    return state


def exact_costs_to_go(world: GridWorld) -> dict[State, int]:
    """The true number of actions from every reachable state to a solved one (BFS, backwards).

    Built from the world's own `step` rules only, so it checks heuristics independently of A*.
    """
    start = world.initial_state()
    parents: dict[State, set[State]] = {start: set()}
    frontier = deque([start])
    while frontier:  # 1) every reachable state and who leads to it
        state = frontier.popleft()
        for action in ACTIONS:
            nxt = world.step(state, action)
            if nxt not in parents:
                parents[nxt] = set()
                frontier.append(nxt)
            if nxt != state:
                parents[nxt].add(state)
    cost = {s: 0 for s in parents if world.is_solved(s)}
    frontier = deque(cost)
    while frontier:  # 2) breadth-first from the solved states along reversed transitions
        state = frontier.popleft()
        for parent in parents[state]:
            if parent not in cost:
                cost[parent] = cost[state] + 1
                frontier.append(parent)
    return cost


def _where(world: GridWorld, state: State) -> str:
    picture = "\n    ".join(world.to_ascii().splitlines())
    return f"state {state} in the world\n    {picture}\n"


@checker("Exercise 1")
def check_heuristic(fn: Callable[[GridWorld, State], float]) -> str:
    """`fn(world, state)` never overestimates, drops by at most 1 an action, keeps A* optimal, and
    expands fewer states than the Manhattan distance to the goal."""
    expanded, expanded_manhattan = 0, 0
    for world in check_worlds():
        exact = exact_costs_to_go(world)
        for state, true_cost in exact.items():
            h = run_learner("Exercise 1", fn, world, state)
            if not isinstance(h, Real) or h != h:
                raise ExerciseFailed(
                    f"Exercise 1: for {_where(world, state)}your heuristic returned {h!r}.\n"
                    "hint: return a plain number (int or float)."
                )
            if h > true_cost + 1e-9:
                raise ExerciseFailed(
                    f"Exercise 1: your heuristic overestimates: for {_where(world, state)}"
                    f"it says {h:g}, but the cheapest way to finish takes {true_cost} action(s) "
                    "(exhaustive BFS).\nhint: an admissible heuristic is a lower bound; take "
                    "the longest single trip, not the sum of all trips."
                )
            for action, nxt, cost in reference_successors(world, state):
                h_next = run_learner("Exercise 1", fn, world, nxt)
                if h > cost + h_next + 1e-9:
                    raise ExerciseFailed(
                        f"Exercise 1: your heuristic is not consistent: for {_where(world, state)}"
                        f"it says {h:g}, but after {action!r} it says {h_next:g}, a drop of "
                        f"{h - h_next:g} for an action that costs {cost:g}.\nhint: one action "
                        "changes every distance by at most 1; build h from distances and counts."
                    )
        plan = run_learner("Exercise 1", astar, world, heuristic=lambda s, w=world: fn(w, s))
        optimal = bfs_plan_cost(world)
        if plan.cost != optimal:
            raise ExerciseFailed(
                f"Exercise 1: A* with your heuristic found a plan of cost {plan.cost:g} on\n"
                f"    {world.to_ascii()}\nbut the optimal cost is {optimal}.\n"
                "hint: check admissibility and consistency on this world by hand."
            )
        expanded += plan.expanded
        expanded_manhattan += astar(world, heuristic="manhattan").expanded
    if expanded >= expanded_manhattan:
        raise ExerciseFailed(
            f"Exercise 1: your heuristic is admissible and consistent, but A* expanded {expanded} "
            f"states with it against {expanded_manhattan} with the Manhattan distance to the "
            "goal.\nhint: count the trips still to make: agent -> object -> goal for each "
            "object not yet delivered, and the pickups and drops left."
        )
    return (
        f"admissible and consistent on {len(check_worlds())} worlds; A* stays optimal and expands "
        f"{expanded} states (Manhattan to the goal: {expanded_manhattan})."
    )


@checker("Exercise 2")
def check_successors(fn: Callable[[GridWorld, State], list[tuple[str, State, float]]]) -> str:
    """`fn(world, state)` lists (action, next state, cost) for exactly the actions that change it."""
    hints = {
        "pickup": "pick up only with empty hands, an object on the cell, not yet delivered.",
        "drop": "drop only while holding an object and standing on the goal; it joins delivered.",
    }
    hints["twice"] = "list each successor once."
    move_hint = (
        "moves go to free cells inside the map and cost 1.0; a bump changes nothing, so leave "
        "it out."
    )
    checked = 0
    for world in check_worlds():
        for state in exact_costs_to_go(world):
            got = run_learner("Exercise 2", fn, world, state)
            try:
                got_list = [(str(a), s, float(c)) for a, s, c in got]
            except (TypeError, ValueError):
                raise ExerciseFailed(
                    f"Exercise 2: for {_where(world, state)}you returned {got!r}.\n"
                    "hint: return a list of (action, next_state, cost) triples, e.g. "
                    "[('up', State((0, 1)), 1.0)]."
                ) from None
            expected = set(reference_successors(world, state))
            extra = [t for t in got_list if t not in expected]
            missing = [t for t in expected if t not in got_list]
            if extra or missing or len(got_list) != len(expected):
                action = (extra or missing or [("twice",)])[0][0]
                raise ExerciseFailed(
                    f"Exercise 2: for {_where(world, state)}"
                    f"  missing:    {missing}\n  unexpected: {extra}\n"
                    f"  you listed {len(got_list)} successors, expected {len(expected)}\n"
                    f"hint: {hints.get(action, move_hint)}"
                )
            checked += 1
        plan = run_learner(
            "Exercise 2", astar, world, successors=lambda s, w=world: fn(w, s), heuristic="zero"
        )
        assert plan.cost == bfs_plan_cost(world)  # same successors as the reference: same cost
    return f"the successors of {checked} states match; A* with them finds optimal plans."


def _plan_or_none(world: GridWorld, closed_key: Callable[[State], Hashable]) -> Plan | None:
    try:
        return astar(world, closed_key=closed_key)
    except NoPlanError:
        return None


@checker("Exercise 3")
def check_closed_key(fn: Callable[[State], Hashable]) -> str:
    """A* with `fn` as the closed-set key finds optimal plans and expands no state twice."""
    for world in check_worlds():
        optimal = bfs_plan_cost(world)
        reference = astar(world, closed_key=reference_closed_key)
        where = "\n    ".join(world.to_ascii().splitlines())
        plan = run_learner("Exercise 3", _plan_or_none, world, fn)
        if plan is None:
            raise ExerciseFailed(
                f"Exercise 3: A* with your key found no plan at all on\n    {where}\n"
                f"but a plan of {optimal} actions exists.\nhint: standing on a cell with an "
                "object in hand is a different state from standing there empty-handed; "
                "the key must keep what is held and what is delivered."
            )
        if plan.cost != optimal:
            raise ExerciseFailed(
                f"Exercise 3: A* with your key found a plan of {plan.cost:g} actions on\n"
                f"    {where}\nbut the optimal plan has {optimal}.\nhint: the key merges "
                "states that differ; keep the cell, the held object and the delivered set."
            )
        if plan.expanded > reference.expanded:
            raise ExerciseFailed(
                f"Exercise 3: your key finds optimal plans but A* expanded {plan.expanded} "
                f"states on\n    {where}\nagainst {reference.expanded} with the whole state "
                "as the key.\nhint: equal states must give equal keys (nothing random, no id())."
            )
    return f"optimal plans on {len(check_worlds())} collection worlds, no state expanded twice."
