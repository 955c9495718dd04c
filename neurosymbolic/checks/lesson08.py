"""Checkers for lesson 08 · Grid worlds and A*.

Exercise 1 lists a state's successors; Exercise 2 is the A* loop itself, written for any search
problem given as ``(start, successors, heuristic, is_goal)``. The A* checker runs the learner's
search on four tiny graphs, each built so that one typical mistake changes the answer, then on
delivery worlds with 1-4 objects, where it compares the plan with exhaustive BFS and the expanded
states with the set a correct A* may expand (every ``g* + h <= optimal cost``, for a consistent h).
Costs are sums of small integers, so they are compared exactly (within 1e-9). Two seams let the
lesson put its own piece into the planner's search: `plan_with_successors` (Exercise 1's successor
function) and `plan_with_closed_key` (a closed set that remembers only part of a state).
"""

import heapq
import math
from collections import deque
from collections.abc import Callable, Hashable

from course.checks import Case, ExerciseFailed, checker, run_learner
from neurosymbolic.delivery import Delivery, Key
from neurosymbolic.planner import Plan, Successors, astar, plan_delivery
from neurosymbolic.world import ACTIONS, MOVES, GridWorld, State


def plan_with_successors(
    world: GridWorld, successors: Callable[[State], list[tuple[str, State, float]]]
) -> Plan:
    """The planner's search with h = 0 (Dijkstra) where `successors(state)` lists the actions:
    with the right ones, a plan as cheap as `astar(world)`'s."""
    problem = Delivery(world, world.walls)

    def keyed(key: Key) -> list[tuple[str, Key, float]]:
        return [(a, problem.key(s), cost) for a, s, cost in successors(problem.state(key))]

    return plan_delivery(problem, world.initial_state(), keyed, lambda key: 0.0)


class _KeyedClosedSet:
    """A closed set that remembers `closed_key(state)` of each expanded state, not the state."""

    def __init__(self, problem: Delivery, closed_key: Callable[[State], Hashable]):
        self.problem, self.closed_key, self.seen = problem, closed_key, set()

    def __contains__(self, key: Key) -> bool:
        return self.closed_key(self.problem.state(key)) in self.seen

    def add(self, key: Key) -> None:
        self.seen.add(self.closed_key(self.problem.state(key)))


def plan_with_closed_key(
    world: GridWorld, closed_key: Callable[[State], Hashable], heuristic: str = "collect"
) -> Plan:
    """The planner's search with a closed set keyed by `closed_key(state)`, e.g. the cell alone:
    a key that merges different states prunes some of them, and plans come out too long or not at
    all (NoPlanError)."""
    problem = Delivery(world, world.walls)
    closed = _KeyedClosedSet(problem, closed_key)
    h = problem.heuristic(heuristic)
    return plan_delivery(problem, world.initial_state(), problem.successors, h, closed=closed)


def check_worlds() -> list[GridWorld]:
    """Small worlds the lesson 8 checkers search exhaustively: random ones with 1-4 objects (in the
    3- and 4-object ones a closed set keyed by (cell, held, len(delivered)) gives longer plans) and
    two made by hand (an object in a dead end at the edge; one object behind the goal)."""
    return [
        *(
            GridWorld.random(6, 0.2, n, seed)
            for n, seed in [(1, 0), (2, 1), (3, 0), (3, 6), (4, 1)]
        ),
        GridWorld.from_ascii("a#...\n.#.#.\nS..#G"),
        GridWorld.from_ascii("S...G.a\n.##.##.\nb......"),
    ]


