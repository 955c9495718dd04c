"""Neural perception (lesson 9): a small conv net that turns a noisy look at the map into wall odds.

Walls come in blobs, and the noise is independent from cell to cell, so a cell's neighbours say a
lot about it: four 3x3 convolutions see a 9x9 patch and learn to average the noise away where
plain thresholding of each cell (``obs > 0.5``) flips many cells. Walls are the rarer class (15-40%
of cells), so an unweighted loss makes the net shy of calling a wall; counting a missed wall 2.5 times
in the loss brings its wall recall above thresholding's as well as its accuracy. The net is fully
convolutional, so a net trained on 16x16 maps reads maps of any ``(H, W)``.
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from tinygrad import Context, Tensor, TinyJit, nn
from tinygrad.nn.state import get_parameters
from tqdm import tqdm

from neurosymbolic.checkpoint import SHIPPED, load_checkpoint, save_checkpoint
from neurosymbolic.world import random_walls


@dataclass
class PerceptionConfig:
    channels: int = 16  # feature maps in the hidden conv layers
    layers: int = 4  # 3x3 conv layers; the receptive field is (2 * layers + 1) cells wide

    def __post_init__(self):
        if self.channels < 1 or self.layers < 2:
            raise ValueError(
                f"need channels >= 1 and layers >= 2, got {self.channels} and {self.layers}.\n"
                "help: the defaults (16, 4) work well."
            )


class Perception:
    """Noisy observation ``(B, 1, H, W)`` -> wall logits ``(B, 1, H, W)``."""

    def __init__(self, config: PerceptionConfig | None = None):
        self.config = config or PerceptionConfig()
        ch, n = self.config.channels, self.config.layers
        sizes = [1] + [ch] * (n - 1) + [1]
        self.convs = [nn.Conv2d(a, b, 3, padding=1) for a, b in zip(sizes, sizes[1:], strict=False)]

    def __call__(self, obs: Tensor) -> Tensor:
        x = obs
        for conv in self.convs[:-1]:
            x = conv(x).relu()  # (B, ch, H, W)
        return self.convs[-1](x)  # (B, 1, H, W) logits

    def perceive(self, obs: np.ndarray) -> np.ndarray:
        """Wall probabilities for one ``(H, W)`` observation or a batch ``(N, H, W)``."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim not in (2, 3):
            raise ValueError(
                f"obs must be (H, W) or (N, H, W), got shape {obs.shape}.\n"
                "help: pass world.observe(noise, rng)."
            )
        batch = obs[None] if obs.ndim == 2 else obs  # (N, H, W)
        probs = self(Tensor(batch[:, None])).sigmoid().numpy()[:, 0]  # (N, H, W)
        return probs[0] if obs.ndim == 2 else probs


@dataclass
class PerceptionTraining:
    steps: int = 400
    batch: int = 32  # maps a step; fixed, so the jitted step replays
    size: int = 16  # maps are size x size
    noise: tuple[float, float] = (0.3, 1.2)  # each map's noise std is drawn from this range
    wall_density: tuple[float, float] = (0.15, 0.4)
    lr: float = 3e-3
    wall_weight: float = 2.5  # loss weight of wall cells; > 1 trades free cells for wall recall
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch < 1 or self.size < 3:
            raise ValueError(
                f"need steps >= 1, batch >= 1, size >= 3; got {self.steps}, {self.batch}, "
                f"{self.size}.\nhelp: e.g. PerceptionTraining(steps=400, batch=32, size=16)."
            )
        if self.wall_weight <= 0:
            raise ValueError(
                f"wall_weight must be > 0, got {self.wall_weight}.\n"
                "help: 1.0 weighs walls and free cells alike; 2.5 counts a missed wall 2.5 times."
            )


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # training loss at every step


