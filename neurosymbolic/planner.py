"""A* search (lesson 8): optimal plans for the delivery task, and plain start-to-goal paths.

A* pops the state with the lowest ``f = cost so far + heuristic`` from a heapq frontier. Stale
entries stay in the heap and are skipped when popped (lazy deletion), and a closed set keyed by the
whole state (cell, held object, delivered set) means each state is expanded once. With a
consistent heuristic the first time the solved state is popped its cost is optimal (Hart, Nilsson
and Raphael, 1968: https://doi.org/10.1109/TSSC.1968.300136).

Every action costs 1; with ``moves=8`` diagonal steps cost sqrt(2) and may not cut a wall corner
(both orthogonal neighbours must be free), the convention of the Moving AI benchmarks.
"""

import heapq
import math
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

import numpy as np

from neurosymbolic.world import ACTIONS, Cell, GridWorld, State, check_cell, distance_map

SQRT2 = math.sqrt(2.0)
# name, (d_row, d_col), cost; the first four are the world's moves
STEPS = [
    ("up", -1, 0, 1.0),
    ("down", 1, 0, 1.0),
    ("left", 0, -1, 1.0),
    ("right", 0, 1, 1.0),
    ("up-left", -1, -1, SQRT2),
    ("up-right", -1, 1, SQRT2),
    ("down-left", 1, -1, SQRT2),
    ("down-right", 1, 1, SQRT2),
]
HEURISTICS = ("collect", "manhattan", "zero")
# The most search states A* agrees to plan over: cells x (held: nothing or one object) x delivered
# subsets. 2**22 covers a 2048x2048 map with no objects or a 512x512 world with 2; past it a pure
# Python search runs for minutes and gigabytes. Pass `max_states=` to raise it on purpose.
MAX_SEARCH_STATES = 2**22
Heuristic = str | Callable[[State], float]
# state -> (action, next state, cost) for every action that changes the state
Successors = Callable[[State], Iterable[tuple[str, State, float]]]


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


def _check_moves(moves: int) -> None:
    if moves not in (4, 8):
        raise ValueError(f"moves must be 4 or 8, got {moves!r}.\nhelp: 8 adds diagonal moves.")


def _distance(moves: int) -> Callable[[int, int, int, int], float]:
    """Manhattan distance for 4-connected moves, octile distance for 8-connected ones."""
    if moves == 4:
        return lambda r1, c1, r2, c2: abs(r1 - r2) + abs(c1 - c2)
    return lambda r1, c1, r2, c2: (
        max(abs(r1 - r2), abs(c1 - c2)) + (SQRT2 - 1) * min(abs(r1 - r2), abs(c1 - c2))
    )


def heuristic_value(world: GridWorld, state: State, name: str = "collect", moves: int = 4) -> float:
    """A lower bound on the cost still needed from `state` to a solved state.

    ``collect``: the pickups and drops still to do, plus the longest of the trips "agent -> object ->
    goal" over undelivered objects (just "agent -> goal" for the held one and when all are
    delivered), with Manhattan (moves=4) or octile (moves=8) distances. A move changes each trip by
    at most its cost and a pickup/drop removes one action, so the bound is consistent.
    ``manhattan``: the distance to the goal only. ``zero``: 0, which makes A* Dijkstra's algorithm.
    """
    if name not in HEURISTICS:
        raise ValueError(
            f"unknown heuristic {name!r}.\nhelp: use one of {HEURISTICS} or a function."
        )
    _check_moves(moves)
    if name == "zero":
        return 0.0
    dist = _distance(moves)
    (row, col), (goal_row, goal_col) = state.cell, world.goal
    to_goal = dist(row, col, goal_row, goal_col)
    if name == "manhattan":
        return float(to_goal)
    longest, actions_left = to_goal, 0
    for obj, (obj_row, obj_col) in world.objects.items():
        if obj == state.held:
            actions_left += 1
        elif obj not in state.delivered:
            actions_left += 2
            trip = dist(row, col, obj_row, obj_col) + dist(obj_row, obj_col, goal_row, goal_col)
            longest = max(longest, trip)
    return float(actions_left + longest)


