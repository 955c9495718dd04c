"""Checkers of lessons 01-04: the references pass, typical wrong answers fail with a helpful message."""

import math

import numpy as np
import pytest
from tinygrad import Tensor

from minigpt.checks import (
    ExerciseFailed,
    check_attention,
    check_block_forward,
    check_causal_mask,
    check_central_difference,
    check_count_params,
    check_cross_entropy,
    check_layer_norm,
    check_make_batch,
    check_sampling_probs,
    check_sgd_step,
    check_split_merge_heads,
    check_square_loss_grads,
    reference_causal_mask,
    reference_central_difference,
    reference_count_params,
    reference_cross_entropy,
    reference_make_batch,
    reference_merge_heads,
    reference_sampling_probs,
    reference_sgd_step,
    reference_split_heads,
)


def unsolved(*args):
    raise NotImplementedError("Exercise N: write it")


def test_split_merge_reference_passes_and_unsolved_is_reported():
    assert check_split_merge_heads(reference_split_heads, reference_merge_heads).passed
    assert not check_split_merge_heads(unsolved, reference_merge_heads).passed
    assert not check_split_merge_heads(reference_split_heads, unsolved).passed


# Lesson 01


def test_forward_difference_is_caught():
    def forward(f, x, eps):
        x = np.array(x, dtype=np.float64)
        grad = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            bumped = x.copy()
            bumped[i] += eps
            grad[i] = (f(bumped) - f(x)) / eps
        return grad

    with pytest.raises(ExerciseFailed, match=r"wrong values[\s\S]*one-sided difference"):
        check_central_difference(forward)


def test_central_difference_that_changes_x_is_caught():
    def leaves_x_changed(f, x, eps):
        grad = reference_central_difference(f, x, eps)
        x += eps
        return grad

    with pytest.raises(ExerciseFailed, match="changed the input x"):
        check_central_difference(leaves_x_changed)


def test_gradient_without_the_factor_two_is_caught():
    def no_two(x, w):
        h = x @ w
        return h @ w.T, x.T @ h

    with pytest.raises(ExerciseFailed, match=r"dz/dx[\s\S]*the factor 2"):
        check_square_loss_grads(no_two)


def test_gradient_with_w_on_the_wrong_side_is_caught():
    def wrong_side(x, w):
        h = 2 * x @ w
        return w @ h.T, x.T @ h

    with pytest.raises(ExerciseFailed, match=r"expected an output of shape \(4, 3\), got \(3, 4\)"):
        check_square_loss_grads(wrong_side)


def test_sgd_step_up_the_gradient_is_caught():
    def uphill(w, b, x, y, lr):
        new_w, new_b = reference_sgd_step(w, b, x, y, lr)
        return 2 * w - new_w, 2 * b - new_b

    with pytest.raises(ExerciseFailed, match=r"new w[\s\S]*step against the gradient"):
        check_sgd_step(uphill)


def test_sgd_step_with_a_sum_instead_of_a_mean_is_caught():
    def summed(w, b, x, y, lr):
        return reference_sgd_step(w, b, x, y, lr * len(y))

    with pytest.raises(ExerciseFailed, match="wrong values for new w"):
        check_sgd_step(summed)


# Lesson 02


