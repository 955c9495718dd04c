"""evaluate(): one row per agent, the hybrid agent wins at the default noise and slip, success
rates carry Wilson intervals, and a step budget counts exactly the episodes that fit in it."""

import math
from dataclasses import replace

import numpy as np
import pytest

from neurosymbolic.agent import HybridAgent, OpenLoopPlanner
from neurosymbolic.evaluate import (
    REGIMES,
    Regime,
    evaluate,
    format_table,
    wilson_interval,
    within_budget,
)
from neurosymbolic.planner import astar
from neurosymbolic.world import GridWorld


@pytest.fixture(scope="module")
def rows():
    return evaluate(n_worlds=16, seed=1000)


def test_one_row_per_standard_agent(rows):
    assert [r.agent for r in rows] == ["planner-noisy", "planner-perceived", "policy", "hybrid"]
    for r in rows:
        assert 0.0 <= r.success_rate <= 1.0 and r.mean_steps >= 0
        assert math.isnan(r.optimality) or r.optimality >= 1.0 - 1e-9  # nobody beats A*'s optimum
        assert r.episodes == 16 and r.successes == round(r.success_rate * 16)
        assert r.ci_low <= r.success_rate <= r.ci_high


def test_hybrid_has_strictly_the_highest_success(rows):
    by_name = {r.agent: r for r in rows}
    hybrid = by_name.pop("hybrid")
    assert hybrid.success_rate > max(r.success_rate for r in by_name.values())
    assert hybrid.success_rate >= 0.9
    assert all(r.replans == 0 for r in by_name.values())


def test_table_lists_every_agent(rows):
    table = format_table(rows)
    header = ["agent", "success", "95%", "CI", "steps", "optimality", "replans"]
    assert table.splitlines()[0].split() == header
    assert all(r.agent in table for r in rows)
    assert f"{rows[0].ci_low:.2f}-{rows[0].ci_high:.2f}" in table


def _interval_by_search(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Independent reference: the Wilson interval is every p with |rate - p| <= z * sd(p)."""
    grid = np.linspace(0.0, 1.0, 200_001)
    inside = np.abs(successes / n - grid) <= z * np.sqrt(grid * (1 - grid) / n)
    return float(grid[inside].min()), float(grid[inside].max())


@pytest.mark.parametrize("successes, n", [(0, 10), (3, 10), (10, 10), (55, 200), (1, 1)])
def test_wilson_interval_matches_its_definition(successes, n):
    low, high = wilson_interval(successes, n)
    ref_low, ref_high = _interval_by_search(successes, n)
    assert low == pytest.approx(ref_low, abs=2e-5) and high == pytest.approx(ref_high, abs=2e-5)
    assert 0.0 <= low <= successes / n <= high <= 1.0


def test_wilson_interval_narrows_with_more_episodes():
    small, large = wilson_interval(8, 16), wilson_interval(100, 200)
    assert large[1] - large[0] < (small[1] - small[0]) / 2.5  # width shrinks like 1 / sqrt(n)


def test_budget_equals_running_with_that_many_steps():
    agent = HybridAgent(None, None)
    worlds = [GridWorld.random(10, 0.3, 2, s) for s in range(6)]
    for seed, world in enumerate(worlds):
        limit = math.ceil(1.3 * astar(world).cost)
        full = agent.run(world, seed, noise=0.8, slip=0.1, max_steps=200)
        cut = agent.run(world, seed, noise=0.8, slip=0.1, max_steps=limit)
        assert within_budget(full, limit).success == cut.success
        assert within_budget(full, limit).cells == cut.cells


def test_budget_only_removes_successes():
    agents = [HybridAgent(None, None)]
    regime = Regime(size=10, noise=0.8, slip=0.1)
    loose, tight, huge = (
        evaluate(replace(regime, budget=b), n_worlds=12, seed=3, agents=agents)[0]
        for b in (None, 1.0, 100.0)
    )
    assert huge.successes == loose.successes
    assert tight.successes < loose.successes  # a single replan or slip already costs a step
    if tight.successes:
        assert tight.optimality == pytest.approx(1.0)  # budget 1.0 leaves only optimal runs


def test_regimes():
    assert REGIMES["default"] == Regime()
    hard = REGIMES["hard"]
    assert hard.budget is not None and hard.size > REGIMES["default"].size
    rows = evaluate(Regime(size=8, budget=1.5), n_worlds=3, agents=[OpenLoopPlanner(None)])
    assert rows[0].episodes == 3
    with pytest.raises(TypeError):
        Regime(8)  # keyword arguments only: Regime(size=8)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="n_worlds must be >= 1"):
        evaluate(n_worlds=0, agents=[])
    with pytest.raises(ValueError, match="0 <= slip <= 1"):
        Regime(slip=2.0)
    with pytest.raises(ValueError, match="budget must be >= 1"):
        replace(REGIMES["hard"], budget=0.5)
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        wilson_interval(5, 3)
