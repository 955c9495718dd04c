"""evaluate(): one row per agent, and the hybrid agent wins at the default noise and slip."""

import math

import pytest

from neurosymbolic.evaluate import evaluate, format_table


@pytest.fixture(scope="module")
def rows():
    return evaluate(n_worlds=16, seed=1000)


def test_one_row_per_standard_agent(rows):
    assert [r.agent for r in rows] == ["planner-noisy", "planner-perceived", "policy", "hybrid"]
    for r in rows:
        assert 0.0 <= r.success_rate <= 1.0 and r.mean_steps >= 0
        assert math.isnan(r.optimality) or r.optimality >= 1.0 - 1e-9  # nobody beats A*'s optimum


def test_hybrid_has_strictly_the_highest_success(rows):
    by_name = {r.agent: r for r in rows}
    hybrid = by_name.pop("hybrid")
    assert hybrid.success_rate > max(r.success_rate for r in by_name.values())
    assert hybrid.success_rate >= 0.9
    assert all(r.replans == 0 for r in by_name.values())


def test_table_lists_every_agent(rows):
    table = format_table(rows)
    assert table.splitlines()[0].split() == ["agent", "success", "steps", "optimality", "replans"]
    assert all(r.agent in table for r in rows)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="n_worlds must be >= 1"):
        evaluate(n_worlds=0, agents=[])
    with pytest.raises(ValueError, match="0 <= slip <= 1"):
        evaluate(n_worlds=1, slip=2.0, agents=[])
