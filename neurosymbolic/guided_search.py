"""Heuristics against each other (lesson 12): search effort and path cost of A* guided by a table.

`astar_table` is the cell-level A* of lesson 8 with the heuristic read from an ``(H, W)`` table,
scaled by `weight`. With the Manhattan table and weight 1 it is plain A* (optimal: the table is
a lower bound); weight > 1 is weighted A* (Pohl, 1970), which trusts the estimate more, expands
fewer cells and returns a path at most `weight` times the optimum; the learned table of
`neurosymbolic.heuristic_net` makes no such promise, so `compare_heuristics` measures what it
costs: for each method, the cells expanded and the path cost, both relative to plain A*.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neurosymbolic.grid_graph import GridGraph
from neurosymbolic.planner import NoPlanError, Plan, astar_search
from neurosymbolic.world import Cell, check_cell, distance_map, largest_region, random_walls

Problem = tuple[np.ndarray, Cell, Cell]  # walls (H, W), start, goal
HeuristicTable = Callable[[np.ndarray, Cell], np.ndarray]  # (walls, goal) -> (H, W) cost-to-go


def manhattan_table(walls: np.ndarray, goal: Cell) -> np.ndarray:
    """The admissible heuristic as a table: ``|row - goal_row| + |col - goal_col|`` ``(H, W)``."""
    rows, cols = np.indices(walls.shape)
    return (np.abs(rows - goal[0]) + np.abs(cols - goal[1])).astype(np.float64)


def astar_table(
    walls: np.ndarray, start: Cell, goal: Cell, table: np.ndarray, weight: float = 1.0
) -> Plan:
    """A 4-connected start-to-goal path by A* with ``f = cost so far + weight * table[cell]``
    (`neurosymbolic.planner.astar_search` over the cells of a `GridGraph`)."""
    walls = np.asarray(walls, dtype=bool)
    if np.shape(table) != walls.shape:
        raise ValueError(
            f"the heuristic table must have the map's shape {walls.shape}, got {np.shape(table)}.\n"
            "help: build it with manhattan_table(walls, goal) or net.cost_to_go(walls, goal)."
        )
    start = check_cell("start", start, walls, allow_wall=True)
    goal = check_cell("goal", goal, walls, allow_wall=True)
    graph = GridGraph(walls, moves=4)
    goal_index = graph.index(goal)
    h = graph.lookup(weight * np.asarray(table, dtype=np.float64))  # (H, W)
    found = astar_search(graph.index(start), graph.successors, h, lambda i: i == goal_index)
    if found.goal is None:
        raise NoPlanError(f"no path from {start} to {goal}.\nhelp: the goal is walled off.")
    return found.plan(graph.cell)


def random_problems(
    count: int, size: int = 32, wall_density: float = 0.3, seed: int = 0
) -> list[Problem]:
    """`count` generated maps, each with a start and goal at least ``size`` steps apart."""
    rng = np.random.default_rng(seed)
    problems = []
    while len(problems) < count:
        walls = random_walls((size, size), wall_density, rng)
        region = largest_region(walls)
        start = region[rng.integers(len(region))]
        dist = distance_map(walls, start)  # (size, size)
        far = np.argwhere(dist >= size)
        if len(far):
            goal = tuple(int(v) for v in far[rng.integers(len(far))])
            problems.append((walls, start, goal))
    return problems


def room_walls(size: int = 64, room: int = 8, seed: int = 0) -> np.ndarray:
    """A map in the style of the Moving AI ``room`` set: a grid of square rooms, each wall between
    two rooms opened by one random door (and a few walls missing)."""
    rng = np.random.default_rng(seed)
    walls = np.zeros((size, size), dtype=bool)  # (size, size)
    walls[::room, :] = True
    walls[:, ::room] = True
    for top in range(0, size, room):
        for left in range(0, size, room):
            if top:  # a door in the wall above this room
                walls[top, left + rng.integers(1, room)] = False
            if left:  # and in the wall to its left
                walls[top + rng.integers(1, room), left] = False
            if rng.random() < 0.15 and top:  # sometimes a wide opening
                walls[top, left + 1 : left + room] = False
    return walls


def room_problems(count: int, size: int = 64, room: int = 8, seed: int = 0) -> list[Problem]:
    """`count` problems on one `room_walls` map, start and goal at least ``size // 2`` apart in
    Manhattan distance (several rooms to cross)."""
    walls = room_walls(size, room, seed)
    rng = np.random.default_rng(seed)
    free = largest_region(walls)
    problems = []
    while len(problems) < count:
        a, b = (free[i] for i in rng.choice(len(free), size=2, replace=False))
        if abs(a[0] - b[0]) + abs(a[1] - b[1]) >= size // 2:
            problems.append((walls, a, b))
    return problems


def true_cost_table(walls: np.ndarray, goal: Cell) -> np.ndarray:
    """The perfect heuristic, for reference: exact step counts to `goal` by breadth-first search."""
    return distance_map(walls, goal).astype(np.float64)  # (H, W), -1 where cut off (never reached)


def heuristic_methods(net, weights: tuple[float, ...] = (1.5, 2.0)) -> dict:
    """The methods of lesson 12: plain A*, weighted A* at `weights`, the learned heuristic `net`
    (a `HeuristicNet`) and the perfect heuristic, each as (table builder, weight)."""
    methods = {"A* (Manhattan)": (manhattan_table, 1.0)}
    methods |= {f"weighted A* w={w:g}": (manhattan_table, w) for w in weights}
    methods["learned heuristic"] = (net.cost_to_go, 1.0)
    methods["true cost-to-go"] = (true_cost_table, 1.0)
    return methods


@dataclass
class MethodResult:
    """One method over a set of problems; ratios are per problem, against plain A*, then averaged."""

    method: str
    expanded: float  # mean cells expanded
    expanded_ratio: float  # mean of expanded / expanded by A* with Manhattan
    cost_ratio: float  # mean of path cost / optimal cost (1.0 = always optimal)
    worst_cost_ratio: float  # the largest path cost / optimal cost seen
    optimal_share: float  # fraction of problems solved at the optimal cost
    expanded_ratios: tuple[float, ...] = ()  # per problem, for the spread
    cost_ratios: tuple[float, ...] = ()  # per problem

    def expanded_spread(self, low: float = 10, high: float = 90) -> tuple[float, float]:
        """The `low` and `high` percentiles of expanded / A*'s over the problems (10th, 90th)."""
        ratios = self.expanded_ratios or (self.expanded_ratio,)
        return float(np.percentile(ratios, low)), float(np.percentile(ratios, high))


