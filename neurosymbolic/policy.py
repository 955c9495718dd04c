"""Neural policy (lesson 10): a small MLP that picks a move from what the agent sees around it.

Its input is a ``window x window`` patch of the (believed) wall map centred on the agent (cells off
the map count as walls) and four numbers pointing to the current target. It learns by imitation:
the labels are the first moves of A* paths on generated worlds. Pickups and drops are not learnt:
the rollout does them whenever the agent stands where one applies.
"""

from dataclasses import dataclass, field

import numpy as np
from tinygrad import Context, Tensor, TinyJit, nn
from tinygrad.nn.state import get_parameters
from tqdm import tqdm

from neurosymbolic.checkpoint import SHIPPED, load_checkpoint, save_checkpoint
from neurosymbolic.planner import astar_path
from neurosymbolic.world import MOVES, Cell, Episode, GridWorld, State, distance_map, largest_region

MOVE_NAMES = tuple(MOVES)  # the policy's four outputs, in this order


@dataclass
class PolicyConfig:
    window: int = 7  # odd side of the local view
    hidden: int = 64  # width of the two hidden layers

    def __post_init__(self):
        if self.window < 3 or self.window % 2 == 0 or self.hidden < 1:
            raise ValueError(
                f"window must be odd and >= 3 and hidden >= 1, got {self.window}, {self.hidden}.\n"
                "help: e.g. PolicyConfig(window=7, hidden=64)."
            )

    @property
    def n_features(self) -> int:
        return self.window * self.window + 4


def features(belief: np.ndarray, cell: Cell, target: Cell, window: int) -> np.ndarray:
    """The policy's input: the local view of `belief` ``(H, W)`` and the direction to `target`."""
    half = window // 2
    padded = np.pad(belief, half, constant_values=1.0)  # (H + 2 half, W + 2 half), off-map = wall
    view = padded[cell[0] : cell[0] + window, cell[1] : cell[1] + window]  # (window, window)
    d_row, d_col = target[0] - cell[0], target[1] - cell[1]
    direction = [
        np.clip(d_row / half, -1, 1),
        np.clip(d_col / half, -1, 1),
        np.sign(d_row),
        np.sign(d_col),
    ]
    return np.concatenate([view.ravel(), direction]).astype(np.float32)  # (window * window + 4,)


class Policy:
    """Features ``(N, window * window + 4)`` -> move logits ``(N, 4)`` over up, down, left, right."""

    def __init__(self, config: PolicyConfig | None = None):
        self.config = config or PolicyConfig()
        hidden = self.config.hidden
        self.layers = [
            nn.Linear(self.config.n_features, hidden),
            nn.Linear(hidden, hidden),
            nn.Linear(hidden, len(MOVE_NAMES)),
        ]

    def __call__(self, x: Tensor) -> Tensor:
        x = self.layers[0](x).relu()  # (N, hidden)
        x = self.layers[1](x).relu()  # (N, hidden)
        return self.layers[2](x)  # (N, 4)

    def act(self, feats: np.ndarray) -> list[str]:
        """The best move for each row of ``(N, n_features)`` features (one tinygrad call for all)."""
        feats = np.asarray(feats, dtype=np.float32).reshape(-1, self.config.n_features)
        return [MOVE_NAMES[i] for i in self(Tensor(feats)).argmax(axis=1).tolist()]


def current_target(world: GridWorld, state: State) -> Cell:
    """Where to head next: the goal when carrying, else the nearest undelivered object, else the goal."""
    if state.held is not None:
        return world.goal
    waiting = [c for n, c in sorted(world.objects.items()) if n not in state.delivered]
    if not waiting:
        return world.goal
    row, col = state.cell
    return min(waiting, key=lambda c: abs(c[0] - row) + abs(c[1] - col))


@dataclass
class PolicyTraining:
    worlds: int = 300  # generated training worlds
    paths: int = 6  # A* paths a world
    steps: int = 1500
    batch: int = 256  # fixed, so the jitted step replays
    size: int = 12
    wall_density: float = 0.3
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self):
        if min(self.worlds, self.paths, self.steps, self.batch) < 1:
            raise ValueError(
                f"worlds, paths, steps and batch must be >= 1, got {self.worlds}, {self.paths}, "
                f"{self.steps}, {self.batch}.\nhelp: e.g. PolicyTraining(worlds=300, steps=1500)."
            )


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # training loss at every step
    examples: int = 0  # (view, move) pairs in the imitation data set