def attention_with(scale=None, causal=True, axis=-1):
    def attend(q, k, v):
        T, hs = q.shape[-2], q.shape[-1]
        scores = q @ k.transpose(-2, -1) * (1 / math.sqrt(hs) if scale is None else scale(hs))
        if causal:
            scores = reference_causal_mask(T).where(scores, -math.inf)
        return scores.softmax(axis) @ v

    return attend


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (attention_with(scale=lambda hs: 1.0), "the scores are not scaled"),
        (attention_with(scale=lambda hs: 1 / hs), "divided by hs"),
        (attention_with(causal=False), "the causal mask is missing"),
        (attention_with(axis=-2), "softmax runs over the wrong axis"),
    ],
    ids=["no-scale", "1/hs", "no-mask", "softmax-axis"],
)
def test_attention_mistakes_are_named(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_attention(wrong)


def test_attention_with_k_not_transposed_is_caught():
    def no_transpose(q, k, v):
        return (q * k).sum(-1, keepdim=True).softmax(-1) * v

    with pytest.raises(ExerciseFailed, match="wrong values"):
        check_attention(no_transpose)


def test_split_heads_without_transpose_is_caught():
    def split(x, n_head):
        B, T, C = x.shape
        return x.reshape(B, n_head, T, C // n_head)

    with pytest.raises(ExerciseFailed, match="mixes positions into heads"):
        check_split_merge_heads(split, reference_merge_heads)


def test_merge_heads_without_transpose_is_caught():
    def merge(y):
        B, nh, T, hs = y.shape
        return y.reshape(B, T, nh * hs)

    with pytest.raises(ExerciseFailed, match="without moving the head axis back"):
        check_split_merge_heads(reference_split_heads, merge)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda T: Tensor.ones(T, T).triu(), "the mask is transposed"),
        (lambda T: Tensor.ones(T, T).tril(-1), "the diagonal is hidden"),
        (lambda T: Tensor.ones(T, T), "wrong values for T=4"),
    ],
    ids=["upper", "no-diagonal", "all-ones"],
)
def test_causal_mask_mistakes_are_caught(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_causal_mask(wrong)


# Lesson 03


def layer_norm_with(eps_inside=True, correction=0, axis=-1, use_eps=True):
    def norm(x, weight, bias, eps=1e-5):
        n = x.shape[axis]
        mean = x.mean(axis=axis, keepdim=True)
        var = ((x - mean) ** 2).sum(axis=axis, keepdim=True) / (n - correction)
        if not use_eps:
            return (x - mean) / var.sqrt() * weight + bias
        if eps_inside:
            return (x - mean) / (var + eps).sqrt() * weight + bias
        return (x - mean) / (var.sqrt() + eps) * weight + bias

    return norm


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (layer_norm_with(use_eps=False), "NaN or inf: a constant row"),
        (layer_norm_with(correction=1), "unbiased"),
        (layer_norm_with(axis=0), "wrong axis"),
        (layer_norm_with(eps_inside=False), "eps is added outside the square root"),
    ],
    ids=["no-eps", "unbiased", "axis-0", "eps-outside"],
)
def test_layer_norm_mistakes_are_named(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_layer_norm(wrong)


def test_layer_norm_without_weight_and_bias_is_caught():
    with pytest.raises(ExerciseFailed, match="wrong values"):
        check_layer_norm(lambda x, w, b, eps=1e-5: layer_norm_with()(x, 1.0, 0.0, eps))


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (
            lambda c: reference_count_params(c) + c.vocab_size * c.n_embd * c.tie_weights,
            r"you counted too many; the head",
        ),
        (
            lambda c: reference_count_params(c) - c.block_size * c.n_embd,
            "you missed the position embedding",
        ),
        (
            lambda c: reference_count_params(c) - 4 * c.n_embd * c.n_layer - 2 * c.n_embd,
            "you missed the LayerNorms",
        ),
        (lambda c: reference_count_params(c) - 9 * c.n_embd * c.n_layer, "the biases"),
        (lambda c: 12 * c.n_layer * c.n_embd**2, "off by"),
    ],
    ids=["tied-head-twice", "no-pos-emb", "no-norms", "no-biases", "rough-12LC2"],
)
def test_parameter_count_mistakes_are_caught(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_count_params(wrong)


def test_untied_head_forgotten_is_caught():
    def no_head(c):
        return reference_count_params(c) - c.vocab_size * c.n_embd * (not c.tie_weights)

    with pytest.raises(ExerciseFailed, match=r"tie_weights=False[\s\S]*you missed the head"):
        check_count_params(no_head)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda x, ln1, attn, ln2, mlp: ln2(ln1(x + attn(x)) + mlp(ln1(x + attn(x)))), "post-norm"),
        (lambda x, ln1, attn, ln2, mlp: mlp(ln2(attn(ln1(x)))), "residual connections"),
        (lambda x, ln1, attn, ln2, mlp: x + attn(ln1(x)) + mlp(ln2(x)), "MLP reads the block's"),
        (lambda x, ln1, attn, ln2, mlp: x + attn(ln1(x)) + mlp(ln1(x + attn(ln1(x)))), "wrong"),
    ],
    ids=["post-norm", "no-residual", "parallel", "ln1-twice"],
)
def test_block_mistakes_are_caught(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_block_forward(wrong)


# Lesson 04


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda t, s, T: (reference_make_batch(t, s, T)[0],) * 2, "y equals x"),
        (
            lambda t, s, T: (
                reference_make_batch(t, s, T)[0],
                reference_make_batch(t, s, T)[0] - 1,
            ),
            "shifted the wrong way",
        ),
        (
            lambda t, s, T: (
                reference_make_batch(t, s, T + 1)[0],
                reference_make_batch(t, s, T)[1],
            ),
            r"expected an output of shape \(3, 4\), got \(3, 5\)",
        ),
        (
            lambda t, s, T: (
                reference_make_batch(t, s, T)[0],
                reference_make_batch(t, s + 1, T)[1],
            ),
            "wrong values for y",
        ),
    ],
    ids=["y-equals-x", "backwards", "window-too-long", "shift-by-two"],
)
def test_batch_mistakes_are_caught(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_make_batch(wrong)


def test_temperature_multiplied_is_caught():
    def times_temperature(logits, temperature, top_k):
        return reference_sampling_probs(logits * temperature**2, temperature, top_k)

    with pytest.raises(ExerciseFailed, match="multiplied by the temperature"):
        check_sampling_probs(times_temperature)


def test_top_k_off_by_one_is_caught():
    def keeps_k_minus_one(logits, temperature, top_k):
        logits = logits / temperature
        if top_k is not None:
            kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
            logits = np.where(logits <= kth, -np.inf, logits)
        return reference_sampling_probs(logits, 1.0, None)

    with pytest.raises(ExerciseFailed, match=r"rows keep \[2, 2, 2\] tokens, expected 3"):
        check_sampling_probs(keeps_k_minus_one)


def test_softmax_before_temperature_is_caught():
    def softmax_first(logits, temperature, top_k):
        return reference_sampling_probs(logits, 1.0, top_k) / temperature

    with pytest.raises(ExerciseFailed, match="temperature=0.5"):
        check_sampling_probs(softmax_first)


def test_cross_entropy_averaged_over_all_positions_is_caught():
    def over_all(logits, targets):
        return reference_cross_entropy(logits, targets) * (targets != -1).mean()

    with pytest.raises(ExerciseFailed, match="averaged over all 12 positions; only the 6"):
        check_cross_entropy(over_all)


def test_cross_entropy_without_the_max_shift_is_caught():
    def naive(logits, targets):
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        scored = targets != -1
        picked = np.take_along_axis(probs, np.where(scored, targets, 0)[..., None], -1)[..., 0]
        return -np.log(picked[scored]).mean()

    with np.errstate(all="ignore"), pytest.raises(ExerciseFailed, match="NaN or inf"):
        check_cross_entropy(naive)


def test_cross_entropy_ignoring_the_mask_is_caught():
    def no_mask(logits, targets):
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        return -np.take_along_axis(log_probs, targets[..., None], -1).mean()

    with pytest.raises(ExerciseFailed, match="first 3 targets of each row -1"):
        check_cross_entropy(no_mask)
