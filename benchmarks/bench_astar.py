"""A* against breadth-first search and Dijkstra on large generated maps in Moving AI format.

Each map is generated, written as a ``.map`` file with a ``.scen`` of a few far-apart problems,
read back, and solved by: BFS (``bfs_distance``, which labels every reachable cell), A* with no
heuristic (Dijkstra), A* with the Manhattan (4 moves) or octile (8 moves) heuristic, and, on 4
moves, weighted A* (w=1.5) and A* with the learned heuristic of lesson 12 (its time includes the
network's pass over the map). Those two may return longer paths: the last column says by how much.

    python benchmarks/bench_astar.py [--sizes 256 512] [--problems 3]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from course.device import describe_cpu
from neurosymbolic.guided_search import astar_table, manhattan_table
from neurosymbolic.heuristic_net import load_heuristic
from neurosymbolic.movingai import (
    Scenario,
    read_movingai_map,
    read_movingai_scenarios,
    write_movingai_map,
    write_movingai_scenarios,
)
from neurosymbolic.planner import astar_path, bfs_distance
from neurosymbolic.world import largest_region, random_walls


def make_problems(size: int, count: int, seed: int, folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    walls = random_walls((size, size), 0.3, rng)
    region = largest_region(walls)
    scenarios = []
    while len(scenarios) < count:
        start, goal = (region[i] for i in rng.choice(len(region), size=2, replace=False))
        if abs(start[0] - goal[0]) + abs(start[1] - goal[1]) > size // 2:  # long problems only
            scenarios.append(Scenario(start, goal, astar_path(walls, start, goal, moves=8).cost))
    map_path = folder / f"random{size}.map"
    write_movingai_map(map_path, walls)
    write_movingai_scenarios(
        map_path.with_suffix(".map.scen"), map_path.name, walls.shape, scenarios
    )
    return map_path, map_path.with_suffix(".map.scen")


def guided(walls, start, goal, make_table, weight):
    """A* guided by the table `make_table(walls, goal)` (the timing includes building it)."""
    return astar_table(walls, start, goal, make_table(walls, goal), weight)


def timed(fn, *args):
    begin = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="map sides")
    parser.add_argument("--problems", type=int, default=3, help="problems per map")
    parser.add_argument("--seed", type=int, default=0, help="map and problem seed")
    args = parser.parse_args()
    net = load_heuristic()
    print(f"CPU: {describe_cpu()}")
    print(
        f"{'map':>8} {'moves':>5} {'method':>10} {'cost':>9} {'expanded':>9} {'time s':>8} "
        f"{'vs BFS':>7} {'cost/opt':>8}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            map_path, scen_path = make_problems(size, args.problems, args.seed, Path(folder))
            walls = read_movingai_map(map_path)
            reachable = len(largest_region(walls))
            net.cost_to_go(walls, (0, 0))  # compile the network for this map size, untimed
            for start, goal, optimal in read_movingai_scenarios(scen_path):
                bfs_cost, bfs_time = timed(bfs_distance, walls, start, goal)
                print(
                    f"{size:>5}^2 {4:>5} {'BFS':>10} {bfs_cost:>9.1f} {reachable:>9} {bfs_time:>8.3f} "
                    f"{1:>7.2f} {1:>8.3f}"
                )
                for moves, name, heuristic in [(4, "Dijkstra", "zero"), (4, "A*", "manhattan"),
                                               (8, "Dijkstra", "zero"), (8, "A*", "octile")]:  # fmt: skip
                    mode = "zero" if heuristic == "zero" else "manhattan"  # octile when moves=8
                    plan, seconds = timed(astar_path, walls, start, goal, moves, mode)
                    expected = bfs_cost if moves == 4 else optimal
                    assert abs(plan.cost - expected) < 1e-6, (plan.cost, expected)
                    print(
                        f"{size:>5}^2 {moves:>5} {name:>10} {plan.cost:>9.1f} {plan.expanded:>9} "
                        f"{seconds:>8.3f} {seconds / bfs_time:>7.2f} {1:>8.3f}"
                    )
                for name, make_table, weight in [
                    ("w=1.5", manhattan_table, 1.5),
                    ("learned", net.cost_to_go, 1.0),
                ]:
                    plan, seconds = timed(guided, walls, start, goal, make_table, weight)
                    print(
                        f"{size:>5}^2 {4:>5} {name:>10} {plan.cost:>9.1f} {plan.expanded:>9} "
                        f"{seconds:>8.3f} {seconds / bfs_time:>7.2f} {plan.cost / bfs_cost:>8.3f}"
                    )


if __name__ == "__main__":
    main()
