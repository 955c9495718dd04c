"""MiniGPT: a small GPT-2 style language model, and sampling from it with a KV cache (lesson 4).

Token ids go in, next-token logits come out: embeddings, a stack of pre-norm blocks, a final
LayerNorm and a head that shares its matrix with the token embedding. Follows nanoGPT's model.py
(https://github.com/karpathy/nanoGPT) in structure and initialisation.

Token ids are checked where they are cheap to check: numpy arrays and lists are checked for dtype,
shape and range [0, vocab_size); Tensors only for dtype and shape, because reading their values
would force a device round trip on every training step (the training loop checks its token arrays
once, in numpy, instead).
"""

import math
import weakref
from dataclasses import asdict, dataclass

import numpy as np
from tinygrad import Tensor, TinyJit, UOp, Variable, dtypes, nn
from tinygrad.nn.state import get_parameters, get_state_dict

from minigpt import tuning
from minigpt.attention import KVCache
from minigpt.compiled import StepInputs
from minigpt.transformer import Block, LayerNorm

Ids = Tensor | np.ndarray | list


@dataclass
class GPTConfig:
    """Size of a MiniGPT. Defaults: nanoGPT's "baby GPT" for character-level text."""

    vocab_size: int = 65  # number of distinct tokens (characters)
    block_size: int = 64  # longest context the model can see
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block
    n_embd: int = 128  # channels of the residual stream, C
    dropout: float = 0.0  # probability of zeroing an activation while training
    tie_weights: bool = True  # head reuses the token embedding matrix (fewer parameters)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"GPTConfig.{name}={value!r}; expected a positive int.\n"
                    f"help: pass for example {name}={getattr(GPTConfig, name)}."
                )
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"GPTConfig.n_embd={self.n_embd} is not divisible by n_head={self.n_head}.\n"
                "help: every head gets n_embd // n_head channels; pick n_head dividing n_embd."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"GPTConfig.dropout={self.dropout!r}; expected a probability in [0, 1).\n"
                "help: use 0.0 for small models and short runs, 0.1-0.2 against overfitting."
            )

    def to_dict(self) -> dict:
        return asdict(self)


