"""The seams of the engines (lesson 13): the reference pieces, plugged in as the learner's, give
the package's losses, logits and tokens; a numpy piece is refused by the tinygrad-form checks."""

import numpy as np
import pytest
from tinygrad import Tensor

from minigpt.checks import (
    reference_block_forward,
    reference_cross_entropy,
    reference_decode_step,
    reference_learning_rate,
    reference_multi_head_attention,
)
from minigpt.compiled import generate
from minigpt.data import synthetic_task
from minigpt.model import GPTConfig, MiniGPT
from minigpt.pieces import (
    adamw_update,
    check_tensor_adamw_update,
    check_tensor_clip_scale,
    check_tensor_cross_entropy,
)
from minigpt.train import TrainConfig, clip_scale, cross_entropy, train

CONFIG = GPTConfig(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=16)
TRAIN = TrainConfig(
    steps=12, batch_size=8, lr=1e-2, min_lr=1e-3, warmup=3, eval_interval=6, eval_batches=1
)


def model_pair(**pieces) -> tuple[MiniGPT, MiniGPT]:
    """The package's model and one with `pieces`, with the same initial weights."""
    Tensor.manual_seed(3)
    package = MiniGPT(CONFIG)
    Tensor.manual_seed(3)
    return package, MiniGPT(CONFIG, **pieces)


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    return synthetic_task("copy", 200, 3, 4, rng), synthetic_task("copy", 50, 3, 4, rng)


def test_reference_pieces_train_like_the_package(task):
    package, mine = model_pair(attention=reference_multi_head_attention)
    expected = train(package, *task, TRAIN, progress=False)
    got = train(
        mine,
        *task,
        TRAIN,
        progress=False,
        loss=cross_entropy,
        schedule=reference_learning_rate,
        clip=clip_scale,
        update=adamw_update,
    )
    np.testing.assert_allclose(got.step_losses, expected.step_losses, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.val_losses, expected.val_losses, rtol=1e-5, atol=1e-5)
    assert expected.step_losses[-1] < expected.step_losses[0] - 0.3  # it did learn


def test_a_wrong_update_parts_from_the_package(task):
    def no_bias_correction(param, grad, m, v, t, lr, config):
        b1, b2 = config.betas
        m, v = b1 * m + (1 - b1) * grad, b2 * v + (1 - b2) * grad * grad
        return param - lr * m / (v.sqrt() + 1e-8), m, v

    package, mine = model_pair()
    expected = train(package, *task, TRAIN, progress=False)
    got = train(mine, *task, TRAIN, progress=False, update=no_bias_correction)
    assert got.step_losses[0] == pytest.approx(expected.step_losses[0], rel=1e-6)
    assert not np.allclose(got.step_losses[1:], expected.step_losses[1:], rtol=1e-3)


def test_update_refuses_checkpoints(task, tmp_path):
    with pytest.raises(ValueError, match="cannot save"):
        train(MiniGPT(CONFIG), *task, TRAIN, progress=False, out_dir=tmp_path, update=adamw_update)


@pytest.mark.parametrize(
    "pieces",
    [dict(attention=reference_multi_head_attention), dict(block=reference_block_forward)],
    ids=["attention", "block"],
)
def test_attention_and_block_seams_give_the_package_logits(pieces):
    package, mine = model_pair(**pieces)
    ids = np.random.default_rng(1).integers(0, CONFIG.vocab_size, (2, CONFIG.block_size))
    np.testing.assert_allclose(mine(ids).numpy(), package(ids).numpy(), rtol=1e-4, atol=1e-5)


def test_decode_step_samples_the_package_tokens():
    Tensor.manual_seed(5)
    model = MiniGPT(CONFIG)
    prompt = np.array([[1, 2, 3]])
    expected = generate(model, prompt, 12, temperature=0)  # slides past block_size too
    got = generate(model, prompt, 12, temperature=0, decode_step=reference_decode_step)
    np.testing.assert_array_equal(got, expected)
    eager = model.generate(prompt, 12, temperature=0, decode_step=reference_decode_step)
    np.testing.assert_array_equal(eager, expected)
    with pytest.raises(ValueError, match="decode_step runs only"):
        model.generate(prompt, 3, use_cache=False, decode_step=reference_decode_step)


def test_tensor_forms_pass_and_numpy_forms_are_refused():
    assert check_tensor_cross_entropy(cross_entropy).passed
    assert check_tensor_clip_scale(clip_scale).passed
    assert check_tensor_adamw_update(adamw_update).passed
    with pytest.raises(AssertionError, match="Exercise 1"):
        check_tensor_cross_entropy(reference_cross_entropy)  # numpy code cannot run on Tensors

    def numpy_scale(grads, max_norm):
        return min(1.0, max_norm / (float(sum((g * g).sum() for g in grads).numpy()) ** 0.5 + 1e-6))

    with pytest.raises(AssertionError, match="not a tinygrad Tensor"):
        check_tensor_clip_scale(numpy_scale)
