"""The training loop: one compiled step, AdamW, warmup + cosine schedule, clipping (lesson 4).

Follows nanoGPT's train.py: AdamW (decoupled weight decay on tensors with 2 or more dimensions,
eps 1e-8, bias correction), learning rate warmed up linearly then decayed along a cosine to
`min_lr`, global-norm gradient clipping, cross-entropy on every position (or
every unmasked one). Each step is one TinyJit
replay (forward, backward and update in a single schedule); the learning rate goes in as a Tensor
because a Python number would be frozen into the compiled step.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from tinygrad import Context, Tensor
from tinygrad.nn.optim import AdamW, OptimizerGroup
from tinygrad.nn.state import get_state_dict
from tqdm import tqdm  # plain text: works in notebooks without ipywidgets

from minigpt.checkpoint import CheckpointInfo, check_replaceable, save_checkpoint
from minigpt.compiled import StepInputs, StoredSteps, cacheable, compile_step
from minigpt.data import CharTokenizer, SyntheticTask, get_batch
from minigpt.model import MiniGPT

# 1-D token ids (random windows are cut from it), or fixed rows (x, y) with y = -1 where ignored
TokenData = np.ndarray | tuple[np.ndarray, np.ndarray] | SyntheticTask
LossFn = Callable[[Tensor, Tensor], Tensor]  # logits (B, T, V), targets (B, T) -> mean loss
ClipFn = Callable[[list[Tensor], float], Tensor]  # gradients, max_norm -> the factor for all
# param, grad, m, v, t (1,), lr (1,), config -> (param, m, v), all Tensors: lesson 4's AdamW
UpdateFn = Callable[..., tuple[Tensor, Tensor, Tensor]]


@dataclass
class TrainConfig:
    """How to train. Defaults: nanoGPT's "baby GPT" on a CPU (character-level text)."""

    steps: int = 2000  # optimizer steps in total (also where the cosine reaches min_lr)
    batch_size: int = 12  # sequences per step
    lr: float = 1e-3  # peak learning rate, reached after the warmup
    betas: tuple[float, float] = (0.9, 0.99)  # AdamW moment decay rates
    weight_decay: float = 0.1  # decoupled decay, only on tensors with >= 2 dims
    warmup: int = 100  # steps of linear warmup
    min_lr: float = 1e-4  # learning rate at the end of the cosine
    grad_clip: float = 1.0  # largest global gradient norm; 0 turns clipping off
    eval_interval: int = 250  # steps between validation measurements
    eval_batches: int = 20  # fixed batches averaged for each measurement
    seed: int = 1337  # batches are drawn from a generator seeded by (seed, step)
    checkpoint_interval: int = 250  # steps between checkpoints (one is always saved at the end)

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        for name in ("lr", "min_lr", "weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"TrainConfig.{name}={value!r}; expected a finite number.")
        for name in ("steps", "batch_size", "eval_interval", "eval_batches", "checkpoint_interval"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"TrainConfig.{name}={value!r}; expected a positive int.")
        if self.warmup < 0 or self.warmup >= self.steps:
            raise ValueError(
                f"TrainConfig.warmup={self.warmup} with steps={self.steps}; expected "
                "0 <= warmup < steps.\nhelp: warm up for a small part of the run, e.g. 5%."
            )
        if not 0 < self.min_lr <= self.lr:
            raise ValueError(
                f"TrainConfig lr={self.lr}, min_lr={self.min_lr}; expected 0 < min_lr <= lr.\n"
                "help: nanoGPT uses min_lr = lr / 10."
            )
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"TrainConfig.betas={self.betas}; expected two numbers in [0, 1).")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError(
                f"weight_decay={self.weight_decay}, grad_clip={self.grad_clip}; both must be >= 0."
            )


@dataclass
class TrainResult:
    """What a run measured. Losses are mean cross-entropy in nats per token."""

    eval_steps: list[int] = field(default_factory=list)  # steps at which losses were measured
    train_losses: list[float] = field(default_factory=list)  # on fixed training batches
    val_losses: list[float] = field(default_factory=list)  # on fixed validation batches
    step_losses: list[float] = field(default_factory=list)  # each step's own batch
    steps_done: int = 0  # optimizer steps taken in total (including before a resume)
    tokens_per_second: float = 0.0  # training tokens / time in steps, compile steps excluded
    ms_per_step: float = 0.0  # median time of a compiled step
    wall_time: float = 0.0  # seconds for this call, evaluation and compilation included
    cached_steps: bool = False  # the compiled steps came from the step cache (no compiling)


