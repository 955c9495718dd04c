"""minigpt: attention, transformer blocks and a small GPT written in tinygrad, for learning."""

from minigpt.attention import KVCache, MultiHeadAttention, scaled_dot_product_attention
from minigpt.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from minigpt.data import (
    CharTokenizer,
    SyntheticTask,
    get_batch,
    load_corpus,
    split,
    synthetic_task,
)
from minigpt.model import GPTConfig, MiniGPT
from minigpt.train import TrainConfig, TrainResult, learning_rate, train
from minigpt.transformer import MLP, Block, LayerNorm

__all__ = [
    "MLP",
    "Block",
    "CharTokenizer",
    "CheckpointInfo",
    "GPTConfig",
    "KVCache",
    "LayerNorm",
    "MiniGPT",
    "MultiHeadAttention",
    "SyntheticTask",
    "TrainConfig",
    "TrainResult",
    "get_batch",
    "learning_rate",
    "load_checkpoint",
    "load_corpus",
    "save_checkpoint",
    "scaled_dot_product_attention",
    "split",
    "synthetic_task",
    "train",
]
