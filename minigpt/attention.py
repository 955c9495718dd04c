"""Attention: scaled dot-product attention written out, multi-head attention, and a KV cache.

Lesson 2 (attention from scratch) builds these step by step; lesson 7 uses the KV cache to make
sampling fast. Shapes: B batch, nh heads, T positions, hs head size, C = nh * hs channels.
"""

import math
from collections.abc import Callable

from tinygrad import Tensor, UOp, dtypes, nn

# x (B, T, C), c_attn's weight (3C, C) and bias (3C,), c_proj's weight (C, C) and bias (C,), nh
AttentionFn = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor, int], Tensor]
# q, k, v (B, nh, 1, hs), cache_k, cache_v (B, nh, S, hs), pos -> (out, cache_k, cache_v)
DecodeStep = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor, UOp], tuple[Tensor, Tensor, Tensor]]


def _check_qkv(q: Tensor, k: Tensor, v: Tensor, causal: bool) -> None:
    """Raise a ValueError naming the first shape that does not fit (B, nh, T, hs)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.ndim != 4:
            raise ValueError(
                f"{name} has shape {t.shape}; expected 4 axes (B, nh, T, hs).\n"
                "help: split heads with x.reshape(B, T, nh, hs).transpose(1, 2)."
            )
    if not (q.shape[:2] == k.shape[:2] == v.shape[:2]):
        raise ValueError(
            f"q, k, v disagree on (B, nh): {q.shape[:2]}, {k.shape[:2]}, {v.shape[:2]}.\n"
            "help: all three must come from the same batch and the same number of heads."
        )
    if q.shape[3] != k.shape[3]:
        raise ValueError(
            f"q has head size {q.shape[3]} but k has {k.shape[3]}; q @ k^T needs them equal.\n"
            "help: project queries and keys to the same head size."
        )
    if k.shape[2] != v.shape[2]:
        raise ValueError(
            f"k has {k.shape[2]} positions but v has {v.shape[2]}; each key needs one value.\n"
            "help: build k and v from the same positions."
        )
    if causal and q.shape[2] > k.shape[2]:
        raise ValueError(
            f"causal attention with {q.shape[2]} queries but only {k.shape[2]} keys.\n"
            "help: queries are the last positions of the keys' sequence, so Tq <= Tk."
        )


def attention_weights(
    q: Tensor, k: Tensor, causal: bool = True, mask: Tensor | None = None
) -> Tensor:
    """softmax(q k^T / sqrt(hs) + mask): how much each query (B, nh, Tq, hs) attends to each key
    (B, nh, Tk, hs), as weights (B, nh, Tq, Tk) whose rows sum to 1.

    `causal=True` hides later positions: the queries are taken to be the last Tq positions of the
    keys' sequence, so query i may look at keys 0 .. Tk - Tq + i. `mask` (broadcastable to
    (B, nh, Tq, Tk)) is either boolean (True = may attend) or float (added to the scores).
    """
    Tq, Tk, hs = q.shape[2], k.shape[2], q.shape[3]
    # 1) similarity of every query with every key, scaled so the softmax does not saturate
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, Tq, Tk)
    # 2) forbid looking ahead: -inf becomes weight 0 after the softmax
    if causal:
        visible = Tensor.ones(Tq, Tk, dtype=dtypes.bool).tril(Tk - Tq)  # (Tq, Tk)
        scores = visible.where(scores, -math.inf)
    if mask is not None:
        scores = mask.where(scores, -math.inf) if mask.dtype == dtypes.bool else scores + mask
    # 3) each row becomes a probability distribution over the keys. Stored once (forward and
    # backward): fused into the matmuls around them they would be recomputed for every column.
    weights = scores.contiguous_backward().softmax(-1).contiguous()  # (B, nh, Tq, Tk)
    return weights.contiguous_backward()


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    causal: bool = True,
    mask: Tensor | None = None,
    dropout: float = 0.0,
    maps: list[Tensor] | None = None,
) -> Tensor:
    """softmax(q k^T / sqrt(hs) + mask) v, for q (B, nh, Tq, hs) and k, v (B, nh, Tk, hs).

    The weights come from `attention_weights` (see there for `causal` and `mask`); a `maps` list
    receives them, (B, nh, Tq, Tk), for pictures of what attends where.
    Paper: https://arxiv.org/abs/1706.03762 (section 3.2.1).
    """
    _check_qkv(q, k, v, causal)
    weights = attention_weights(q, k, causal, mask)  # (B, nh, Tq, Tk)
    if maps is not None:
        maps.append(weights)
    # 4) mix the values with those probabilities (dropout is a no-op outside TRAINING)
    return weights.dropout(dropout) @ v  # (B, nh, Tq, hs)


class KVCache:
    """Keys and values of earlier positions, kept so generation computes each position only once.

    Fixed-size buffers of `max_len` slots (the model's block_size): the shapes never change, so the
    one-token decoding step can be compiled once with TinyJit and replayed. Slots past the current
    position hold stale numbers; the mask from `visible` hides them. A `decode_step` (lesson 7's
    exercise: write slot pos, attend over slots 0 .. pos) replaces `append` and the attention
    that follows it for one new token.
    """

    def __init__(
        self,
        batch_size: int,
        n_head: int,
        max_len: int,
        head_size: int,
        decode_step: DecodeStep | None = None,
    ):
        self.max_len, self.decode_step = max_len, decode_step
        self.k = Tensor.zeros(batch_size, n_head, max_len, head_size).contiguous().realize()
        self.v = Tensor.zeros(batch_size, n_head, max_len, head_size).contiguous().realize()

    def store_prefix(self, k: Tensor, v: Tensor) -> None:
        """Remember the keys and values of positions 0 .. T-1 (a prompt), k and v (B, nh, T, hs)."""
        pad = ((0, 0), (0, 0), (0, self.max_len - k.shape[2]), (0, 0))
        self.k.assign(k.pad(pad))  # (B, nh, max_len, hs)
        self.v.assign(v.pad(pad))

    def append(self, k: Tensor, v: Tensor, pos: UOp) -> tuple[Tensor, Tensor]:
        """Write one position's k, v (B, nh, 1, hs) into slot `pos`; returns all slots.

        `pos` is a bound Variable (`Variable("pos", 0, max_len - 1).bind(p)`), not a Python int:
        a jitted step then reads the new position on every replay instead of baking in the one it
        was captured with, and no input buffer has to be filled for it.
        """
        here = (Tensor.arange(self.max_len) == pos).reshape(1, 1, self.max_len, 1)
        self.k.assign(here.where(k, self.k))  # (B, nh, max_len, hs)
        self.v.assign(here.where(v, self.v))
        return self.k, self.v

    def visible(self, pos: UOp) -> Tensor:
        """Boolean mask (1, 1, 1, max_len): the query at `pos` sees slots 0 .. pos."""
        return (Tensor.arange(self.max_len) <= pos).reshape(1, 1, 1, self.max_len)


class MultiHeadAttention:
    """Causal self-attention with `n_head` heads of size n_embd // n_head.

    One fused projection `c_attn` makes q, k and v for all heads at once (C -> 3C); the heads run in
    parallel as a batch axis; `c_proj` mixes their outputs back into the residual stream.
    `attention` (lesson 2's exercise, same weights) replaces this computation on passes without
    a cache or maps; its attention weights get no dropout.
    """

    def __init__(
        self, n_embd: int, n_head: int, dropout: float = 0.0, attention: AttentionFn | None = None
    ):
        if n_head <= 0 or n_embd % n_head != 0:
            raise ValueError(
                f"n_embd={n_embd} cannot be split into n_head={n_head} equal heads.\n"
                "help: choose n_head > 0 that divides n_embd (for example n_embd=128, n_head=4)."
            )
        self.n_head, self.dropout, self.attention = n_head, dropout, attention
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def __call__(
        self,
        x: Tensor,
        cache: KVCache | None = None,
        pos: UOp | None = None,
        maps: list[Tensor] | None = None,
    ) -> Tensor:
        """x (B, T, C) -> (B, T, C); a `maps` list receives the attention weights (B, nh, T, Tk).

        With a `cache` and no `pos`, x is a prompt at positions 0 .. T-1 and its keys and values
        are stored; with a `pos` (a bound Variable), x is one new token (T = 1) at that position.
        """
        B, T, C = x.shape
        hs = C // self.n_head
        if self.attention is not None and cache is None and maps is None:
            weights = (self.c_attn.weight, self.c_attn.bias, self.c_proj.weight, self.c_proj.bias)
            return self.attention(x, *weights, self.n_head).dropout(self.dropout)  # (B, T, C)
        # contiguous_backward stores the gradient of the fused projection (B, T, 3C) once: the
        # two matmuls of c_attn's backward then read one dense array instead of gathering dq, dk
        # and dv from three buffers at every step of their loops (~2x slower kernels on a CPU).
        qkv = self.c_attn(x).contiguous_backward()  # (B, T, 3C)
        q, k, v = qkv.split(C, dim=2)  # 3 x (B, T, C)
        # (B,T,C) -> (B,nh,T,hs). contiguous_backward stores each head-split gradient: without it
        # tinygrad computes dq, dk and dv in one kernel that pays for all three at every element.
        q, k, v = (t.reshape(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))
        q, k, v = q.contiguous_backward(), k.contiguous_backward(), v.contiguous_backward()
        causal, mask = True, None
        if cache is not None and pos is None:
            cache.store_prefix(k, v)
        elif cache is not None and cache.decode_step is not None:
            y, cache_k, cache_v = cache.decode_step(q, k, v, cache.k, cache.v, pos)  # (B,nh,1,hs)
            cache.k.assign(cache_k)  # (B, nh, max_len, hs)
            cache.v.assign(cache_v)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C)).dropout(self.dropout)
        elif cache is not None:
            k, v = cache.append(k, v, pos)  # (B, nh, max_len, hs)
            causal, mask = False, cache.visible(pos)
        y = scaled_dot_product_attention(q, k, v, causal, mask, self.dropout, maps)  # (B,nh,T,hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B,nh,T,hs) -> (B,T,C): heads side by side
        return self.c_proj(y).dropout(self.dropout)  # (B, T, C)
