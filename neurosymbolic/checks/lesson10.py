"""Checkers for lesson 10 · Neural policy: imitation of the planner.

Exercise 1 cuts the local view out of a belief map; Exercise 2 turns an A* path into (features,
move index) examples; Exercise 3 is one training step of the policy, compared step by step with
the reference on a copy of the same network: the loss it returns and every parameter after the
update (relative tolerance 1e-3: Adam's update is float32 arithmetic on both sides).
"""

from collections.abc import Callable

import numpy as np
from tinygrad import Context, Tensor, nn
from tinygrad.nn.state import get_parameters, get_state_dict, load_state_dict

from course.checks import Case, ExerciseFailed, InPlace, checker, compare, run_learner
from neurosymbolic.planner import (
    Plan,
    astar_path,
)
from neurosymbolic.policy import MOVE_NAMES, Policy, PolicyConfig, features, imitation_data
from neurosymbolic.world import MOVES, Cell, GridWorld, distance_map, largest_region


def reference_local_view(belief: np.ndarray, cell: Cell, window: int) -> np.ndarray:
    """Exercise 1: the ``(window, window)`` patch of `belief` centred on `cell`, 1.0 off the map."""
    return features(belief, cell, cell, window)[: window * window].reshape(window, window)


def reference_plan_examples(walls: np.ndarray, plan: Plan, window: int):
    """Exercise 2: per action of `plan` (heading to its last cell), the features, the move index,
    and which of the four moves lie on some shortest path (A* picks one among ties)."""
    goal = plan.cells[-1]
    belief = walls.astype(np.float32)
    x = np.stack([features(belief, cell, goal, window) for cell in plan.cells[:-1]])  # (N, F)
    y = np.array([MOVE_NAMES.index(action) for action in plan.actions], dtype=np.int32)  # (N,)
    to_goal = np.pad(distance_map(walls, goal), 1, constant_values=-1)  # (H + 2, W + 2)
    optimal = np.array(
        [
            [
                to_goal[r + 1 + dr, c + 1 + dc] == to_goal[r + 1, c + 1] - 1
                for dr, dc in MOVES.values()
            ]
            for r, c in plan.cells[:-1]
        ]
    )  # (N, 4)
    return x, y, optimal


def reference_imitation_step(
    model: Policy, opt: nn.optim.Optimizer, xb: Tensor, yb: Tensor
) -> float:
    """Exercise 3: one Adam step on the cross-entropy between the policy's logits and A*'s moves;
    returns the loss before the update."""
    with Context(TRAINING=1):
        opt.zero_grad()
        loss = (
            model(xb).sparse_categorical_crossentropy(yb).backward()
        )  # (N, 4) logits, (N,) labels
        loss.realize(*opt.schedule_step())  # the loss and the update in one schedule
    return loss.item()


def _view_cases() -> list[Case]:
    """Maps that differ in height, width and window, each at its four corners and three inner
    cells."""
    rng = np.random.default_rng(0)
    cases = []
    for H, W, window in [(5, 5, 3), (6, 9, 5), (12, 12, 7), (4, 7, 7)]:
        belief = rng.random((H, W)).astype(np.float32)  # (H, W), probabilities: every cell differs
        corners = [(0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1)]
        inner = [(int(rng.integers(0, H)), int(rng.integers(0, W))) for _ in range(3)]
        cases += [
            Case(f"a {H}x{W} belief map, cell {cell}, window {window}",
                 {"belief": belief, "cell": cell, "window": window})
            for cell in dict.fromkeys(corners + inner)  # each cell once
        ]  # fmt: skip
    return cases


@checker("Exercise 1", cases=_view_cases)
def check_local_view(fn: Callable[[np.ndarray, Cell, int], np.ndarray]) -> str:
    """`fn(belief, cell, window)` returns the window around `cell`, off-map cells as walls (1.0)."""
    cases = _view_cases()
    for case in cases:
        belief, cell, window = case["belief"], case["cell"], case["window"]
        expected = reference_local_view(belief, cell, window)
        got = run_learner("Exercise 1", fn, belief, cell, window)  # a write into it is named
        row, col = cell
        mistakes = {
            "cells off the map must read 1.0 (a wall), not 0.0: np.pad(belief, half, "
            "constant_values=1.0).": np.pad(belief, window // 2)[
                row : row + window, col : col + window
            ],
            "rows and columns are swapped: a cell is (row, col), belief[row, col].": expected.T,
        }
        compare("Exercise 1", case.name, expected, got, mistakes)
    return f"{len(cases)} views agree, corners and edges included."


