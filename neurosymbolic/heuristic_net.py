"""A learned heuristic (lesson 12): a conv net that guesses the cost-to-go of every cell from the map.

A* is only as fast as its heuristic is close to the true cost still to pay. Manhattan distance
ignores walls, so on a cluttered map A* expands every cell whose Manhattan estimate undersells its
detour. This net reads the map and the goal and predicts, for every cell, the *detour*: how much
longer the shortest 4-connected path to the goal is than the Manhattan distance. Its targets are
exact, from breadth-first search (``distance_map`` run from the goal), and it learns them as
``log(1 + detour)`` so that a few cells walled into pockets do not drown the rest. The heuristic
is then ``Manhattan + predicted detour`` in whole steps (`heuristic_table`): closer to the truth,
but no longer guaranteed to be a lower bound, so A* with it may return a slightly longer path.
The loss weighs an over-estimate more than an under-estimate (`asymmetric_loss`): A* pays the
first in path length, the second only in expansions. That trade is the subject of the lesson (and
of Neural A*, Yonetani et al. 2021: https://arxiv.org/abs/2009.07476).

Detours are shaped by walls far away, so the net is a U-Net: it halves the map three times
(32x32 down to 4x4, where one 3x3 convolution spans the whole map) and doubles it back, joining
each level with the detail it had on the way down; about 303 thousand weights. It is fully
convolutional, so a net trained on 32x32 maps reads any ``(H, W)`` (padded with walls to a
multiple of 8). The shipped net is trained (about 15 minutes on 2 cores) by

    python -m neurosymbolic train --nets heuristic --out neurosymbolic/weights --force
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from tinygrad import Context, Tensor, TinyJit, nn
from tinygrad.nn.state import get_parameters
from tqdm import tqdm

from neurosymbolic.checkpoint import SHIPPED, load_checkpoint, save_checkpoint
from neurosymbolic.world import Cell, distance_map, random_walls


@dataclass
class HeuristicConfig:
    channels: int = 16  # feature maps at full size, doubled at each coarser level (at most 4x)
    levels: int = 3  # times the map is halved: 32x32 -> 16x16 -> 8x8 -> 4x4

    def __post_init__(self):
        if self.channels < 1 or self.levels < 1:
            raise ValueError(
                f"need channels >= 1 and levels >= 1, got {self.channels} and {self.levels}.\n"
                "help: the defaults (16, 3) read a 32x32 map down to 4x4."
            )

    @property
    def side_multiple(self) -> int:
        """The net halves the map `levels` times, so the sides of a map it reads must be
        multiples of this."""
        return 2**self.levels


FEATURES = 5  # input channels of map_features


def map_features(walls: np.ndarray, goal: Cell) -> np.ndarray:
    """The net's input ``(5, H, W)``: walls, the goal as a one-hot map, Manhattan distance, and the
    signed row and column offsets to the goal (which way it lies), distances divided by ``H + W``."""
    H, W = walls.shape
    rows, cols = np.indices((H, W))  # (H, W) each
    goal_map = np.zeros((H, W), dtype=np.float32)
    goal_map[goal] = 1.0
    d_row, d_col = (goal[0] - rows) / (H + W), (goal[1] - cols) / (H + W)  # (H, W) each
    manhattan = np.abs(d_row) + np.abs(d_col)
    return np.stack([walls.astype(np.float32), goal_map, manhattan, d_row, d_col]).astype(
        np.float32
    )


def conv3x3(channels_in: int, channels_out: int) -> nn.Conv2d:
    """A 3x3 convolution that keeps the map's size."""
    return nn.Conv2d(channels_in, channels_out, 3, padding=1)


