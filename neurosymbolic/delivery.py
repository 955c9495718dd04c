"""The delivery task as a search problem (lesson 8): compact states, their successors, heuristics.

A state of the task is where the agent stands, what it holds and what it has delivered (`State`).
A* searches a compact copy of it, a `Key` of three ints: the cell's index in a `GridGraph`, the held
object's position in sorted name order (-1: nothing) and a bitmask of the delivered objects, which
hashes fast and needs no frozenset. The moves are the `GridGraph`'s. `delivery_heuristic` holds the
heuristics, the ``collect`` lower bound among them; `neurosymbolic.planner.astar` runs the search.
"""

from collections.abc import Callable

import numpy as np

from neurosymbolic.grid_graph import GridGraph, check_moves, distance
from neurosymbolic.world import Cell, GridWorld, State

HEURISTICS = ("collect", "manhattan", "zero")
Key = tuple[int, int, int]  # (cell index, held object index or -1, delivered bitmask)
Heuristic = str | Callable[[State], float]


def delivery_heuristic(
    world: GridWorld, name: str = "collect", moves: int = 4
) -> Callable[[Cell, int, int], float]:
    """``h(cell, held, delivered)``: a lower bound on the cost still needed to a solved state.

    `held` is the held object's index in sorted name order (-1: none), `delivered` a bitmask of the
    delivered ones (bit i: object i). ``collect``: the pickups and drops still to do, plus the
    longest of the trips "agent -> object -> goal" over undelivered objects (just "agent -> goal"
    for the held one and when all are delivered), with Manhattan (moves=4) or octile (moves=8)
    distances. A move changes each trip by at most its cost and a pickup/drop removes one action,
    so the bound is consistent. ``manhattan``: the distance to the goal only. ``zero``: 0, which
    makes A* Dijkstra's algorithm.
    """
    if name not in HEURISTICS:
        raise ValueError(
            f"unknown heuristic {name!r}.\nhelp: use one of {HEURISTICS} or a function."
        )
    check_moves(moves)
    dist = distance(moves)
    goal_row, goal_col = world.goal
    if name == "zero":
        return lambda cell, held, delivered: 0.0
    if name == "manhattan":
        return lambda cell, held, delivered: dist(cell[0], cell[1], goal_row, goal_col)
    objects = [world.objects[n] for n in sorted(world.objects)]
    trips = [(row, col, dist(row, col, goal_row, goal_col)) for row, col in objects]

    def collect(cell: Cell, held: int, delivered: int) -> float:
        row, col = cell
        longest, actions_left = dist(row, col, goal_row, goal_col), 0
        for i, (obj_row, obj_col, obj_to_goal) in enumerate(trips):
            if i == held:
                actions_left += 1  # its drop
            elif not delivered >> i & 1:
                actions_left += 2  # its pickup and its drop
                longest = max(longest, dist(row, col, obj_row, obj_col) + obj_to_goal)
        return actions_left + longest

    return collect


def heuristic_value(world: GridWorld, state: State, name: str = "collect", moves: int = 4) -> float:
    """The heuristic `name` of a `State`: a lower bound on the cost still needed to solve it (see
    `delivery_heuristic` for what each one counts)."""
    h = delivery_heuristic(world, name, moves)
    return float(h(state.cell, *_held_and_delivered(sorted(world.objects), state)))


def _held_and_delivered(names: list[str], state: State) -> tuple[int, int]:
    """The held object's index in `names` (-1: none) and the bitmask of the delivered ones."""
    held = names.index(state.held) if state.held is not None else -1
    return held, sum(1 << names.index(n) for n in state.delivered)


class Delivery:
    """The task on `walls` ``(H, W)`` as a search over keys: successors, goal test, heuristic.

    Every action costs 1 (a diagonal move sqrt(2)); the successors of a key are its moves onto free
    cells, then the pickup of each object lying on its cell (with empty hands, not yet delivered),
    then a drop on the goal while holding an object.
    """

    def __init__(self, world: GridWorld, walls: np.ndarray, moves: int = 4):
        self.world, self.moves, self.graph = world, moves, GridGraph(walls, moves)
        self.names = sorted(world.objects)
        self.goal = self.graph.index(world.goal)
        self.objects = [self.graph.index(world.objects[n]) for n in self.names]
        self.all_delivered = (1 << len(self.names)) - 1

    def key(self, state: State) -> Key:
        return (self.graph.index(state.cell), *_held_and_delivered(self.names, state))

    def state(self, key: Key) -> State:
        index, held, delivered = key
        names = frozenset(n for i, n in enumerate(self.names) if delivered >> i & 1)
        return State(self.graph.cell(index), self.names[held] if held >= 0 else None, names)

    def cell(self, key: Key) -> Cell:
        return self.graph.cell(key[0])

    def is_goal(self, key: Key) -> bool:
        return key[0] == self.goal and key[1] < 0 and key[2] == self.all_delivered

    def successors(self, key: Key) -> list[tuple[str, Key, float]]:
        index, held, delivered = key
        children = [(a, (j, held, delivered), c) for a, j, c in self.graph.successors(index)]
        if held < 0:
            for i, obj_index in enumerate(self.objects):
                if obj_index == index and not delivered >> i & 1:
                    children.append(("pickup", (index, i, delivered), 1.0))
        elif index == self.goal:
            children.append(("drop", (index, -1, delivered | 1 << held), 1.0))
        return children

    def heuristic(self, heuristic: Heuristic) -> Callable[[Key], float]:
        """A named heuristic (see `delivery_heuristic`) or a function of a `State`, on keys."""
        if callable(heuristic):
            return lambda key: heuristic(self.state(key))
        h, cell = delivery_heuristic(self.world, heuristic, self.moves), self.graph.cell
        return lambda key: h(cell(key[0]), key[1], key[2])
