"""MiniGPT: config checks, shapes, causality, gradients against finite differences, sampling."""

import numpy as np
import pytest
from tinygrad import Context, Tensor
from tinygrad.nn.state import get_state_dict

from minigpt import compiled
from minigpt.model import GPTConfig, MiniGPT

CONFIG = GPTConfig(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=32)


@pytest.fixture(scope="module")
def model():
    Tensor.manual_seed(0)
    return MiniGPT(CONFIG)


@pytest.fixture(scope="module")
def ids():
    return np.random.default_rng(0).integers(0, CONFIG.vocab_size, (2, CONFIG.block_size))


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"n_embd": 30, "n_head": 4}, "not divisible by n_head=4"),
        ({"vocab_size": 0}, "vocab_size=0; expected a positive int"),
        ({"block_size": 2.5}, "block_size=2.5; expected a positive int"),
        ({"n_layer": -1}, "n_layer=-1"),
        ({"dropout": 1.0}, r"dropout=1.0; expected a probability in \[0, 1\)"),
        ({"dropout": -0.1}, "dropout=-0.1"),
    ],
)
def test_config_rejects_bad_values(overrides, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**{**CONFIG.to_dict(), **overrides})


def test_logits_shape_and_param_count(model, ids):
    assert model(ids).shape == (2, CONFIG.block_size, CONFIG.vocab_size)
    V, S, C, L = CONFIG.vocab_size, CONFIG.block_size, CONFIG.n_embd, CONFIG.n_layer
    per_block = (
        2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    )
    assert model.num_params() == V * C + S * C + L * per_block + 2 * C
    untied = MiniGPT(GPTConfig(**{**CONFIG.to_dict(), "tie_weights": False}))
    assert untied.num_params() == model.num_params() + V * C


def test_gpt2_initialisation(model):
    state = get_state_dict(model)
    residual_std = 0.02 / np.sqrt(2 * CONFIG.n_layer)
    assert abs(state["tok_emb.weight"].numpy().std() - 0.02) < 0.002
    assert abs(state["blocks.0.mlp.c_fc.weight"].numpy().std() - 0.02) < 0.002
    assert abs(state["blocks.1.mlp.c_proj.weight"].numpy().std() - residual_std) < 0.002
    assert abs(state["blocks.1.attn.c_proj.weight"].numpy().std() - residual_std) < 0.002
    assert (state["blocks.0.attn.c_attn.bias"].numpy() == 0).all()
    assert (state["blocks.0.ln1.weight"].numpy() == 1).all()
    assert "lm_head.weight" not in state  # tied: the head is tok_emb.weight


def test_tied_head_uses_token_embedding(model, ids):
    x = np.random.default_rng(3).standard_normal((1, 2, CONFIG.n_embd)).astype(np.float32)
    want = x @ model.tok_emb.weight.numpy().T
    np.testing.assert_allclose(model.head(Tensor(x)).numpy(), want, rtol=1e-5, atol=1e-6)


def test_causal_later_tokens_do_not_change_earlier_logits(model, ids):
    t = 3
    changed = ids.copy()
    changed[:, t + 1 :] = (changed[:, t + 1 :] + 3) % CONFIG.vocab_size
    a, b = model(ids).numpy(), model(changed).numpy()
    np.testing.assert_allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-6)
    assert np.abs(a[:, t + 1 :] - b[:, t + 1 :]).max() > 1e-4


def test_tensor_and_numpy_ids_agree(model, ids):
    np.testing.assert_allclose(
        model(Tensor(ids.astype(np.int32))).numpy(), model(ids).numpy(), atol=1e-6
    )


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((1, 4), dtype=np.float32), "dtype float32; expected integers"),
        (np.full((1, 4), 7), r"token id 7 is outside \[0, vocab_size=7\)"),
        (np.full((1, 4), -1), "token id -1 is outside"),
        (np.zeros((1, 9), dtype=int), "T=9 exceeds block_size=8"),
        (np.zeros(4, dtype=int), r"shape \(4,\); expected \(B, T\)"),
        (Tensor.zeros(1, 4), "dtype dtypes.float; expected integers"),
    ],
)
def test_bad_ids_raise(model, bad, match):
    with pytest.raises(ValueError, match=match):
        model(bad)


