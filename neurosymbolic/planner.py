"""A* search (lesson 8): the package's one search loop, and the planners that run on it.

`astar_search` pops the state with the lowest ``f = cost so far + heuristic`` from a heapq frontier.
Stale entries stay in the heap and are skipped when popped (lazy deletion), and a closed set means
each state is expanded once. With a consistent heuristic the first time a goal state is popped its
cost is optimal (Hart, Nilsson and Raphael, 1968: https://doi.org/10.1109/TSSC.1968.300136).

Three searches run on it, each a successor function and a heuristic: `astar` plans the delivery task
over (cell, held, delivered) states (`neurosymbolic.delivery`), `astar_path` finds a start-to-goal path
over the cells of a map (`neurosymbolic.grid_graph`), and lesson 12's `guided_search.astar_table`
reads its heuristic from a table. Every action costs 1; with ``moves=8`` diagonal steps cost sqrt(2)
and may not cut a wall corner, the convention of the Moving AI benchmarks.
"""

import heapq
import math
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from neurosymbolic.delivery import Delivery, Heuristic, heuristic_value
from neurosymbolic.grid_graph import GridGraph, check_moves
from neurosymbolic.world import ACTIONS, Cell, GridWorld, State, check_cell, distance_map

# The most search states A* agrees to plan over: cells x (held: nothing or one object) x delivered
# subsets. 2**22 covers a 2048x2048 map with no objects or a 512x512 world with 2; past it a pure
# Python search runs for minutes and gigabytes. Pass `max_states=` to raise it on purpose.
MAX_SEARCH_STATES = 2**22
# state -> (action, next state, cost) for every action that changes the state
Successors = Callable[[Hashable], Iterable[tuple[str, Hashable, float]]]


class ClosedSet(Protocol):
    """The expanded states, as the search asks about them: a `set` or anything with ``in`` and ``add``."""

    def __contains__(self, state: Hashable) -> bool: ...

    def add(self, state: Hashable) -> None: ...


class NoPlanError(RuntimeError):
    """The goal cannot be reached (or the objects not delivered) on the given walls."""


@dataclass
class Plan:
    """A found plan: actions, the cell after each (``cells[0]`` is the start), cost and search effort."""

    actions: list[str]
    cells: list[Cell]
    cost: float
    expanded: int  # states taken off the frontier and expanded
    expansions: list[Cell] | None = None  # cells in expansion order, with record_expansions=True


def search_states(shape: tuple[int, int], n_objects: int) -> int:
    """How many states a delivery search can meet: H * W cells x (n + 1) held x 2**n delivered."""
    return shape[0] * shape[1] * (n_objects + 1) * 2**n_objects


def check_search_size(shape: tuple[int, int], n_objects: int, max_states: int) -> None:
    """Refuse, with the numbers and the fixes, a search larger than `max_states` states."""
    states = search_states(shape, n_objects)
    if states > max_states:
        H, W = shape
        raise ValueError(
            f"a {H}x{W} map with {n_objects} objects has {states:,} search states, over the limit "
            f"of {max_states:,}.\nhelp: plan with fewer objects or on a smaller map, or pass "
            f"max_states={states} to search anyway (it may take minutes and gigabytes)."
        )


@dataclass
class Search:
    """What `astar_search` found: the goal state popped (None: there is none), its cost, the
    number of states expanded, the links back to the start, the successor function and, if
    recorded, the expansion order."""

    goal: Hashable | None
    cost: float
    expanded: int
    came_from: dict  # state -> the state it was reached from
    successors: Successors
    expansions: list | None

    def plan(self, cell: Callable[[Hashable], Cell]) -> Plan:
        """The actions from the start to the goal, with the `cell` of every state on the way."""
        states = [self.goal]
        while states[-1] in self.came_from:  # walk back from the goal; only the start has no link
            states.append(self.came_from[states[-1]])
        states.reverse()
        # came_from keeps no actions (a tuple per push costs time): find each step's action again
        actions = [
            next(a for a, nxt, _ in self.successors(state) if nxt == after)
            for state, after in zip(states, states[1:], strict=False)
        ]
        expansions = None if self.expansions is None else [cell(s) for s in self.expansions]
        return Plan(actions, [cell(s) for s in states], self.cost, self.expanded, expansions)


