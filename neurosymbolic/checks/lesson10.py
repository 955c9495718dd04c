"""Checkers for lesson 10 · Neural policy: imitation of the planner."""

from collections.abc import Callable

import numpy as np
from tinygrad import Tensor

from minigpt.checks.core import ExerciseFailed, checker, compare, run_learner
from neurosymbolic.planner import (
    Plan,
    astar_path,
)
from neurosymbolic.policy import (
    MOVE_NAMES,
    Policy,
    features,
    imitation_data,
    load_policy,
)
from neurosymbolic.world import Cell, GridWorld, largest_region

VIEW_HINT = (
    "pad the map with window // 2 cells of 1.0 on every side (off the map counts as a wall), then "
    "take padded[row : row + window, col : col + window]: the padding shifts every index by half."
)


def reference_local_view(belief: np.ndarray, cell: Cell, window: int) -> np.ndarray:
    """Exercise 1: the ``(window, window)`` patch of `belief` centred on `cell`, 1.0 off the map."""
    return features(belief, cell, cell, window)[: window * window].reshape(window, window)


def reference_plan_examples(walls: np.ndarray, plan: Plan, window: int):
    """Exercise 2: a (features, move index) pair per action of `plan`, heading to its last cell."""
    goal = plan.cells[-1]
    belief = walls.astype(np.float32)
    x = np.stack([features(belief, cell, goal, window) for cell in plan.cells[:-1]])  # (N, F)
    y = np.array([MOVE_NAMES.index(action) for action in plan.actions], dtype=np.int32)  # (N,)
    return x, y


def reference_accuracy(policy: Policy, x: np.ndarray, y: np.ndarray) -> float:
    """Exercise 3: the fraction of rows of `x` on which the policy picks the planner's move `y`."""
    guesses = policy(Tensor(x)).argmax(axis=1).numpy()  # (N,)
    return float((guesses == y).mean())


@checker("Exercise 1")
def check_local_view(fn: Callable[[np.ndarray, Cell, int], np.ndarray]) -> str:
    """`fn(belief, cell, window)` returns the window around `cell`, off-map cells as walls (1.0)."""
    rng = np.random.default_rng(0)
    count = 0
    for H, W, window in [(5, 5, 3), (6, 9, 5), (12, 12, 7), (4, 7, 7)]:
        belief = rng.random((H, W)).astype(np.float32)  # (H, W), probabilities: every cell differs
        corners = [(0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1)]
        inner = [(int(rng.integers(0, H)), int(rng.integers(0, W))) for _ in range(3)]
        for cell in corners + inner:
            case = f"a {H}x{W} belief map, cell {cell}, window {window}"
            expected = reference_local_view(belief, cell, window)
            got = run_learner("Exercise 1", fn, belief, cell, window)
            got_array = np.asarray(got, dtype=np.float64)
            hint = VIEW_HINT
            if got_array.shape == expected.shape:
                half = window // 2
                zero_padded = np.pad(belief, half)[
                    cell[0] : cell[0] + window, cell[1] : cell[1] + window
                ]
                if np.allclose(got_array, zero_padded) and not np.allclose(zero_padded, expected):
                    hint = (
                        "cells off the map must read 1.0 (a wall), not 0.0: "
                        "np.pad(belief, half, constant_values=1.0)."
                    )
                elif np.allclose(got_array, expected.T):
                    hint = "rows and columns are swapped: a cell is (row, col), belief[row, col]."
            compare("Exercise 1", case, expected, got, hint)
            count += 1
    return f"{count} views agree, corners and edges included."


def _random_plans(seed: int, count: int) -> list[tuple[np.ndarray, Plan]]:
    rng = np.random.default_rng(seed)
    plans = []
    for i in range(count):
        walls = GridWorld.random(10, 0.3, 0, seed=seed + i).walls
        region = largest_region(walls)
        start, goal = (region[j] for j in rng.choice(len(region), size=2, replace=False))
        plans.append((walls, astar_path(walls, start, goal)))
    return plans


