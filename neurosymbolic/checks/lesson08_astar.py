"""Checker for lesson 08, Exercise 2: the A* loop, for any search problem.

The learner writes ``astar(start, successors, heuristic, is_goal) -> actions or None``. The checker
first runs it on four tiny graphs, each built so that one typical mistake changes the answer
(stopping when the goal is generated, a closed set that does not recognise equal states, closing a
state when it is pushed or expanding stale entries; a graph's hint is given only when that
mistake, run on the graph, plans and expands as the learner's A* did), then on the delivery worlds of
`check_worlds` with the consistent collection heuristic: the plan must replay to a solved state at
the optimal cost (exhaustive BFS), every expanded state must have ``g* + h <= optimal cost`` (the
states a correct A* may expand) and none may be expanded twice. Costs are sums of small numbers and
are compared within 1e-9.
"""

import heapq
import math
from collections import Counter
from collections.abc import Callable, Hashable

from course.checks import Case, ExerciseFailed, checker, run_learner
from neurosymbolic.checks.lesson08 import (
    _costs_from_start,
    check_worlds,
    exact_costs_to_go,
    reference_astar,
    reference_successors,
)
from neurosymbolic.planner import heuristic_value
from neurosymbolic.world import State

EXERCISE = "Exercise 2"
KEY_HINT = (
    "Key the closed set (and cost_so_far) by the whole state: cell, held object and delivered "
    "set (a State is hashable, so use it as it is)."
)
# name, picture, edges {node: [(action, next node, cost)]}, heuristic {node: h}, optimal actions
GRAPHS = [
    (
        "the goal test",
        "S -a-> A -b-> G (cost 1 each) and S -c-> G (cost 5), h = 2, 1, 0 on S, A, G",
        {"S": [("c", "G", 5.0), ("a", "A", 1.0)], "A": [("b", "G", 1.0)], "G": []},
        {"S": 2.0, "A": 1.0, "G": 0.0},
    ),
    (
        "equal states",
        "S <-> A <-> B -> G, actions 'on' forward and 'back' backward, cost 1 each, h = 0",
        {
            "S": [("on", "A", 1.0)],
            "A": [("back", "S", 1.0), ("on", "B", 1.0)],
            "B": [("back", "A", 1.0), ("on", "G", 1.0)],
            "G": [],
        },
        {},
    ),
    (
        "a cheaper way found later",
        "S -a-> A -b-> B -c-> G (costs 1, 1, 3) and S -d-> B (cost 4), h = 0",
        {
            "S": [("a", "A", 1.0), ("d", "B", 4.0)],
            "A": [("b", "B", 1.0)],
            "B": [("c", "G", 3.0)],
            "G": [],
        },
        {},
    ),
    (
        "a worse way found later",
        "S -a-> A -d-> G (cost 1 each), S -b-> B (cost 1), B -c-> A (cost 5), h = 0, 1, 0, 0 on "
        "S, A, B, G (B is expanded before A)",
        {
            "S": [("a", "A", 1.0), ("b", "B", 1.0)],
            "A": [("d", "G", 1.0)],
            "B": [("c", "A", 5.0)],
            "G": [],
        },
        {"A": 1.0},
    ),
]
GRAPH_HINTS = {
    "the goal test": (
        "a cheaper way to the goal was still open when you returned: return only when you pop a "
        "goal state, always pop the lowest f = g + h first, and close a state when you pop it, "
        "not when you push it."
    ),
    "equal states": (
        "successors returns new but equal state objects; equal states must count as the same. "
        "Key closed and cost_so_far by the state itself (it is hashable), not id(state), which "
        "differs for every new object, and skip a popped state that is already closed."
    ),
    "a cheaper way found later": (
        "B was first pushed with cost 4 and then found with cost 2: push it again whenever its cost "
        "drops, close a state only when it is popped, and when a popped state is already closed, "
        "skip it (lazy deletion: the old entry is stale)."
    ),
    "a worse way found later": (
        "A was reached from S at cost 1, then from B at cost 6 before A was expanded: change "
        "cost_so_far and came_from only when the new cost is lower than the one recorded."
    ),
}


