"""Checkers for lesson 11 · The hybrid agent.

Exercise 1 is the monitor (when to replan), Exercise 2 the sensing update of the agent's belief,
Exercise 3 the success rate and optimality of a table row, Exercise 4 a slip-recovery rule. All
answers are booleans, small maps or ratios; ratios are compared with a relative tolerance of 1e-4.
"""

import math
from collections.abc import Callable

import numpy as np
from tinygrad import Tensor

from course.checks import ExerciseFailed, checker, compare, name_mistake, run_learner
from neurosymbolic.agent import HybridAgent, OpenLoopPlanner, needs_replan
from neurosymbolic.evaluate import summarize
from neurosymbolic.planner import (
    astar,
)
from neurosymbolic.world import MOVES, Cell, Episode, GridWorld

reference_needs_replan = needs_replan  # Exercise 1 is the agent's own monitor


def reference_recovery_move(cell: Cell, plan_cell: Cell, believed: np.ndarray) -> str | None:
    """Exercise 4: the move from `cell` onto the neighbouring believed-free `plan_cell`, or None."""
    step = (plan_cell[0] - cell[0], plan_cell[1] - cell[1])
    for name, delta in MOVES.items():
        if delta == step and not believed[plan_cell]:
            return name
    return None  # the same cell, not a neighbour, or a wall: replanning is the way back


def reference_success_and_optimality(
    episodes: list[Episode], optimum: list[float]
) -> tuple[float, float]:
    """Exercise 3: the success rate, and steps / optimal cost averaged over solved episodes only."""
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


def _as_bool(value, case: str) -> bool:
    """The learner's verdict as a bool: True/False, a numpy bool or a one-element Tensor."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool | np.bool_ | int | np.integer) and value in (0, 1):
        return bool(value)
    raise ExerciseFailed(
        f"Exercise 1: {case}: expected True (replan) or False (keep the plan), got "
        f"{value!r}.\nhint: return a bool on every path, False included (None is no answer)."
    )


@checker("Exercise 1")
def check_needs_replan(fn: Callable[[Cell, list[Cell], np.ndarray], bool]) -> str:
    """`fn(cell, ahead, believed)` says whether to replan, on nine hand-made situations."""
    for case, cell, ahead, believed in _monitor_cases():
        expected = reference_needs_replan(cell, ahead, believed)
        got = _as_bool(run_learner("Exercise 1", fn, cell, list(ahead), believed.copy()), case)
        if got != expected:
            why = (
                "replan when the agent is not on ahead[0], when any cell of ahead (not only the "
                "next one) is believed to be a wall, or when there is no plan; otherwise keep "
                "going, even if walls stand elsewhere on the map."
            )
            raise ExerciseFailed(
                f"Exercise 1: {case} (agent at {cell}, plan ahead {ahead}): expected "
                f"{'replan' if expected else 'keep the plan'} ({expected}), got {got}.\n"
                f"hint: {why}"
            )
    return f"{len(_monitor_cases())} situations judged like the agent's monitor."


PAIR = ("the success rate", "the optimality")


def _as_float(value, case: str, what: str) -> float:
    try:
        return float(value.item() if isinstance(value, Tensor) else value)
    except (TypeError, ValueError):
        raise ExerciseFailed(
            f"Exercise 3: for {case}, {what} came back as {value!r}, not a number.\n"
            "hint: return two floats; math.nan for the optimality when nothing was solved."
        ) from None


@checker("Exercise 3")
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
        got = run_learner("Exercise 3", fn, episodes, list(optimum))
        if isinstance(got, Tensor):
            got = got.numpy()
        if isinstance(got, np.ndarray) and got.shape == (2,):  # a pair written as one array
            got = list(got)
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise ExerciseFailed(
                f"Exercise 3: for {case}, expected a pair (success_rate, optimality), got {got!r}."
                "\nhint: return two floats."
            )
        got = [_as_float(value, case, what) for value, what in zip(got, PAIR, strict=True)]
        compare(
            "Exercise 3",
            case + " (success rate)",
            expected[0],
            got[0],
            "the success rate is solved episodes / all episodes, a fraction in [0, 1].",
        )
        if math.isnan(expected[1]):
            if not math.isnan(got[1]):
                raise ExerciseFailed(
                    f"Exercise 3: for {case}, no episode was solved, so the optimality is "
                    f"undefined (nan); got {got[1]!r}.\n"
                    "hint: return math.nan when no episode succeeded."
                )
            lines.append("nan")
            continue
        compare(
            "Exercise 3",
            case + " (optimality)",
            expected[1],
            got[1],
            "average steps / optimal cost over the solved episodes only (a failed episode has no "
            "meaningful length); the ratio is >= 1, steps on top.",
        )
        lines.append(f"{expected[1]:.2f}")
    return f"success rates and optimality ({', '.join(lines)}) agree with evaluate."


def _recovery_cases() -> list[tuple[str, Cell, Cell, np.ndarray]]:
    """Every situation around two agent cells whose row and column differ (on a 5 x 6 map), so
    that an answer mixing up a cell's row and column cannot pass."""
    free = np.zeros((5, 6), dtype=bool)  # (H, W)
    cases = []
    for r, c in [(2, 2), (3, 1)]:
        walled = free.copy()
        walled[r - 1, c] = True
        cases += [
            (f"plan cell {name} of the agent", (r, c), (r + dr, c + dc), free)
            for name, (dr, dc) in [
                ("above", (-1, 0)),
                ("below", (1, 0)),
                ("left", (0, -1)),
                ("right", (0, 1)),
            ]
        ]
        cases += [
            ("plan cell diagonal to the agent", (r, c), (r - 1, c - 1), free),
            ("plan cell two steps away", (r, c), (r, c + 2), free),
            ("agent already on the plan cell", (r, c), (r, c), free),
            ("plan cell above, now believed to be a wall", (r, c), (r - 1, c), walled),
        ]
    return cases


