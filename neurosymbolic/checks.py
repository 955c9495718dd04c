"""Exercise checkers for the neurosymbolic lessons (08-11).

Each checker runs the learner's function beside the package's reference on small worlds or noisy
maps and answers in plain words: which input, expected against got, and a hint. The machinery
(`checker`, `compare`, `run_learner`, `ExerciseFailed`, `CheckResult`) is shared with the minigpt
lessons and lives in `minigpt.checks`.
"""

from minigpt.checks import CheckResult, ExerciseFailed, checker, compare, run_learner

__all__ = ["CheckResult", "ExerciseFailed", "checker", "compare", "run_learner"]


# ---------------------------------------------------------------------------------------------
# Lesson 08 · Grid worlds and A*
# ---------------------------------------------------------------------------------------------

from collections import deque  # noqa: E402
from collections.abc import Callable, Hashable  # noqa: E402
from numbers import Real  # noqa: E402

from neurosymbolic.planner import (  # noqa: E402
    NoPlanError,
    Plan,
    astar,
    bfs_plan_cost,
    heuristic_value,
)
from neurosymbolic.world import ACTIONS, MOVES, GridWorld, State  # noqa: E402


def check_worlds() -> list[GridWorld]:
    """Small worlds the lesson 8 checkers search exhaustively: random ones and two made by hand
    (an object in a dead end at the map's edge; two objects, one of them behind the goal)."""
    return [
        *(GridWorld.random(6, 0.2, n, seed) for seed, n in enumerate([1, 2, 2, 3, 1])),
        GridWorld.from_ascii("a#...\n.#.#.\nS..#G"),
        GridWorld.from_ascii("S...G.a\n.##.##.\nb......"),
    ]


def reference_heuristic(world: GridWorld, state: State) -> float:
    """Exercise 1: the object-collection heuristic of `heuristic_value` (consistent, informative)."""
    return heuristic_value(world, state, "collect")


def reference_successors(world: GridWorld, state: State) -> list[tuple[str, State, float]]:
    """Exercise 2: every action that changes the state, as (action, next state, cost 1.0).

    Moves go onto free cells only (a bump changes nothing, so it is no successor); ``pickup``
    needs empty hands and an object not yet delivered on the cell; ``drop`` needs a held object
    and the goal cell.
    """
    children = []
    row, col = state.cell
    for action, (d_row, d_col) in MOVES.items():
        target = (row + d_row, col + d_col)
        if world.is_free(target):
            children.append((action, state._replace(cell=target), 1.0))
    lying_here = world.object_at(state)
    if state.held is None and lying_here is not None:
        children.append(("pickup", state._replace(held=lying_here), 1.0))
    if state.held is not None and state.cell == world.goal:
        children.append(("drop", State(state.cell, None, state.delivered | {state.held}), 1.0))
    return children


def reference_closed_key(state: State) -> Hashable:
    """Exercise 3: the whole state. Cell, held object and delivered set all change what is left."""
    return state


def exact_costs_to_go(world: GridWorld) -> dict[State, int]:
    """The true number of actions from every reachable state to a solved one (BFS, backwards).

    Built from the world's own `step` rules only, so it checks heuristics independently of A*.
    """
    start = world.initial_state()
    parents: dict[State, set[State]] = {start: set()}
    frontier = deque([start])
    while frontier:  # 1) every reachable state and who leads to it
        state = frontier.popleft()
        for action in ACTIONS:
            nxt = world.step(state, action)
            if nxt not in parents:
                parents[nxt] = set()
                frontier.append(nxt)
            if nxt != state:
                parents[nxt].add(state)
    cost = {s: 0 for s in parents if world.is_solved(s)}
    frontier = deque(cost)
    while frontier:  # 2) breadth-first from the solved states along reversed transitions
        state = frontier.popleft()
        for parent in parents[state]:
            if parent not in cost:
                cost[parent] = cost[state] + 1
                frontier.append(parent)
    return cost


def _where(world: GridWorld, state: State) -> str:
    picture = "\n    ".join(world.to_ascii().splitlines())
    return f"state {state} in the world\n    {picture}\n"


