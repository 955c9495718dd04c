"""GridWorld rules, construction, validation and the Moving AI file readers."""

import numpy as np
import pytest

from neurosymbolic.movingai import (
    Scenario,
    read_movingai_map,
    read_movingai_scenarios,
    write_movingai_map,
    write_movingai_scenarios,
)
from neurosymbolic.world import MAX_RANDOM_CELLS, GridWorld, State, distance_map, largest_region

SMALL = """
S.a
.#.
b.G
"""


def test_from_ascii_roundtrip_and_cells_are_row_col():
    world = GridWorld.from_ascii(SMALL)
    assert world.shape == (3, 3)
    assert world.start == (0, 0) and world.goal == (2, 2)
    assert world.objects == {"a": (0, 2), "b": (2, 0)}
    assert world.walls[1, 1] and world.walls.sum() == 1
    assert world.to_ascii() == SMALL.strip()


def test_delivery_rules():
    world = GridWorld.from_ascii(SMALL)
    state = world.initial_state()
    assert world.step(state, "up") == state  # off the map: bump
    assert world.step(state, "pickup") == state  # nothing here
    for action in ["right", "right", "pickup"]:
        state = world.step(state, action)
    assert state.held == "a"
    assert world.step(state, "drop") == state  # only on the goal
    state = world.step(world.step(state, "down"), "down")
    assert world.step(state, "down") == state
    state = world.step(state, "drop")
    assert state == State((2, 2), None, frozenset({"a"}))
    assert not world.is_solved(state)
    for action in ["left", "left", "pickup", "right", "right", "drop"]:
        state = world.step(state, action)
    assert world.is_solved(state)


def test_slip_goes_to_another_direction_at_the_given_rate():
    world = GridWorld(np.zeros((5, 5), bool), (2, 2), (0, 0))
    rng = np.random.default_rng(0)
    ends = [world.step(world.initial_state(), "up", slip=0.3, rng=rng).cell for _ in range(4000)]
    rate = np.mean([cell != (1, 2) for cell in ends])
    assert abs(rate - 0.3) < 0.03
    assert set(ends) == {(1, 2), (3, 2), (2, 1), (2, 3)}


def test_observe_is_walls_plus_gaussian_noise():
    world = GridWorld.random(20, 0.3, 2, seed=3)
    obs = world.observe(0.5, np.random.default_rng(1))
    assert obs.shape == world.shape and obs.dtype == np.float32
    residual = obs - world.walls
    assert abs(residual.mean()) < 0.06 and abs(residual.std() - 0.5) < 0.05


@pytest.mark.parametrize("seed", range(15))
def test_random_worlds_are_solvable_and_deterministic(seed):
    world = GridWorld.random((9, 13), 0.35, 3, seed)
    again = GridWorld.random((9, 13), 0.35, 3, seed)
    assert np.array_equal(world.walls, again.walls) and world.objects == again.objects
    dist = distance_map(world.walls, world.start)
    assert all(dist[c] >= 0 for c in [world.goal, *world.objects.values()])
    assert len({world.start, world.goal, *world.objects.values()}) == 5


def test_largest_region_against_flood_fill():
    walls = np.array([[0, 1, 0, 0], [0, 1, 0, 0], [1, 1, 1, 0]], bool)
    assert largest_region(walls) == [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(walls=np.zeros((3, 3))), "bool array"),
        (dict(walls=np.zeros(3, bool)), "2-D"),
        (dict(start=(1, 1)), "start .* is on a wall"),
        (dict(goal=(5, 0)), "outside the 3x3 map"),
        (dict(goal=(0.5, 1)), "pair of ints"),
        (dict(objects={"a": (1, 1)}), "object 'a' .* is on a wall"),
        (dict(objects={"a": (0, 7)}), "outside"),
        (dict(objects={"a": (0, 1), "b": (0, 1)}), "share a cell"),
        (dict(walls=np.array([[0, 1, 0], [1, 1, 0], [0, 0, 0]], bool)), "cannot be reached"),
    ],
)
def test_invalid_worlds(kwargs, match):
    walls = np.zeros((3, 3), bool)
    walls[1, 1] = True
    args = dict(walls=walls, start=(0, 0), goal=(2, 2))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        GridWorld(**args)


@pytest.mark.parametrize(
    "text, match",
    [
        ("S.x\n..", "equally long"),
        ("S.?\n..G", "unknown character '\\?' at row 0, col 2"),
        ("S..\n...", "exactly one 'G'"),
        ("SaG\na..", "appears 2 times"),
    ],
)
def test_invalid_ascii(text, match):
    with pytest.raises(ValueError, match=match):
        GridWorld.from_ascii(text)


