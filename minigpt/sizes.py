"""How big a MiniGPT is, from its config alone: parameters and the memory training and sampling
need, estimated in microseconds so that absurd sizes are refused before anything is allocated."""

from minigpt.model import GPTConfig

FLOAT_BYTES = 4  # float32 everywhere


def count_params(config: GPTConfig) -> int:
    """Exactly `MiniGPT(config).num_params()`, without building the model: embeddings, then per
    block two LayerNorms (2C each), attention (4C^2 + 4C) and the MLP (8C^2 + 5C), then ln_f."""
    V, T, C, L = config.vocab_size, config.block_size, config.n_embd, config.n_layer
    head = 0 if config.tie_weights else V * C
    return V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C + head


def training_bytes(config: GPTConfig, batch_size: int) -> int:
    """About the memory one training step holds: weights, gradients and AdamW's two moments
    (4 floats a parameter), plus the activations kept for the backward pass (per block some 16
    (B, T, C) tensors and 3 (B, nh, T, T) attention maps; 3 (B, T, V) for the logits)."""
    B, T, C, V = batch_size, config.block_size, config.n_embd, config.vocab_size
    per_block = 16 * B * T * C + 3 * B * config.n_head * T * T
    activations = config.n_layer * per_block + 3 * B * T * V
    return FLOAT_BYTES * (4 * count_params(config) + activations)


def sampling_bytes(config: GPTConfig) -> int:
    """About the memory sampling one sequence holds: the weights, the key/value cache of every
    block (2 (T, C) tensors) and one forward pass's activations."""
    T, C = config.block_size, config.n_embd
    per_block = 2 * T * C + 16 * T * C + 3 * config.n_head * T * T
    return FLOAT_BYTES * (count_params(config) + config.n_layer * per_block)
