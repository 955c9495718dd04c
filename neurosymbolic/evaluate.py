"""Evaluation (lesson 11): many seeded episodes per agent, summarised in one row per agent.

Every agent meets the same worlds and the same observation noise (episode ``i`` uses world seed
``seed + i`` and noise seed ``seed + i``). At the defaults (noise 0.8, slip 0.05) thresholding the
noisy look flips about a quarter of the cells and one slip in twenty desynchronises a blind plan,
so the open-loop baselines fail often; the hybrid agent senses, replans and recovers.
"""

import math
from dataclasses import dataclass

import numpy as np

from neurosymbolic.agent import Agent, HybridAgent, OpenLoopPlanner, PolicyAgent
from neurosymbolic.perception import Perception, load_perception
from neurosymbolic.planner import astar
from neurosymbolic.policy import Policy, load_policy
from neurosymbolic.world import Episode, GridWorld

DEFAULT_NOISE = 0.8
DEFAULT_SLIP = 0.05


@dataclass
class EvalRow:
    agent: str
    success_rate: float  # solved episodes / episodes
    mean_steps: float  # actions taken, over all episodes
    optimality: float  # actions / optimal plan length, over solved episodes (nan if none)
    replans: float  # mean plans made after the first one


def standard_agents(
    perception: Perception | None = None, policy: Policy | None = None
) -> list[Agent]:
    """The four agents of lesson 11; the networks default to the weights shipped with the package."""
    perception = perception or load_perception()
    policy = policy or load_policy()
    return [
        OpenLoopPlanner(None),
        OpenLoopPlanner(perception),
        PolicyAgent(perception, policy),
        HybridAgent(perception, policy),
    ]


def evaluate(
    n_worlds: int = 100,
    noise: float = DEFAULT_NOISE,
    slip: float = DEFAULT_SLIP,
    seed: int = 0,
    agents: list[Agent] | None = None,
    size: int = 12,
    wall_density: float = 0.3,
    n_objects: int = 2,
    max_steps: int = 200,
) -> list[EvalRow]:
    """Run every agent on `n_worlds` generated worlds and tabulate how they did."""
    if n_worlds < 1:
        raise ValueError(f"n_worlds must be >= 1, got {n_worlds}.\nhelp: e.g. n_worlds=100.")
    if noise < 0 or not 0.0 <= slip <= 1.0:
        raise ValueError(
            f"need noise >= 0 and 0 <= slip <= 1, got noise={noise}, slip={slip}.\n"
            f"help: the defaults are noise={DEFAULT_NOISE}, slip={DEFAULT_SLIP}."
        )
    agents = agents if agents is not None else standard_agents()
    seeds = [seed + i for i in range(n_worlds)]
    worlds = [GridWorld.random(size, wall_density, n_objects, s) for s in seeds]
    optimum = [astar(w).cost for w in worlds]
    return [
        summarize(agent.name, agent.run_many(worlds, seeds, noise, slip, max_steps), optimum)
        for agent in agents
    ]


def summarize(name: str, episodes: list[Episode], optimum: list[float]) -> EvalRow:
    """One table row from episodes and each episode's optimal plan cost (A* on the true map)."""
    ratios = [e.steps / best for e, best in zip(episodes, optimum, strict=True) if e.success]
    return EvalRow(
        agent=name,
        success_rate=float(np.mean([e.success for e in episodes])),
        mean_steps=float(np.mean([e.steps for e in episodes])),
        optimality=float(np.mean(ratios)) if ratios else math.nan,
        replans=float(np.mean([e.replans for e in episodes])),
    )


def format_table(rows: list[EvalRow]) -> str:
    """The rows as an aligned text table."""
    lines = [f"{'agent':<18} {'success':>8} {'steps':>7} {'optimality':>10} {'replans':>8}"]
    for r in rows:
        lines.append(
            f"{r.agent:<18} {r.success_rate:>8.2f} {r.mean_steps:>7.1f} {r.optimality:>10.2f} {r.replans:>8.2f}"
        )
    return "\n".join(lines)