def astar_search(
    start: Hashable,
    successors: Successors,
    heuristic: Callable[[Hashable], float],
    is_goal: Callable[[Hashable], bool],
    fifo_ties: bool = False,
    record_expansions: bool = False,
    closed: ClosedSet | None = None,
) -> Search:
    """A cheapest way from `start` to a state where `is_goal` holds, given a consistent `heuristic`.

    Ties on f go to the entry with the larger cost so far (the deeper one, nearer its goal), then
    to the smaller state, so states must compare (ints, tuples of ints); with `fifo_ties` they go to
    the entry pushed first instead, and states are never compared. The cell searches break ties the
    first way and the delivery planner the second, as each always has: no one way gives both their
    plans and expansion counts. `closed` replaces the set of expanded states (lesson 8 keys it by
    part of the state).
    """
    cost_so_far = {start: 0.0}
    came_from: dict = {}
    closed = set() if closed is None else closed
    expansions = [] if record_expansions else None
    frontier = [(heuristic(start), 0, start)]  # (f, tie, state)
    expanded, pushed = 0, 0
    push, pop = heapq.heappush, heapq.heappop  # local names are faster in the inner loop
    while frontier:
        _, _, state = pop(frontier)
        if state in closed:
            continue  # a stale entry: this state was already expanded with a lower cost
        closed.add(state)
        expanded += 1
        if record_expansions:
            expansions.append(state)
        if is_goal(state):
            return Search(state, cost_so_far[state], expanded, came_from, successors, expansions)
        cost = cost_so_far[state]
        for _, nxt, step_cost in successors(state):
            new_cost = cost + step_cost
            if nxt not in closed and new_cost < cost_so_far.get(nxt, math.inf):
                cost_so_far[nxt] = new_cost
                came_from[nxt] = state
                pushed += 1
                tie = pushed if fifo_ties else -new_cost  # then the state: see the docstring
                push(frontier, (new_cost + heuristic(nxt), tie, nxt))
    return Search(None, math.inf, expanded, came_from, successors, expansions)


def astar(
    world: GridWorld,
    moves: int = 4,
    heuristic: Heuristic = "collect",
    walls: np.ndarray | None = None,
    state: State | None = None,
    record_expansions: bool = False,
    max_states: int = MAX_SEARCH_STATES,
) -> Plan:
    """An optimal plan that delivers every object to the goal and ends on it.

    `heuristic` is a name in `delivery.HEURISTICS` or a function of a `State`. `walls` replaces the world's
    walls (plan on a believed map); `state` replaces the initial state (replan mid-episode). The
    agent's own cell counts as free. Raises `NoPlanError` when no plan exists, and ValueError for
    a search over more than `max_states` states (see `search_states`) before it starts. With
    nothing left to deliver the plan is `astar_path`'s, as cheap and found faster.
    """
    check_moves(moves)
    walls = _planning_walls(world, walls, state)
    state = state or world.initial_state()
    if not callable(heuristic):
        heuristic_value(world, state, heuristic, moves)  # validates the name
        nothing_left = state.held is None and len(state.delivered) == len(world.objects)
        if not world.objects or nothing_left:
            # nothing left to deliver: the fast cell-only search finds the same optimal cost
            name = "zero" if heuristic == "zero" else "manhattan"
            return astar_path(
                walls, state.cell, world.goal, moves, name, record_expansions, max_states
            )
    check_search_size(walls.shape, len(world.objects), max_states)
    problem = Delivery(world, walls, moves)
    return plan_delivery(
        problem, state, problem.successors, problem.heuristic(heuristic), record_expansions
    )


def plan_delivery(
    problem: Delivery,
    state: State,
    successors: Successors,
    heuristic: Callable[[Hashable], float],
    record_expansions: bool = False,
    closed: ClosedSet | None = None,
) -> Plan:
    """`astar`'s search of `problem` from `state`, with the pieces given (lesson 8 swaps in its own
    successors or closed set), or NoPlanError."""
    start = problem.key(state)
    found = astar_search(
        start,
        successors,
        heuristic,
        problem.is_goal,
        fifo_ties=True,
        record_expansions=record_expansions,
        closed=closed,
    )
    if found.goal is None:
        raise NoPlanError(
            f"no plan delivers {problem.names} to the goal {problem.world.goal} from {state.cell} "
            f"({found.expanded} states expanded).\nhelp: some object or the goal is walled off."
        )
    return found.plan(problem.cell)


