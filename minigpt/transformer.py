"""The transformer block: layer normalisation, the MLP, and the pre-norm residual Block (lesson 3).

A block is "communicate, then compute": attention lets positions exchange information, the MLP
then works on each position alone. Both read a normalised copy of the residual stream and add their
result back to it (pre-norm, as in GPT-2), so the stream itself is never squashed.
"""

from tinygrad import Tensor, UOp, nn

from minigpt.attention import AttentionFn, KVCache, MultiHeadAttention


class LayerNorm:
    """Normalise each position's C features to mean 0 and variance 1, then scale and shift.

    y = (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance (divide by C), like
    PyTorch. Paper: https://arxiv.org/abs/1607.06450
    """

    def __init__(self, n_embd: int, eps: float = 1e-5):
        self.eps = eps
        self.weight = Tensor.ones(n_embd)
        self.bias = Tensor.zeros(n_embd)

    def __call__(self, x: Tensor) -> Tensor:
        mean = x.mean(axis=-1, keepdim=True)  # (B, T, 1)
        var = ((x - mean) ** 2).mean(axis=-1, keepdim=True)  # (B, T, 1)
        return (x - mean) * (var + self.eps).rsqrt() * self.weight + self.bias  # (B, T, C)


class MLP:
    """Position-wise feed-forward network: C -> 4C, GELU, 4C -> C.

    GELU in GPT-2's tanh form (tinygrad's default); it differs from the exact erf form of
    PyTorch's nn.GELU by less than 1e-3 and is cheaper to compute.
    """

    def __init__(self, n_embd: int, dropout: float = 0.0):
        self.dropout = dropout
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def __call__(self, x: Tensor) -> Tensor:
        # Materialise h and its gradient: fused into the next matmul instead, GELU (a tanh) and
        # its derivative would be recomputed for every output column, ~2x slower steps on a CPU.
        h = self.c_fc(x).contiguous_backward().gelu().contiguous()  # (B, T, 4C)
        return self.c_proj(h).dropout(self.dropout)  # (B, T, C)


class Block:
    """Pre-norm transformer block: x + attn(ln1(x)), then x + mlp(ln2(x)). `attention` replaces
    the computation of its MultiHeadAttention (see there)."""

    def __init__(
        self, n_embd: int, n_head: int, dropout: float = 0.0, attention: AttentionFn | None = None
    ):
        self.ln1 = LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, n_head, dropout, attention)
        self.ln2 = LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout)

    def __call__(
        self,
        x: Tensor,
        cache: KVCache | None = None,
        pos: UOp | None = None,
        maps: list[Tensor] | None = None,
    ) -> Tensor:
        """x (B, T, C) -> (B, T, C); a `maps` list receives the attention weights (B, nh, T, Tk)."""
        x = x + self.attn(self.ln1(x), cache, pos, maps)  # (B, T, C)
        return x + self.mlp(self.ln2(x))  # (B, T, C)