def noisy_maps(count: int, size: int, noise, density, rng: np.random.Generator):
    """`count` random wall maps and noisy looks at them: two ``(count, size, size)`` arrays."""
    walls = np.stack([random_walls((size, size), rng.uniform(*density), rng) for _ in range(count)])
    stds = rng.uniform(*noise, size=(count, 1, 1)) if isinstance(noise, tuple) else noise
    obs = walls + stds * rng.standard_normal(walls.shape)
    return walls, obs.astype(np.float32)


def train_perception(
    training: PerceptionTraining | None = None,
    config: PerceptionConfig | None = None,
    progress: bool = False,
) -> tuple[Perception, TrainResult]:
    """Train a `Perception` net on freshly generated maps with binary cross-entropy."""
    training = training or PerceptionTraining()
    Tensor.manual_seed(training.seed)
    model = Perception(config)
    opt = nn.optim.Adam(get_parameters(model), lr=training.lr)
    rng = np.random.default_rng(training.seed)
    wall_weight = Tensor(training.wall_weight)

    @TinyJit
    @Context(TRAINING=1)
    def step(obs: Tensor, walls: Tensor) -> Tensor:
        opt.zero_grad()
        loss = model(obs).binary_crossentropy_logits(walls, pos_weight=wall_weight).backward()
        return loss.realize(*opt.schedule_step())

    result = TrainResult()
    for _ in tqdm(range(training.steps), desc="perception", disable=not progress, mininterval=1.0):
        walls, obs = noisy_maps(
            training.batch, training.size, training.noise, training.wall_density, rng
        )
        loss = step(Tensor(obs[:, None]), Tensor(walls[:, None].astype(np.float32)))
        result.losses.append(loss.item())
    return model, result


def threshold_walls(obs: np.ndarray, level: float = 0.5) -> np.ndarray:
    """The baseline without learning: a wall wherever the observation is above `level`."""
    return np.asarray(obs) > level  # (H, W) or (N, H, W) bool


def wall_metrics(guess: np.ndarray, walls: np.ndarray) -> tuple[float, float]:
    """(accuracy, wall recall) of a bool wall guess against the true walls, any matching shape.

    Accuracy is the share of cells guessed right; recall the share of true walls guessed as walls
    (1.0 when there are no walls: none was missed).
    """
    guess, walls = np.asarray(guess, dtype=bool), np.asarray(walls, dtype=bool)
    if guess.shape != walls.shape:
        raise ValueError(
            f"guess {guess.shape} and walls {walls.shape} must have the same shape.\n"
            "help: compare one map with one map, or a batch with a batch."
        )
    accuracy = float((guess == walls).mean())
    recall = float((guess & walls).sum() / walls.sum()) if walls.any() else 1.0
    return accuracy, recall


@dataclass
class PerceptionScore:
    """Held-out quality at one noise level: accuracy and wall recall, net vs ``obs > 0.5``."""

    noise: float
    net_accuracy: float
    net_recall: float
    threshold_accuracy: float
    threshold_recall: float


def score_perception(
    model: Perception,
    noise_levels=(0.3, 0.5, 0.8, 1.0),
    n_maps: int = 64,
    size: int = 16,
    seed: int = 10_000,
) -> list[PerceptionScore]:
    """Compare the net (probability > 0.5) with thresholding on maps no training step saw."""
    scores = []
    for noise in noise_levels:
        rng = np.random.default_rng(seed)
        walls, obs = noisy_maps(n_maps, size, float(noise), (0.15, 0.4), rng)
        net = wall_metrics(model.perceive(obs) > 0.5, walls)
        threshold = wall_metrics(threshold_walls(obs), walls)
        scores.append(PerceptionScore(float(noise), *net, *threshold))
    return scores


def save_perception(model: Perception, stem, training: PerceptionTraining | None = None) -> None:
    """Save the net; `training`, when given, is stored beside the config to say how it was made."""
    extra = {"training": dataclasses.asdict(training)} if training else None
    save_checkpoint(model, model.config, stem, extra)


def load_perception(stem=None) -> Perception:
    """Load a saved net; without a stem, the one shipped in ``neurosymbolic/weights/``."""
    return load_checkpoint(Perception, PerceptionConfig, stem or SHIPPED / "perception")