def astar(
    world: GridWorld,
    moves: int = 4,
    heuristic: Heuristic = "collect",
    walls: np.ndarray | None = None,
    state: State | None = None,
    record_expansions: bool = False,
    successors: Successors | None = None,
    closed_key: Callable[[State], Hashable] | None = None,
    max_states: int = MAX_SEARCH_STATES,
) -> Plan:
    """An optimal plan that delivers every object to the goal and ends on it.

    `walls` replaces the world's walls (plan on a believed map); `state` replaces the initial state
    (replan mid-episode). The agent's own cell counts as free. Raises `NoPlanError` when no plan exists.
    Lesson 8 swaps in its own pieces: `successors` replaces the built-in moves, pickups and drops
    (`walls` and `moves` then go unused), and `closed_key` maps a state to what the closed set
    remembers (by default the whole state). A search over more than `max_states` states (see
    `search_states`) raises ValueError before it starts.
    """
    _check_moves(moves)
    walls = _planning_walls(world, walls, state)
    state = state or world.initial_state()
    hooked = successors is not None or closed_key is not None
    if not callable(heuristic):
        heuristic_value(world, state, heuristic, moves)  # validates the name
        nothing_left = state.held is None and len(state.delivered) == len(world.objects)
        if not hooked and (not world.objects or nothing_left):
            # nothing left to deliver: the fast cell-only search finds the same optimal cost
            name = "zero" if heuristic == "zero" else "manhattan"
            return astar_path(
                walls, state.cell, world.goal, moves, name, record_expansions, max_states
            )
    check_search_size(walls.shape, len(world.objects), max_states)

    names = sorted(world.objects)
    steps = STEPS[:moves]
    H, W = walls.shape
    blocked = walls.tolist()  # nested lists index faster than numpy in a Python loop

    def to_state(key: tuple) -> State:
        delivered = frozenset(n for i, n in enumerate(names) if key[2] >> i & 1)
        return State(key[0], names[key[1]] if key[1] >= 0 else None, delivered)

    def to_key(state: State) -> tuple:
        held_index = names.index(state.held) if state.held else -1
        return (state.cell, held_index, sum(1 << names.index(n) for n in state.delivered))

    def h(key: tuple) -> float:
        return heuristic(to_state(key)) if callable(heuristic) else fast_h(key)

    def mark(key: tuple) -> Hashable:
        return key if closed_key is None else closed_key(to_state(key))

    fast_h = None if callable(heuristic) else _key_heuristic(world, names, heuristic, moves)
    all_delivered = (1 << len(names)) - 1
    start = to_key(state)
    cost_so_far = {start: 0.0}
    came_from: dict[tuple, tuple[tuple, str]] = {}
    frontier = [(h(start), 0, start)]
    closed, expansions, counter = set(), [], 0
    while frontier:
        _, _, key = heapq.heappop(frontier)
        if mark(key) in closed:
            continue  # a stale entry: this state was already expanded with a lower cost
        closed.add(mark(key))
        if record_expansions:
            expansions.append(key[0])
        (row, col), held, delivered = key
        if (row, col) == world.goal and held < 0 and delivered == all_delivered:
            return _rebuild(
                came_from,
                key,
                cost_so_far[key],
                len(closed),
                expansions if record_expansions else None,
            )
        if successors is not None:
            children = [(to_key(s), a, cost) for a, s, cost in successors(to_state(key))]
        else:
            children = []
            for name, d_row, d_col, cost in steps:
                r, c = row + d_row, col + d_col
                if 0 <= r < H and 0 <= c < W and not blocked[r][c]:
                    if d_row and d_col and (blocked[row][c] or blocked[r][col]):
                        continue  # a diagonal may not cut a wall corner
                    children.append((((r, c), held, delivered), name, cost))
            if held < 0:
                for i, name in enumerate(names):
                    if world.objects[name] == (row, col) and not delivered >> i & 1:
                        children.append((((row, col), i, delivered), "pickup", 1.0))
            elif (row, col) == world.goal:
                children.append((((row, col), -1, delivered | 1 << held), "drop", 1.0))
        for next_key, action, cost in children:
            new_cost = cost_so_far[key] + cost
            if mark(next_key) not in closed and new_cost < cost_so_far.get(next_key, math.inf):
                cost_so_far[next_key] = new_cost
                came_from[next_key] = (key, action)
                counter += 1  # breaks ties first-in first-out, never comparing states
                heapq.heappush(frontier, (new_cost + h(next_key), counter, next_key))
    raise NoPlanError(
        f"no plan delivers {names} to the goal {world.goal} from {state.cell} "
        f"({len(closed)} states expanded).\nhelp: some object or the goal is walled off."
    )


