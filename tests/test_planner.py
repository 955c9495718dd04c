"""A* against independent references: BFS distances, exhaustive BFS over states, Dijkstra (octile),
and a textbook A* (tests/astar_reference.py) that must expand the same states in the same order."""

import heapq
import math

import numpy as np
import pytest
from astar_reference import (
    cell_moves,
    deeper_first,
    first_in_first_out,
    octile,
    textbook_astar,
    world_rules,
)

from neurosymbolic.checks import plan_with_closed_key, plan_with_successors
from neurosymbolic.delivery import HEURISTICS
from neurosymbolic.movingai import read_movingai_map, read_movingai_scenarios
from neurosymbolic.planner import (
    MAX_SEARCH_STATES,
    NoPlanError,
    astar,
    astar_path,
    bfs_distance,
    bfs_plan_cost,
    heuristic_value,
    search_states,
)
from neurosymbolic.world import ACTIONS, GridWorld, State, largest_region, random_walls


def replay(world, plan):
    state = world.initial_state()
    for action, cell in zip(plan.actions, plan.cells[1:], strict=True):
        state = world.step(state, action)
        assert state.cell == cell
    return state


@pytest.mark.parametrize("seed", range(40))
def test_path_cost_equals_bfs_distance(seed):
    world = GridWorld.random(14, 0.3, 0, seed)
    expected = bfs_distance(world.walls, world.start, world.goal)
    for heuristic in HEURISTICS:
        plan = astar(world, heuristic=heuristic)
        assert plan.cost == expected
        assert world.is_solved(replay(world, plan))


@pytest.mark.parametrize("seed", range(25))
def test_delivery_cost_equals_exhaustive_bfs(seed):
    world = GridWorld.random(6, 0.25, 1 + seed % 3, seed)
    expected = bfs_plan_cost(world)
    for heuristic in HEURISTICS:
        plan = astar(world, heuristic=heuristic)
        assert plan.cost == expected and len(plan.actions) == expected
        assert world.is_solved(replay(world, plan))


@pytest.mark.parametrize("seed", range(30))
def test_astar_expands_like_a_textbook_astar_over_the_world_rules(seed):
    """Same plan, cost, expansion count and order as a plain A* over `State`s moved by the world's
    `step`, ties first-in first-out."""
    world = GridWorld.random(
        6 + 2 * (seed % 4), (0.1, 0.2, 0.25, 0.3, 0.35)[seed % 5], 1 + seed % 3, seed
    )
    for name in HEURISTICS:
        plan = astar(world, heuristic=name, record_expansions=True)
        actions, states, cost, expanded, order = textbook_astar(
            world.initial_state(),
            world_rules(world),
            lambda s, name=name: heuristic_value(world, s, name),
            world.is_solved,
            first_in_first_out,
        )
        assert plan.actions == actions and plan.cells == [s.cell for s in states]
        assert plan.cost == cost and plan.expanded == expanded
        assert plan.expansions == [s.cell for s in order]


@pytest.mark.parametrize("seed", range(8))
def test_astar_path_expands_like_a_textbook_astar(seed):
    """Same path, cost, expansion count and order as a plain A* over (row, col) cells, ties to the
    larger cost so far, then the smaller cell."""
    rng = np.random.default_rng(seed)
    walls = random_walls((40, 40), (0.2, 0.3, 0.35)[seed % 3], rng)
    region = largest_region(walls)
    for i, j in rng.choice(len(region), size=(2, 2), replace=False):
        start, goal = region[i], region[j]
        for moves, name, h in [
            (4, "manhattan", lambda c, goal=goal: abs(c[0] - goal[0]) + abs(c[1] - goal[1])),
            (8, "manhattan", lambda c, goal=goal: octile(c, goal)),
            (4, "zero", lambda c: 0.0),
            (8, "zero", lambda c: 0.0),
        ]:
            plan = astar_path(walls, start, goal, moves, name, record_expansions=True)
            actions, cells, cost, expanded, order = textbook_astar(
                start, cell_moves(walls, moves), h, goal.__eq__, deeper_first
            )
            assert (plan.actions, plan.cells, plan.cost) == (actions, cells, cost)
            assert plan.expanded == expanded and plan.expansions == order


def test_informed_heuristic_expands_fewer_states():
    world = GridWorld.random(10, 0.25, 2, seed=4)
    expanded = {h: astar(world, heuristic=h).expanded for h in HEURISTICS}
    assert expanded["collect"] <= expanded["manhattan"] <= expanded["zero"]


def reachable_states(world):
    """Every state reachable from the start under the world's rules (depth-first)."""
    start = world.initial_state()
    seen, frontier, states = {start}, [start], []
    while frontier:
        state = frontier.pop()
        states.append(state)
        for action in ACTIONS:
            nxt = world.step(state, action)
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return states