@checker("Exercise 1")
def check_heuristic(fn: Callable[[GridWorld, State], float]) -> str:
    """`fn(world, state)` never overestimates, drops by at most 1 an action, keeps A* optimal, and
    expands fewer states than the Manhattan distance to the goal."""
    expanded, expanded_manhattan = 0, 0
    for world in check_worlds():
        exact = exact_costs_to_go(world)
        for state, true_cost in exact.items():
            h = run_learner("Exercise 1", fn, world, state)
            if not isinstance(h, Real) or h != h:
                raise ExerciseFailed(
                    f"Exercise 1: for {_where(world, state)}your heuristic returned {h!r}.\n"
                    "hint: return a plain number (int or float)."
                )
            if h > true_cost + 1e-9:
                raise ExerciseFailed(
                    f"Exercise 1: your heuristic overestimates: for {_where(world, state)}"
                    f"it says {h:g}, but the cheapest way to finish takes {true_cost} action(s) "
                    "(exhaustive BFS).\nhint: an admissible heuristic is a lower bound; take "
                    "the longest single trip, not the sum of all trips."
                )
            for action, nxt, cost in reference_successors(world, state):
                h_next = run_learner("Exercise 1", fn, world, nxt)
                if h > cost + h_next + 1e-9:
                    raise ExerciseFailed(
                        f"Exercise 1: your heuristic is not consistent: for {_where(world, state)}"
                        f"it says {h:g}, but after {action!r} it says {h_next:g}, a drop of "
                        f"{h - h_next:g} for an action that costs {cost:g}.\nhint: one action "
                        "changes every distance by at most 1; build h from distances and counts."
                    )
        plan = run_learner("Exercise 1", astar, world, heuristic=lambda s, w=world: fn(w, s))
        optimal = bfs_plan_cost(world)
        if plan.cost != optimal:
            raise ExerciseFailed(
                f"Exercise 1: A* with your heuristic found a plan of cost {plan.cost:g} on\n"
                f"    {world.to_ascii()}\nbut the optimal cost is {optimal}.\n"
                "hint: check admissibility and consistency on this world by hand."
            )
        expanded += plan.expanded
        expanded_manhattan += astar(world, heuristic="manhattan").expanded
    if expanded >= expanded_manhattan:
        raise ExerciseFailed(
            f"Exercise 1: your heuristic is admissible and consistent, but A* expanded {expanded} "
            f"states with it against {expanded_manhattan} with the Manhattan distance to the "
            "goal.\nhint: count the trips still to make: agent -> object -> goal for each "
            "object not yet delivered, and the pickups and drops left."
        )
    return (
        f"admissible and consistent on {len(check_worlds())} worlds; A* stays optimal and expands "
        f"{expanded} states (Manhattan to the goal: {expanded_manhattan})."
    )


@checker("Exercise 2")
def check_successors(fn: Callable[[GridWorld, State], list[tuple[str, State, float]]]) -> str:
    """`fn(world, state)` lists (action, next state, cost) for exactly the actions that change it."""
    hints = {
        "pickup": "pick up only with empty hands, an object on the cell, not yet delivered.",
        "drop": "drop only while holding an object and standing on the goal; it joins delivered.",
    }
    hints["twice"] = "list each successor once."
    move_hint = (
        "moves go to free cells inside the map and cost 1.0; a bump changes nothing, so leave "
        "it out."
    )
    checked = 0
    for world in check_worlds():
        for state in exact_costs_to_go(world):
            got = run_learner("Exercise 2", fn, world, state)
            try:
                got_list = [(str(a), s, float(c)) for a, s, c in got]
            except (TypeError, ValueError):
                raise ExerciseFailed(
                    f"Exercise 2: for {_where(world, state)}you returned {got!r}.\n"
                    "hint: return a list of (action, next_state, cost) triples, e.g. "
                    "[('up', State((0, 1)), 1.0)]."
                ) from None
            expected = set(reference_successors(world, state))
            extra = [t for t in got_list if t not in expected]
            missing = [t for t in expected if t not in got_list]
            if extra or missing or len(got_list) != len(expected):
                action = (extra or missing or [("twice",)])[0][0]
                raise ExerciseFailed(
                    f"Exercise 2: for {_where(world, state)}"
                    f"  missing:    {missing}\n  unexpected: {extra}\n"
                    f"  you listed {len(got_list)} successors, expected {len(expected)}\n"
                    f"hint: {hints.get(action, move_hint)}"
                )
            checked += 1
        plan = run_learner(
            "Exercise 2", astar, world, successors=lambda s, w=world: fn(w, s), heuristic="zero"
        )
        assert plan.cost == bfs_plan_cost(world)  # same successors as the reference: same cost
    return f"the successors of {checked} states match; A* with them finds optimal plans."