class HeuristicNet:
    """A U-Net (Ronneberger et al. 2015, https://arxiv.org/abs/1505.04597): map features
    ``(B, 5, H, W)`` -> predicted log(1 + detour) ``(B, 1, H, W)``. Each level going down runs two
    3x3 convolutions and then halves the map (2x2 max pool); going up, each level doubles the map
    and joins it with the features that level had going down, which keep the detail the pooling
    threw away."""

    def __init__(self, config: HeuristicConfig | None = None):
        self.config = config or HeuristicConfig()
        ch, levels = self.config.channels, self.config.levels
        widths = [ch * min(2**i, 4) for i in range(levels + 1)]  # e.g. 16, 32, 64, 64
        sizes = [FEATURES] + widths
        self.down = [
            [conv3x3(a, b), conv3x3(b, b)] for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        self.up = [
            [conv3x3(widths[i + 1] + width, width), conv3x3(width, width)]
            for i, width in reversed(list(enumerate(widths[:-1])))
        ]
        self.head = nn.Conv2d(ch, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        _, _, H, W = x.shape
        multiple = self.config.side_multiple
        if H % multiple or W % multiple:
            raise ValueError(
                f"this net halves the map {self.config.levels} times, so H and W must be "
                f"multiples of {multiple}, got {H}x{W}.\nhelp: cost_to_go pads a map with walls."
            )
        skips = []
        for level, (conv_a, conv_b) in enumerate(self.down):
            if level:
                x = x.max_pool2d(2)  # (B, c, h, w) -> (B, c, h/2, w/2)
            x = conv_b(conv_a(x).relu()).relu()  # (B, widths[level], h, w)
            skips.append(x)
        skips.pop()  # the coarsest level's features are x itself
        for conv_a, conv_b in self.up:
            B, C, h, w = x.shape
            x = x.reshape(B, C, h, 1, w, 1).expand(B, C, h, 2, w, 2)  # each cell repeated 2x2
            x = x.reshape(B, C, 2 * h, 2 * w)  # (B, C, 2h, 2w)
            x = x.cat(skips.pop(), dim=1)  # (B, C + c, 2h, 2w): this level's features going down
            x = conv_b(conv_a(x).relu()).relu()  # (B, c, 2h, 2w)
        return self.head(x)  # (B, 1, H, W), unbounded while training (a relu here could die)

    def cost_to_go(self, walls: np.ndarray, goal: Cell) -> np.ndarray:
        """The heuristic table ``(H, W)``: Manhattan distance to `goal` plus the predicted detour
        (see `heuristic_table`). A map whose sides are not multiples of ``side_multiple`` is read
        with walls added below and to its right, which no path crosses."""
        walls = np.asarray(walls, dtype=bool)
        if walls.ndim != 2:
            raise ValueError(
                f"walls must be an (H, W) map, got shape {walls.shape}.\nhelp: pass world.walls."
            )
        H, W = walls.shape
        multiple = self.config.side_multiple
        padded = np.pad(walls, ((0, -H % multiple), (0, -W % multiple)), constant_values=True)
        x = map_features(padded, goal)  # (5, H', W')
        detour = np.expm1(self(Tensor(x[None])).numpy()[0, 0])  # (H', W'), cells
        manhattan = x[2] * sum(padded.shape)  # (H', W'), steps
        return heuristic_table(manhattan[:H, :W], detour[:H, :W], goal)


def heuristic_table(manhattan: np.ndarray, detour: np.ndarray, goal: Cell) -> np.ndarray:
    """An A* heuristic ``(H, W)`` from a predicted detour: never below Manhattan distance (which
    is a lower bound, so a negative detour is always wrong), exactly 0 at the goal, and whole
    steps. A detour on a 4-connected grid is even (every step away from the goal is paid back),
    so the prediction is rounded to an even number: like Manhattan distance, the table then gives
    many cells the same f, and A*'s tie-break (the deeper cell first) keeps heading for the goal;
    a fractional estimate would order those ties by its noise instead."""
    steps = 2.0 * np.round(np.maximum(detour, 0.0) / 2.0)  # (H, W), an even number of steps
    table = manhattan + steps
    table[goal] = 0.0
    return table.astype(np.float64)


@dataclass
class HeuristicTraining:
    steps: int = 1000
    batch: int = 16  # maps a step; fixed, so the jitted step replays
    size: int = 32  # maps are size x size
    pool: int = 1500  # maps generated once and sampled from
    wall_density: tuple[float, float] = (0.15, 0.35)
    lr: float = 3e-3  # at the start; it decays along a cosine to 0
    over_weight: float = 2.0  # how much more an over-estimate costs in the loss than an under-
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch < 1 or self.size < 4 or self.pool < self.batch:
            raise ValueError(
                f"need steps >= 1, batch >= 1, size >= 4, pool >= batch; got {self.steps}, "
                f"{self.batch}, {self.size}, {self.pool}.\nhelp: e.g. HeuristicTraining(steps=300)."
            )


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # training loss at every step


def detour_examples(count: int, size: int, density, rng: np.random.Generator):
    """`count` maps with a random goal: features ``(count, 5, size, size)``, BFS detours ``(count,
    1, size, size)`` in cells, and a mask of the cells that reach the goal."""
    feats, detours, masks = [], [], []
    for _ in range(count):
        walls = random_walls((size, size), rng.uniform(*density), rng)
        free = np.argwhere(~walls)
        goal = tuple(int(v) for v in free[rng.integers(len(free))])
        x = map_features(walls, goal)  # (5, size, size)
        dist = distance_map(walls, goal)  # (size, size), exact cost-to-go, -1 where cut off
        reach = dist >= 0
        feats.append(x)
        detours.append(np.where(reach, dist - x[2] * 2 * size, 0.0))
        masks.append(reach)
    as_maps = lambda arrays: np.stack(arrays)[:, None].astype(np.float32)  # noqa: E731
    return np.stack(feats), as_maps(detours), as_maps(masks)


def train_heuristic(
    training: HeuristicTraining | None = None,
    config: HeuristicConfig | None = None,
    progress: bool = False,
) -> tuple[HeuristicNet, TrainResult]:
    """Train a `HeuristicNet` on generated maps: mean squared detour error over reachable cells."""
    training = training or HeuristicTraining()
    config = config or HeuristicConfig()
    multiple = config.side_multiple
    if training.size % multiple:
        raise ValueError(
            f"the net halves its maps {config.levels} times, so the training maps' size must be a "
            f"multiple of {multiple}, got {training.size}.\nhelp: e.g. size="
            f"{-(-training.size // multiple) * multiple}, or fewer levels."
        )
    Tensor.manual_seed(training.seed)
    model = HeuristicNet(config)
    opt = nn.optim.Adam(get_parameters(model), lr=training.lr)
    rng = np.random.default_rng(training.seed)
    feats, detours, masks = detour_examples(
        training.pool, training.size, training.wall_density, rng
    )

    @TinyJit
    @Context(TRAINING=1)
    def step(x: Tensor, target: Tensor, mask: Tensor, lr: Tensor) -> Tensor:
        opt.lr = lr  # an input Tensor: each replay reads this step's value
        opt.zero_grad()
        log_target = (
            target + 1
        ).log()  # log(1 + detour): a few huge detours must not drown the rest
        loss = asymmetric_loss(model(x), log_target, mask, training.over_weight).backward()
        return loss.realize(*opt.schedule_step())

    result = TrainResult()
    for i in tqdm(range(training.steps), desc="heuristic", disable=not progress, mininterval=1.0):
        idx = rng.integers(0, training.pool, size=training.batch)
        lr = training.lr * 0.5 * (1 + np.cos(np.pi * i / training.steps))  # cosine decay to 0
        loss = step(Tensor(feats[idx]), Tensor(detours[idx]), Tensor(masks[idx]), Tensor([lr]))
        result.losses.append(loss.item())
    return model, result


def asymmetric_loss(predicted: Tensor, target: Tensor, mask: Tensor, over_weight: float) -> Tensor:
    """Mean squared error over the cells where `mask` is 1, each over-estimate (predicted >
    target) weighted `over_weight` times an under-estimate: A* pays an over-estimate in path
    length and an under-estimate only in expansions. All ``(B, 1, H, W)``; a scalar out."""
    error = predicted - target  # (B, 1, H, W)
    weight = (error > 0).where(over_weight, 1.0) * mask  # (B, 1, H, W)
    return (weight * error.square()).sum() / mask.sum()


def score_heuristic(net: HeuristicNet, n_maps: int = 20, seed: int = 10_000) -> str:
    """One line: A* guided by `net` against plain A* on `n_maps` generated 32x32 maps that no
    training step saw (the problems of `guided_search.random_problems`)."""
    from neurosymbolic.guided_search import compare_heuristics, manhattan_table, random_problems

    problems = random_problems(n_maps, size=32, seed=seed)
    methods = {"A*": (manhattan_table, 1.0), "learned": (net.cost_to_go, 1.0)}
    learned = compare_heuristics(problems, methods)[1]
    return (
        f"heuristic on {n_maps} unseen 32x32 maps: {learned.expanded_ratio:.2f}x A*'s expansions "
        f"at {learned.cost_ratio:.3f}x the optimal cost (worst {learned.worst_cost_ratio:.2f}x)"
    )


def save_heuristic(
    model: HeuristicNet,
    stem,
    training: HeuristicTraining | None = None,
    result: TrainResult | None = None,
) -> None:
    """Save the net; `training` and `result`, when given, are stored beside the config to say how
    it was made (the loss is recorded as the mean of every block of 100 steps)."""
    extra = {"training": dataclasses.asdict(training)} if training else {}
    if result is not None:
        blocks = range(0, len(result.losses), 100)
        extra["losses"] = [round(float(np.mean(result.losses[i : i + 100])), 4) for i in blocks]
    save_checkpoint(model, model.config, stem, extra or None)


def load_heuristic(stem=None) -> HeuristicNet:
    """Load a saved net; without a stem, the one shipped in ``neurosymbolic/weights/``."""
    return load_checkpoint(HeuristicNet, HeuristicConfig, stem or SHIPPED / "heuristic")
