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
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from tinygrad import Tensor, UOp, Variable, dtypes, nn
from tinygrad.nn.state import get_parameters, get_state_dict

from minigpt.attention import AttentionFn, DecodeStep, KVCache
from minigpt.initial_weights import KeptWeights
from minigpt.transformer import Block, LayerNorm

Ids = Tensor | np.ndarray | list
# x (B, T, C), one block's state dict ("ln1.weight", "attn.c_attn.weight", ...), n_head -> (B, T, C)
BlockFn = Callable[[Tensor, dict[str, Tensor], int], Tensor]


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
    """GPT-2 style decoder: `model(idx)` maps token ids (B, T) to next-token logits (B, T, V).

    `attention` (lesson 2's exercise) and `block` (lesson 3's: a whole block from its weights)
    replace the package's computations on passes without a KV cache (training, evaluation, full
    passes of sampling); the weights, their names and their initialisation stay the same.
    """

    def __init__(
        self, config: GPTConfig, attention: AttentionFn | None = None, block: BlockFn | None = None
    ):
        if not isinstance(config, GPTConfig):
            raise TypeError(
                f"MiniGPT needs a GPTConfig, got {type(config).__name__}.\n"
                "help: MiniGPT(GPTConfig(vocab_size=..., block_size=...))."
            )
        self.config, self.block_forward = config, block
        # a seeded package model's weights come from the step cache when an earlier process drew them
        kept = KeptWeights(config.to_dict()) if type(self) is MiniGPT else None
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = [
            Block(config.n_embd, config.n_head, config.dropout, attention)
            for _ in range(config.n_layer)
        ]
        self.ln_f = LayerNorm(config.n_embd)
        if not config.tie_weights:
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if kept is None or not kept.restore(get_state_dict(self)):
            self._init_weights()
            if kept is not None:
                kept.keep(get_state_dict(self))

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
            if self.block_forward is not None and not caches and maps is None:
                x = self.block_forward(x, get_state_dict(block), self.config.n_head)  # (B, T, C)
            else:
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
        decoder: "Decoder | None" = None,
        decode_step: DecodeStep | None = None,
    ) -> np.ndarray:
        """Extend each row of `idx` (B, T) by `max_new_tokens` sampled tokens; returns numpy ids.

        Each token is drawn from softmax(logits / temperature), restricted to the `top_k` most
        likely tokens when given; `temperature=0` picks the most likely token, and so does any
        temperature below `GREEDY_BELOW` (dividing by it could overflow). A numpy Generator
        seeded by `seed` draws the tokens, so the same seed gives the same text.

        With `use_cache`, the prompt runs once to fill a KV cache, then each new token costs one
        position. Once the text is longer than block_size the window slides, every position's
        embedding changes and cached keys become invalid: from then on each token needs a full
        forward pass over the last block_size tokens, exactly as without the cache. Both paths
        give the same tokens for the same seed. `decoder` runs those passes (default: a
        `Decoder`, step by step; `minigpt.compiled.generate` passes compiled ones).
        `decode_step` (lesson 7's exercise) runs the attention of each one-token pass.
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
        if decode_step is not None and (not use_cache or decoder is not None):
            raise ValueError(
                "decode_step runs only in one-token passes over a KV cache, and here "
                f"use_cache={use_cache}, decoder={type(decoder).__name__}.\n"
                "help: pass decode_step with use_cache=True and no decoder (a decoder takes its "
                "own: Decoder(model, batch_size, True, decode_step))."
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
        decoder = decoder or Decoder(self, tokens.shape[0], use_cache, decode_step)
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


class Decoder:
    """The forward passes of sampling, at fixed shapes: `full` runs the last block_size tokens
    (right-padded; causal attention keeps padding from reaching real positions) and, with a
    cache, fills it; `step` runs one token at a position, reading and extending the cache (with
    `decode_step`, if given, as the attention of that pass)."""

    def __init__(
        self,
        model: MiniGPT,
        batch_size: int,
        use_cache: bool,
        decode_step: DecodeStep | None = None,
    ):
        c = model.config
        self.model, self.block_size = model, c.block_size
        self.caches = None
        if use_cache:
            self.caches = [
                KVCache(batch_size, c.n_head, c.block_size, c.n_embd // c.n_head, decode_step)
                for _ in range(c.n_layer)
            ]
        self.position = Variable("pos", 0, c.block_size - 1)  # one step serves every position

    def forward_full(self, ids: Tensor) -> Tensor:
        """Logits (B, S, V) of the padded window ids (B, S); the caches are filled."""
        return self._realize_with_caches(self.model.forward(ids, self.caches))

    def forward_step(self, token: Tensor, pos: UOp) -> Tensor:
        """Logits (B, V) after one token (B, 1) at the bound position `pos`."""
        return self._realize_with_caches(self.model.forward(token, self.caches, pos)[:, -1, :])

    def _realize_with_caches(self, logits: Tensor) -> Tensor:
        caches = [t for cache in self.caches or [] for t in (cache.k, cache.v)]
        Tensor.realize(logits, *caches)
        return logits

    def window(self, tokens: np.ndarray) -> tuple[np.ndarray, int]:
        """The last block_size tokens, right-padded to (B, S), and how many of them are real."""
        context = tokens[:, -self.block_size :].astype(np.int32)  # (B, T)
        T = context.shape[1]
        return np.pad(context, ((0, 0), (0, self.block_size - T))), T  # (B, S)

    def full(self, tokens: np.ndarray) -> np.ndarray:
        """Logits (B, V) after the last token, from a pass over the last block_size tokens."""
        padded, T = self.window(tokens)
        return self.forward_full(Tensor(padded)).numpy()[:, T - 1, :]

    def step(self, next_ids: np.ndarray, position: int) -> np.ndarray:
        """Logits (B, V) after one new token per row at `position`, reading the KV cache."""
        token = Tensor(next_ids.astype(np.int32)[:, None])  # (B, 1)
        return self.forward_step(token, self.position.bind(position)).numpy()


# Below this temperature sampling is greedy: float32 logits (at most 3.4e38) divided by 1e-3
# stay finite in float64, while smaller temperatures can overflow to inf - inf = NaN, and only
# logits within about 0.03 of the largest could still be drawn anyway.
GREEDY_BELOW = 1e-3


def _sample(
    logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator
) -> np.ndarray:
    """Draw one token id per row of logits (B, V), in float64 numpy."""
    logits = logits.astype(np.float64)
    if temperature < GREEDY_BELOW:
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