def _plan_or_none(world: GridWorld, closed_key: Callable[[State], Hashable]) -> Plan | None:
    try:
        return astar(world, closed_key=closed_key)
    except NoPlanError:
        return None


@checker("Exercise 3")
def check_closed_key(fn: Callable[[State], Hashable]) -> str:
    """A* with `fn` as the closed-set key finds optimal plans and expands no state twice."""
    for world in check_worlds():
        optimal = bfs_plan_cost(world)
        reference = astar(world, closed_key=reference_closed_key)
        where = "\n    ".join(world.to_ascii().splitlines())
        plan = run_learner("Exercise 3", _plan_or_none, world, fn)
        if plan is None:
            raise ExerciseFailed(
                f"Exercise 3: A* with your key found no plan at all on\n    {where}\n"
                f"but a plan of {optimal} actions exists.\nhint: standing on a cell with an "
                "object in hand is a different state from standing there empty-handed; "
                "the key must keep what is held and what is delivered."
            )
        if plan.cost != optimal:
            raise ExerciseFailed(
                f"Exercise 3: A* with your key found a plan of {plan.cost:g} actions on\n"
                f"    {where}\nbut the optimal plan has {optimal}.\nhint: the key merges "
                "states that differ; keep the cell, the held object and the delivered set."
            )
        if plan.expanded > reference.expanded:
            raise ExerciseFailed(
                f"Exercise 3: your key finds optimal plans but A* expanded {plan.expanded} "
                f"states on\n    {where}\nagainst {reference.expanded} with the whole state "
                "as the key.\nhint: equal states must give equal keys (nothing random, no id())."
            )
    return f"optimal plans on {len(check_worlds())} collection worlds, no state expanded twice."


# ---------------------------------------------------------------------------------------------
# Lesson 09 · Neural perception
# ---------------------------------------------------------------------------------------------

import numpy as np  # noqa: E402
from tinygrad import Tensor  # noqa: E402

from neurosymbolic.perception import noisy_maps, threshold_walls, wall_metrics  # noqa: E402


def reference_threshold(obs: np.ndarray) -> np.ndarray:
    """Exercise 1: a wall wherever the observation is above 0.5 (halfway between free and wall)."""
    return threshold_walls(obs)


def reference_metrics(guess: np.ndarray, walls: np.ndarray) -> tuple[float, float]:
    """Exercise 2: (accuracy, wall recall) of a guessed wall map, as `wall_metrics`."""
    return wall_metrics(guess, walls)


def reference_mean_filter(obs: Tensor) -> Tensor:
    """Exercise 3: each cell replaced by the mean of its 3x3 neighbourhood, zeros outside the map."""
    return obs.conv2d(Tensor.ones(1, 1, 3, 3) / 9, padding=1)  # (B, 1, H, W) -> (B, 1, H, W)


def _numpy_mean_filter(obs: np.ndarray) -> np.ndarray:
    """The 3x3 mean as a sum of nine shifted copies of the zero-padded map, in float64."""
    H, W = obs.shape[-2:]
    padded = np.pad(obs.astype(np.float64), [(0, 0)] * (obs.ndim - 2) + [(1, 1), (1, 1)])
    return sum(padded[..., r : r + H, c : c + W] for r in range(3) for c in range(3)) / 9


