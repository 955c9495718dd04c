"""A textbook A* for the tests, written apart from the package, over plain states: `State`s moved
by the world's own `step`, and ``(row, col)`` cells with their own neighbour rule.

The package's searches must expand exactly what this one does, in the same order, and return the
same plan: the same A* (pop the lowest priority, skip a popped state already expanded, stop when a
goal is popped, push a neighbour when its cost drops) with the same tie-breaking, given by
`priority`.
"""

import heapq
import math

import numpy as np

from neurosymbolic.world import ACTIONS, GridWorld

SQRT2 = math.sqrt(2.0)
# (d_row, d_col) -> name, in the order the package lists moves
STEP_NAMES = {
    (-1, 0): "up",
    (1, 0): "down",
    (0, -1): "left",
    (0, 1): "right",
    (-1, -1): "up-left",
    (-1, 1): "up-right",
    (1, -1): "down-left",
    (1, 1): "down-right",
}


def textbook_astar(start, neighbours, h, is_goal, priority):
    """(actions, states, cost, expanded, expansion order); `priority(f, g, count, state)` orders
    the frontier, `count` numbering the pushes."""
    best, parent, done, order = {start: 0.0}, {}, set(), []
    frontier, count = [(priority(h(start), 0.0, 0, start), start)], 0
    while frontier:
        _, state = heapq.heappop(frontier)
        if state in done:
            continue
        done.add(state)
        order.append(state)
        if is_goal(state):
            actions, states = [], [state]
            while states[-1] in parent:
                before, action = parent[states[-1]]
                actions.insert(0, action)
                states.append(before)
            return actions, states[::-1], best[state], len(done), order
        for action, nxt, cost in neighbours(state):
            g = best[state] + cost
            if nxt not in done and g < best.get(nxt, math.inf):
                best[nxt], parent[nxt] = g, (state, action)
                count += 1
                heapq.heappush(frontier, (priority(g + h(nxt), g, count, nxt), nxt))
    return None


def world_rules(world: GridWorld):
    """The successors of a `State` by the world's own `step`, bumps left out."""

    def neighbours(state):
        moved = [(a, world.step(state, a), 1.0) for a in ACTIONS]
        return [(a, nxt, cost) for a, nxt, cost in moved if nxt != state]

    return neighbours


def cell_moves(walls: np.ndarray, moves: int):
    """The moves of a ``(row, col)`` cell onto free cells; a diagonal may not cut a wall corner."""
    H, W = walls.shape

    def free(r, c):
        return 0 <= r < H and 0 <= c < W and not walls[r, c]

    def neighbours(cell):
        row, col = cell
        found = []
        for (d_row, d_col), name in list(STEP_NAMES.items())[:moves]:
            r, c = row + d_row, col + d_col
            if free(r, c) and (not (d_row and d_col) or (free(row, c) and free(r, col))):
                found.append((name, (r, c), SQRT2 if d_row and d_col else 1.0))
        return found

    return neighbours


def octile(a, b):
    d_row, d_col = abs(a[0] - b[0]), abs(a[1] - b[1])
    return max(d_row, d_col) + (SQRT2 - 1) * min(d_row, d_col)


def deeper_first(f, g, count, state):
    return (f, -g, state)


def first_in_first_out(f, g, count, state):
    return (f, count)
