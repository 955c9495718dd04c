"""neurosymbolic: a grid agent that plans with A* and perceives and acts with small tinygrad networks.

Cells are ``(row, col)`` tuples indexing ``(H, W)`` numpy maps as ``walls[row, col]``.
"""

from neurosymbolic.movingai import (
    Scenario,
    read_movingai_map,
    read_movingai_scenarios,
    write_movingai_map,
    write_movingai_scenarios,
)
from neurosymbolic.planner import (
    NoPlanError,
    Plan,
    astar,
    astar_path,
    bfs_distance,
    bfs_plan_cost,
    heuristic_value,
)
from neurosymbolic.world import ACTIONS, MOVES, Cell, Episode, GridWorld, State

__all__ = [
    "ACTIONS",
    "MOVES",
    "Cell",
    "Episode",
    "GridWorld",
    "NoPlanError",
    "Plan",
    "Scenario",
    "State",
    "astar",
    "astar_path",
    "bfs_distance",
    "bfs_plan_cost",
    "heuristic_value",
    "read_movingai_map",
    "read_movingai_scenarios",
    "write_movingai_map",
    "write_movingai_scenarios",
]