class MiniGPT:
    """GPT-2 style decoder: `model(idx)` maps token ids (B, T) to next-token logits (B, T, V)."""

    def __init__(self, config: GPTConfig):
        if not isinstance(config, GPTConfig):
            raise TypeError(
                f"MiniGPT needs a GPTConfig, got {type(config).__name__}.\n"
                "help: MiniGPT(GPTConfig(vocab_size=..., block_size=...))."
            )
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = [
            Block(config.n_embd, config.n_head, config.dropout) for _ in range(config.n_layer)
        ]
        self.ln_f = LayerNorm(config.n_embd)
        if not config.tie_weights:
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2 init: weights N(0, 0.02), biases 0; projections into the residual stream get
        std 0.02 / sqrt(2 * n_layer), so the stream's variance does not grow with depth."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, t in get_state_dict(self).items():
            if name.endswith("bias") and ".ln" not in name:
                t.assign(Tensor.zeros(*t.shape))
            elif name.endswith("weight") and ".ln" not in name and not name.startswith("ln_f"):
                std = residual_std if name.endswith("c_proj.weight") else 0.02
                t.assign(Tensor.normal(*t.shape, mean=0.0, std=std))
        Tensor.realize(*get_parameters(self))

    def num_params(self) -> int:
        """Number of trainable numbers; the tied head shares the embedding, so it counts once."""
        return sum(t.numel() for t in get_state_dict(self).values())

    def check_ids(self, idx: Ids) -> Tensor:
        """Validate token ids and return them as an int32 Tensor (B, T); see the module docstring."""
        if isinstance(idx, Tensor):
            if not dtypes.is_int(idx.dtype):
                raise ValueError(
                    f"token ids have dtype {idx.dtype}; expected integers.\n"
                    "help: pass Tensor(ids, dtype=dtypes.int32) or a numpy int array."
                )
            shape = idx.shape
        else:
            array = np.asarray(idx)
            if array.dtype.kind not in "iu":
                raise ValueError(
                    f"token ids have dtype {array.dtype}; expected integers.\n"
                    "help: encode text with CharTokenizer.encode, or cast with .astype(np.int32)."
                )
            shape = array.shape
        if len(shape) != 2 or shape[1] == 0:
            raise ValueError(
                f"token ids have shape {shape}; expected (B, T) with T >= 1.\n"
                "help: add a batch axis to one sequence: ids[None]."
            )
        if shape[1] > self.config.block_size:
            raise ValueError(
                f"sequence length T={shape[1]} exceeds block_size={self.config.block_size}.\n"
                f"help: keep the last block_size tokens: ids[:, -{self.config.block_size}:]."
            )
        if isinstance(idx, Tensor):
            return idx
        if array.min() < 0 or array.max() >= self.config.vocab_size:
            bad = array.min() if array.min() < 0 else array.max()
            raise ValueError(
                f"token id {bad} is outside [0, vocab_size={self.config.vocab_size}).\n"
                "help: encode with the tokenizer the model was built for (same vocab_size)."
            )
        return Tensor(array.astype(np.int32))

    def __call__(self, idx: Ids) -> Tensor:
        """Logits (B, T, V) for token ids (B, T): entry [b, t] scores the token after position t."""
        return self.forward(self.check_ids(idx))

    def forward(
        self,
        idx: Tensor,
        caches: list[KVCache] | None = None,
        pos: UOp | None = None,
        maps: list[Tensor] | None = None,
    ) -> Tensor:
        """The unchecked forward pass. With `caches`, a prompt fills them (pos None) or one token
        at position `pos` (a bound Variable, see KVCache.append) reads and extends them. A `maps`
        list receives each block's attention weights (B, nh, T, Tk)."""
        B, T = idx.shape
        rows = (0, T) if pos is None else (pos, pos + 1)  # positions 0 .. T-1, or just pos
        pos_emb = self.pos_emb.weight.shrink((rows, None))  # (T, C) or (1, C)
        x = (self.tok_emb(idx) + pos_emb).dropout(self.config.dropout)  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, caches[i] if caches else None, pos, maps)  # (B, T, C)
        return self.head(self.ln_f(x))  # (B, T, V)

    def head(self, x: Tensor) -> Tensor:
        """Channels (B, T, C) -> logits (B, T, V)."""
        if self.config.tie_weights:
            return x @ self.tok_emb.weight.T  # the embedding matrix read backwards
        return self.lm_head(x)

    def attention_maps(self, idx: Ids) -> list[Tensor]:
        """Attention weights of every block, each (B, nh, T, T), for pictures of what attends where."""
        maps: list[Tensor] = []
        self.forward(self.check_ids(idx), maps=maps)
        return maps

    def generate(
        self,
        idx: Ids,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
        use_cache: bool = True,
    ) -> np.ndarray:
        """Extend each row of `idx` (B, T) by `max_new_tokens` sampled tokens; returns numpy ids.

        Each token is drawn from softmax(logits / temperature), restricted to the `top_k` most
        likely tokens when given; `temperature=0` picks the most likely token. A numpy Generator
        seeded by `seed` draws the tokens, so the same seed gives the same text.

        With `use_cache`, the prompt runs once to fill a KV cache, then each new token costs one
        position (a compiled TinyJit step). Once the text is longer than block_size the window
        slides, every position's embedding changes and cached keys become invalid: from then on
        each token needs a full forward pass over the last block_size tokens, exactly as without
        the cache. Both paths give the same tokens for the same seed.
        """
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
            raise ValueError(f"max_new_tokens={max_new_tokens!r}; expected an int >= 0.")
        if not isinstance(temperature, int | float | np.floating) or not math.isfinite(temperature):
            raise ValueError(f"temperature={temperature!r}; expected a finite number >= 0.")
        if top_k is not None and not isinstance(top_k, int | np.integer):
            raise ValueError(f"top_k={top_k!r}; expected None or an int.")
        if max_new_tokens < 0 or temperature < 0:
            raise ValueError(
                f"max_new_tokens={max_new_tokens}, temperature={temperature}; both must be >= 0.\n"
                "help: temperature 1.0 samples the model as trained, lower is more conservative."
            )
        if top_k is not None and not 1 <= top_k <= self.config.vocab_size:
            raise ValueError(
                f"top_k={top_k}; expected None or 1..vocab_size={self.config.vocab_size}.\n"
                "help: top_k=None keeps every token."
            )
        tokens = np.asarray(idx.numpy() if isinstance(idx, Tensor) else idx)
        S = self.config.block_size
        self.check_ids(tokens[:, -S:] if tokens.ndim == 2 else tokens)
        rng = np.random.default_rng(seed)
        decoder = _Decoder.for_model(self, tokens.shape[0], use_cache)
        logits = decoder.full(tokens)  # (B, V) after the (cropped) prompt
        for i in range(max_new_tokens):
            next_ids = _sample(logits, temperature, top_k, rng)  # (B,)
            tokens = np.concatenate([tokens, next_ids[:, None]], axis=1)
            if i == max_new_tokens - 1:
                break
            if use_cache and tokens.shape[1] <= S:
                logits = decoder.step(next_ids, position=tokens.shape[1] - 1)
            else:
                logits = decoder.full(tokens)
        return tokens