@checker("Exercise 1")
def check_threshold(fn: Callable[[np.ndarray], np.ndarray]) -> str:
    """`fn(obs)` is a bool wall map of the same shape: True where obs > 0.5."""
    rng = np.random.default_rng(0)
    _, noisy = noisy_maps(3, 8, 0.8, (0.2, 0.4), rng)  # (3, 8, 8)
    cases = {
        "one noisy 8x8 map (noise 0.8)": noisy[0],
        "a batch of 3 noisy 8x8 maps": noisy,
        "obs = [[0.5, 0.4999, 0.5001], [-2.0, 1.0, 0.0]]": np.array(
            [[0.5, 0.4999, 0.5001], [-2.0, 1.0, 0.0]], dtype=np.float32
        ),
    }
    for case, obs in cases.items():
        got = np.asarray(run_learner("Exercise 1", fn, obs))
        if got.dtype != np.bool_:
            raise ExerciseFailed(
                f"Exercise 1: for {case}, you returned dtype {got.dtype}, expected bool.\n"
                "hint: a comparison such as `obs > 0.5` gives a bool array, which the planner needs."
            )
        compare(
            "Exercise 1",
            case,
            reference_threshold(obs),
            got,
            "a cell is a wall when obs > 0.5: strictly above, so exactly 0.5 counts as free.",
            rtol=0.0,
            atol=0.0,
        )
    return "walls where obs > 0.5, for single maps and batches."


@checker("Exercise 2")
def check_metrics(fn: Callable[[np.ndarray, np.ndarray], tuple[float, float]]) -> str:
    """`fn(guess, walls)` = (fraction of cells right, fraction of true walls guessed as walls)."""
    rng = np.random.default_rng(1)
    walls, noisy = noisy_maps(4, 10, 0.8, (0.2, 0.4), rng)  # (4, 10, 10)
    walls = walls.astype(bool)
    tiny_walls = np.array([[True, True], [False, False]])
    cases = [
        ("thresholded noisy 10x10 maps, batch of 4", noisy > 0.5, walls),
        ("one 10x10 map, every cell guessed a wall", np.ones((10, 10), bool), walls[0]),
        ("guess [[1, 0], [1, 0]] for walls [[1, 1], [0, 0]]", tiny_walls.T, tiny_walls),
        ("a map without walls (recall counts as 1.0)", noisy[0] > 0.5, np.zeros((10, 10), bool)),
    ]
    hint = (
        "accuracy = mean(guess == walls) over every cell; recall = (guess & walls).sum() / "
        "walls.sum(), the share of true walls that were found (1.0 when there are none)."
    )
    for case, guess, truth in cases:
        got = run_learner("Exercise 2", fn, guess, truth)
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise ExerciseFailed(
                f"Exercise 2: for {case}, expected a pair (accuracy, recall), got {got!r}.\n"
                f"hint: {hint}"
            )
        compare("Exercise 2", case, reference_metrics(guess, truth), got, hint, rtol=1e-9)
    return "accuracy and recall agree with numpy on 4 cases, including a map without walls."


@checker("Exercise 3")
def check_mean_filter(fn: Callable[[Tensor], Tensor]) -> str:
    """`fn(obs)` averages every 3x3 neighbourhood of ``(B, 1, H, W)`` obs (zeros outside)."""
    hint = (
        "conv2d with a (1, 1, 3, 3) weight of 1/9 and padding=1 keeps (H, W); or add the nine "
        "shifted copies of the zero-padded map and divide by 9."
    )
    rng = np.random.default_rng(2)
    cases = {
        "obs = ones of shape (1, 1, 4, 5): edges see zeros": np.ones((1, 1, 4, 5), np.float32),
        "obs of shape (2, 1, 6, 7), normal": rng.standard_normal((2, 1, 6, 7)).astype(np.float32),
    }
    for case, obs in cases.items():
        got = run_learner("Exercise 3", fn, Tensor(obs))
        if not isinstance(got, Tensor):
            raise ExerciseFailed(
                f"Exercise 3: for {case}, you returned {type(got).__name__}, expected a Tensor.\n"
                f"hint: stay in tinygrad: {hint}"
            )
        compare("Exercise 3", case, _numpy_mean_filter(obs), got, hint)
    walls, noisy = noisy_maps(32, 16, 0.8, (0.15, 0.4), np.random.default_rng(3))
    smoothed = run_learner("Exercise 3", fn, Tensor(noisy[:, None])).numpy()[:, 0]  # (32, 16, 16)
    raw_acc, _ = wall_metrics(threshold_walls(noisy), walls)
    smooth_acc, _ = wall_metrics(threshold_walls(smoothed), walls)
    return (
        f"at noise 0.8, thresholding the smoothed map is right on {smooth_acc:.1%} of cells "
        f"against {raw_acc:.1%} for the raw observation."
    )


