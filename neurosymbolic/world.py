"""The grid world of lessons 8-11: walls, objects to deliver, a goal, noisy looks, slippery moves.

Cells are ``(row, col)`` tuples that index numpy arrays as ``grid[row, col]``; a map is ``(H, W)``.
The agent starts on ``start``, may carry one object at a time, and solves the episode when every
object has been picked up and dropped on the goal cell (delivered) and it stands on the goal.

>>> world = GridWorld.from_ascii('''
... S.a
... .#.
... ..G
... ''')
>>> state = world.initial_state()
>>> for action in ["right", "right", "pickup", "down", "down", "drop"]:
...     state = world.step(state, action)
>>> world.is_solved(state)
True

The world only holds data and rules: pictures are drawn by `neurosymbolic.viz`.
"""

import math
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

Cell = tuple[int, int]  # (row, col)
MOVES: dict[str, Cell] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
ACTIONS: tuple[str, ...] = (*MOVES, "pickup", "drop")
# GridWorld.random draws at most this many cells (512x512): labelling the free regions is slow
# in pure Python and grows faster than the map. Pass `max_cells=` to draw a larger world anyway.
MAX_RANDOM_CELLS = 512 * 512
ASCII_LEGEND = "'#' wall, '.' free, 'S' start, 'G' goal, 'a'-'z' an object on a free cell"


class State(NamedTuple):
    """Where the agent is, what it carries (an object name or None) and what it has delivered."""

    cell: Cell
    held: str | None = None
    delivered: frozenset[str] = frozenset()


@dataclass
class Episode:
    """One run: the visited cells (one more than the actions), replans and the outcome."""

    cells: list[Cell]
    actions: list[str]
    success: bool
    replans: int = 0
    policy_steps: int = 0  # steps whose action came from the neural policy
    planned_cells: list[list[Cell]] = field(default_factory=list)  # every plan made, for pictures

    @property
    def steps(self) -> int:
        return len(self.actions)


def distance_map(walls: np.ndarray, source: Cell) -> np.ndarray:
    """Breadth-first 4-connected step counts from `source` to every cell; -1 where unreachable."""
    H, W = walls.shape
    dist = np.full((H, W), -1, dtype=np.int64)  # (H, W)
    dist[source] = 0
    frontier = deque([source])
    while frontier:
        row, col = frontier.popleft()
        for d_row, d_col in MOVES.values():
            r, c = row + d_row, col + d_col
            if 0 <= r < H and 0 <= c < W and not walls[r, c] and dist[r, c] < 0:
                dist[r, c] = dist[row, col] + 1
                frontier.append((r, c))
    return dist


def check_cell(name: str, cell, walls: np.ndarray, allow_wall: bool = False) -> Cell:
    """`cell` as a (row, col) tuple of ints inside `walls` (and not on a wall unless allowed)."""
    H, W = walls.shape
    if not (isinstance(cell, tuple | list) and len(cell) == 2 and all(_is_int(v) for v in cell)):
        raise ValueError(
            f"{name} must be a (row, col) pair of ints, got {cell!r}.\n"
            f"help: cells index the walls as walls[row, col], e.g. {name}=(0, 1)."
        )
    cell = (int(cell[0]), int(cell[1]))
    if not (0 <= cell[0] < H and 0 <= cell[1] < W):
        raise ValueError(
            f"{name} {cell} is outside the {H}x{W} map (rows 0..{H - 1}, cols 0..{W - 1}).\n"
            "help: cells are (row, col), not (x, y); check the order and the map size."
        )
    if walls[cell] and not allow_wall:
        raise ValueError(f"{name} {cell} is on a wall.\nhelp: put {name} on a free cell.")
    return cell


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