def _planning_walls(world: GridWorld, walls: np.ndarray | None, state: State | None) -> np.ndarray:
    if walls is None:
        walls = world.walls
    walls = np.asarray(walls)
    if walls.shape != world.shape or walls.dtype != np.bool_:
        raise ValueError(
            f"walls must be a bool array of the world's shape {world.shape}, got {walls.dtype} "
            f"{walls.shape}.\nhelp: threshold a probability map first: `probs > 0.5`."
        )
    cell = check_cell("the state's cell", (state or world.initial_state()).cell, walls, True)
    if walls[cell]:
        walls = walls.copy()
        walls[cell] = False  # the agent stands there, so it is free whatever the map says
    return walls


def astar_path(
    walls: np.ndarray,
    start: Cell,
    goal: Cell,
    moves: int = 4,
    heuristic: str = "manhattan",
    record_expansions: bool = False,
    max_states: int = MAX_SEARCH_STATES,
) -> Plan:
    """A shortest start-to-goal path on `walls`, fast enough for 512x512 maps in pure Python.

    The search runs over flat cell indices (`GridGraph`). `heuristic` is ``"manhattan"`` (octile
    distance when moves=8) or ``"zero"``. The start must be a free cell inside the map (ValueError
    otherwise); a goal on a wall raises `NoPlanError`. Maps of more than `max_states` cells raise
    ValueError before the search starts.
    """
    check_moves(moves)
    if heuristic not in ("manhattan", "zero"):
        raise ValueError(f"unknown heuristic {heuristic!r}.\nhelp: use 'manhattan' or 'zero'.")
    walls = np.asarray(walls)
    if walls.ndim != 2 or walls.dtype != np.bool_ or walls.size == 0:
        raise ValueError(
            f"walls must be a non-empty 2-D bool array (H, W), got dtype {walls.dtype} and shape "
            f"{walls.shape}.\nhelp: threshold a probability map first: `probs > 0.5`."
        )
    check_search_size(walls.shape, 0, max_states)
    start = check_cell("start", start, walls)
    goal = check_cell("goal", goal, walls, allow_wall=True)
    if walls[goal]:
        raise NoPlanError(f"the goal {goal} is on a wall.\nhelp: choose a free goal cell.")
    graph = GridGraph(walls, moves)
    goal_index = graph.index(goal)
    h = graph.distance_to(goal) if heuristic == "manhattan" else lambda i: 0.0
    found = astar_search(
        graph.index(start),
        graph.successors,
        h,
        lambda i: i == goal_index,
        record_expansions=record_expansions,
    )
    if found.goal is None:
        raise NoPlanError(
            f"no path from {start} to {goal} ({found.expanded} cells expanded).\n"
            "help: the goal is walled off."
        )
    return found.plan(graph.cell)


def bfs_distance(walls: np.ndarray, start: Cell, goal: Cell) -> int:
    """The 4-connected step count from start to goal by breadth-first search (a reference for A*)."""
    steps = int(distance_map(walls, start)[goal])
    if steps < 0:
        raise NoPlanError(f"no path from {start} to {goal}.\nhelp: the goal is walled off.")
    return steps


def bfs_plan_cost(world: GridWorld, walls: np.ndarray | None = None) -> int:
    """The optimal number of actions of the delivery task by breadth-first search over full states.

    Exhaustive and independent of A*: it only uses the world's own `step` rules, so it is slow and
    meant for small worlds and tests.
    """
    rules = (
        world if walls is None else GridWorld(walls, world.start, world.goal, world.objects, False)
    )
    start = rules.initial_state()
    depth = {start: 0}
    frontier = deque([start])
    while frontier:
        state = frontier.popleft()
        if rules.is_solved(state):
            return depth[state]
        for action in ACTIONS:
            nxt = rules.step(state, action)
            if nxt not in depth:
                depth[nxt] = depth[state] + 1
                frontier.append(nxt)
    raise NoPlanError(f"no plan solves {world!r}.\nhelp: some object or the goal is walled off.")