def test_invalid_arguments():
    world = GridWorld.from_ascii(SMALL)
    with pytest.raises(ValueError, match="unknown action 'jump'"):
        world.step(world.initial_state(), "jump")
    with pytest.raises(ValueError, match="needs an rng"):
        world.step(world.initial_state(), "up", slip=0.5)
    with pytest.raises(ValueError, match="wall_density"):
        GridWorld.random(8, 0.9)
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        world.observe(-1.0, np.random.default_rng(0))


def test_movingai_roundtrip(tmp_path):
    walls = GridWorld.random((6, 9), 0.3, 0, seed=1).walls
    write_movingai_map(tmp_path / "m.map", walls)
    assert np.array_equal(read_movingai_map(tmp_path / "m.map"), walls)
    scenarios = [Scenario((0, 1), (5, 8), 9.41421356), Scenario((2, 3), (2, 4), 1.0)]
    write_movingai_scenarios(tmp_path / "m.map.scen", "m.map", walls.shape, scenarios)
    read = read_movingai_scenarios(tmp_path / "m.map.scen")
    assert [(s.start, s.goal) for s in read] == [(s.start, s.goal) for s in scenarios]
    assert np.allclose([s.optimal_length for s in read], [9.41421356, 1.0])


def test_movingai_legend_and_x_is_column(tmp_path):
    (tmp_path / "a.map").write_text("type octile\nheight 2\nwidth 4\nmap\n.GS@\nTOW.\n")
    assert read_movingai_map(tmp_path / "a.map").tolist() == [
        [False, False, False, True],
        [True, True, True, False],
    ]
    (tmp_path / "a.scen").write_text("version 1\n0\ta.map\t4\t2\t3\t1\t0\t0\t3.5\n")
    assert read_movingai_scenarios(tmp_path / "a.scen") == [Scenario((1, 3), (0, 0), 3.5)]


@pytest.mark.parametrize(
    "text, match",
    [
        ("type octile\nheight x\nwidth 2\nmap\n..\n", "line 2: height must be an integer"),
        ("type octile\nheight 1\nwidth 2\n\n..\n", "line 4: expected the line 'map'"),
        ("type octile\nheight 2\nwidth 2\nmap\n..\n", "expected 2 map rows"),
        ("type octile\nheight 1\nwidth 3\nmap\n..\n", "line 5: expected 3 characters"),
        ("kind octile\n", "line 1: expected 'type"),
    ],
)
def test_malformed_map(tmp_path, text, match):
    (tmp_path / "bad.map").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_movingai_map(tmp_path / "bad.map")


@pytest.mark.parametrize(
    "text, match",
    [
        ("version 2\n", "line 1: expected 'version 1'"),
        ("version 1\n0\tm\t4\t4\t1\t1\t2\n", "line 2: expected 9 tab-separated"),
        (
            "version 1\n0\tm\t4\t4\t1\ta\t2\t2\t1.0\n",
            "line 2: sizes and coordinates must be integers",
        ),
    ],
)
def test_malformed_scenarios(tmp_path, text, match):
    (tmp_path / "bad.scen").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_movingai_scenarios(tmp_path / "bad.scen")


@pytest.mark.parametrize(
    "text, match",
    [
        ("type octile\nheight 1\nwidth 2\nmap\n..\n..\n", "line 6: expected 1 map rows, found 2"),
        ("type octile\nheight 0\nwidth 2\nmap\n", "line 2: height must be >= 1, got 0"),
        ("type octile\nheight 1\nwidth 0\nmap\n\n", "line 3: width must be >= 1, got 0"),
    ],
)
def test_map_sizes_must_match_the_rows(tmp_path, text, match):
    (tmp_path / "bad.map").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_movingai_map(tmp_path / "bad.map")


def test_binary_and_missing_files_are_named(tmp_path):
    (tmp_path / "bin.map").write_bytes(b"type octile\n\xff\xd8\xff\xe0")
    with pytest.raises(ValueError, match=r"bin.map is not a text .map file \(byte 12 is 0xff\)"):
        read_movingai_map(tmp_path / "bin.map")
    with pytest.raises(ValueError, match="nothing.scen does not exist"):
        read_movingai_scenarios(tmp_path / "nothing.scen")