# ---------------------------------------------------------------------------------------------
# Lesson 10 · Neural policy: imitation of the planner
# ---------------------------------------------------------------------------------------------

from neurosymbolic.planner import Plan, astar_path  # noqa: E402
from neurosymbolic.policy import (  # noqa: E402
    MOVE_NAMES,
    Policy,
    features,
    imitation_data,
    load_policy,
)
from neurosymbolic.world import Cell, largest_region  # noqa: E402

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


# ---------------------------------------------------------------------------------------------
# Lesson 11 · The hybrid agent
# ---------------------------------------------------------------------------------------------

import math  # noqa: E402

from neurosymbolic.agent import HybridAgent, OpenLoopPlanner, needs_replan  # noqa: E402
from neurosymbolic.evaluate import summarize  # noqa: E402
from neurosymbolic.world import Episode  # noqa: E402

reference_needs_replan = needs_replan  # Exercise 1 is the agent's own monitor


def reference_recovery_move(cell: Cell, plan_cell: Cell, believed: np.ndarray) -> str | None:
    """Exercise 3: the move from `cell` onto the neighbouring believed-free `plan_cell`, or None."""
    step = (plan_cell[0] - cell[0], plan_cell[1] - cell[1])
    for name, delta in MOVES.items():
        if delta == step and not believed[plan_cell]:
            return name
    return None  # the same cell, not a neighbour, or a wall: replanning is the way back


def reference_success_and_optimality(
    episodes: list[Episode], optimum: list[float]
) -> tuple[float, float]:
    """Exercise 2: the success rate, and steps / optimal cost averaged over solved episodes only."""
    row = summarize("", episodes, optimum)
    return row.success_rate, row.optimality


def _monitor_cases() -> list[tuple[str, Cell, list[Cell], np.ndarray]]:
    believed = np.zeros((5, 5), dtype=bool)  # (H, W)
    plan = [(2, 0), (2, 1), (2, 2), (2, 3), (2, 4)]
    wall_behind = believed.copy()
    wall_behind[2, 0] = True
    wall_next = believed.copy()
    wall_next[2, 2] = True
    wall_far = believed.copy()
    wall_far[2, 4] = True
    wall_aside = believed.copy()
    wall_aside[1, 2] = True
    return [
        ("on the plan, nothing in the way", (2, 1), plan[1:], believed),
        ("on the plan, a wall beside it (not on it)", (2, 1), plan[1:], wall_aside),
        ("on the plan, a wall on a cell already walked", (2, 1), plan[1:], wall_behind),
        ("on the plan at its last cell", (2, 4), plan[4:], believed),
        ("slipped one cell off the plan", (1, 1), plan[1:], believed),
        ("a bump: still on the previous cell", (2, 0), plan[1:], believed),
        ("a wall on the very next cell of the plan", (2, 1), plan[1:], wall_next),
        ("a wall on the plan's last cell, far ahead", (2, 1), plan[1:], wall_far),
        ("no plan yet (ahead is empty)", (2, 1), [], believed),
    ]


@checker("Exercise 1")
def check_needs_replan(fn: Callable[[Cell, list[Cell], np.ndarray], bool]) -> str:
    """`fn(cell, ahead, believed)` says whether to replan, on nine hand-made situations."""
    for case, cell, ahead, believed in _monitor_cases():
        expected = reference_needs_replan(cell, ahead, believed)
        got = run_learner("Exercise 1", fn, cell, list(ahead), believed.copy())
        if bool(got) != expected:
            why = (
                "replan when the agent is not on ahead[0], when any cell of ahead (not only the "
                "next one) is believed to be a wall, or when there is no plan; otherwise keep "
                "going, even if walls stand elsewhere on the map."
            )
            raise ExerciseFailed(
                f"Exercise 1: {case} (agent at {cell}, plan ahead {ahead}): expected "
                f"{'replan' if expected else 'keep the plan'} ({expected}), got {bool(got)}.\n"
                f"hint: {why}"
            )
    return f"{len(_monitor_cases())} situations judged like the agent's monitor."