def _random_plans(seed: int, count: int) -> list[tuple[np.ndarray, Plan]]:
    rng = np.random.default_rng(seed)
    plans = []
    for i in range(count):
        walls = GridWorld.random(10, 0.3, 0, seed=seed + i).walls
        region = largest_region(walls)
        start, goal = (region[j] for j in rng.choice(len(region), size=2, replace=False))
        plans.append((walls, astar_path(walls, start, goal)))
    return plans


def _as_array(part) -> np.ndarray:
    """A numpy view of one part of the answer, whether it came as a Tensor, an array or a list."""
    try:
        return part.numpy() if isinstance(part, Tensor) else np.asarray(part)
    except (TypeError, ValueError):
        return np.asarray(None)  # dtype object: reported as "expected numbers" below


def _example_cases() -> list[Case]:
    """A* paths on four random worlds, each cut into examples with two window sizes."""
    return [
        Case(
            f"an A* path of {len(plan.actions)} moves from {plan.cells[0]} to {plan.cells[-1]}, "
            f"window {window}",
            {"walls": walls, "plan": plan, "window": window},
        )
        for walls, plan in _random_plans(seed=7, count=4)
        for window in (5, 7)
    ]


@checker("Exercise 2", cases=_example_cases)
def check_plan_examples(fn: Callable) -> str:
    """`fn(walls, plan, window)` returns (x, y, optimal): per action one features row, the move
    index and the (4,) mask of moves on some shortest path. Exact comparisons: all are small
    integers or features built from 0/1 maps."""
    total = 0
    for item in _example_cases():
        case, walls, plan, window = item.name, item["walls"], item["plan"], item["window"]
        x_ref, y_ref, optimal_ref = reference_plan_examples(walls, plan, window)
        got = run_learner("Exercise 2", fn, walls, plan, window)
        if not (isinstance(got, tuple | list) and len(got) == 3):
            raise ExerciseFailed(
                f"Exercise 2: for {case}, expected a triple (x, y, optimal), got "
                f"{type(got).__name__}.\nhint: return np.stack(rows), np.array(labels), "
                "np.array(optimal_rows)."
            )
        x, y, optimal = (_as_array(part) for part in got)
        if y.dtype.kind not in "iuf" or x.dtype.kind not in "iuf" or optimal.dtype.kind == "O":
            raise ExerciseFailed(
                f"Exercise 2: for {case}, expected numbers, got x of dtype {x.dtype} and y of "
                f"dtype {y.dtype} (first labels {y.ravel()[:3].tolist()}).\nhint: the labels "
                "are move indices, MOVE_NAMES.index(action), not the action names; x holds "
                "the float32 features rows."
            )
        if x.ndim != 2 or y.ndim != 1:
            raise ExerciseFailed(
                f"Exercise 2: for {case}, expected x of shape (moves, features) and y of shape "
                f"(moves,), got {x.shape} and {y.shape}.\nhint: np.stack the feature rows; "
                "np.array the labels."
            )
        if len(x) == len(plan.cells) or len(y) == len(plan.cells):
            raise ExerciseFailed(
                f"Exercise 2: for {case}, expected {len(plan.actions)} examples (one per "
                f"action), got {len(x)} rows and {len(y)} labels.\n"
                "hint: a path of n cells has n - 1 actions; the last cell (the goal) has no "
                "move to learn: zip(plan.cells, plan.actions) stops there."
            )
        alphabetical = {
            "the labels index the move names in alphabetical order; the label is the move's index "
            "in MOVE_NAMES (up, down, left, right): MOVE_NAMES.index(action).": np.array(
                [sorted(MOVE_NAMES).index(action) for action in plan.actions]
            )
        }
        compare("Exercise 2", case + " (labels y)", y_ref, y, alphabetical)
        belief = walls.astype(np.float32)
        mistakes = {
            "these are the views after each move: pair each action with the cell it starts "
            "from (plan.cells[:-1]).": np.stack(
                [features(belief, c, plan.cells[-1], window) for c in plan.cells[1:]]
            ),
            "the target is the path's first cell; it is its last, plan.cells[-1].": np.stack(
                [features(belief, c, plan.cells[0], window) for c in plan.cells[:-1]]
            ),
        }
        compare("Exercise 2", case + " (features x)", x_ref, x, mistakes)
        only_own = {
            "only A*'s own move is marked; every move onto a free cell one step closer to the "
            "goal is optimal (ties included).": np.eye(4)[y_ref]
        }
        got_optimal = optimal.astype(np.float64) if optimal.dtype.kind in "biuf" else optimal
        where = case + " (optimal moves)"
        compare("Exercise 2", where, optimal_ref, got_optimal, only_own, rtol=0.0, atol=0.0)
        total += len(y)
    return f"{total} (view, move, optimal moves) examples agree with the reference."