@pytest.mark.parametrize("seed", range(6))
def test_heuristics_are_admissible_and_consistent(seed):
    world = GridWorld.random(6, 0.2, 2, seed)
    states = reachable_states(world)
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(states), size=min(25, len(states)), replace=False):
        state = states[i]
        true_cost = astar(world, heuristic="zero", state=state).cost  # Dijkstra
        for name in HEURISTICS:
            h = heuristic_value(world, state, name)
            assert h <= true_cost + 1e-9
            for action in ACTIONS:  # consistency: h(s) <= 1 + h(s') for every real transition
                nxt = world.step(state, action)
                if nxt != state:
                    assert h <= 1 + heuristic_value(world, nxt, name) + 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_lesson_seams_run_the_planners_search(seed):
    world = GridWorld.random(6, 0.2, 2, seed)
    expected = bfs_plan_cost(world)

    def by_rules(state):  # the world's own rules as a successor function
        moved = [(a, world.step(state, a), 1.0) for a in ACTIONS]
        return [(a, nxt, cost) for a, nxt, cost in moved if nxt != state]

    plan = plan_with_successors(world, by_rules)
    assert plan.cost == expected and world.is_solved(replay(world, plan))
    assert plan_with_closed_key(world, lambda s: s) == astar(world)
    try:  # a closed set that only remembers cells prunes the state after a pickup
        cost = plan_with_closed_key(world, lambda s: s.cell).cost
    except NoPlanError:
        cost = math.inf
    assert cost > expected


def test_plan_on_believed_walls_and_from_a_state():
    world = GridWorld.from_ascii("S...\n.##.\na..G")
    believed = world.walls.copy()
    believed[0, 1:] = True  # the belief closes the top corridor
    plan = astar(world, walls=believed)
    assert all(not believed[c] for c in plan.cells)
    mid = State((2, 0), "a", frozenset())
    assert astar(world, state=mid).actions == ["right", "right", "right", "drop"]


def test_no_plan_raises():
    world = GridWorld.from_ascii("S#a\n##.\n..G", require_solvable=False)
    with pytest.raises(NoPlanError, match="no plan delivers"):
        astar(world)
    with pytest.raises(NoPlanError, match="no plan solves"):
        bfs_plan_cost(world)
    walled = GridWorld.from_ascii("S#.\n##.\n..G", require_solvable=False)
    with pytest.raises(NoPlanError, match="no path from"):
        astar(walled)
    with pytest.raises(NoPlanError, match="no path"):
        bfs_distance(walled.walls, walled.start, walled.goal)


def test_invalid_planner_arguments():
    world = GridWorld.from_ascii("S.G")
    with pytest.raises(ValueError, match="moves must be 4 or 8"):
        astar(world, moves=6)
    with pytest.raises(ValueError, match="unknown heuristic 'euclid'"):
        astar(world, heuristic="euclid")
    with pytest.raises(ValueError, match="bool array of the world's shape"):
        astar(world, walls=np.zeros((2, 2), bool))


def dijkstra_octile(walls, start, goal):
    """Independent 8-connected Dijkstra without corner cutting (a reference for moves=8)."""
    H, W = walls.shape
    best, frontier = {start: 0.0}, [(0.0, start)]
    while frontier:
        cost, (row, col) = heapq.heappop(frontier)
        if (row, col) == goal:
            return cost
        if cost > best[(row, col)]:
            continue
        for d_row in (-1, 0, 1):
            for d_col in (-1, 0, 1):
                r, c = row + d_row, col + d_col
                if (d_row, d_col) == (0, 0) or not (0 <= r < H and 0 <= c < W) or walls[r, c]:
                    continue
                if d_row and d_col and (walls[row, c] or walls[r, col]):
                    continue
                new = cost + math.hypot(d_row, d_col)
                if new < best.get((r, c), math.inf):
                    best[(r, c)] = new
                    heapq.heappush(frontier, (new, (r, c)))
    return math.inf


MAP = """type octile
height 5
width 7
map
S......
.@@T...
...@...
.@.....
...@..G
"""
# x = column, y = row. Optimal lengths worked out by hand with the corner rule:
# (0,0)->(4,6): the wall at (1,3) blocks the diagonal from (0,3), so 4 right, 2 diagonals, 2 down;
# (2,0)->(2,4): (2,3) blocks the diagonals around it: right, right, down, right, right, up = 6;
# (1,0)->(0,1): the wall at (1,1) forbids the diagonal, so up and right = 2.
SCEN = (
    "version 1\n"
    "0\tt.map\t7\t5\t0\t0\t6\t4\t8.82842712\n"
    "0\tt.map\t7\t5\t0\t2\t4\t2\t6.00000000\n"
    "0\tt.map\t7\t5\t0\t1\t1\t0\t2.00000000\n"
)


