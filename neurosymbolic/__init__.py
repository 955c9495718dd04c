"""neurosymbolic: a grid agent that plans with A* and perceives and acts with small tinygrad networks.

Cells are ``(row, col)`` tuples indexing ``(H, W)`` numpy maps as ``walls[row, col]``.
"""

from neurosymbolic.agent import HybridAgent, HybridConfig, OpenLoopPlanner, PolicyAgent
from neurosymbolic.evaluate import EvalRow, evaluate, format_table, standard_agents
from neurosymbolic.movingai import (
    Scenario,
    read_movingai_map,
    read_movingai_scenarios,
    write_movingai_map,
    write_movingai_scenarios,
)
from neurosymbolic.perception import (
    Perception,
    PerceptionConfig,
    PerceptionTraining,
    load_perception,
    score_perception,
    train_perception,
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
from neurosymbolic.policy import (
    Policy,
    PolicyConfig,
    PolicyTraining,
    load_policy,
    score_policy,
    train_policy,
)
from neurosymbolic.world import ACTIONS, MOVES, Cell, Episode, GridWorld, State

__all__ = [
    "EvalRow",
    "HybridAgent",
    "HybridConfig",
    "OpenLoopPlanner",
    "Perception",
    "PerceptionConfig",
    "PerceptionTraining",
    "Policy",
    "PolicyAgent",
    "PolicyConfig",
    "PolicyTraining",
    "evaluate",
    "format_table",
    "load_perception",
    "load_policy",
    "score_perception",
    "score_policy",
    "standard_agents",
    "train_perception",
    "train_policy",
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
