"""A learned heuristic (lesson 12): a conv net that guesses the cost-to-go of every cell from the map.

A* is only as fast as its heuristic is close to the true cost still to pay. Manhattan distance
ignores walls, so on a cluttered map A* expands every cell whose Manhattan estimate undersells its
detour. This net reads the map and the goal and predicts, for every cell, the *detour*: how much
longer the shortest 4-connected path to the goal is than the Manhattan distance. Its targets are
exact, from breadth-first search (``distance_map`` run from the goal). The heuristic is then
``Manhattan + predicted detour``: closer to the truth, but no longer guaranteed to be a lower
bound, so A* with it may return a slightly longer path. That trade is the subject of the lesson
(and of Neural A*, Yonetani et al. 2021: https://arxiv.org/abs/2009.07476).

Detours are shaped by walls far away, so the convolutions are dilated (1, 2, 4, 8 cells apart):
five 3x3 layers see a 33-cell-wide patch with about two thousand weights. The net is fully
convolutional, so a net trained on 24x24 maps reads maps of any ``(H, W)``.
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
    channels: int = 8  # feature maps in the hidden layers
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1)  # one 3x3 conv layer each

    def __post_init__(self):
        self.dilations = tuple(int(d) for d in self.dilations)  # JSON stores a list
        if self.channels < 1 or len(self.dilations) < 2 or min(self.dilations) < 1:
            raise ValueError(
                f"need channels >= 1 and at least two dilations >= 1, got {self.channels} and "
                f"{self.dilations}.\nhelp: the defaults (8, (1, 2, 4, 8, 1)) work well."
            )


def map_features(walls: np.ndarray, goal: Cell) -> np.ndarray:
    """The net's input ``(3, H, W)``: walls, the goal as a one-hot map, Manhattan distance / (H + W)."""
    H, W = walls.shape
    rows, cols = np.indices((H, W))  # (H, W) each
    goal_map = np.zeros((H, W), dtype=np.float32)
    goal_map[goal] = 1.0
    manhattan = (np.abs(rows - goal[0]) + np.abs(cols - goal[1])) / (H + W)
    return np.stack([walls.astype(np.float32), goal_map, manhattan]).astype(np.float32)


class HeuristicNet:
    """Map features ``(B, 3, H, W)`` -> predicted detour ``(B, 1, H, W)`` in units of ``H + W`` cells."""

    def __init__(self, config: HeuristicConfig | None = None):
        self.config = config or HeuristicConfig()
        ch, dilations = self.config.channels, self.config.dilations
        sizes = [3] + [ch] * (len(dilations) - 1) + [1]
        self.convs = [
            nn.Conv2d(a, b, 3, padding=d, dilation=d)
            for a, b, d in zip(sizes[:-1], sizes[1:], dilations, strict=True)
        ]

    def __call__(self, x: Tensor) -> Tensor:
        for conv in self.convs[:-1]:
            x = conv(x).relu()  # (B, ch, H, W)
        return self.convs[-1](x).relu()  # (B, 1, H, W), a detour is never negative

    def cost_to_go(self, walls: np.ndarray, goal: Cell) -> np.ndarray:
        """The heuristic table ``(H, W)``: Manhattan distance to `goal` plus the predicted detour."""
        walls = np.asarray(walls, dtype=bool)
        if walls.ndim != 2:
            raise ValueError(
                f"walls must be an (H, W) map, got shape {walls.shape}.\nhelp: pass world.walls."
            )
        x = map_features(walls, goal)  # (3, H, W)
        detour = self(Tensor(x[None])).numpy()[0, 0]  # (H, W)
        H, W = walls.shape
        return (x[2] + detour) * (H + W)  # back to cells


@dataclass
class HeuristicTraining:
    steps: int = 700
    batch: int = 16  # maps a step; fixed, so the jitted step replays
    size: int = 24  # maps are size x size
    pool: int = 1200  # maps generated once and sampled from
    wall_density: tuple[float, float] = (0.15, 0.35)
    lr: float = 3e-3
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
    """`count` maps with a random goal: features ``(count, 3, size, size)``, BFS detours ``(count,
    1, size, size)`` scaled by ``2 * size``, and a mask of the cells that reach the goal."""
    feats, detours, masks = [], [], []
    for _ in range(count):
        walls = random_walls((size, size), rng.uniform(*density), rng)
        free = np.argwhere(~walls)
        goal = tuple(int(v) for v in free[rng.integers(len(free))])
        x = map_features(walls, goal)  # (3, size, size)
        dist = distance_map(walls, goal)  # (size, size), exact cost-to-go, -1 where cut off
        reach = dist >= 0
        feats.append(x)
        detours.append(np.where(reach, dist / (2 * size) - x[2], 0.0))
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
    Tensor.manual_seed(training.seed)
    model = HeuristicNet(config)
    opt = nn.optim.Adam(get_parameters(model), lr=training.lr)
    rng = np.random.default_rng(training.seed)
    feats, detours, masks = detour_examples(
        training.pool, training.size, training.wall_density, rng
    )

    @TinyJit
    @Context(TRAINING=1)
    def step(x: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        opt.zero_grad()
        error = (model(x) - target).square() * mask  # (B, 1, H, W), zero where no path
        loss = (error.sum() / mask.sum()).backward()
        return loss.realize(*opt.schedule_step())

    result = TrainResult()
    for _ in tqdm(range(training.steps), desc="heuristic", disable=not progress, mininterval=1.0):
        idx = rng.integers(0, training.pool, size=training.batch)
        loss = step(Tensor(feats[idx]), Tensor(detours[idx]), Tensor(masks[idx]))
        result.losses.append(loss.item())
    return model, result


def save_heuristic(model: HeuristicNet, stem, training: HeuristicTraining | None = None) -> None:
    """Save the net; `training`, when given, is stored beside the config to say how it was made."""
    extra = {"training": dataclasses.asdict(training)} if training else None
    save_checkpoint(model, model.config, stem, extra)


def load_heuristic(stem=None) -> HeuristicNet:
    """Load a saved net; without a stem, the one shipped in ``neurosymbolic/weights/``."""
    return load_checkpoint(HeuristicNet, HeuristicConfig, stem or SHIPPED / "heuristic")
