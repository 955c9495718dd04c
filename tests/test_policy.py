"""Policy: features, imitation training, and the shipped policy against a greedy baseline."""

import numpy as np
import pytest

from neurosymbolic.policy import (
    MOVE_NAMES,
    PolicyConfig,
    PolicyTraining,
    current_target,
    features,
    load_policy,
    policy_mover,
    rollout,
    save_policy,
    score_policy,
    train_policy,
)
from neurosymbolic.world import MOVES, GridWorld, State


@pytest.fixture(scope="module")
def shipped():
    return load_policy()


def test_features_window_and_direction():
    belief = np.zeros((4, 5), np.float32)
    belief[1, 2] = 1.0
    x = features(belief, (0, 0), (3, 0), window=3)
    view = x[:9].reshape(3, 3)
    assert view[0].tolist() == [1, 1, 1] and view[:, 0].tolist() == [1, 1, 1]  # off the map = wall
    assert view[1:, 1:].sum() == 0
    assert x[9:].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_current_target():
    world = GridWorld.from_ascii("S.a\n...\nb.G")
    assert current_target(world, world.initial_state()) == (0, 2)  # nearer than b? tie -> a first
    assert current_target(world, State((2, 1), None, frozenset())) == (2, 0)
    assert current_target(world, State((0, 0), "a", frozenset())) == (2, 2)
    assert current_target(world, State((0, 0), None, frozenset("ab"))) == (2, 2)


def greedy_mover(beliefs, cells, targets):
    """Baseline: step to a believed-free neighbour that lowers the Manhattan distance, else stay put."""
    moves = []
    for belief, (row, col), (t_row, t_col) in zip(beliefs, cells, targets, strict=True):
        best = "up"
        for name, (dr, dc) in MOVES.items():
            r, c = row + dr, col + dc
            inside = 0 <= r < belief.shape[0] and 0 <= c < belief.shape[1]
            if (
                inside
                and belief[r, c] < 0.5
                and abs(t_row - r) + abs(t_col - c) < abs(t_row - row) + abs(t_col - col)
            ):
                best = name
                break
        moves.append(best)
    return moves


def test_shipped_policy_beats_greedy_on_held_out_worlds(shipped):
    worlds = [GridWorld.random(12, 0.3, 2, seed=50_000 + i) for i in range(30)]
    beliefs = [w.walls.astype(np.float32) for w in worlds]
    learnt = rollout(worlds, policy_mover(shipped), beliefs, max_steps=150)
    greedy = rollout(worlds, greedy_mover, beliefs, max_steps=150)
    learnt_rate = np.mean([e.success for e in learnt])
    assert learnt_rate > np.mean([e.success for e in greedy]) + 0.1
    for world, episode in zip(worlds, learnt, strict=True):  # episodes follow the world's rules
        state = world.initial_state()
        for action in episode.actions:
            state = world.step(state, action)
        assert world.is_solved(state) == episode.success


def test_shipped_policy_imitates_the_planner(shipped):
    score = score_policy(shipped, n_worlds=10, seed=60_000, max_steps=100)
    assert score.accuracy > 0.85 and score.optimal_moves >= score.accuracy
    assert score.rollout_success > 0.3


def test_training_lowers_the_loss_and_roundtrips(tmp_path):
    training = PolicyTraining(worlds=10, paths=2, steps=40, batch=32, seed=3)
    model, result = train_policy(training, PolicyConfig(window=5, hidden=16))
    assert result.examples > 0 and np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    save_policy(model, tmp_path / "pol")
    x = np.random.default_rng(0).random((7, 29)).astype(np.float32)
    assert load_policy(tmp_path / "pol").act(x) == model.act(x)
    assert set(model.act(x)) <= set(MOVE_NAMES)


def test_invalid_configs():
    with pytest.raises(ValueError, match="window must be odd"):
        PolicyConfig(window=4)
    with pytest.raises(ValueError, match="must be >= 1"):
        PolicyTraining(steps=0)
