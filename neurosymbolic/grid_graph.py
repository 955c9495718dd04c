"""Cells as search states (lessons 8 and 12): the moves on a wall map and the distances that bound them.

Every move costs 1; with ``moves=8`` diagonal steps cost sqrt(2) and may not cut a wall corner (both
orthogonal neighbours must be free), the convention of the Moving AI benchmarks. `GridGraph` numbers
the cells of an ``(H, W)`` map row by row inside a one-cell border of walls, so a neighbour is the
index plus a fixed offset and no move needs a bounds check. Indices grow in row-major cell order, so
comparing two indices compares their cells, as A*'s tie-breaking does (`neurosymbolic.planner`).
"""

import math
from collections.abc import Callable

import numpy as np

from neurosymbolic.world import MOVES, Cell

SQRT2 = math.sqrt(2.0)
# name, d_row, d_col, cost: the world's four moves in the world's order, then the diagonals
STEPS = [
    *((name, d_row, d_col, 1.0) for name, (d_row, d_col) in MOVES.items()),
    ("up-left", -1, -1, SQRT2),
    ("up-right", -1, 1, SQRT2),
    ("down-left", 1, -1, SQRT2),
    ("down-right", 1, 1, SQRT2),
]
# index -> (action, next index, cost) for every move allowed from the cell
CellSuccessors = Callable[[int], list[tuple[str, int, float]]]


def check_moves(moves: int) -> None:
    if moves not in (4, 8):
        raise ValueError(f"moves must be 4 or 8, got {moves!r}.\nhelp: 8 adds diagonal moves.")


def distance(moves: int) -> Callable[[int, int, int, int], float]:
    """``dist(row1, col1, row2, col2)``, ignoring walls: Manhattan for 4-connected moves, octile
    (diagonal steps first, then straight ones) for 8-connected ones."""
    if moves == 4:
        return lambda r1, c1, r2, c2: abs(r1 - r2) + abs(c1 - c2)
    return lambda r1, c1, r2, c2: (
        max(abs(r1 - r2), abs(c1 - c2)) + (SQRT2 - 1) * min(abs(r1 - r2), abs(c1 - c2))
    )


class GridGraph:
    """The free cells of `walls` ``(H, W)`` as flat indices, their moves and heuristics on them."""

    def __init__(self, walls: np.ndarray, moves: int = 4):
        check_moves(moves)
        H, W = walls.shape
        self.shape, self.moves, self.width = (H, W), moves, W + 2  # width: a padded row
        # nested Python lists index faster than numpy in a Python loop
        blocked = np.pad(np.asarray(walls, dtype=bool), 1, constant_values=True)  # (H+2, W+2)
        self.blocked = blocked.ravel().tolist()
        self.successors = self._successors()

    def index(self, cell: Cell) -> int:
        return (cell[0] + 1) * self.width + cell[1] + 1

    def cell(self, index: int) -> Cell:
        row, col = divmod(index, self.width)
        return (row - 1, col - 1)

    def _successors(self) -> CellSuccessors:
        blocked, width = self.blocked, self.width
        # name, index offset, cost, and the two orthogonal offsets a diagonal must not cut between
        steps = [(n, dr * width + dc, cost, dr * width, dc) for n, dr, dc, cost in STEPS]
        straight = [(name, offset, cost) for name, offset, cost, _, _ in steps[:4]]

        def straight_successors(i: int) -> list[tuple[str, int, float]]:
            children = []
            for name, offset, cost in straight:
                if not blocked[i + offset]:
                    children.append((name, i + offset, cost))
            return children

        def successors(i: int) -> list[tuple[str, int, float]]:
            children = []
            for name, offset, cost, off_row, off_col in steps:
                if blocked[i + offset]:
                    continue
                if off_row and off_col and (blocked[i + off_row] or blocked[i + off_col]):
                    continue  # a diagonal may not cut a wall corner
                children.append((name, i + offset, cost))
            return children

        return straight_successors if self.moves == 4 else successors

    def distance_to(self, goal: Cell) -> Callable[[int], float]:
        """The Manhattan (moves=4) or octile (moves=8) distance from an index to `goal`."""
        dist, width = distance(self.moves), self.width
        goal_row, goal_col = divmod(self.index(goal), width)
        # (row, col) in padded coordinates: the border cancels in the differences
        return lambda i: dist(i // width, i % width, goal_row, goal_col)

    def lookup(self, table: np.ndarray) -> Callable[[int], float]:
        """A heuristic read from `table` ``(H, W)``, one value a cell."""
        padded = np.pad(np.asarray(table, dtype=np.float64), 1)  # (H+2, W+2), 0 on the border
        return padded.ravel().tolist().__getitem__