def test_gradients_match_finite_differences():
    """Build a float64 copy of a tiny model; compare backward() with central differences."""
    with Context(DEFAULT_FLOAT="float64"):
        Tensor.manual_seed(1)
        config = GPTConfig(vocab_size=7, block_size=4, n_layer=1, n_head=2, n_embd=8)
        model = MiniGPT(config)
        rng = np.random.default_rng(1)
        x, y = rng.integers(0, 7, (2, 4)), rng.integers(0, 7, (2, 4))
        state = get_state_dict(model)
        for t in state.values():  # larger weights give gradients well above rounding noise
            t.assign(Tensor(rng.standard_normal(t.shape) * 0.3)).realize()

        def loss() -> Tensor:
            return model(x).sparse_categorical_crossentropy(Tensor(y))

        names = ["tok_emb.weight", "blocks.0.attn.c_attn.weight", "blocks.0.ln2.bias"]
        grads = dict(zip(names, loss().gradient(*(state[n] for n in names)), strict=True))
        eps = 1e-5
        for name in names:
            values = state[name].numpy()
            for index in [tuple(rng.integers(0, s) for s in values.shape)]:
                shifted = []
                for sign in (1, -1):
                    moved = values.copy()
                    moved[index] += sign * eps
                    state[name].assign(Tensor(moved)).realize()
                    shifted.append(loss().item())
                state[name].assign(Tensor(values)).realize()
                numeric = (shifted[0] - shifted[1]) / (2 * eps)
                analytic = grads[name].numpy()[index]
                assert abs(analytic - numeric) < 1e-6 + 1e-4 * abs(numeric), (name, index)


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.8, 5), (0.0, None)])
def test_kv_cache_gives_the_same_tokens(model, temperature, top_k):
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    # 9 new tokens overflow block_size=8, so the sliding-window fallback runs too
    kwargs = dict(max_new_tokens=9, temperature=temperature, top_k=top_k, seed=5)
    cached = model.generate(prompt, use_cache=True, **kwargs)
    plain = model.generate(prompt, use_cache=False, **kwargs)
    assert cached.shape == (2, 12)
    np.testing.assert_array_equal(cached, plain)
    np.testing.assert_array_equal(cached[:, :3], prompt)


def test_generate_is_deterministic_by_seed(model):
    runs = [model.generate([[1, 2]], 5, seed=s, use_cache=False) for s in (7, 7, 8)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0].min() >= 0 and runs[0].max() < CONFIG.vocab_size


def test_top_k_one_is_greedy(model):
    greedy = model.generate([[1, 2]], 4, temperature=0.0, use_cache=False)
    top1 = model.generate([[1, 2]], 4, top_k=1, seed=3, use_cache=False)
    np.testing.assert_array_equal(greedy, top1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_new_tokens": -1}, "both must be >= 0"),
        ({"max_new_tokens": 2.0}, "expected an int >= 0"),
        ({"max_new_tokens": 2, "temperature": -1.0}, "both must be >= 0"),
        ({"max_new_tokens": 2, "top_k": 0}, "top_k=0; expected None or 1..vocab_size=7"),
        ({"max_new_tokens": 2, "idx": [[25]]}, "token id 25 is outside"),
    ],
)
def test_generate_rejects_bad_arguments(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        model.generate(**{"idx": [[1]], **kwargs})


def test_attention_maps_are_causal_distributions(model, ids):
    maps = model.attention_maps(ids)
    assert len(maps) == CONFIG.n_layer and maps[0].shape == (2, CONFIG.n_head, 8, 8)
    weights = maps[1].numpy()
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert (weights[..., np.triu(np.ones((8, 8), dtype=bool), 1)] == 0).all()


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("temperature, seed", [(0.0, None), (0.8, 5)])
def test_compiled_decoder_gives_the_same_tokens(model, use_cache, temperature, seed):
    """The readable decoder (step by step) and the compiled one sample the same text; 9 new
    tokens overflow block_size=8, so the sliding window is covered too."""
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    kwargs = dict(temperature=temperature, seed=seed, use_cache=use_cache)
    eager = model.generate(prompt, 9, **kwargs)
    np.testing.assert_array_equal(compiled.generate(model, prompt, 9, **kwargs), eager)


def test_decoder_is_reused_until_weights_are_replaced(model):
    decoders = compiled.CompiledDecoder
    first = compiled.generate(model, [[1, 2]], 3, seed=0)
    decoder = decoders.for_model(model, 1, True)
    assert decoders.for_model(model, 1, True) is decoder
    np.testing.assert_array_equal(compiled.generate(model, [[1, 2]], 3, seed=0), first)
    old = model.blocks[0].mlp.c_fc.bias
    model.blocks[0].mlp.c_fc.bias = (old + 0).contiguous().realize()  # same values, new buffer
    assert decoders.for_model(model, 1, True) is not decoder
    np.testing.assert_array_equal(compiled.generate(model, [[1, 2]], 3, seed=0), first)


@pytest.mark.parametrize("use_cache", [True, False])
def test_warm_generate_schedules_no_graph_per_token(model, monkeypatch, use_cache):
    """Once its steps are compiled, sampling only replays them: token ids are copied into the
    decoder's input buffers and the position is a bound Variable, so nothing is scheduled."""
    prompt = [[1, 2]]
    first = compiled.generate(model, prompt, 10, seed=1, use_cache=use_cache)  # compiles, captures
    scheduled = []
    original = Tensor.linear_with_vars
    monkeypatch.setattr(
        Tensor, "linear_with_vars", lambda *a, **k: scheduled.append(1) or original(*a, **k)
    )
    again = compiled.generate(model, prompt, 10, seed=1, use_cache=use_cache)  # 10 > S - 2
    assert scheduled == []
    np.testing.assert_array_equal(again, first)