# The typical mistakes each graph is built to expose, reproduced by `_mistaken_astar`.
GRAPH_MISTAKES = {
    "the goal test": ("goal on push", "close on push"),
    "equal states": ("id key",),
    "a cheaper way found later": ("close on push", "no lazy deletion"),
    "a worse way found later": ("keep worse",),
}


class _Problem:
    """A search problem whose `successors` returns fresh state objects and records expansions."""

    def __init__(self, start, successors, heuristic, is_goal, name=str, picture=""):
        self.start, self._successors, self.heuristic, self.is_goal = (
            start,
            successors,
            heuristic,
            is_goal,
        )
        self.name, self.picture, self.expanded = name, picture, []

    def successors(self, state):
        self.expanded.append(state)
        return self._successors(state)

    def replay(self, actions: list[str]) -> tuple[Hashable, float, str | None]:
        """Follow `actions` from the start: (end state, cost, None) or the first impossible step."""
        state, cost = self.start, 0.0
        for action in actions:
            options = {a: (nxt, c) for a, nxt, c in self._successors(state)}
            if action not in options:
                return state, cost, f"{action!r} is not possible in {self.name(state)}"
            state, step_cost = options[action]
            cost += step_cost
        return state, cost, None


def _graph_problem(edges: dict, h: dict) -> _Problem:
    index = {name: i for i, name in enumerate(edges)}
    names = {i: name for name, i in index.items()}

    def node(name: str) -> State:
        return State((0, index[name]))  # a new object at every call

    def successors(state: State):
        return [(a, node(n), c) for a, n, c in edges[names[state.cell[1]]]]

    return _Problem(
        node("S"),
        successors,
        lambda s: h.get(names[s.cell[1]], 0.0),
        lambda s: names[s.cell[1]] == "G",
        lambda s: names[s.cell[1]],
    )


def _world_problem(world) -> _Problem:
    picture = "\n    ".join(world.to_ascii().splitlines())
    return _Problem(
        world.initial_state(),
        lambda s: reference_successors(world, s),
        lambda s: heuristic_value(world, s, "collect"),
        world.is_solved,
        picture=f"\n    {picture}",
    )


def _mistaken_astar(edges: dict, h: dict, mistake: str) -> tuple[list[str] | None, list[str]]:
    """`reference_astar` with one typical mistake (a value of `GRAPH_MISTAKES`), run on the graph:
    its actions and the names of the states it expanded, to hold beside the learner's."""
    problem = _graph_problem(edges, h)
    key = id if mistake == "id key" else (lambda state: state)
    start = problem.start
    cost_so_far, came_from = {key(start): 0.0}, {}
    frontier, closed, counter = [(problem.heuristic(start), 0, start)], set(), 0
    found = None
    while frontier and found is None:
        _, _, state = heapq.heappop(frontier)
        if key(state) in closed and mistake not in ("no lazy deletion", "close on push"):
            continue  # (closed on push, every popped state is closed: it skips none)
        if problem.is_goal(state):
            found = state
            break
        closed.add(key(state))
        for action, nxt, cost in problem.successors(state):
            new_cost = cost_so_far[key(state)] + cost
            better = new_cost < cost_so_far.get(key(nxt), math.inf) or mistake == "keep worse"
            if key(nxt) in closed or not better:
                continue
            cost_so_far[key(nxt)], came_from[key(nxt)] = new_cost, (state, action)
            if mistake == "goal on push" and problem.is_goal(nxt):
                found = nxt
                break
            if mistake == "close on push":
                closed.add(key(nxt))
            counter += 1
            heapq.heappush(frontier, (new_cost + problem.heuristic(nxt), counter, nxt))
    names = [problem.name(state) for state in problem.expanded]
    if found is None:
        return None, names
    actions = []
    while key(found) in came_from:
        found, action = came_from[key(found)]
        actions.append(action)
    return actions[::-1], names


