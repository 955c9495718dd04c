"""delivery: the planner's compact states against `State`s and the world's own rules."""

import pytest

from neurosymbolic.checks import exact_costs_to_go, reference_successors
from neurosymbolic.delivery import HEURISTICS, Delivery, delivery_heuristic, heuristic_value
from neurosymbolic.world import GridWorld


@pytest.mark.parametrize("seed", range(4))
def test_successors_are_the_world_rules(seed):
    world = GridWorld.random(6, 0.2, 1 + seed % 3, seed)
    problem = Delivery(world, world.walls)
    for state in exact_costs_to_go(world):  # every reachable state
        key = problem.key(state)
        assert problem.state(key) == state and problem.cell(key) == state.cell
        assert problem.is_goal(key) == world.is_solved(state)
        got = [(a, problem.state(k), cost) for a, k, cost in problem.successors(key)]
        assert got == reference_successors(world, state)


def test_heuristics_on_keys_and_states_agree():
    world = GridWorld.random(8, 0.2, 3, seed=5)
    problem = Delivery(world, world.walls)
    for name in HEURISTICS:
        on_keys = problem.heuristic(name)
        for state in list(exact_costs_to_go(world))[::7]:
            assert on_keys(problem.key(state)) == heuristic_value(world, state, name)
    double = problem.heuristic(lambda s: 2 * heuristic_value(world, s))
    start = world.initial_state()
    assert double(problem.key(start)) == 2 * heuristic_value(world, start)


def test_collect_counts_the_actions_left():
    world = GridWorld.from_ascii("S.a.G")  # a two cells right of S, the goal two more
    collect = delivery_heuristic(world)
    assert collect((0, 0), -1, 0) == 2 + 4  # pickup and drop, then the trip S -> a -> G
    assert collect((0, 2), 0, 0) == 1 + 2  # holding a: its drop and the walk to G
    assert collect((0, 4), -1, 1) == 0  # delivered and on the goal: solved


def test_unknown_heuristic():
    world = GridWorld.from_ascii("S.G")
    with pytest.raises(ValueError, match="unknown heuristic 'euclid'"):
        delivery_heuristic(world, "euclid")
    with pytest.raises(ValueError, match="moves must be 4 or 8"):
        heuristic_value(world, world.initial_state(), moves=5)