@checker("Exercise 4")
def check_recovery_move(fn: Callable[[Cell, Cell, np.ndarray], str | None]) -> str:
    """`fn(cell, plan_cell, believed)`: the move back onto the plan after a slip, or None."""
    for case, cell, plan_cell, believed in _recovery_cases():
        expected = reference_recovery_move(cell, plan_cell, believed)
        got = run_learner("Exercise 4", fn, cell, plan_cell, believed.copy())
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
                f"Exercise 4: {case} (agent at {cell}, plan cell {plan_cell}): expected "
                f"{expected!r}, got {got!r}.\nhint: {hint}"
            )
    return f"{len(_recovery_cases())} situations: the four ways back, and when to replan instead."


def reference_sense(believed: np.ndarray, walls: np.ndarray, cell: Cell, radius: int) -> np.ndarray:
    """Exercise 2: the belief after sensing: the true walls within `radius` cells of `cell` (a
    square of side 2 * radius + 1, cut at the map's edges) replace what was believed there."""
    rows = slice(max(cell[0] - radius, 0), cell[0] + radius + 1)
    cols = slice(max(cell[1] - radius, 0), cell[1] + radius + 1)
    sensed = believed.copy()
    sensed[rows, cols] = walls[rows, cols]
    return sensed  # (H, W) bool


def _sense_wrong(believed, walls, cell, radius, *, clip=True, end=1, swap=False):
    if swap:
        cell = cell[::-1]
    low = (lambda v: max(v, 0)) if clip else (lambda v: v)
    rows = slice(low(cell[0] - radius), cell[0] + radius + end)
    cols = slice(low(cell[1] - radius), cell[1] + radius + end)
    sensed = believed.copy()
    sensed[rows, cols] = walls[rows, cols]
    return sensed


@checker("Exercise 2")
def check_sense(fn: Callable[[np.ndarray, np.ndarray, Cell, int], np.ndarray]) -> str:
    """`fn(believed, walls, cell, radius)` returns the belief with the square of true walls around
    `cell` written in; tried at corners, edges and inside a 6x9 map, radius 1 and 2."""
    rng = np.random.default_rng(11)
    H, W = 6, 9
    believed, walls = rng.random((H, W)) < 0.5, rng.random((H, W)) < 0.3  # (H, W) bool each
    cells = [(2, 5), (4, 7), (0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1), (0, 4), (3, 0)]
    count = 0
    for radius in (1, 2):
        for cell in cells:
            case = f"a 6x9 belief, the agent at {cell}, radius {radius}"
            expected = reference_sense(believed, walls, cell, radius)
            got = run_learner("Exercise 2", fn, believed.copy(), walls.copy(), cell, radius)
            args = (believed, walls, cell, radius)
            mistakes = {
                "a negative slice start counts from the end of the array, so near the top or "
                "left edge nothing was sensed: start at max(cell - radius, 0).": _sense_wrong(
                    *args, clip=False
                ),
                "the sensed square is 2 * radius + 1 cells wide: end the slices at "
                "cell + radius + 1.": _sense_wrong(*args, end=0),
                "rows and columns are swapped: rows around cell[0], columns around cell[1].": (
                    _sense_wrong(*args, swap=True)
                ),
                "the agent senses only the cells within radius, not the whole map.": walls,
                "nothing changed: write walls[rows, cols] into the belief.": believed,
            }
            name_mistake("Exercise 2", case, got, expected, mistakes)
            compare(
                "Exercise 2",
                case,
                expected,
                got,
                "copy the belief, then belief[rows, cols] = walls[rows, cols] with rows = "
                "slice(max(row - radius, 0), row + radius + 1), cols the same way.",
                rtol=0.0,
                atol=0.0,
            )
            count += 1
    return f"{count} sensing updates agree, corners and edges included."
