"""Evaluation (lessons 11-12): many seeded episodes per agent, summarised in one row per agent.

Every agent meets the same worlds and the same observation noise (episode ``i`` uses world seed
``seed + i`` and noise seed ``seed + i``). Two regimes:

* ``default`` (12x12, noise 0.8, slip 0.05, 200 actions): thresholding the noisy look flips about a
  quarter of the cells and one slip in twenty desynchronises a blind plan, so the open-loop
  baselines fail often; the hybrid agent senses, replans and always gets there.
* ``hard`` (20x20, noise 0.6, slip 0.05, a step budget of 1.25x the optimal plan): getting there is
  no longer enough, it must be done without many detours. Here a better map pays in success, so the
  ablation can tell the parts apart.

A success rate from n episodes is a binomial estimate; every row carries its 95% Wilson interval
(Wilson, 1927: https://doi.org/10.1080/01621459.1927.10502953), which stays inside [0, 1] and is
honest at rates near 0 or 1 where the normal approximation is not.
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
    successes: int = 0  # solved episodes
    episodes: int = 0  # episodes run
    ci_low: float = 0.0  # 95% Wilson interval of the success rate
    ci_high: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Regime:
    """The conditions of an evaluation: the worlds, the noise of the look, slips and the step budget.

    Frozen: a variant is a new regime, e.g. ``dataclasses.replace(REGIMES["hard"], noise=0.3)``.
    `GridWorld.random` checks `wall_density` and `objects` when it draws the worlds.
    """

    size: int = 12  # worlds are size x size
    wall_density: float = 0.3  # fraction of wall cells
    objects: int = 2  # objects to deliver, named a-z
    noise: float = DEFAULT_NOISE  # std of the one noisy look
    slip: float = DEFAULT_SLIP  # probability that a move goes another way
    budget: float | None = None  # solved only within ceil(budget * optimal actions); None: no limit
    max_steps: int = 200  # actions before an episode is cut off

    def __post_init__(self):
        if self.size < 2 or self.noise < 0 or not 0.0 <= self.slip <= 1.0:
            raise ValueError(
                f"need size >= 2, noise >= 0, 0 <= slip <= 1; got {self.size}, {self.noise}, "
                f"{self.slip}.\nhelp: see REGIMES for working values."
            )
        if self.budget is not None and self.budget < 1.0:
            raise ValueError(
                f"budget must be >= 1 (a multiple of the optimal plan length), got {self.budget}."
                "\nhelp: e.g. budget=1.25, or None for no budget."
            )


REGIMES = {
    "default": Regime(),
    "hard": Regime(size=20, noise=0.6, slip=0.05, budget=1.25, max_steps=400),
}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a binomial rate ``successes / n`` (z=1.96: 95%)."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}.")
    rate = successes / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


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


def ablation_agents(
    perception: Perception | None = None, policy: Policy | None = None
) -> list[Agent]:
    """The hybrid agent and the variants with one part removed: perception (plan on the raw look),
    the policy (replan after every slip), and monitoring (plan once, the open-loop planner)."""
    perception = perception or load_perception()
    policy = policy or load_policy()
    variants = {
        "hybrid": HybridAgent(perception, policy),
        "no perception": HybridAgent(None, policy),
        "no policy": HybridAgent(perception, None),
        "no monitoring": OpenLoopPlanner(perception),
    }
    for name, agent in variants.items():
        agent.name = name
    return list(variants.values())


def evaluate(
    regime: Regime = REGIMES["default"],
    *,
    n_worlds: int = 100,
    seed: int = 0,
    agents: list[Agent] | None = None,
) -> list[EvalRow]:
    """Run every agent on `n_worlds` worlds generated under `regime` and tabulate how they did.

    With a `regime.budget`, an episode counts as solved only when it took at most
    ``ceil(budget * optimal actions)`` actions (the optimum is A* on the true map).
    """
    if n_worlds < 1:
        raise ValueError(f"n_worlds must be >= 1, got {n_worlds}.\nhelp: e.g. n_worlds=100.")
    agents = agents if agents is not None else standard_agents()
    seeds = [seed + i for i in range(n_worlds)]
    worlds = [GridWorld.random(regime.size, regime.wall_density, regime.objects, s) for s in seeds]
    optimum = [astar(w).cost for w in worlds]
    rows = []
    for agent in agents:
        episodes = agent.run_many(worlds, seeds, regime.noise, regime.slip, regime.max_steps)
        if regime.budget is not None:
            # an episode is a prefix of a longer one with the same seeds, so cutting it at its
            # budget is the same as having run it with max_steps = that budget
            limits = [math.ceil(regime.budget * best - 1e-9) for best in optimum]
            episodes = [within_budget(e, n) for e, n in zip(episodes, limits, strict=True)]
        rows.append(summarize(agent.name, episodes, optimum))
    return rows


def within_budget(episode: Episode, budget: int) -> Episode:
    """The episode as if it had been cut off after `budget` actions."""
    if episode.steps <= budget:
        return episode
    return Episode(
        episode.cells[: budget + 1],
        episode.actions[:budget],
        False,
        episode.replans,
        episode.policy_steps,
        episode.planned_cells,
    )


def summarize(name: str, episodes: list[Episode], optimum: list[float]) -> EvalRow:
    """One table row from episodes and each episode's optimal plan cost (A* on the true map)."""
    ratios = [e.steps / best for e, best in zip(episodes, optimum, strict=True) if e.success]
    successes = sum(bool(e.success) for e in episodes)
    low, high = wilson_interval(successes, len(episodes)) if episodes else (0.0, 1.0)
    return EvalRow(
        agent=name,
        success_rate=float(np.mean([e.success for e in episodes])),
        mean_steps=float(np.mean([e.steps for e in episodes])),
        optimality=float(np.mean(ratios)) if ratios else math.nan,
        replans=float(np.mean([e.replans for e in episodes])),
        successes=successes,
        episodes=len(episodes),
        ci_low=low,
        ci_high=high,
    )


def format_table(rows: list[EvalRow]) -> str:
    """The rows as an aligned text table; the success rate comes with its 95% interval."""
    lines = [
        f"{'agent':<18} {'success':>8} {'95% CI':>11} {'steps':>7} {'optimality':>10} {'replans':>8}"
    ]
    for r in rows:
        ci = f"{r.ci_low:.2f}-{r.ci_high:.2f}"
        lines.append(
            f"{r.agent:<18} {r.success_rate:>8.2f} {ci:>11} {r.mean_steps:>7.1f} "
            f"{r.optimality:>10.2f} {r.replans:>8.2f}"
        )
    return "\n".join(lines)
