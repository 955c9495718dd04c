"""Checkers for lesson 11 · The hybrid agent.

Exercise 1 is the monitor (when to replan), Exercise 2 the sensing update of the agent's belief,
Exercise 3 the success rate and optimality of a table row, Exercise 4 a slip-recovery rule. All
answers are booleans, small maps or ratios; ratios are compared with a relative tolerance of 1e-4.
"""

import math
from collections.abc import Callable

import numpy as np
from tinygrad import Tensor

from course.checks import Case, ExerciseFailed, checker, compare, run_learner
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


def _monitor_cases() -> list[Case]:
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
    situations = [
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
    return [
        Case(f"{name} (agent at {cell}, plan ahead {ahead})",
             {"cell": cell, "ahead": ahead, "believed": map_})
        for name, cell, ahead, map_ in situations
    ]  # fmt: skip


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


@checker("Exercise 1", cases=_monitor_cases)
def check_needs_replan(fn: Callable[[Cell, list[Cell], np.ndarray], bool]) -> str:
    """`fn(cell, ahead, believed)` says whether to replan, on nine hand-made situations."""
    cases = _monitor_cases()
    for case in cases:
        expected = reference_needs_replan(**case.values)
        got = _as_bool(run_learner("Exercise 1", fn, *case.values.values()), case.name)
        if got != expected:
            raise ExerciseFailed(
                f"Exercise 1: {case.name}: expected {'replan' if expected else 'keep the plan'} "
                f"({expected}), got {got}."
            )
    return f"{len(cases)} situations judged like the agent's monitor."


PAIR = ("the success rate", "the optimality")


def _as_float(value, case: str, what: str) -> float:
    try:
        return float(value.item() if isinstance(value, Tensor) else value)
    except (TypeError, ValueError):
        raise ExerciseFailed(
            f"Exercise 3: for {case}, {what} came back as {value!r}, not a number.\n"
            "hint: return two floats; math.nan for the optimality when nothing was solved."
        ) from None


def _summary_cases() -> list[Case]:
    """Episodes of two agents under several noises, slips and step limits, on two sets of six
    worlds (so the optimal costs differ too)."""
    runs = [
        ("hybrid agent, noise 0.8, slip 0.1", HybridAgent(None, None), 0.8, 0.1, 100, 500),
        ("hybrid agent cut at 30 steps", HybridAgent(None, None), 0.8, 0.1, 30, 500),
        ("open-loop planner, noise 0.3, slip 0.05", OpenLoopPlanner(None), 0.3, 0.05, 100, 600),
        ("open-loop planner, noise 1.5, slip 0.3", OpenLoopPlanner(None), 1.5, 0.3, 100, 500),
    ]
    cases = []
    for name, agent, noise, slip, max_steps, first_seed in runs:
        worlds = [GridWorld.random(10, 0.3, 2, seed=first_seed + i) for i in range(6)]
        optimum = [astar(w).cost for w in worlds]
        episodes = agent.run_many(worlds, list(range(len(worlds))), noise, slip, max_steps)
        solved = sum(e.success for e in episodes)
        values = {"episodes": episodes, "optimum": optimum}
        cases.append(Case(f"{len(episodes)} episodes of the {name} ({solved} solved)", values))
    return cases


@checker("Exercise 3", cases=_summary_cases)
def check_success_and_optimality(fn: Callable) -> str:
    """`fn(episodes, optimum)` returns (success rate, optimality) as `evaluate.summarize` does."""
    lines = []
    for item in _summary_cases():
        case, episodes, optimum = item.name, item["episodes"], item["optimum"]
        expected = reference_success_and_optimality(episodes, optimum)
        got = run_learner("Exercise 3", fn, episodes, optimum)
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
        solved = sum(bool(e.success) for e in episodes)
        counted = {
            "that is the number of solved episodes; the rate divides it by all episodes.": solved
        }
        compare("Exercise 3", case + " (success rate)", expected[0], got[0], counted)
        if math.isnan(expected[1]):
            if not math.isnan(got[1]):
                raise ExerciseFailed(
                    f"Exercise 3: for {case}, no episode was solved, so the optimality is "
                    f"undefined (nan); got {got[1]!r}.\n"
                    "hint: return math.nan when no episode succeeded."
                )
            lines.append("nan")
            continue
        pairs = list(zip(episodes, optimum, strict=True))
        mistakes = {
            "the failed episodes are averaged in: the optimality is steps / optimal cost over "
            "the solved episodes only.": np.mean([e.steps / o for e, o in pairs]),
            "the ratio is inverted: steps / optimal cost, so the ratio is >= 1.": np.mean(
                [o / e.steps for e, o in pairs if e.success]
            ),
        }
        compare("Exercise 3", case + " (optimality)", expected[1], got[1], mistakes)
        lines.append(f"{expected[1]:.2f}")
    return f"success rates and optimality ({', '.join(lines)}) agree with evaluate."


def _recovery_cases() -> list[Case]:
    """Every situation around two agent cells whose row and column differ (on a 5 x 6 map), so
    that an answer mixing up a cell's row and column cannot pass."""
    free = np.zeros((5, 6), dtype=bool)  # (H, W)
    situations = []
    for r, c in [(2, 2), (3, 1)]:
        walled = free.copy()
        walled[r - 1, c] = True
        situations += [
            (f"plan cell {name} of the agent", (r, c), (r + dr, c + dc), free)
            for name, (dr, dc) in [
                ("above", (-1, 0)),
                ("below", (1, 0)),
                ("left", (0, -1)),
                ("right", (0, 1)),
            ]
        ]
        situations += [
            ("plan cell diagonal to the agent", (r, c), (r - 1, c - 1), free),
            ("plan cell two steps away", (r, c), (r, c + 2), free),
            ("agent already on the plan cell", (r, c), (r, c), free),
            ("plan cell above, now believed to be a wall", (r, c), (r - 1, c), walled),
        ]
    return [
        Case(f"{name} (agent at {cell}, plan cell {plan_cell})",
             {"cell": cell, "plan_cell": plan_cell, "believed": believed})
        for name, cell, plan_cell, believed in situations
    ]  # fmt: skip


@checker("Exercise 4", cases=_recovery_cases)
def check_recovery_move(fn: Callable[[Cell, Cell, np.ndarray], str | None]) -> str:
    """`fn(cell, plan_cell, believed)`: the move back onto the plan after a slip, or None."""
    cases = _recovery_cases()
    for case in cases:
        cell, plan_cell, believed = case.values.values()
        expected = reference_recovery_move(cell, plan_cell, believed)
        got = run_learner("Exercise 4", fn, cell, plan_cell, believed)
        if got != expected:
            backwards = reference_recovery_move(plan_cell, cell, np.zeros_like(believed))
            flipped = reference_recovery_move(cell[::-1], plan_cell[::-1], np.zeros((9, 9), bool))
            hint = ""
            if expected is not None and got == backwards:
                hint = "\nhint: that move goes the other way: the step is plan_cell - cell."
            elif expected is not None and got == flipped:
                hint = (
                    "\nhint: rows and columns are mixed up: a row change is up or down, a column "
                    "change left or right."
                )
            raise ExerciseFailed(
                f"Exercise 4: {case.name}: expected {expected!r}, got {got!r}.{hint}"
            )
    return f"{len(cases)} situations: the four ways back, and when to replan instead."


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


def _sense_cases() -> list[Case]:
    """Two maps that differ in size and contents, the agent at corners, edges and inside, radius
    1 and 2."""
    rng = np.random.default_rng(11)
    cases = []
    for H, W, radii in [(6, 9, (1, 2)), (7, 5, (2, 1))]:
        believed, walls = rng.random((H, W)) < 0.5, rng.random((H, W)) < 0.3  # (H, W) bool each
        cells = [(2, W - 4), (H - 2, W - 2), (0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1),
                 (0, W // 2), (H // 2, 0)]  # fmt: skip
        cases += [
            Case(f"a {H}x{W} belief, the agent at {cell}, radius {radius}",
                 {"believed": believed, "walls": walls, "cell": cell, "radius": radius})
            for radius in radii
            for cell in cells
        ]  # fmt: skip
    return cases


@checker("Exercise 2", cases=_sense_cases)
def check_sense(fn: Callable[[np.ndarray, np.ndarray, Cell, int], np.ndarray]) -> str:
    """`fn(believed, walls, cell, radius)` returns the belief with the square of true walls around
    `cell` written in; tried at corners, edges and inside a 6x9 and a 7x5 map, radius 1 and 2."""
    cases = _sense_cases()
    for case in cases:
        args = believed, walls, cell, radius = tuple(case.values.values())
        expected = reference_sense(*args)
        got = run_learner("Exercise 2", fn, *args)
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
        compare("Exercise 2", case.name, expected, got, mistakes, rtol=0.0, atol=0.0)
    return f"{len(cases)} sensing updates agree, corners and edges included."