def test_moves8_reproduces_published_optimal_lengths(tmp_path):
    (tmp_path / "t.map").write_text(MAP)
    (tmp_path / "t.map.scen").write_text(SCEN)
    walls = read_movingai_map(tmp_path / "t.map")
    for start, goal, length in read_movingai_scenarios(tmp_path / "t.map.scen"):
        plan = astar_path(walls, start, goal, moves=8)
        assert plan.cost == pytest.approx(length, abs=1e-6)
        assert plan.cost == pytest.approx(dijkstra_octile(walls, start, goal), abs=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_moves8_matches_dijkstra_on_random_maps(seed):
    world = GridWorld.random(16, 0.35, 0, seed)
    for heuristic in ("manhattan", "zero"):
        plan = astar(world, moves=8, heuristic=heuristic)
        assert plan.cost == pytest.approx(dijkstra_octile(world.walls, world.start, world.goal))


def test_corner_cutting_is_forbidden():
    walls = np.array([[0, 1], [0, 0]], bool)
    plan = astar_path(walls, (0, 0), (1, 1), moves=8)
    assert plan.actions == ["down", "right"] and plan.cost == 2


def test_record_expansions():
    world = GridWorld.random(10, 0.3, 1, seed=2)
    plan = astar(world, record_expansions=True)
    assert len(plan.expansions) == plan.expanded and plan.expansions[0] == world.start
    assert astar(world).expansions is None


@pytest.mark.parametrize(
    "start, goal, error, match",
    [
        ((-1, 0), (2, 2), ValueError, r"start \(-1, 0\) is outside the 3x3 map"),
        ((0, 0), (3, 1), ValueError, r"goal \(3, 1\) is outside the 3x3 map"),
        ((1, 1), (2, 2), ValueError, r"start \(1, 1\) is on a wall"),
        ((0, 0), (1, 1), NoPlanError, r"the goal \(1, 1\) is on a wall"),
        ((0, 0.5), (2, 2), ValueError, "start must be a \\(row, col\\) pair of ints"),
    ],
)
def test_astar_path_checks_its_cells(start, goal, error, match):
    walls = np.zeros((3, 3), bool)
    walls[1, 1] = True
    with pytest.raises(error, match=match):
        astar_path(walls, start, goal)


def test_astar_path_checks_its_walls():
    with pytest.raises(ValueError, match="non-empty 2-D bool array"):
        astar_path(np.zeros((3, 3)), (0, 0), (2, 2))
    with pytest.raises(ValueError, match="non-empty 2-D bool array"):
        astar_path(np.zeros((0, 3), bool), (0, 0), (2, 2))
    world = GridWorld.from_ascii("S.G")
    with pytest.raises(ValueError, match="the state's cell .* is outside"):
        astar(world, state=State((0, 5)))


def test_astar_refuses_a_search_over_the_state_limit():
    walls = np.zeros((1000, 1000), bool)
    world = GridWorld(walls, (0, 0), (999, 999), {"a": (5, 5), "b": (9, 9)}, False)
    with pytest.raises(ValueError, match=r"12,000,000 search states, over the limit of 4,194,304"):
        astar(world)  # refused at once, before any search
    with pytest.raises(ValueError, match=r"pass max_states=101 to search anyway"):
        astar_path(np.zeros((1, 101), bool), (0, 0), (0, 100), max_states=100)
    assert astar_path(np.zeros((1, 101), bool), (0, 0), (0, 100), max_states=101).cost == 100
    small = GridWorld.random(6, 0.2, 2, seed=3)
    states = search_states(small.shape, 2)
    assert states == 36 * 3 * 4
    with pytest.raises(ValueError, match="fewer objects or on a smaller map"):
        astar(small, max_states=states - 1)
    assert astar(small, max_states=states).cost == astar(small).cost


@pytest.mark.parametrize("seed", range(5))
def test_search_states_bounds_what_dijkstra_expands(seed):
    world = GridWorld.random(7, 0.25, 1 + seed % 3, seed)
    plan = astar(world, heuristic="zero")
    assert plan.expanded <= search_states(world.shape, len(world.objects))


@pytest.mark.parametrize(
    "shape, n_objects", [((1024, 1024), 0), ((2048, 2048), 0), ((512, 512), 2), ((20, 20), 4)]
)
def test_lesson_and_benchmark_sizes_are_within_the_limit(shape, n_objects):
    assert search_states(shape, n_objects) <= MAX_SEARCH_STATES
