"""The hybrid agent and its baselines: episodes follow the world's rules; sensing and replanning help."""

import numpy as np
import pytest

from neurosymbolic.agent import HybridAgent, HybridConfig, OpenLoopPlanner, PolicyAgent
from neurosymbolic.perception import load_perception
from neurosymbolic.policy import load_policy
from neurosymbolic.world import GridWorld


@pytest.fixture(scope="module")
def nets():
    return load_perception(), load_policy()


def replay_matches(world, episode):
    """Every recorded step moves at most one cell and never onto a wall (slips included)."""
    assert len(episode.cells) == len(episode.actions) + 1 == episode.steps + 1
    assert episode.cells[0] == world.start
    for a, b in zip(episode.cells, episode.cells[1:], strict=False):
        assert abs(a[0] - b[0]) + abs(a[1] - b[1]) <= 1 and not world.walls[b]


def test_hybrid_without_noise_or_slip_is_optimal(nets):
    from neurosymbolic.planner import astar

    world = GridWorld.random(10, 0.3, 2, seed=7)
    episode = HybridAgent(*nets).run(world, seed=0, noise=0.0, slip=0.0)
    assert episode.success and episode.replans == 0
    assert episode.steps == astar(world).cost


@pytest.mark.parametrize("seed", range(4))
def test_hybrid_solves_noisy_slippery_worlds(nets, seed):
    world = GridWorld.random(12, 0.3, 2, seed=100 + seed)
    episode = HybridAgent(*nets).run(world, seed=seed, noise=1.0, slip=0.15)
    replay_matches(world, episode)
    assert episode.success


def test_hybrid_replans_around_a_wall_it_did_not_see():
    world = GridWorld.from_ascii("S...G\n.###.\n.....")
    hidden = np.zeros(world.shape, np.float32)  # an observation that shows no walls at all
    agent = HybridAgent(None, None)
    episode = agent._episode(world, hidden, np.random.default_rng(0), slip=0.0, max_steps=50)
    assert episode.success and episode.steps == 4 and episode.replans == 0
    blocked = GridWorld.from_ascii("S.#.G\n.###.\n.....")
    episode = agent._episode(blocked, hidden, np.random.default_rng(0), slip=0.0, max_steps=50)
    assert episode.success and episode.replans >= 1 and episode.steps > 4


def test_hybrid_plans_optimistically_when_perception_walls_it_in():
    world = GridWorld.from_ascii("S...\n....\n...G")
    all_walls = np.ones(world.shape, np.float32)
    episode = HybridAgent(None, None)._episode(world, all_walls, np.random.default_rng(0), 0.0, 50)
    assert episode.success and episode.steps == 5


def test_policy_recovers_slips(nets):
    worlds = [GridWorld.random(12, 0.3, 2, seed=200 + i) for i in range(6)]
    episodes = HybridAgent(*nets).run_many(
        worlds, list(range(6)), noise=0.5, slip=0.3, max_steps=300
    )
    assert all(e.success for e in episodes)
    assert sum(e.policy_steps for e in episodes) > 0


def test_baselines_follow_the_rules(nets):
    worlds = [GridWorld.random(10, 0.3, 1, seed=300 + i) for i in range(4)]
    for agent in (OpenLoopPlanner(None), OpenLoopPlanner(nets[0]), PolicyAgent(*nets)):
        for world, episode in zip(
            worlds, agent.run_many(worlds, [0, 1, 2, 3], 0.3, 0.0, 100), strict=True
        ):
            replay_matches(world, episode)
    # without noise or slips the open-loop plan is simply the optimal plan
    assert OpenLoopPlanner(None).run(worlds[0], noise=0.0, slip=0.0).success


def test_invalid_arguments(nets):
    with pytest.raises(ValueError, match="sense_radius >= 1"):
        HybridConfig(sense_radius=0)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        HybridAgent(*nets).run(GridWorld.from_ascii("S.G"), max_steps=0)