@checker("Exercise 2")
def check_plan_examples(fn: Callable) -> str:
    """`fn(walls, plan, window)` returns (x, y): one features row and one move index per action."""
    total = 0
    for walls, plan in _random_plans(seed=7, count=4):
        for window in (5, 7):
            case = (
                f"an A* path of {len(plan.actions)} moves from {plan.cells[0]} to "
                f"{plan.cells[-1]}, window {window}"
            )
            x_ref, y_ref = reference_plan_examples(walls, plan, window)
            got = run_learner("Exercise 2", fn, walls, plan, window)
            if not (isinstance(got, tuple | list) and len(got) == 2):
                raise ExerciseFailed(
                    f"Exercise 2: for {case}, expected a pair (x, y), got {type(got).__name__}.\n"
                    "hint: return np.stack(rows), np.array(labels)."
                )
            x, y = np.asarray(got[0]), np.asarray(got[1])
            if len(x) == len(plan.cells) or len(y) == len(plan.cells):
                raise ExerciseFailed(
                    f"Exercise 2: for {case}, expected {len(plan.actions)} examples (one per "
                    f"action), got {len(x)} rows and {len(y)} labels.\n"
                    "hint: a path of n cells has n - 1 actions; the last cell (the goal) has no "
                    "move to learn: zip(plan.cells, plan.actions) stops there."
                )
            compare(
                "Exercise 2",
                case + " (labels y)",
                y_ref,
                y,
                "the label is the move's index in MOVE_NAMES (up, down, left, right): "
                "MOVE_NAMES.index(action).",
            )
            hint = (
                "features(belief, cell, goal, window) for the cell the agent stands on before each "
                "move, with the path's last cell as the target."
            )
            if x.shape == x_ref.shape:
                belief = walls.astype(np.float32)
                after = [features(belief, c, plan.cells[-1], window) for c in plan.cells[1:]]
                if np.allclose(x, np.stack(after)):
                    hint = (
                        "these are the views after each move: pair each action with the cell it "
                        "starts from (plan.cells[:-1])."
                    )
                elif np.allclose(x[:, : window * window], x_ref[:, : window * window]):
                    hint = (
                        "the views are right but the direction is not: the target is the path's "
                        "last cell, plan.cells[-1]."
                    )
            compare("Exercise 2", case + " (features x)", x_ref, x, hint)
            total += len(y)
    return f"{total} (view, move) pairs agree with the reference."


@checker("Exercise 3")
def check_accuracy(
    fn: Callable[[Policy, np.ndarray, np.ndarray], float], policy: Policy | None = None
) -> str:
    """`fn(policy, x, y)` returns the fraction of rows on which `policy` (default: the shipped
    one) picks move `y`; also tried on an untrained policy."""
    policy = policy or load_policy()
    x, y, _ = imitation_data(6, 3, 12, 0.3, seed=10_000, window=policy.config.window)
    Tensor.manual_seed(0)
    untrained = Policy(policy.config)
    results = []
    for name, model in [("the trained policy", policy), ("an untrained policy", untrained)]:
        case = f"{name} on {len(y)} held-out examples"
        expected = reference_accuracy(model, x, y)
        got = run_learner("Exercise 3", fn, model, x, y)
        hint = "compare the argmax of the logits with y and take the mean (a fraction in [0, 1])."
        if np.isscalar(got) and np.isclose(float(got), expected * len(y)):
            hint = "that is the number of correct rows: divide by len(y) for a fraction."
        elif np.isscalar(got) and np.isclose(float(got), expected * 100):
            hint = "that is a percentage: return a fraction in [0, 1]."
        compare("Exercise 3", case, expected, got, hint, rtol=0, atol=1e-9)
        results.append(expected)
    return f"accuracy {results[0]:.3f} for the trained policy, {results[1]:.3f} untrained."