@checker("Exercise 2")
def check_success_and_optimality(fn: Callable) -> str:
    """`fn(episodes, optimum)` returns (success rate, optimality) as `evaluate.summarize` does."""
    worlds = [GridWorld.random(10, 0.3, 2, seed=500 + i) for i in range(6)]
    seeds = list(range(len(worlds)))
    optimum = [astar(w).cost for w in worlds]
    runs = [
        ("hybrid agent, noise 0.8, slip 0.1", HybridAgent(None, None), 0.8, 0.1, 100),
        ("hybrid agent cut at 30 steps", HybridAgent(None, None), 0.8, 0.1, 30),
        ("open-loop planner, noise 0.3, slip 0.05", OpenLoopPlanner(None), 0.3, 0.05, 100),
        ("open-loop planner, noise 1.5, slip 0.3", OpenLoopPlanner(None), 1.5, 0.3, 100),
    ]
    lines = []
    for name, agent, noise, slip, max_steps in runs:
        episodes = agent.run_many(worlds, seeds, noise, slip, max_steps)
        solved = sum(e.success for e in episodes)
        case = f"{len(episodes)} episodes of the {name} ({solved} solved)"
        expected = reference_success_and_optimality(episodes, optimum)
        got = run_learner("Exercise 2", fn, episodes, list(optimum))
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise ExerciseFailed(
                f"Exercise 2: for {case}, expected a pair (success_rate, optimality), got {got!r}."
                "\nhint: return two floats."
            )
        compare(
            "Exercise 2",
            case + " (success rate)",
            expected[0],
            got[0],
            "the success rate is solved episodes / all episodes, a fraction in [0, 1].",
        )
        if math.isnan(expected[1]):
            if not math.isnan(float(got[1])):
                raise ExerciseFailed(
                    f"Exercise 2: for {case}, no episode was solved, so the optimality is "
                    f"undefined (nan); got {got[1]!r}.\n"
                    "hint: return math.nan when no episode succeeded."
                )
            lines.append("nan")
            continue
        compare(
            "Exercise 2",
            case + " (optimality)",
            expected[1],
            got[1],
            "average steps / optimal cost over the solved episodes only (a failed episode has no "
            "meaningful length); the ratio is >= 1, steps on top.",
        )
        lines.append(f"{expected[1]:.2f}")
    return f"success rates and optimality ({', '.join(lines)}) agree with evaluate."


def _recovery_cases() -> list[tuple[str, Cell, Cell, np.ndarray]]:
    free = np.zeros((5, 5), dtype=bool)  # (H, W)
    walled = free.copy()
    walled[1, 2] = True
    cell = (2, 2)
    cases = [
        (f"plan cell {name} of the agent", cell, (2 + dr, 2 + dc), free)
        for name, (dr, dc) in [
            ("above", (-1, 0)),
            ("below", (1, 0)),
            ("left", (0, -1)),
            ("right", (0, 1)),
        ]
    ]
    return cases + [
        ("plan cell diagonal to the agent", cell, (1, 1), free),
        ("plan cell two steps away", cell, (2, 4), free),
        ("agent already on the plan cell", cell, cell, free),
        ("plan cell above, now believed to be a wall", cell, (1, 2), walled),
    ]


@checker("Exercise 3")
def check_recovery_move(fn: Callable[[Cell, Cell, np.ndarray], str | None]) -> str:
    """`fn(cell, plan_cell, believed)`: the move back onto the plan after a slip, or None."""
    for case, cell, plan_cell, believed in _recovery_cases():
        expected = reference_recovery_move(cell, plan_cell, believed)
        got = run_learner("Exercise 3", fn, cell, plan_cell, believed.copy())
        if got != expected:
            hint = (
                "return None unless plan_cell is one of the four neighbours of cell and believed "
                "free; then the move with MOVES[move] == (plan_cell[0] - cell[0], "
                "plan_cell[1] - cell[1])."
            )
            if expected is not None and got is not None and got in MOVES:
                turned = tuple(-v for v in MOVES[got]) == MOVES[expected]
                hint = (
                    "that move goes the other way: the step is plan_cell - cell, "
                    "not cell - plan_cell."
                    if turned
                    else "rows and columns are mixed up: a row change is up or down, a column "
                    "change left or right."
                )
            raise ExerciseFailed(
                f"Exercise 3: {case} (agent at {cell}, plan cell {plan_cell}): expected "
                f"{expected!r}, got {got!r}.\nhint: {hint}"
            )
    return f"{len(_recovery_cases())} situations: the four ways back, and when to replan instead."