def _step_data(seed: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    x, y, _ = imitation_data(4, 3, 10, 0.3, seed=seed, window=window)
    return x[:48], y[:48]  # (48, window^2 + 4) features, (48,) move indices


def _loss_of(model: Policy, x: np.ndarray, y: np.ndarray) -> float:
    """The mean cross-entropy of `model` on (x, y), without a step."""
    return model(Tensor(x)).sparse_categorical_crossentropy(Tensor(y)).item()


def _step_without_zero_grad(model: Policy, opt: nn.optim.Optimizer, xb: Tensor, yb: Tensor) -> None:
    """The reference step with one mistake: the gradients of earlier steps are kept and add up."""
    with Context(TRAINING=1):
        model(xb).sparse_categorical_crossentropy(yb).backward()
        opt.step()


# Two networks and optimizers that differ in every setting: (policy, Adam's lr, weights' seed).
STEP_SETTINGS = ((PolicyConfig(window=5, hidden=16), 1e-2, 0), (PolicyConfig(window=3, hidden=8), 3e-3, 1))  # fmt: skip


def _imitation_cases() -> list[Case]:
    """Three steps in a row under each setting, on fresh batches."""
    cases = []
    for config, lr, seed in STEP_SETTINGS:
        for k in range(3):
            x, y = _step_data(20 + 3 * seed + k, config.window)
            name = (
                f"step {k + 1} of 3 of a Policy(window={config.window}, hidden={config.hidden}) "
                f"under Adam(lr={lr}): a batch of {len(y)} examples, features of width {x.shape[1]}"
            )
            values = {"model": (config, seed), "opt": lr, "xb": x, "yb": y, "step": k}
            cases.append(Case(name, values))
    return cases


@checker("Exercise 3", cases=_imitation_cases)
def check_imitation_step(fn: Callable[[Policy, nn.optim.Optimizer, Tensor, Tensor], float]) -> str:
    """`fn(model, opt, xb, yb)` takes one optimizer step on the cross-entropy of `model(xb)`
    against `yb` and returns the loss before the step. Three steps in a row on a small policy, under
    two settings, must give the reference's losses and parameters (relative tolerance 1e-3)."""
    for item in _imitation_cases():
        case, x, y = item.name, item["xb"], item["yb"]
        if item["step"] == 0:  # a new setting: fresh twin networks and optimizers
            (config, seed), lr = item["model"], item["opt"]
            Tensor.manual_seed(seed)
            reference, learner, summing = Policy(config), Policy(config), Policy(config)
            for twin in (learner, summing):
                weights = {k: Tensor(v.numpy()) for k, v in get_state_dict(reference).items()}
                load_state_dict(twin, weights, verbose=False)  # copies, without a timing line
            models = (reference, learner, summing)
            opts = [nn.optim.Adam(get_parameters(m), lr=lr) for m in models]
            names = list(get_state_dict(reference))
        expected = reference_imitation_step(reference, opts[0], Tensor(x), Tensor(y))
        _step_without_zero_grad(summing, opts[2], Tensor(x), Tensor(y))
        before = {n: v.numpy().copy() for n, v in get_state_dict(learner).items()}
        got = run_learner(
            "Exercise 3", fn, InPlace(learner), InPlace(opts[1]), Tensor(x), Tensor(y)
        )
        after = get_state_dict(learner)
        if all(np.array_equal(before[n], after[n].numpy()) for n in names):
            raise ExerciseFailed(
                f"Exercise 3: for {case}, the parameters did not change.\nhint: after "
                "loss.backward(), call opt.step() inside `with Context(TRAINING=1):`."
            )
        with Context(TRAINING=0):
            loss_after = _loss_of(learner, x, y)
        mistakes = {
            "that is the loss after the update. tinygrad is lazy: loss.item() after "
            "opt.step() computes the loss with the new weights. Realize it with the update, "
            "loss.realize(*opt.schedule_step()), then return loss.item().": loss_after,
            "that is the summed cross-entropy; the loss is the mean over the batch.": expected
            * len(y),
        }
        where = case + " (the loss returned)"
        compare("Exercise 3", where, expected, got, mistakes, rtol=1e-3, atol=1e-6)
        summed = get_state_dict(summing)
        for name, value in get_state_dict(reference).items():
            mistakes = {
                "the gradients of the earlier steps add up: call opt.zero_grad() before "
                "backward().": summed[name].numpy()
            }
            compare("Exercise 3", f"{case}, parameter {name}", value.numpy(), after[name],
                    mistakes, rtol=1e-3, atol=1e-6)  # fmt: skip
    return "three steps in a row, under two settings, match the reference's losses and parameters."