class _Decoder:
    """Compiled forward passes for sampling, at fixed shapes so each compiles once: `full` runs
    the last block_size tokens (right-padded; causal attention keeps padding from reaching real
    positions) and, with a cache, fills it; `step` runs one token at a position.

    Decoders are kept per model, batch size and mode, and reused by later `generate` calls (the
    first two calls of a TinyJit cost far more than a replay) while the model's weights still live
    in the buffers the compiled steps read (training updates them in place; replacing them, e.g.
    with tinygrad's load_state_dict, makes a new decoder).
    """

    _cache: "weakref.WeakKeyDictionary[MiniGPT, dict[tuple[int, bool], _Decoder]]" = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def for_model(cls, model: MiniGPT, batch_size: int, use_cache: bool) -> "_Decoder":
        decoders = cls._cache.setdefault(model, {})
        decoder = decoders.get((batch_size, use_cache))
        if decoder is None or not decoder.weights_unchanged():
            decoder = decoders[(batch_size, use_cache)] = cls(model, batch_size, use_cache)
        return decoder

    def __init__(self, model: MiniGPT, batch_size: int, use_cache: bool):
        c = model.config
        # a weak reference: the cache above maps the model to this decoder and must not keep it alive
        self.model, self.block_size = weakref.proxy(model), c.block_size
        self.weight_buffers = self._weight_buffers()
        self.caches = None
        if use_cache:
            self.caches = [
                KVCache(batch_size, c.n_head, c.block_size, c.n_embd // c.n_head)
                for _ in range(c.n_layer)
            ]
        # compiled with the shipped kernel choices for the CPU (minigpt.tuning)
        self._full = tuning.with_stored_choices(TinyJit(self._full_fn))
        self._step = tuning.with_stored_choices(TinyJit(self._step_fn))
        # their inputs: token ids are copied into fixed buffers, the position is a Variable bound
        # on each call; new input Tensors would cost more to schedule than a decode step runs
        self.window, self.token = StepInputs(), StepInputs()
        self.position = Variable("pos", 0, c.block_size - 1)

    def _weight_buffers(self) -> list:
        """The device buffer behind each weight (None for a weight not realized yet)."""
        return [t.uop.base.realized for t in get_state_dict(self.model).values()]

    def weights_unchanged(self) -> bool:
        now = self._weight_buffers()
        return len(now) == len(self.weight_buffers) and all(
            a is not None and a is b for a, b in zip(now, self.weight_buffers, strict=True)
        )

    def _realize_with_caches(self, logits: Tensor) -> Tensor:
        caches = [t for cache in self.caches or [] for t in (cache.k, cache.v)]
        Tensor.realize(logits, *caches)
        return logits

    def _full_fn(self, ids: Tensor) -> Tensor:
        return self._realize_with_caches(self.model.forward(ids, self.caches))  # (B, S, V)

    def _step_fn(self, token: Tensor, pos: UOp) -> Tensor:
        logits = self.model.forward(token, self.caches, pos)[:, -1, :]  # (B, V)
        return self._realize_with_caches(logits)

    def full(self, tokens: np.ndarray) -> np.ndarray:
        """Logits (B, V) after the last token, from a pass over the last block_size tokens."""
        context = tokens[:, -self.block_size :].astype(np.int32)  # (B, T)
        T = context.shape[1]
        padded = np.pad(context, ((0, 0), (0, self.block_size - T)))  # (B, S)
        return self._full(*self.window.load(padded)).numpy()[:, T - 1, :]

    def step(self, next_ids: np.ndarray, position: int) -> np.ndarray:
        """Logits (B, V) after one new token per row at `position`, reading the KV cache."""
        (token,) = self.token.load(next_ids.astype(np.int32)[:, None])  # (B, 1)
        return self._step(token, self.position.bind(position)).numpy()


def _sample(
    logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator
) -> np.ndarray:
    """Draw one token id per row of logits (B, V), in float64 numpy."""
    logits = logits.astype(np.float64)
    if temperature == 0:
        return logits.argmax(axis=-1)
    logits = logits / temperature
    if top_k is not None:
        kth = np.sort(logits, axis=-1)[:, -top_k][:, None]  # (B, 1)
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    # inverse CDF: one uniform number per row, so every row consumes the generator the same way
    u = rng.random(len(probs))[:, None]  # (B, 1)
    return np.minimum((probs.cumsum(axis=-1) < u).sum(axis=-1), probs.shape[1] - 1)
