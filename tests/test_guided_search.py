"""guided_search: A* on a heuristic table against a textbook A*, the package's A*, BFS and the
weighted-A* bound."""

import numpy as np
import pytest
from astar_reference import cell_moves, deeper_first, textbook_astar

from neurosymbolic.guided_search import (
    astar_table,
    compare_heuristics,
    format_results,
    manhattan_table,
    random_problems,
    room_problems,
    room_walls,
    true_cost_table,
)
from neurosymbolic.heuristic_net import load_heuristic
from neurosymbolic.planner import NoPlanError, astar_path
from neurosymbolic.world import distance_map, largest_region


@pytest.fixture(scope="module")
def problems():
    return random_problems(6, size=20, seed=4)


def test_manhattan_table_is_the_package_astar(problems):
    for walls, start, goal in problems:
        plan = astar_table(walls, start, goal, manhattan_table(walls, goal))
        reference = astar_path(walls, start, goal, moves=4, heuristic="manhattan")
        assert plan.cost == distance_map(walls, start)[goal]  # optimal, by BFS
        assert plan.expanded == reference.expanded  # same order, same tie-breaking
        assert plan.cells[0] == start and plan.cells[-1] == goal
        assert all(not walls[c] for c in plan.cells)
        steps = np.abs(np.diff(np.array(plan.cells), axis=0)).sum(axis=1)
        assert (steps == 1).all() and len(plan.actions) == plan.cost


def test_astar_table_expands_like_a_textbook_astar(problems):
    """Plain, weighted, perfect and learned (the shipped net, as in lesson 12) tables: the same path,
    cost and expansion count as a plain A* over (row, col) cells, ties to the deeper cell."""
    net = load_heuristic()
    for walls, start, goal in problems:
        tables = [
            (manhattan_table(walls, goal), 1.0),
            (manhattan_table(walls, goal), 1.5),
            (true_cost_table(walls, goal), 1.0),
            (net.cost_to_go(walls, goal), 1.0),
        ]
        for table, weight in tables:
            plan = astar_table(walls, start, goal, table, weight)
            actions, cells, cost, expanded, _ = textbook_astar(
                start,
                cell_moves(walls, 4),
                lambda c, table=table, weight=weight: weight * table[c],
                goal.__eq__,
                deeper_first,
            )
            assert (plan.actions, plan.cells, plan.cost, plan.expanded) == (
                actions,
                cells,
                cost,
                expanded,
            )


def test_weighted_astar_stays_within_its_bound(problems):
    for walls, start, goal in problems:
        best = distance_map(walls, start)[goal]
        for weight in (1.5, 3.0):
            plan = astar_table(walls, start, goal, manhattan_table(walls, goal), weight)
            assert best <= plan.cost <= weight * best


def test_perfect_heuristic_expands_only_the_path(problems):
    for walls, start, goal in problems:
        plan = astar_table(walls, start, goal, true_cost_table(walls, goal))
        assert plan.cost == distance_map(walls, start)[goal]
        assert plan.expanded == plan.cost + 1


def test_compare_heuristics_rows(problems):
    methods = {
        "A*": (manhattan_table, 1.0),
        "w=2": (manhattan_table, 2.0),
        "perfect": (true_cost_table, 1.0),
    }
    plain, weighted, perfect = compare_heuristics(problems, methods)
    assert plain.expanded_ratio == 1.0 and plain.cost_ratio == 1.0 and plain.optimal_share == 1.0
    assert 1.0 <= weighted.cost_ratio <= weighted.worst_cost_ratio <= 2.0
    assert perfect.expanded_ratio < 1.0 and perfect.cost_ratio == 1.0
    assert "perfect" in format_results([plain, weighted, perfect])
    for row in (plain, weighted, perfect):  # the spread comes from the per-problem ratios
        assert len(row.expanded_ratios) == len(row.cost_ratios) == len(problems)
        assert np.mean(row.expanded_ratios) == pytest.approx(row.expanded_ratio)
        assert max(row.cost_ratios) == row.worst_cost_ratio
        low, high = row.expanded_spread()
        assert min(row.expanded_ratios) <= low <= row.expanded_ratio <= high
    assert plain.expanded_spread() == (1.0, 1.0)
    assert f"{perfect.expanded_spread()[0]:.2f}-" in format_results([perfect])


def test_problems_are_long_and_solvable(problems):
    for walls, start, goal in problems:
        assert distance_map(walls, start)[goal] >= walls.shape[0]


def test_room_problems_cross_rooms():
    problems = room_problems(5, size=32, room=8, seed=2)
    assert len(problems) == 5 and all(w is problems[0][0] for w, _, _ in problems)
    for walls, start, goal in problems:
        assert abs(start[0] - goal[0]) + abs(start[1] - goal[1]) >= 16
        assert distance_map(walls, start)[goal] > 0


def test_room_map_is_connected():
    walls = room_walls(32, 8, seed=1)
    assert walls.shape == (32, 32) and walls[0].all() and walls[:, 8].sum() < 32
    assert len(largest_region(walls)) == (~walls).sum()  # every room is reachable


def test_bad_input():
    walls = np.zeros((4, 4), dtype=bool)
    with pytest.raises(ValueError, match="the map's shape"):
        astar_table(walls, (0, 0), (3, 3), np.zeros((3, 3)))
    walls[:, 2] = True
    with pytest.raises(NoPlanError, match="walled off"):
        astar_table(walls, (0, 0), (3, 3), manhattan_table(walls, (3, 3)))
    with pytest.raises(ValueError, match="at least one problem"):
        compare_heuristics([], {})
