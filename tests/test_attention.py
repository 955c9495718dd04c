"""Attention against a float64 numpy reference and tinygrad's built-in scaled_dot_product_attention."""

import numpy as np
import pytest
from tinygrad import Tensor

from minigpt.attention import (
    KVCache,
    MultiHeadAttention,
    attention_weights,
    scaled_dot_product_attention,
)

B, NH, T, HS = 2, 3, 5, 4


def attention_ref(q, k, v, causal=True):
    """softmax(q k^T / sqrt(hs)) v in float64, queries at the last positions of the keys."""
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    scores = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    if causal:
        tq, tk = q.shape[2], k.shape[2]
        visible = np.tril(np.ones((tq, tk), dtype=bool), tk - tq)
        scores = np.where(visible, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return weights @ v, weights


@pytest.fixture(scope="module")
def qkv():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((B, NH, T, HS)).astype(np.float32) for _ in range(3)]


def rel_err(got, want):
    return np.abs(got - want).max() / np.abs(want).max()


@pytest.mark.parametrize("causal", [True, False])
def test_matches_float64_reference(qkv, causal):
    maps = []
    out = scaled_dot_product_attention(*(Tensor(a) for a in qkv), causal=causal, maps=maps)
    (weights,) = maps
    want_out, want_weights = attention_ref(*qkv, causal=causal)
    assert rel_err(out.numpy(), want_out) < 1e-5
    assert rel_err(weights.numpy(), want_weights) < 1e-5
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, atol=1e-6)


def test_causal_weights_are_lower_triangular(qkv):
    q, k, _ = (Tensor(a) for a in qkv)
    weights = attention_weights(q, k)
    upper = np.triu(np.ones((T, T), dtype=bool), 1)
    assert (weights.numpy()[..., upper] == 0).all()


def test_fewer_queries_than_keys_sit_at_the_end(qkv):
    q, k, v = qkv
    got = scaled_dot_product_attention(Tensor(q[:, :, -2:]), Tensor(k), Tensor(v)).numpy()
    want, _ = attention_ref(q, k, v)
    assert rel_err(got, want[:, :, -2:]) < 1e-5


@pytest.mark.parametrize("causal", [True, False])
def test_equals_tinygrad_builtin(qkv, causal):
    q, k, v = (Tensor(a) for a in qkv)
    ours = scaled_dot_product_attention(q, k, v, causal=causal).numpy()
    builtin = q.scaled_dot_product_attention(k, v, is_causal=causal).numpy()
    np.testing.assert_allclose(ours, builtin, rtol=1e-5, atol=1e-6)


def test_bool_and_float_masks(qkv):
    q, k, v = (Tensor(a) for a in qkv)
    keep = np.tril(np.ones((T, T), dtype=bool))
    causal = scaled_dot_product_attention(q, k, v).numpy()
    with_bool = scaled_dot_product_attention(q, k, v, causal=False, mask=Tensor(keep)).numpy()
    additive = Tensor(np.where(keep, 0.0, -np.inf).astype(np.float32))
    with_float = scaled_dot_product_attention(q, k, v, causal=False, mask=additive).numpy()
    np.testing.assert_allclose(with_bool, causal, atol=1e-6)
    np.testing.assert_allclose(with_float, causal, atol=1e-6)


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((B, T, HS), (B, NH, T, HS), (B, NH, T, HS)), "expected 4 axes"),
        (((B, NH, T, HS), (B, NH + 1, T, HS), (B, NH + 1, T, HS)), "disagree on"),
        (((B, NH, T, HS), (B, NH, T, HS + 1), (B, NH, T, HS)), "head size"),
        (((B, NH, T, HS), (B, NH, T, HS), (B, NH, T - 1, HS)), "each key needs one value"),
        (((B, NH, T + 1, HS), (B, NH, T, HS), (B, NH, T, HS)), "Tq <= Tk"),
    ],
)
def test_bad_shapes_raise(shapes, match):
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(*(Tensor.zeros(*s) for s in shapes))


def test_multi_head_attention_matches_reference():
    Tensor.manual_seed(0)
    n_embd, n_head = 12, 3
    mha = MultiHeadAttention(n_embd, n_head)
    x = np.random.default_rng(1).standard_normal((B, T, n_embd)).astype(np.float32)
    maps = []
    y = mha(Tensor(x), maps=maps)
    (weights,) = maps
    w_attn, b_attn = mha.c_attn.weight.numpy().astype(np.float64), mha.c_attn.bias.numpy()
    qkv = x.astype(np.float64) @ w_attn.T + b_attn  # (B, T, 3C)
    heads = [
        qkv[..., i * n_embd : (i + 1) * n_embd].reshape(B, T, n_head, -1).transpose(0, 2, 1, 3)
        for i in range(3)
    ]
    out, want_weights = attention_ref(*heads)
    out = out.transpose(0, 2, 1, 3).reshape(B, T, n_embd)
    want = out @ mha.c_proj.weight.numpy().astype(np.float64).T + mha.c_proj.bias.numpy()
    assert y.shape == (B, T, n_embd) and weights.shape == (B, n_head, T, T)
    assert rel_err(y.numpy(), want) < 1e-5
    assert rel_err(weights.numpy(), want_weights) < 1e-5


def test_kv_cache_step_equals_full_attention():
    Tensor.manual_seed(0)
    n_embd, n_head, max_len = 8, 2, 6
    mha = MultiHeadAttention(n_embd, n_head)
    x = Tensor(np.random.default_rng(2).standard_normal((1, 5, n_embd)).astype(np.float32))
    full = mha(x).numpy()
    cache = KVCache(1, n_head, max_len, n_embd // n_head)
    prefix = mha(x[:, :3], cache).numpy()
    steps = [mha(x[:, t : t + 1], cache, Tensor([t])).numpy() for t in (3, 4)]
    np.testing.assert_allclose(prefix, full[:, :3], atol=1e-6)
    np.testing.assert_allclose(np.concatenate(steps, 1), full[:, 3:], atol=1e-6)


def test_heads_must_divide_channels():
    with pytest.raises(ValueError, match="n_embd=10 cannot be split into n_head=4"):
        MultiHeadAttention(10, 4)