def imitation_data(
    n_worlds: int, paths: int, size: int, wall_density: float, seed: int, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Examples from A* paths on generated worlds: features ``(N, F)``, A*'s move index ``(N,)``
    and which of the four moves lie on some shortest path ``(N, 4)`` (A* picks one among ties)."""
    rng = np.random.default_rng(seed)
    xs, ys, optimal = [], [], []
    for i in range(n_worlds):
        walls = GridWorld.random(size, wall_density, 0, seed=seed * 100_003 + i).walls
        region = largest_region(walls)
        for _ in range(paths):
            start, goal = (region[j] for j in rng.choice(len(region), size=2, replace=False))
            plan = astar_path(walls, start, goal)
            to_goal = np.pad(distance_map(walls, goal), 1, constant_values=-1)  # (H + 2, W + 2)
            for (row, col), action in zip(plan.cells, plan.actions, strict=False):
                xs.append(features(walls.astype(np.float32), (row, col), goal, window))
                ys.append(MOVE_NAMES.index(action))
                here = to_goal[row + 1, col + 1]
                optimal.append(
                    [to_goal[row + 1 + dr, col + 1 + dc] == here - 1 for dr, dc in MOVES.values()]
                )
    return np.stack(xs), np.array(ys, dtype=np.int32), np.array(optimal)


def train_policy(
    training: PolicyTraining | None = None,
    config: PolicyConfig | None = None,
    progress: bool = False,
) -> tuple[Policy, TrainResult]:
    """Imitate A*: cross-entropy between the policy's move and the planner's."""
    training = training or PolicyTraining()
    Tensor.manual_seed(training.seed)
    model = Policy(config)
    x, y, _ = imitation_data(
        training.worlds, training.paths, training.size, training.wall_density, training.seed,
        model.config.window,
    )  # fmt: skip
    opt = nn.optim.Adam(get_parameters(model), lr=training.lr)
    rng = np.random.default_rng(training.seed)

    @TinyJit
    @Context(TRAINING=1)
    def step(xb: Tensor, yb: Tensor) -> Tensor:
        opt.zero_grad()
        loss = model(xb).sparse_categorical_crossentropy(yb).backward()
        return loss.realize(*opt.schedule_step())

    result = TrainResult(examples=len(y))
    for _ in tqdm(range(training.steps), desc="policy", disable=not progress, mininterval=1.0):
        idx = rng.integers(0, len(y), size=training.batch)
        result.losses.append(step(Tensor(x[idx]), Tensor(y[idx])).item())
    return model, result


def rollout(
    worlds: list[GridWorld],
    choose_moves,
    beliefs: list[np.ndarray],
    slip: float = 0.0,
    rngs: list[np.random.Generator] | None = None,
    max_steps: int = 200,
) -> list[Episode]:
    """Run episodes side by side, asking `choose_moves` for all agents' moves at once each step.

    ``choose_moves(belief_list, cells, targets) -> list[str]`` picks moves (the policy batches
    them into one network call). Pickup and drop happen whenever they apply.
    """
    rngs = rngs or [np.random.default_rng(i) for i in range(len(worlds))]
    states = [w.initial_state() for w in worlds]
    episodes = [Episode([s.cell], [], False) for s in states]
    for _ in range(max_steps):
        todo = []
        for i, (w, state, ep) in enumerate(zip(worlds, states, episodes, strict=True)):
            if ep.success:
                continue
            target = current_target(w, state)
            if state.held is None and state.cell == target and w.object_at(state):
                action = "pickup"
            elif state.held is not None and state.cell == w.goal:
                action = "drop"
            else:
                todo.append((i, target))
                continue
            states[i] = w.step(state, action)
            ep.actions.append(action)
            ep.cells.append(states[i].cell)
            ep.success = w.is_solved(states[i])
        if not todo:
            break
        moves = choose_moves(
            [beliefs[i] for i, _ in todo], [states[i].cell for i, _ in todo], [t for _, t in todo]
        )
        for (i, _), move in zip(todo, moves, strict=True):
            states[i] = worlds[i].step(states[i], move, slip, rngs[i])
            episodes[i].actions.append(move)
            episodes[i].cells.append(states[i].cell)
            episodes[i].policy_steps += 1
            episodes[i].success = worlds[i].is_solved(states[i])
    return episodes


def policy_mover(policy: Policy):
    """`choose_moves` for `rollout`: one batched network call for all agents."""
    window = policy.config.window
    return lambda beliefs, cells, targets: policy.act(
        np.stack(
            [features(b, c, t, window) for b, c, t in zip(beliefs, cells, targets, strict=True)]
        )
    )


@dataclass
class PolicyScore:
    accuracy: float  # the policy's move equals A*'s move
    optimal_moves: float  # the policy's move lies on some shortest path
    rollout_success: float  # episodes solved by the policy alone on the true map, no slip


def score_policy(
    policy: Policy, n_worlds: int = 50, seed: int = 10_000, max_steps: int = 200
) -> PolicyScore:
    """Held-out accuracy against the planner and the success rate of rolling the policy out alone."""
    window = policy.config.window
    x, y, optimal = imitation_data(n_worlds, 4, 12, 0.3, seed, window)
    guesses = np.array([MOVE_NAMES.index(m) for m in policy.act(x)])
    worlds = [GridWorld.random(12, 0.3, 2, seed=seed + i) for i in range(n_worlds)]
    beliefs = [w.walls.astype(np.float32) for w in worlds]
    episodes = rollout(worlds, policy_mover(policy), beliefs, max_steps=max_steps)
    return PolicyScore(
        accuracy=float((guesses == y).mean()),
        optimal_moves=float(optimal[np.arange(len(y)), guesses].mean()),
        rollout_success=float(np.mean([e.success for e in episodes])),
    )


def save_policy(model: Policy, stem) -> None:
    save_checkpoint(model, model.config, stem)


def load_policy(stem=None) -> Policy:
    """Load a saved policy; without a stem, the one shipped in ``neurosymbolic/weights/``."""
    return load_checkpoint(Policy, PolicyConfig, stem or SHIPPED / "policy")