def _key_heuristic(world: GridWorld, names: list[str], name: str, moves: int) -> Callable:
    """`heuristic_value` on A*'s internal state keys (cell, held index, delivered bitmask)."""
    dist = _distance(moves)
    goal_row, goal_col = world.goal
    trips = [(world.objects[n], dist(*world.objects[n], goal_row, goal_col)) for n in names]

    def value(key: tuple) -> float:
        (row, col), held, delivered = key
        to_goal = dist(row, col, goal_row, goal_col)
        if name != "collect":
            return 0.0 if name == "zero" else to_goal
        longest, actions_left = to_goal, 0
        for i, ((obj_row, obj_col), obj_to_goal) in enumerate(trips):
            if i == held:
                actions_left += 1
            elif not delivered >> i & 1:
                actions_left += 2
                longest = max(longest, dist(row, col, obj_row, obj_col) + obj_to_goal)
        return actions_left + longest

    return value


def _rebuild(came_from: dict, key, cost: float, expanded: int, expansions) -> Plan:
    actions, cells = [], [key[0]]
    while key in came_from:
        key, action = came_from[key]
        actions.append(action)
        cells.append(key[0])
    return Plan(actions[::-1], cells[::-1], cost, expanded, expansions)


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

    Cells are flattened to ints (``row * W + col``); costs and the closed set live in flat lists.
    `heuristic` is ``"manhattan"`` (octile distance when moves=8) or ``"zero"``. The start must be
    a free cell inside the map (ValueError otherwise); a goal on a wall raises `NoPlanError`. Maps
    of more than `max_states` cells raise ValueError before the search starts.
    """
    _check_moves(moves)
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
    H, W = walls.shape
    blocked = walls.ravel().tolist()
    start_i, goal_i = start[0] * W + start[1], goal[0] * W + goal[1]
    goal_row, goal_col = goal
    weight = 0.0 if heuristic == "zero" else 1.0
    dist = _distance(moves)
    cost_so_far = [math.inf] * (H * W)
    came_from = [-1] * (H * W)
    closed = bytearray(H * W)
    cost_so_far[start_i] = 0.0
    frontier = [(weight * dist(start[0], start[1], goal_row, goal_col), 0.0, start_i)]
    expansions, expanded = [], 0
    steps = STEPS[:moves]
    while frontier:
        _, neg_cost, i = heapq.heappop(frontier)
        if closed[i]:
            continue  # stale entry (lazy deletion)
        closed[i] = 1
        expanded += 1
        row, col = divmod(i, W)
        if record_expansions:
            expansions.append((row, col))
        if i == goal_i:
            return _rebuild_path(
                came_from,
                goal_i,
                W,
                cost_so_far[goal_i],
                expanded,
                expansions if record_expansions else None,
            )
        base = cost_so_far[i]
        for _, d_row, d_col, step_cost in steps:
            r, c = row + d_row, col + d_col
            if r < 0 or r >= H or c < 0 or c >= W:
                continue
            j = r * W + c
            if blocked[j] or closed[j]:
                continue
            if d_row and d_col and (blocked[row * W + c] or blocked[r * W + col]):
                continue  # no corner cutting
            new_cost = base + step_cost
            if new_cost < cost_so_far[j]:
                cost_so_far[j] = new_cost
                came_from[j] = i
                # ties on f go to the deeper node (larger cost so far), which reaches the goal sooner
                heapq.heappush(
                    frontier, (new_cost + weight * dist(r, c, goal_row, goal_col), -new_cost, j)
                )
    raise NoPlanError(
        f"no path from {start} to {goal} ({expanded} cells expanded).\nhelp: the goal is walled off."
    )


def _rebuild_path(
    came_from: list[int], goal_i: int, W: int, cost: float, expanded: int, expansions
) -> Plan:
    names = {(d_row, d_col): name for name, d_row, d_col, _ in STEPS}
    cells = [divmod(goal_i, W)]
    while came_from[goal_i] >= 0:
        goal_i = came_from[goal_i]
        cells.append(divmod(goal_i, W))
    cells.reverse()
    actions = [names[(b[0] - a[0], b[1] - a[1])] for a, b in zip(cells, cells[1:], strict=False)]
    return Plan(actions, cells, cost, expanded, expansions)


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
