"""grid_graph: flat indices against (row, col) cells, moves against a plain neighbour rule."""

import numpy as np
import pytest
from astar_reference import cell_moves, octile

from neurosymbolic.grid_graph import GridGraph, distance
from neurosymbolic.world import random_walls


@pytest.fixture(scope="module")
def walls():
    walls = random_walls((9, 13), 0.35, np.random.default_rng(0))  # (H, W), not square on purpose
    walls[0, 0] = walls[-1, -1] = False  # corners too
    return walls


def test_indices_follow_row_major_cell_order(walls):
    graph = GridGraph(walls)
    cells = [(r, c) for r in range(walls.shape[0]) for c in range(walls.shape[1])]
    indices = [graph.index(cell) for cell in cells]
    assert indices == sorted(indices)  # comparing indices compares cells, as the tie rule needs
    assert [graph.cell(i) for i in indices] == cells


@pytest.mark.parametrize("moves", [4, 8])
def test_successors_are_the_moves_onto_free_cells(walls, moves):
    graph, reference = GridGraph(walls, moves), cell_moves(walls, moves)
    for row, col in zip(*np.nonzero(~walls), strict=True):
        cell = (int(row), int(col))
        got = [(a, graph.cell(j), cost) for a, j, cost in graph.successors(graph.index(cell))]
        assert got == reference(cell)  # same moves, same order, same costs


@pytest.mark.parametrize("moves", [4, 8])
def test_distance_to_the_goal(walls, moves):
    graph, goal = GridGraph(walls, moves), (7, 2)
    to_goal = graph.distance_to(goal)
    for cell in [(0, 0), (7, 2), (3, 12), (8, 5)]:
        expected = abs(cell[0] - 7) + abs(cell[1] - 2) if moves == 4 else octile(cell, goal)
        assert to_goal(graph.index(cell)) == expected == distance(moves)(*cell, *goal)


def test_lookup_reads_the_table(walls):
    graph = GridGraph(walls)
    table = np.arange(walls.size, dtype=np.float64).reshape(walls.shape) / 7  # (H, W)
    h = graph.lookup(table)
    assert all(h(graph.index((r, c))) == table[r, c] for r, c in np.ndindex(walls.shape))


def test_moves_must_be_4_or_8(walls):
    with pytest.raises(ValueError, match="moves must be 4 or 8"):
        GridGraph(walls, moves=6)