@pytest.mark.parametrize(
    "fields, match",
    [
        ("4\t4\t4\t1\t2\t2\t1.0", "start x=4, y=1 is outside the 4x4 map"),
        ("4\t4\t1\t1\t2\t-1\t1.0", "goal x=2, y=-1 is outside"),
        ("4\t4\t1\t1\t2\t2\tnan", "optimal length 'nan' is not a finite number"),
        ("4\t4\t1\t1\t2\t2\t-3", "optimal length '-3'"),
        ("4\tx\t1\t1\t2\t2\t1.0", "sizes and coordinates must be integers"),
    ],
)
def test_scenarios_must_lie_on_their_map(tmp_path, fields, match):
    (tmp_path / "bad.scen").write_text(f"version 1\n0\tm.map\t{fields}\n")
    with pytest.raises(ValueError, match=f"line 2: {match}"):
        read_movingai_scenarios(tmp_path / "bad.scen")


@pytest.mark.parametrize("noise", [float("nan"), float("inf"), -0.1, "0.5"])
def test_observe_needs_finite_noise(noise):
    world = GridWorld.from_ascii(SMALL)
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        world.observe(noise, np.random.default_rng(0))


@pytest.mark.parametrize("size", [2.5, (4,), "8", (4, 4.0)])
def test_random_world_size_must_be_ints(size):
    with pytest.raises(ValueError, match="size must be an int or an \\(H, W\\) pair"):
        GridWorld.random(size)


def test_fuzz_map_and_scenario_readers(tmp_path):
    """Random bytes and truncations of valid files: a ValueError naming the file or a valid result."""
    rng = np.random.default_rng(2)
    walls = GridWorld.random((5, 7), 0.3, 0, seed=4).walls
    write_movingai_map(tmp_path / "m.map", walls)
    write_movingai_scenarios(
        tmp_path / "m.scen", "m.map", walls.shape, [Scenario((0, 1), (4, 6), 7.0)]
    )
    for name, reader in (("m.map", read_movingai_map), ("m.scen", read_movingai_scenarios)):
        data = (tmp_path / name).read_bytes()
        for trial in range(40):
            if trial % 2:
                damaged = data[: int(rng.integers(0, len(data)))]
            else:
                damaged = bytearray(data)
                for i in rng.integers(0, len(data), 2):
                    damaged[i] = int(rng.integers(0, 256))
            (tmp_path / f"bad-{name}").write_bytes(bytes(damaged))
            try:
                reader(tmp_path / f"bad-{name}")
            except ValueError as error:
                assert f"bad-{name}" in str(error)


def test_random_world_refuses_a_size_over_its_limit():
    with pytest.raises(ValueError, match=r"1000x1000 world has 1,000,000 cells, over the limit"):
        GridWorld.random(1000)
    with pytest.raises(ValueError, match=r"pass max_cells=30 to draw it anyway"):
        GridWorld.random((5, 6), max_cells=29)
    assert GridWorld.random((5, 6), max_cells=30).shape == (5, 6)
    assert MAX_RANDOM_CELLS >= 512 * 512  # the largest maps the lessons and benchmarks draw


def test_movingai_files_are_readable_by_others(tmp_path):
    """0644 like files other tools write, not the private 0600 of a temporary file."""
    walls = np.zeros((3, 4), bool)
    write_movingai_map(tmp_path / "m.map", walls)
    write_movingai_scenarios(
        tmp_path / "m.scen", "m.map", walls.shape, [Scenario((0, 0), (2, 3), 5.0)]
    )
    for name in ("m.map", "m.scen"):
        assert oct((tmp_path / name).stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.map", "m.scen"]  # no temporaries


def test_movingai_header_sizes_are_checked_against_the_rows_before_allocating(tmp_path):
    """Random headers, up to 10^15 cells, over a few real rows: either the map of the declared
    size or a ValueError naming the line; never MemoryError."""
    rng = np.random.default_rng(0)
    path = tmp_path / "h.map"
    for _ in range(60):
        H, W = (int(10 ** rng.uniform(0, 7.5)) for _ in range(2))
        rows = ["." * int(rng.integers(1, 6))] * int(rng.integers(1, 6))
        path.write_text(f"type octile\nheight {H}\nwidth {W}\nmap\n" + "\n".join(rows) + "\n")
        try:
            walls = read_movingai_map(path)
        except ValueError as error:
            assert "h.map, line" in str(error)
        else:
            assert walls.shape == (H, W) == (len(rows), len(rows[0]))
    path.write_text("type octile\nheight 1\nwidth 1000000000000000\nmap\n.\n")
    with pytest.raises(ValueError, match="line 5: expected 1000000000000000 characters, got 1"):
        read_movingai_map(path)