def _graph_hint(item: Case, actions: list[str] | None, expanded: list[str]) -> str:
    """The graph's hint when one of its typical mistakes, run on it, does what the learner's A*
    did (the same plan and the same expansions); else nothing."""
    for mistake in GRAPH_MISTAKES[item["graph"]]:
        if _mistaken_astar(item["successors"], item["heuristic"], mistake) == (actions, expanded):
            return GRAPH_HINTS[item["graph"]]
    return ""


def _fail(problem: _Problem, case: str, what: str, hint: str) -> ExerciseFailed:
    hint = f"\nhint: {hint}" if hint else ""
    return ExerciseFailed(f"{EXERCISE}: for {case}, {what}{problem.picture}{hint}")


def _as_actions(got, case: str) -> list[str] | None:
    if got is None:
        return None
    if isinstance(got, str) or not isinstance(got, list | tuple):
        raise ExerciseFailed(
            f"{EXERCISE}: for {case}, you returned {type(got).__name__} {got!r:.80}.\n"
            "hint: return the list of action names from the start to the goal, e.g. "
            "['up', 'pickup', ...], or None when no plan exists."
        )
    return [str(a) for a in got]


def _run(fn: Callable, problem: _Problem, case: str) -> list[str] | None:
    got = run_learner(EXERCISE, fn, problem.start, problem.successors, problem.heuristic,
                      problem.is_goal)  # fmt: skip
    return _as_actions(got, case)


def _check_plan(problem: _Problem, actions, optimal: float, case: str, hint: str) -> None:
    """The plan exists, replays step by step, ends in a goal state and costs the optimum."""
    if actions is None:
        raise _fail(
            problem, case, f"your A* found no plan, but one of cost {optimal:g} exists.", hint
        )
    end, cost, impossible = problem.replay(actions)
    if impossible is not None:
        backwards_end, _, backwards_impossible = problem.replay(actions[::-1])
        why = (
            "your actions come in reverse order: walking came_from back from the goal collects "
            "them last first, so reverse the list."
            if backwards_impossible is None and problem.is_goal(backwards_end)
            else "rebuild the plan from came_from: from the goal, step to the state it came from, "
            "collect the action that led there, stop at the start, then reverse."
        )
        raise _fail(problem, case, f"your plan {actions} cannot be followed: {impossible}.", why)
    if not problem.is_goal(end):
        raise _fail(
            problem,
            case,
            f"your plan {actions} ends in {problem.name(end)}, not in a goal state.",
            "rebuild the plan from the goal state you popped back to the start.",
        )
    if cost > optimal + 1e-9:
        raise _fail(problem, case, f"your plan costs {cost:g}, the cheapest {optimal:g}.", hint)


def _twice(problem: _Problem) -> Hashable | None:
    counts = Counter(problem.expanded)
    return next((s for s, n in counts.items() if n > 1), None)


def _merged_hint(world, expanded: set) -> str:
    """Why a plan came out too long (or none came out) on a delivery world: a state on an optimal
    plan was never expanded while one at the same cell was (the closed key merged them)."""
    reference = _world_problem(world)
    state = reference.start
    for action in reference_astar(reference.start, reference.successors, reference.heuristic,
                                  reference.is_goal):  # fmt: skip
        state = {a: s for a, s, _ in reference_successors(world, state)}[action]
        if state in expanded:
            continue
        twins = [t for t in expanded if t.cell == state.cell]
        same_held = [t for t in twins if t.held == state.held]
        same_count = [t for t in same_held if len(t.delivered) == len(state.delivered)]
        if same_count:
            twin, differ = same_count[0], "which objects are delivered, not how many"
        elif same_held:
            twin, differ = same_held[0], "the delivered set"
        elif twins:
            twin, differ = twins[0], "the object held"
        else:
            break
        seen = "reached" if world.is_solved(state) else "expanded"
        return (
            f"the state {state} on an optimal plan was never {seen}, but {twin} was; they "
            f"differ only in {differ}, so your closed set treats them as one. {KEY_HINT}"
        )
    return (
        "pop the state with the lowest f = g + h (cost so far plus heuristic) and stop at the "
        f"first goal popped. {KEY_HINT}"
    )