def reference_successors(world: GridWorld, state: State) -> list[tuple[str, State, float]]:
    """Exercise 1: every action that changes the state, as (action, next state, cost 1.0).

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


def reference_astar(
    start: Hashable,
    successors: Successors,
    heuristic: Callable[[Hashable], float],
    is_goal: Callable[[Hashable], bool],
) -> list[str] | None:
    """Exercise 2: the actions of a cheapest plan from `start` to a goal state, or None.

    The frontier is a heapq of (f = g + h, tie counter, state); a state whose cost drops is pushed
    again and the old entry is skipped when popped (lazy deletion); the closed set holds whole
    states; `came_from` leads back from the goal to rebuild the plan.
    """
    cost_so_far = {start: 0.0}
    came_from: dict[Hashable, tuple[Hashable, str]] = {}
    frontier = [(heuristic(start), 0, start)]
    closed, counter = set(), 0
    while frontier:
        _, _, state = heapq.heappop(frontier)
        if state in closed:
            continue  # a stale entry: expanded already, with a lower cost
        if is_goal(state):
            actions = []
            while state in came_from:
                state, action = came_from[state]
                actions.append(action)
            return actions[::-1]
        closed.add(state)
        for action, nxt, cost in successors(state):
            new_cost = cost_so_far[state] + cost
            if nxt not in closed and new_cost < cost_so_far.get(nxt, math.inf):
                cost_so_far[nxt], came_from[nxt] = new_cost, (state, action)
                counter += 1  # ties go first-in first-out; states themselves are never compared
                heapq.heappush(frontier, (new_cost + heuristic(nxt), counter, nxt))
    return None


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


def _costs_from_start(world: GridWorld) -> dict[State, int]:
    """g*: the fewest actions from the start to every reachable state (forward BFS)."""
    start = world.initial_state()
    depth, frontier = {start: 0}, deque([start])
    while frontier:
        state = frontier.popleft()
        for _, nxt, _ in reference_successors(world, state):
            if nxt not in depth:
                depth[nxt] = depth[state] + 1
                frontier.append(nxt)
    return depth


def _where(world: GridWorld, state: State) -> str:
    picture = "\n    ".join(world.to_ascii().splitlines())
    return f"state {state} in the world\n    {picture}\n"


def _successor_cases() -> list[Case]:
    """Every reachable state of every world of `check_worlds`, a case a world."""
    cases = []
    worlds = check_worlds()
    for number, world in enumerate(worlds, 1):
        H, W = world.walls.shape
        name = f"world {number} of {len(worlds)} ({H}x{W}, {len(world.objects)} object(s))"
        cases.append(Case(name, {"world": world, "state": list(exact_costs_to_go(world))}))
    return cases


@checker("Exercise 1", cases=_successor_cases)
def check_successors(fn: Callable[[GridWorld, State], list[tuple[str, State, float]]]) -> str:
    """`fn(world, state)` lists (action, next state, cost) for exactly the actions that change it."""
    hints = {
        "pickup": "pick up only with empty hands, an object on the cell, not yet delivered.",
        "drop": "drop only while holding an object and standing on the goal; it joins delivered.",
        "twice": "list each successor once.",
    }
    move_hint = (
        "moves go to free cells inside the map and cost 1.0; a bump changes nothing, so leave "
        "it out."
    )
    checked = 0
    for case in _successor_cases():
        world = case["world"]
        for state in case["state"]:
            where = f"{case.name}, {_where(world, state)}"
            got = run_learner("Exercise 1", fn, world, state)
            try:
                got_list = [(str(a), s, float(c)) for a, s, c in got]
                expected = set(reference_successors(world, state))
                extra = [t for t in got_list if t not in expected]
            except (TypeError, ValueError):
                raise ExerciseFailed(
                    f"Exercise 1: for {where}you returned {got!r}.\n"
                    "hint: return a list of (action, next_state, cost) triples, e.g. "
                    "[('up', State((0, 1)), 1.0)]."
                ) from None
            missing = [t for t in expected if t not in got_list]
            if extra or missing or len(got_list) != len(expected):
                action = (extra or missing or [("twice",)])[0][0]
                raise ExerciseFailed(
                    f"Exercise 1: for {where}"
                    f"  missing:    {missing}\n  unexpected: {extra}\n"
                    f"  you listed {len(got_list)} successors, expected {len(expected)}\n"
                    f"hint: {hints.get(action, move_hint)}"
                )
            checked += 1
        plan = run_learner("Exercise 1", plan_with_successors, world, lambda s, w=world: fn(w, s))
        assert plan.cost == astar(world).cost  # same successors as the reference: same cost
    return f"the successors of {checked} states match; A* with them finds optimal plans."
