"""LayerNorm, MLP and Block against float64 numpy references."""

import math

import numpy as np
import pytest
from tinygrad import Tensor

from minigpt.transformer import MLP, Block, LayerNorm

B, T, C = 2, 4, 8


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((B, T, C)).astype(np.float32) * 3 + 1


def layernorm_ref(x, weight, bias, eps=1e-5):
    x = x.astype(np.float64)
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu_ref(x):
    """GPT-2's tanh approximation of x * Phi(x)."""
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def rel_err(got, want):
    return np.abs(got - want).max() / np.abs(want).max()


def test_layernorm_matches_reference(x):
    ln = LayerNorm(C)
    rng = np.random.default_rng(1)
    ln.weight = Tensor(rng.standard_normal(C).astype(np.float32))
    ln.bias = Tensor(rng.standard_normal(C).astype(np.float32))
    want = layernorm_ref(x, ln.weight.numpy(), ln.bias.numpy())
    assert rel_err(ln(Tensor(x)).numpy(), want) < 1e-5


def test_layernorm_output_is_normalised(x):
    y = LayerNorm(C)(Tensor(x)).numpy()
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1.0, atol=1e-3)  # eps pulls it a hair below 1


def test_layernorm_equals_tinygrad_builtin(x):
    np.testing.assert_allclose(
        LayerNorm(C)(Tensor(x)).numpy(), Tensor(x).layernorm().numpy(), atol=1e-5
    )


def test_mlp_matches_reference(x):
    Tensor.manual_seed(0)
    mlp = MLP(C)
    h = x.astype(np.float64) @ mlp.c_fc.weight.numpy().T + mlp.c_fc.bias.numpy()
    want = gelu_ref(h) @ mlp.c_proj.weight.numpy().T + mlp.c_proj.bias.numpy()
    assert mlp.c_fc.weight.shape == (4 * C, C)
    assert rel_err(mlp(Tensor(x)).numpy(), want) < 1e-5


def test_block_is_pre_norm_residual(x):
    Tensor.manual_seed(0)
    block = Block(C, n_head=2)
    xt = Tensor(x)
    h = xt + block.attn(block.ln1(xt))
    want = (h + block.mlp(block.ln2(h))).numpy()
    maps = []
    got = block(xt, maps=maps)
    (weights,) = maps
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)
    assert weights.shape == (B, 2, T, T)


def test_block_is_causal(x):
    Tensor.manual_seed(0)
    block = Block(C, n_head=2)
    changed = x.copy()
    changed[:, 2:] += 5.0  # change positions 2.. : outputs at 0..1 must not move
    a, b = block(Tensor(x)).numpy(), block(Tensor(changed)).numpy()
    np.testing.assert_allclose(a[:, :2], b[:, :2], atol=1e-6)
    assert np.abs(a[:, 2:] - b[:, 2:]).max() > 1e-2
