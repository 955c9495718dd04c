"""Moving AI benchmark files (lesson 8): grid maps (``.map``) and their scenarios (``.scen``).

The format is published with the benchmark sets at https://movingai.com/benchmarks/formats.html.
A ``.map`` file is a four-line header and then H rows of W characters::

    type octile
    height 4
    width 5
    map
    .....
    .@@..
    ...T.
    .....

``.``, ``G`` and ``S`` are passable; every other character (``@``, ``O``, ``T``, ``W``, ...) blocks.
A ``.scen`` file starts with ``version 1``, then one tab-separated line per problem: bucket, map
name, map width, map height, start x, start y, goal x, goal y, optimal length. x is the column and
y the row, so this module turns them into ``(row, col)`` cells. Optimal lengths assume 8-connected
moves (diagonals cost sqrt(2)) that never cut a wall corner.
"""

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from course.files import write_atomic
from neurosymbolic.world import Cell

PASSABLE = frozenset(".GS")


class Scenario(NamedTuple):
    """One benchmark problem: start and goal as (row, col), and the published optimal length."""

    start: Cell
    goal: Cell
    optimal_length: float


def _bad(path: Path, line_no: int, problem: str, fix: str) -> ValueError:
    return ValueError(f"{path}, line {line_no}: {problem}\nhelp: {fix}")


def _read_lines(path: Path, kind: str) -> list[str]:
    """The file's lines, or a ValueError naming the file when it is missing or not text."""
    try:
        return path.read_text(encoding="ascii").splitlines()
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist.\nhelp: check the path of the {kind}.") from None
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not a text {kind} (byte {error.start} is {error.object[error.start]:#04x}).\n"
            "help: Moving AI files are plain ASCII; check that this is the right file."
        ) from None


def read_movingai_map(path: str | Path) -> np.ndarray:
    """Read a ``.map`` file into an ``(H, W)`` bool array, True where the map blocks."""
    path = Path(path)
    lines = _read_lines(path, ".map file")
    header = [("type", None), ("height", int), ("width", int)]
    values = {}
    for line_no, (key, convert) in enumerate(header, start=1):
        words = lines[line_no - 1].split() if len(lines) >= line_no else []
        if len(words) != 2 or words[0] != key:
            raise _bad(
                path, line_no, f"expected '{key} <value>', got {words!r}.", "see the header format"
            )
        try:
            values[key] = convert(words[1]) if convert else words[1]
        except ValueError:
            raise _bad(
                path, line_no, f"{key} must be an integer, got {words[1]!r}.", "fix the header"
            ) from None
        if convert and values[key] < 1:
            raise _bad(path, line_no, f"{key} must be >= 1, got {values[key]}.", "fix the header")
    if len(lines) < 4 or lines[3].strip() != "map":
        raise _bad(path, 4, "expected the line 'map' after the header.", "add a line 'map'")
    H, W = values["height"], values["width"]
    rows = lines[4:]
    while rows and not rows[-1].strip():
        rows.pop()  # blank lines at the end of the file are harmless
    if len(rows) != H:
        raise _bad(
            path,
            5 + min(len(rows), H),
            f"expected {H} map rows, found {len(rows)}.",
            "check 'height' against the rows that follow 'map'",
        )
    for row, text in enumerate(rows):  # every row against the header before allocating H x W
        if len(text) != W:
            raise _bad(path, 5 + row, f"expected {W} characters, got {len(text)}.", "check 'width'")
    walls = np.zeros((H, W), dtype=bool)  # (H, W): no larger than the file itself
    for row, text in enumerate(rows):
        walls[row] = [char not in PASSABLE for char in text]
    return walls


def read_movingai_scenarios(path: str | Path) -> list[Scenario]:
    """Read a ``.scen`` file into a list of `Scenario` (start, goal, optimal_length)."""
    path = Path(path)
    lines = _read_lines(path, ".scen file")
    if not lines or lines[0].split() != ["version", "1"]:
        raise _bad(
            path, 1, f"expected 'version 1', got {lines[:1]!r}.", "start the file with 'version 1'"
        )
    scenarios = []
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 9:
            raise _bad(
                path,
                line_no,
                f"expected 9 tab-separated fields, got {len(fields)}.",
                "bucket, map, width, height, start_x, start_y, goal_x, goal_y, optimal_length",
            )
        try:
            width, height, start_x, start_y, goal_x, goal_y = (int(v) for v in fields[2:8])
            optimal_length = float(fields[8])
        except ValueError:
            raise _bad(
                path,
                line_no,
                f"sizes and coordinates must be integers, got {fields[2:9]!r}.",
                "fix the numbers",
            ) from None
        for name, x, y in (("start", start_x, start_y), ("goal", goal_x, goal_y)):
            if not (0 <= x < width and 0 <= y < height):
                raise _bad(
                    path,
                    line_no,
                    f"{name} x={x}, y={y} is outside the {width}x{height} map of this line.",
                    "x is the column (0..width-1), y the row (0..height-1)",
                )
        if not math.isfinite(optimal_length) or optimal_length < 0:
            raise _bad(
                path,
                line_no,
                f"optimal length {fields[8]!r} is not a finite number >= 0.",
                "the last field is the optimal path length, e.g. 12.41421356",
            )
        scenarios.append(Scenario((start_y, start_x), (goal_y, goal_x), optimal_length))
    return scenarios


def write_movingai_map(path: str | Path, walls: np.ndarray) -> None:
    """Write an ``(H, W)`` bool array as a ``.map`` file (``@`` for walls, ``.`` for free cells)."""
    H, W = walls.shape
    rows = ["".join("@" if wall else "." for wall in row) for row in walls]
    text = f"type octile\nheight {H}\nwidth {W}\nmap\n" + "\n".join(rows) + "\n"
    write_atomic(path, text.encode())


def write_movingai_scenarios(
    path: str | Path, map_name: str, shape: tuple[int, int], scenarios: list[Scenario]
) -> None:
    """Write scenarios as a ``.scen`` file for the map `map_name` of size ``(H, W)``."""
    H, W = shape
    lines = ["version 1"]
    for bucket, (start, goal, length) in enumerate(scenarios):
        fields = [
            bucket // 10,
            map_name,
            W,
            H,
            start[1],
            start[0],
            goal[1],
            goal[0],
            f"{length:.8f}",
        ]
        lines.append("\t".join(str(v) for v in fields))
    write_atomic(path, ("\n".join(lines) + "\n").encode())
