"""The learner's pieces of the hybrid agent (lesson 14, the second capstone).

Lesson 8's A* (a search over any problem) becomes the agent's planner through
`planner_from_search`; lesson 11's sensing, monitor and recovery rule plug straight into
`HybridAgent`. Each piece is re-checked by its lesson's checker before it is used.
"""

from course.solutions import Choice, Piece
from neurosymbolic.agent import HybridAgent, needs_replan, planner_from_search, sense
from neurosymbolic.checks import check_astar, check_needs_replan, check_recovery_move, check_sense
from neurosymbolic.perception import Perception
from neurosymbolic.policy import Policy

PIECES = [
    Piece("planner", "08 · Exercise 2", check_astar, check_astar, None),
    Piece("sense", "11 · Exercise 2", check_sense, check_sense, sense),
    Piece("monitor", "11 · Exercise 1", check_needs_replan, check_needs_replan, needs_replan),
    Piece("recovery", "11 · Exercise 4", check_recovery_move, check_recovery_move, None),
]


def agent_from(
    choices: list[Choice], perception: Perception | None, policy: Policy | None
) -> HybridAgent:
    """A `HybridAgent` with the chosen pieces: the learner's where `yours`, else the package's
    (its A*, its sensing and monitor, and the policy's recovery step)."""
    mine = {c.piece.name: c.fn for c in choices if c.yours}
    agent = HybridAgent(
        perception,
        policy,
        sense=mine.get("sense", sense),
        monitor=mine.get("monitor", needs_replan),
        recover=mine.get("recovery"),
    )
    if "planner" in mine:
        agent.planner = planner_from_search(mine["planner"])
    agent.name = "hybrid (yours)" if mine else "hybrid"
    return agent