def _astar_cases() -> list[Case]:
    """The four tiny graphs, then the delivery worlds of `check_worlds`; `successors` is the graph's
    edges or the world, `heuristic` its table or the name of the world's heuristic."""
    cases = [
        Case(f"the graph {picture}", {
            "start": "S", "successors": edges, "heuristic": h, "is_goal": "G", "graph": name
        })
        for name, picture, edges, h in GRAPHS
    ]  # fmt: skip
    worlds = check_worlds()
    for number, world in enumerate(worlds, 1):
        values = {
            "start": world.initial_state(),
            "successors": world,
            "heuristic": "collect",
            "is_goal": world.goal,
            "graph": None,
        }
        name = f"delivery world {number} of {len(worlds)} (below), {len(world.objects)} object(s)"
        cases.append(Case(name, values))
    return cases


@checker(EXERCISE, cases=_astar_cases)
def check_astar(fn: Callable) -> str:
    """`fn(start, successors, heuristic, is_goal)` returns the actions of a cheapest plan: exact
    on four tiny graphs and on delivery worlds with 1-4 objects; expands each state at most once
    and only states with g* + h <= the optimal cost."""
    cases = _astar_cases()
    for item in cases[: len(GRAPHS)]:
        case = item.name
        problem = _graph_problem(item["successors"], item["heuristic"])
        optimal = problem.replay(reference_astar(problem.start, problem.successors, problem.heuristic,
                                                 problem.is_goal))[1]  # fmt: skip
        problem.expanded.clear()
        actions = _run(fn, problem, case)
        expanded = [problem.name(s) for s in problem.expanded if isinstance(s, State)]
        hint = _graph_hint(item, actions, expanded)
        if actions is None and not hint:
            hint = (
                "return None only when the frontier is empty; a popped goal state ends the search."
            )
        _check_plan(problem, actions, optimal, case, hint)
        repeated = _twice(problem)
        if repeated is not None:
            hint = f"\nhint: {hint}" if hint else ""
            raise ExerciseFailed(
                f"{EXERCISE}: for {case}, your A* expanded {problem.name(repeated)} more than once "
                f"(expansions: {expanded}).{hint}"
            )
    total, reachable = 0, 0
    for item in cases[len(GRAPHS) :]:
        world, case = item["successors"], item.name
        problem = _world_problem(world)
        exact = exact_costs_to_go(world)
        optimal = exact[problem.start]
        actions = _run(fn, problem, case)
        if actions is None or problem.replay(actions)[1] > optimal + 1e-9:
            expanded = {s for s in problem.expanded if isinstance(s, State)}
            _check_plan(problem, actions, optimal, case, _merged_hint(world, expanded))
        _check_plan(problem, actions, optimal, case, KEY_HINT)
        g = _costs_from_start(world)
        for state in problem.expanded:
            if state not in g:
                raise _fail(
                    problem,
                    case,
                    f"your A* asked for the successors of {state!r}, which the start cannot reach.",
                    "expand only states popped from the frontier, as successors returned them.",
                )
            f = g[state] + problem.heuristic(state)
            if f > optimal + 1e-9:
                raise _fail(
                    problem,
                    case,
                    f"your A* expanded {state}, whose g + h is at least {f:g}, above the optimal "
                    f"cost {optimal}: a correct A* pops the goal first.",
                    "order the frontier by f = g + h (push (g + heuristic(next), counter, next)), "
                    "not by g alone, and return when a goal state is popped.",
                )
        repeated = _twice(problem)
        if repeated is not None:
            raise _fail(
                problem,
                case,
                f"your A* expanded {repeated} more than once.",
                f"skip a popped state that is already closed (lazy deletion). {KEY_HINT}",
            )
        total, reachable = total + len(problem.expanded), reachable + len(exact)
    return (
        f"optimal on {len(GRAPHS)} graphs and {len(cases) - len(GRAPHS)} delivery worlds (up to 4 "
        "objects); "
        f"{total} states expanded of {reachable} reachable, none twice."
    )