def learning_rate(step: int, config: TrainConfig) -> float:
    """nanoGPT's schedule: 1) linear warmup, 2) cosine decay from lr to min_lr at `steps`."""
    if step < config.warmup:  # 1) linear warmup
        return config.lr * (step + 1) / (config.warmup + 1)
    ratio = min(1.0, (step - config.warmup) / (config.steps - config.warmup))  # 2) cosine decay
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (config.lr - config.min_lr)


def make_optimizer(model: MiniGPT, config: TrainConfig) -> OptimizerGroup:
    """AdamW with weight decay on matrices and embeddings (>= 2 dims), none on biases and norms."""
    params = list(get_state_dict(model).values())
    decayed = [t for t in params if t.ndim >= 2]
    plain = [t for t in params if t.ndim < 2]
    b1, b2 = config.betas
    return OptimizerGroup(
        AdamW(decayed, lr=config.lr, b1=b1, b2=b2, eps=1e-8, weight_decay=config.weight_decay),
        AdamW(plain, lr=config.lr, b1=b1, b2=b2, eps=1e-8, weight_decay=0.0),
    )


def optimizer_state(model: MiniGPT, optimizer: OptimizerGroup) -> dict[str, Tensor]:
    """AdamW's moments named after the parameters, plus each group's bias-correction products."""
    names = {id(t): name for name, t in get_state_dict(model).items()}
    state = {}
    for i, opt in enumerate(optimizer.optimizers):
        state[f"group{i}.b1_t"], state[f"group{i}.b2_t"] = opt.b1_t, opt.b2_t
        for param, m, v in zip(opt.params, opt.m, opt.v, strict=True):
            state[f"m.{names[id(param)]}"], state[f"v.{names[id(param)]}"] = m, v
    return state


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of logits (B, T, V) against targets (B, T), skipping targets of -1.

    Like PyTorch's F.cross_entropy(ignore_index=-1), the mean is over the scored positions only;
    tinygrad's sparse_categorical_crossentropy with its default ignore_index=-1 divides by all
    positions, which would shrink the loss of masked tasks.
    """
    total = logits.sparse_categorical_crossentropy(targets, reduction="sum")  # -1 adds 0
    return total / (targets != -1).sum()


def clip_grad_norm(params: list[Tensor], max_norm: float) -> Tensor:
    """Scale all gradients together so their global L2 norm is at most `max_norm` (as PyTorch's
    clip_grad_norm_); returns the norm before clipping. Lazy: runs inside the compiled step."""
    norm = Tensor.stack(*[p.grad.square().sum() for p in params]).sum().sqrt()
    scale = (max_norm / (norm + 1e-6)).minimum(1.0)
    for p in params:
        p.grad = p.grad * scale
    return norm


def clip_scale(grads: list[Tensor], max_norm: float) -> Tensor:
    """The factor `clip_grad_norm` multiplies every gradient by: min(1, max_norm / (norm + 1e-6))
    with the global L2 norm of all `grads` together. Lazy: runs inside the compiled step."""
    norm = Tensor.stack(*[g.square().sum() for g in grads]).sum().sqrt()
    return (max_norm / (norm + 1e-6)).minimum(1.0)


def _check_data(data: TokenData, model: MiniGPT, what: str) -> TokenData:
    """Check token data once, in numpy, so the training steps need no device round trip."""
    V, S = model.config.vocab_size, model.config.block_size
    if isinstance(data, SyntheticTask):
        data = (data.x, data.y)
    if isinstance(data, tuple):
        x, y = (np.asarray(a) for a in data)
        if x.ndim != 2 or x.shape != y.shape or x.shape[1] > S:
            raise ValueError(
                f"{what} rows have shapes {x.shape} and {y.shape}; expected equal (n, T), "
                f"T <= block_size={S}.\nhelp: pass (x, y) from synthetic_task, or 1-D token ids."
            )
        if len(x) == 0:
            raise ValueError(f"{what} has no rows.\nhelp: pass at least one (x, y) row.")
        if x.min() < 0 or x.max() >= V or y.min() < -1 or y.max() >= V:
            raise ValueError(f"{what} holds ids outside [0, {V}) (targets may also be -1).")
        return x.astype(np.int32), y.astype(np.int32)
    tokens = np.asarray(data)
    if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
        raise ValueError(
            f"{what} has shape {tokens.shape} and dtype {tokens.dtype}; expected 1-D int ids.\n"
            "help: tokens = tokenizer.encode(text)."
        )
    if len(tokens) <= S or tokens.min() < 0 or tokens.max() >= V:
        raise ValueError(
            f"{what}: {len(tokens)} tokens with ids in [{tokens.min()}, {tokens.max()}]; expected "
            f"more than block_size={S} tokens with ids in [0, {V}).\n"
            "help: encode with a tokenizer whose vocab_size equals the model's."
        )
    return tokens


def _batch(data: TokenData, batch_size: int, block_size: int, rng: np.random.Generator):
    if isinstance(data, tuple):
        rows = rng.integers(0, len(data[0]), batch_size)
        return data[0][rows], data[1][rows]
    return get_batch(data, batch_size, block_size, rng)


def train(
    model: MiniGPT,
    train_tokens: TokenData,
    val_tokens: TokenData,
    config: TrainConfig | None = None,
    tokenizer: CharTokenizer | None = None,
    progress: bool = True,
    out_dir: str | Path | None = None,
    resume: CheckpointInfo | None = None,
    loss: LossFn = cross_entropy,
    schedule: Callable[[int, TrainConfig], float] = learning_rate,
    clip: ClipFn = clip_scale,
    update: UpdateFn | None = None,
) -> TrainResult:
    """Train `model` in place for `config.steps` steps and return the measured losses.

    Data is 1-D token ids, or fixed rows (x, y) / a SyntheticTask whose -1 targets are ignored.
    With `out_dir`, checkpoints (including `tokenizer`) are saved there. To continue a run, pass
    the model and info that `load_checkpoint` returned as `model` and `resume`: training goes on
    from the saved step with the saved AdamW state and losses.

    The pieces of a step can be swapped for the learner's own (lesson 4's exercises, the capstone
    of lesson 13): `loss` (tinygrad, inside the compiled step), `schedule` (Python, before each
    step), `clip` (tinygrad: the factor for all gradients) and `update`, one AdamW update of one
    tensor (tinygrad; None: the package's AdamW, whose state checkpoints keep).
    """
    config = config or TrainConfig()
    if out_dir is not None:  # refused now, not at the first save after compiling and training
        check_replaceable(Path(out_dir))
    if update is not None and (out_dir is not None or resume is not None):
        raise ValueError(
            "train(update=...) keeps its own moments, which checkpoints do not hold, so it cannot "
            "save (out_dir) or resume.\nhelp: train without out_dir and resume, or with update=None."
        )
    train_data = _check_data(train_tokens, model, "train_tokens")
    val_data = _check_data(val_tokens, model, "val_tokens")
    S, B = model.config.block_size, config.batch_size
    optimizer = make_optimizer(model, config)
    result = TrainResult()
    if resume is not None:
        result = _resume(model, optimizer, resume)
    params = optimizer.params
    moments: list[list[Tensor]] = [[], []]  # first and second moments of the learner's AdamW
    if update is not None:
        moments = [[Tensor.zeros(*p.shape).contiguous().realize() for p in params] for _ in "mv"]
    # the compiled steps of an earlier process with the same shapes and settings, if stored; a step
    # with the learner's loss, clipping or update is never stored (its code can change unseen)
    ours = cacheable(model) and loss is cross_entropy and clip is clip_scale and update is None
    stored = StoredSteps(
        _step_description(model, config, train_data, val_data) if ours else None,
        [*get_state_dict(model).values(), *optimizer_state(model, optimizer).values()],
    )
    loaded = stored.load()

    @compile_step  # TinyJit, with the shipped kernel choices for the CPU (minigpt.tuning)
    @Context(TRAINING=1)
    def train_step(x: Tensor, y: Tensor, lr: Tensor, t: Tensor) -> Tensor:
        for opt in optimizer.optimizers:
            opt.lr = lr  # an input Tensor: each replay reads this step's value
        optimizer.zero_grad()
        step_loss = loss(model.forward(x), y).backward()
        if config.grad_clip > 0:
            scale = clip([p.grad for p in params], config.grad_clip)
            for p in params:
                p.grad = p.grad * scale
        if update is None:
            return step_loss.realize(*optimizer.schedule_step())
        return step_loss.realize(*_apply_update(update, params, moments, t, lr, config))

    @compile_step
    def eval_step(x: Tensor, y: Tensor) -> Tensor:
        return loss(model.forward(x), y).realize()

    train_step, eval_step = loaded or (train_step, eval_step)
    result.cached_steps = loaded is not None

    def fixed_batches(data: TokenData, stream: int) -> list[tuple[Tensor, Tensor]]:
        rng = np.random.default_rng([config.seed, stream, 0])  # never equals a step's generator
        return [
            tuple(Tensor(a).realize() for a in _batch(data, B, S, rng))
            for _ in range(config.eval_batches)
        ]

    eval_sets = (fixed_batches(train_data, 1), fixed_batches(val_data, 2))

    def evaluate(step: int) -> None:
        train_loss, val_loss = (np.mean([eval_step(x, y).item() for x, y in s]) for s in eval_sets)
        result.eval_steps.append(step)
        result.train_losses.append(float(train_loss))
        result.val_losses.append(float(val_loss))

    def save(step: int) -> None:
        history = {k: getattr(result, k) for k in ("eval_steps", "train_losses", "val_losses")}
        state = optimizer_state(model, optimizer)
        save_checkpoint(out_dir, model, tokenizer, step, state, config, history)

    inputs = StepInputs()  # each step's batch and learning rate, copied into the same buffers
    start, step_times, begin = result.steps_done, [], time.perf_counter()
    bar = tqdm(total=config.steps, initial=start, disable=not progress, desc="train")
    for step in range(start, config.steps):
        if step % config.eval_interval == 0 and step not in result.eval_steps:
            evaluate(step)
            bar.set_postfix(val=f"{result.val_losses[-1]:.4f}")
        x, y = _batch(train_data, B, S, np.random.default_rng([config.seed, step]))
        t0 = time.perf_counter()
        lr = np.array([schedule(step, config)], dtype=np.float32)
        t = np.array([step + 1], dtype=np.float32)  # AdamW's step count, from 1
        step_loss = train_step(*inputs.load(x, y, lr, t)).item()
        if not math.isfinite(step_loss):  # diverged: stop before anything is saved from it
            raise ValueError(
                f"the loss at step {step} is {step_loss}: training diverged, and nothing from this "
                "step on was saved.\nhelp: lower lr, keep grad_clip on (e.g. 1.0), check the data."
            )
        step_times.append(time.perf_counter() - t0)
        result.step_losses.append(step_loss)
        result.steps_done = step + 1
        stored.store(train_step, eval_step)  # once both are captured, for the next process
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.4f}", val=f"{result.val_losses[-1]:.4f}")
        last = result.steps_done == config.steps
        if out_dir and result.steps_done % config.checkpoint_interval == 0 and not last:
            save(result.steps_done)
    bar.close()
    if result.steps_done not in result.eval_steps:
        evaluate(result.steps_done)
    if out_dir and step_times:
        save(result.steps_done)
    replayed = step_times[2:] or step_times  # the first two calls compile and capture the step
    if replayed:
        result.ms_per_step = 1000 * float(np.median(replayed))
        result.tokens_per_second = x.size * len(replayed) / sum(replayed)
    result.wall_time = time.perf_counter() - begin
    return result


def _step_description(model: MiniGPT, config: TrainConfig, *data: TokenData) -> dict:
    """What shapes the compiled training and evaluation steps besides the package's code and the
    machine: the model, the batch shapes, AdamW's constants and clipping (the learning rate is an
    input of the step, so it is not here). Anything new that changes the step, such as a loss
    given to `train`, must be added here, or turn the cache off for it (`cacheable`)."""
    S = model.config.block_size
    rows = [data_part[0].shape[1] if isinstance(data_part, tuple) else S for data_part in data]
    return {
        "step": "train",
        "model": model.config.to_dict(),
        "batches": [[config.batch_size, T] for T in rows],
        "adamw": [*config.betas, 1e-8, config.weight_decay],
        "grad_clip": config.grad_clip,
    }


def _apply_update(
    update: UpdateFn,
    params: list[Tensor],
    moments: list[list[Tensor]],
    t: Tensor,
    lr: Tensor,
    config: TrainConfig,
) -> list[Tensor]:
    """Assign `update`'s new value to every parameter and its two moments, tensor by tensor;
    returns the assigned tensors, to be realized in the same schedule as the loss."""
    for p, m, v in zip(params, *moments, strict=True):
        new_p, new_m, new_v = update(p.detach(), p.grad, m, v, t, lr, config)
        p.assign(new_p.cast(p.dtype)), m.assign(new_m), v.assign(new_v)
    return [*params, *moments[0], *moments[1]]


def _resume(model: MiniGPT, optimizer: OptimizerGroup, checkpoint: CheckpointInfo) -> TrainResult:
    """Load a checkpoint's AdamW state into `optimizer` (of `model`, which holds the checkpoint's
    weights); return the checkpoint's step and losses as the start of this run's result."""
    if (saved := checkpoint.optimizer_state) is not None:
        expected = optimizer_state(model, optimizer)
        if expected.keys() != saved.keys() or any(
            t.shape != saved[name].shape for name, t in expected.items()
        ):
            raise ValueError(
                "the checkpoint's optimizer state does not fit this model.\nhelp: resume with "
                "the model that load_checkpoint returned together with the checkpoint's info."
            )
        for name, t in expected.items():
            t.assign(saved[name].to(t.device).cast(t.dtype)).realize()
    history = checkpoint.history or {}
    known = {f.name for f in fields(TrainResult)}
    return TrainResult(
        steps_done=checkpoint.step, **{k: v for k, v in history.items() if k in known}
    )