class GridWorld:
    """A 4-connected grid with walls (an ``(H, W)`` bool array), a start, a goal and named objects.

    With ``require_solvable=True`` (the default) the goal and every object must be reachable from
    the start; pass False to build worlds on which a planner should report that no plan exists.
    """

    def __init__(
        self,
        walls: np.ndarray,
        start: Cell,
        goal: Cell,
        objects: dict[str, Cell] | None = None,
        require_solvable: bool = True,
    ):
        walls = np.asarray(walls)
        if walls.ndim != 2 or walls.dtype != np.bool_ or walls.size == 0:
            raise ValueError(
                f"walls must be a non-empty 2-D bool array (H, W), got dtype {walls.dtype} and "
                f"shape {walls.shape}.\nhelp: convert a 0/1 map with `walls > 0.5`."
            )
        self.walls = walls.copy()  # (H, W), True = wall
        self.walls.flags.writeable = False
        self.start = check_cell("start", start, self.walls)
        self.goal = check_cell("goal", goal, self.walls)
        self.objects = {
            str(n): check_cell(f"object {n!r}", c, self.walls) for n, c in (objects or {}).items()
        }
        if len(set(self.objects.values())) != len(self.objects):
            raise ValueError(
                f"two objects share a cell: {self.objects}.\nhelp: give each object its own cell."
            )
        if require_solvable:
            dist = distance_map(self.walls, self.start)  # (H, W)
            for name, cell in [
                ("goal", self.goal),
                *((f"object {n!r}", c) for n, c in self.objects.items()),
            ]:
                if dist[cell] < 0:
                    raise ValueError(
                        f"{name} at {cell} cannot be reached from the start {self.start}.\n"
                        "help: open a path through the walls, or pass require_solvable=False."
                    )

    @property
    def shape(self) -> tuple[int, int]:
        return self.walls.shape

    def __repr__(self) -> str:
        H, W = self.shape
        return f"GridWorld({H}x{W}, start={self.start}, goal={self.goal}, objects={self.objects})"

    # -- the rules ---------------------------------------------------------------------------
    def initial_state(self) -> State:
        return State(self.start)

    def is_solved(self, state: State) -> bool:
        return (
            state.cell == self.goal
            and state.held is None
            and len(state.delivered) == len(self.objects)
        )

    def is_free(self, cell: Cell) -> bool:
        """True for a cell inside the map that is not a wall."""
        H, W = self.shape
        return 0 <= cell[0] < H and 0 <= cell[1] < W and not self.walls[cell]

    def object_at(self, state: State) -> str | None:
        """The object lying on the agent's cell (not yet picked up), if any."""
        for name, cell in self.objects.items():
            if cell == state.cell and name != state.held and name not in state.delivered:
                return name
        return None

    def step(
        self, state: State, action: str, slip: float = 0.0, rng: np.random.Generator | None = None
    ) -> State:
        """Apply `action` and return the next state. Impossible actions leave the state unchanged.

        A move into a wall or off the map bumps (the agent stays). With probability `slip` (needs
        `rng`) a move goes in one of the three other directions instead. ``pickup`` takes the object
        on the agent's cell when its hands are empty; ``drop`` delivers the held object on the goal.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}.\nhelp: use one of {ACTIONS}.")
        if not 0.0 <= slip <= 1.0:
            raise ValueError(
                f"slip must be a probability in [0, 1], got {slip}.\nhelp: e.g. slip=0.1."
            )
        if action in MOVES:
            if slip > 0.0:
                if rng is None:
                    raise ValueError(
                        "slip > 0 needs an rng.\nhelp: pass rng=np.random.default_rng(seed)."
                    )
                if rng.random() < slip:
                    action = str(rng.choice([m for m in MOVES if m != action]))
            d_row, d_col = MOVES[action]
            target = (state.cell[0] + d_row, state.cell[1] + d_col)
            return state._replace(cell=target) if self.is_free(target) else state
        if action == "pickup":
            name = self.object_at(state)
            return state._replace(held=name) if state.held is None and name is not None else state
        if state.held is not None and state.cell == self.goal:  # drop
            return state._replace(held=None, delivered=state.delivered | {state.held})
        return state

    def observe(self, noise: float, rng: np.random.Generator) -> np.ndarray:
        """A noisy look at the walls: 1.0 on walls, 0.0 on free cells, plus N(0, noise**2) noise."""
        if (
            not isinstance(noise, int | float | np.floating)
            or not math.isfinite(noise)
            or noise < 0
        ):
            raise ValueError(
                f"noise must be a finite number >= 0, got {noise!r}.\nhelp: e.g. noise=0.5."
            )
        return (self.walls + noise * rng.standard_normal(self.shape)).astype(np.float32)  # (H, W)

    # -- building worlds ----------------------------------------------------------------------
    @classmethod
    def from_ascii(cls, text: str, require_solvable: bool = True) -> "GridWorld":
        """Build a world from a picture, one text row a grid row.

        Legend: ``#`` wall, ``.`` free, ``S`` start, ``G`` goal, ``a``-``z`` an object.
        """
        rows = [line.strip() for line in text.strip("\n").splitlines() if line.strip()]
        if not rows or len({len(r) for r in rows}) != 1:
            raise ValueError(
                f"ASCII map rows must be non-empty and equally long, got {[len(r) for r in rows]}."
                "\nhelp: pad every row to the same width with '#' or '.'."
            )
        walls = np.zeros((len(rows), len(rows[0])), dtype=bool)  # (H, W)
        found: dict[str, list[Cell]] = {}
        for row, line in enumerate(rows):
            for col, char in enumerate(line):
                if char == "#":
                    walls[row, col] = True
                elif char == "S" or char == "G" or "a" <= char <= "z":
                    found.setdefault(char, []).append((row, col))
                elif char != ".":
                    raise ValueError(
                        f"unknown character {char!r} at row {row}, col {col}.\n"
                        f"help: legend: {ASCII_LEGEND}."
                    )
        for marker in "SG":
            if len(found.get(marker, [])) != 1:
                raise ValueError(
                    f"the map needs exactly one {marker!r}, found {len(found.get(marker, []))}.\n"
                    f"help: legend: {ASCII_LEGEND}."
                )
        for name, cells in found.items():
            if len(cells) > 1:
                raise ValueError(
                    f"object {name!r} appears {len(cells)} times.\nhelp: use each letter once."
                )
        objects = {n: c[0] for n, c in sorted(found.items()) if n not in "SG"}
        return cls(walls, found["S"][0], found["G"][0], objects, require_solvable)

    def to_ascii(self) -> str:
        """The world as text in the `from_ascii` legend."""
        chars = np.where(self.walls, "#", ".").astype("<U1")  # (H, W)
        for name, cell in self.objects.items():
            chars[cell] = name
        chars[self.start], chars[self.goal] = "S", "G"
        return "\n".join("".join(row) for row in chars)

    @classmethod
    def random(
        cls,
        size: int | tuple[int, int] = 12,
        wall_density: float = 0.3,
        n_objects: int = 2,
        seed: int = 0,
        max_cells: int = MAX_RANDOM_CELLS,
    ) -> "GridWorld":
        """A solvable world with blob-shaped walls; the same seed always gives the same world.

        Walls are random rectangles (1-3 by 1-4 cells) until `wall_density` of the map is covered;
        start, goal and objects go on distinct cells of the largest connected free region (found by
        breadth-first search), and the walls are drawn again when that region is too small. Maps of
        more than `max_cells` cells raise ValueError (see `MAX_RANDOM_CELLS`).
        """
        pair = isinstance(size, tuple | list) and len(size) == 2 and all(map(_is_int, size))
        if not (_is_int(size) or pair):
            raise ValueError(
                f"size must be an int or an (H, W) pair of ints, got {size!r}.\n"
                "help: e.g. size=12 or (10, 16)."
            )
        H, W = (size, size) if _is_int(size) else size
        if H < 2 or W < 2:
            raise ValueError(
                f"size must be at least 2x2, got {size!r}.\nhelp: e.g. size=12 or (10, 16)."
            )
        if max_cells < H * W:
            raise ValueError(
                f"a {H}x{W} world has {H * W:,} cells, over the limit of {max_cells:,} for "
                f"GridWorld.random (drawing it is slow).\nhelp: use a smaller size, or "
                f"pass max_cells={H * W} to draw it anyway."
            )
        if not 0.0 <= wall_density <= 0.6:
            raise ValueError(
                f"wall_density must be in [0, 0.6], got {wall_density}.\n"
                "help: denser maps rarely leave a connected region; try 0.3."
            )
        if not _is_int(n_objects) or not 0 <= n_objects <= 26:
            raise ValueError(
                f"n_objects must be in 0..26, got {n_objects}.\nhelp: objects are named a-z."
            )
        rng = np.random.default_rng(seed)
        for _ in range(100):
            walls = random_walls((H, W), wall_density, rng)
            region = largest_region(walls)
            if len(region) >= max(n_objects + 2, (H * W) // 3):
                picks = rng.choice(len(region), size=n_objects + 2, replace=False)
                cells = [region[i] for i in picks]
                objects = {chr(ord("a") + i): cells[2 + i] for i in range(n_objects)}
                return cls(walls, cells[0], cells[1], objects)
        raise ValueError(
            f"no connected {H}x{W} map found at wall_density {wall_density}.\n"
            "help: lower wall_density."
        )


def random_walls(shape: tuple[int, int], density: float, rng: np.random.Generator) -> np.ndarray:
    """Blob-shaped walls: random 1-3 by 1-4 rectangles until `density` of the cells are walls."""
    H, W = shape
    walls = np.zeros((H, W), dtype=bool)  # (H, W)
    while walls.mean() < density:
        h, w = rng.integers(1, 4), rng.integers(1, 5)
        if rng.random() < 0.5:
            h, w = w, h
        row, col = rng.integers(0, H), rng.integers(0, W)
        walls[row : row + h, col : col + w] = True
    return walls


def largest_region(walls: np.ndarray) -> list[Cell]:
    """The cells of the largest 4-connected free region, in row-major order."""
    seen = np.zeros(walls.shape, dtype=bool)  # (H, W)
    best: list[Cell] = []
    for start in zip(*np.nonzero(~walls), strict=True):
        if seen[start]:
            continue
        dist = distance_map(walls, (int(start[0]), int(start[1])))
        seen |= dist >= 0
        if (dist >= 0).sum() > len(best):
            best = [(int(r), int(c)) for r, c in zip(*np.nonzero(dist >= 0), strict=True)]
    return best