def compare_heuristics(
    problems: list[Problem], methods: dict[str, tuple[HeuristicTable, float]]
) -> list[MethodResult]:
    """Run every method (a heuristic table and a weight) on every problem against plain A*."""
    if not problems or not methods:
        raise ValueError("need at least one problem and one method.\nhelp: see random_problems.")
    baseline = [astar_table(w, s, g, manhattan_table(w, g)) for w, s, g in problems]
    results = []
    for name, (make_table, weight) in methods.items():
        expanded, ratios, costs = [], [], []
        for (walls, start, goal), best in zip(problems, baseline, strict=True):
            plan = astar_table(walls, start, goal, make_table(walls, goal), weight)
            expanded.append(plan.expanded)
            ratios.append(plan.expanded / best.expanded)
            costs.append(plan.cost / best.cost)
        results.append(
            MethodResult(
                name,
                float(np.mean(expanded)),
                float(np.mean(ratios)),
                float(np.mean(costs)),
                float(np.max(costs)),
                float(np.mean(np.isclose(costs, 1.0))),
                tuple(ratios),
                tuple(costs),
            )
        )
    return results


def format_results(results: list[MethodResult]) -> str:
    """The results as an aligned text table: means, the 10th-90th percentile range of the
    expansion ratio over the problems, and the worst path cost."""
    lines = [
        f"{'method':<24} {'expanded':>9} {'vs A*':>6} {'10-90%':>10} {'cost/opt':>9} "
        f"{'worst':>6} {'optimal':>8}"
    ]
    for r in results:
        low, high = r.expanded_spread()
        lines.append(
            f"{r.method:<24} {r.expanded:>9.1f} {r.expanded_ratio:>6.2f} "
            f"{f'{low:.2f}-{high:.2f}':>10} {r.cost_ratio:>9.3f} {r.worst_cost_ratio:>6.2f} "
            f"{r.optimal_share:>8.2f}"
        )
    return "\n".join(lines)
