"""Checkers of lessons 01-04: the references pass, typical wrong answers fail with their message."""

import math

import numpy as np
import pytest
from tinygrad import Tensor, dtypes

from minigpt.checks import (
    ExerciseFailed,
    check_adamw_update,
    check_block_forward,
    check_causal_mask,
    check_clip_scale,
    check_count_params,
    check_cross_entropy,
    check_learning_rate,
    check_mlp_backward,
    check_multi_head_attention,
    check_sgd_step,
    check_square_loss_grads,
    reference_adamw_update,
    reference_block_forward,
    reference_clip_scale,
    reference_count_params,
    reference_cross_entropy,
    reference_learning_rate,
    reference_mlp_backward,
    reference_multi_head_attention,
    reference_sgd_step,
)
from minigpt.checks.lesson01 import MLP_GRADS

# Lesson 01


def test_mlp_backward_by_autograd_is_rejected():
    def with_autograd(x, y, W1, b1, W2, b2):
        h = (x @ W1 + b1).tanh()
        logits = h @ W2 + b2
        loss = logits.sparse_categorical_crossentropy(y)
        loss.backward()
        return (None, W2.grad, b2.grad, None, None, W1.grad, b1.grad)

    with pytest.raises(ExerciseFailed, match=r"calls \.backward\(\) or \.gradient\(\)"):
        check_mlp_backward(with_autograd)


def test_mlp_backward_by_tensor_gradient_is_rejected():
    def with_gradient(x, y, W1, b1, W2, b2):
        loss = ((x @ W1 + b1).tanh() @ W2 + b2).sparse_categorical_crossentropy(y)
        return loss.gradient(W1, b1, W2, b2)

    with pytest.raises(ExerciseFailed, match="derive the gradient yourself"):
        check_mlp_backward(with_gradient)


def mlp_backward_with(change: str):
    """The reference backward pass with one typical mistake."""

    def backward(x, y, W1, b1, W2, b2):
        N, K = x.shape[0], W2.shape[1]
        pre = x @ W1 + b1
        h = pre.tanh()
        probs = (h @ W2 + b2).softmax(axis=1)
        dlogits = probs - y.one_hot(K) if change == "no-1/N" else (probs - y.one_hot(K)) / N
        if change == "no-one-hot":
            dlogits = probs / N
        dh = dlogits @ W2.T
        dpre = dh * (1 - pre * pre) if change == "tanh-of-pre" else dh * (1 - h * h)
        db1 = dpre.mean(0) if change == "bias-mean" else dpre.sum(0)
        dW1 = x.T @ dpre if change != "dW1-transposed" else dpre.T @ x
        return dlogits, h.T @ dlogits, dlogits.sum(0), dh, dpre, dW1, db1

    return backward


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no-1/N", r"dlogits \(the first gradient that differs\)[\s\S]*missing the 1/N"),
        ("no-one-hot", "subtract the one-hot targets"),
        ("tanh-of-pre", r"dpre uses 1 - pre\^2"),
        ("bias-mean", "db1 averages over the batch"),
        ("dW1-transposed", r"dW1[\s\S]*shape"),
    ],
)
def test_mlp_backward_mistakes_are_named(change, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_mlp_backward(mlp_backward_with(change))


def test_mlp_backward_names_the_first_wrong_tensor_and_its_difference():
    def wrong_dh(x, y, W1, b1, W2, b2):
        grads = list(reference_mlp_backward(x, y, W1, b1, W2, b2))
        grads[MLP_GRADS.index("dh")] = grads[MLP_GRADS.index("dh")] * 1.5
        return tuple(grads)

    with pytest.raises(ExerciseFailed, match=r"for dh \(the first[\s\S]*largest difference"):
        check_mlp_backward(wrong_dh)


def test_mlp_backward_returning_too_few_gradients_is_explained():
    with pytest.raises(ExerciseFailed, match="expected 7 gradients, got tuple of length 4"):
        check_mlp_backward(lambda *args: reference_mlp_backward(*args)[3:])


def test_mlp_backward_in_numpy_float64_passes():
    def in_numpy(x, y, W1, b1, W2, b2):
        return tuple(
            g.numpy().astype(np.float64) for g in reference_mlp_backward(x, y, W1, b1, W2, b2)
        )

    assert check_mlp_backward(in_numpy).passed


def test_square_loss_grads_by_autograd_is_rejected():
    def with_autograd(x, w):
        tx, tw = Tensor(x), Tensor(w)
        return tuple(g.numpy() for g in ((tx @ tw) ** 2).sum().gradient(tx, tw))

    with pytest.raises(ExerciseFailed, match=r"calls \.backward\(\) or \.gradient\(\)"):
        check_square_loss_grads(with_autograd)


def test_autograd_works_again_after_a_check():
    with pytest.raises(ExerciseFailed):
        check_square_loss_grads(lambda x, w: (x, w))
    t = Tensor([2.0])
    assert (t * t).sum().gradient(t)[0].item() == 4.0


def test_gradient_without_the_factor_two_is_caught():
    def no_two(x, w):
        h = x @ w
        return h @ w.T, x.T @ h

    with pytest.raises(ExerciseFailed, match=r"dz/dx[\s\S]*the factor 2"):
        check_square_loss_grads(no_two)


def test_sgd_step_up_the_gradient_is_caught():
    def uphill(w, b, x, y, lr):
        new_w, new_b = reference_sgd_step(w, b, x, y, lr)
        return 2 * w - new_w, 2 * b - new_b

    with pytest.raises(ExerciseFailed, match=r"new w[\s\S]*step against the gradient"):
        check_sgd_step(uphill)


# Lesson 02


def mha_with(change: str):
    """The reference multi-head attention with one typical mistake."""

    def attend(x, w_attn, b_attn, w_proj, b_proj, n_head):
        B, T, C = x.shape
        hs = C // n_head
        q, k, v = (x @ w_attn.T + b_attn).split(C, dim=2)
        if change == "qk-swapped":
            q, k = k, q
        if change == "split-positions":
            q, k, v = (t.reshape(B, n_head, T, hs) for t in (q, k, v))
        else:
            q, k, v = (t.reshape(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / (1.0 if change == "no-scale" else math.sqrt(hs))
        if change == "zero-mask":
            scores = scores.tril()  # the hidden scores become 0, which softmax still weighs
        elif change != "no-mask":
            scores = Tensor.ones(T, T).tril().cast(dtypes.bool).where(scores, -math.inf)
        y = scores.softmax(-1) @ v
        y = (
            y.reshape(B, T, C)
            if change == "merge-positions"
            else y.transpose(1, 2).reshape(B, T, C)
        )
        return y if change == "no-proj" else y @ w_proj.T + b_proj

    return attend


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no-mask", "causal mask is missing"),
        ("zero-mask", "hidden scores are 0, not -inf"),
        ("no-scale", "not scaled"),
        ("split-positions", "heads are cut the wrong way"),
        ("merge-positions", "merged without moving the head axis back"),
        ("qk-swapped", "q and k are swapped"),
        ("no-proj", "c_proj is missing"),
    ],
)
def test_multi_head_attention_mistakes_are_named(change, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_multi_head_attention(mha_with(change))


def test_multi_head_attention_with_untransposed_weights_is_explained():
    def untransposed(x, w_attn, b_attn, w_proj, b_proj, n_head):
        return reference_multi_head_attention(x, w_attn.T, b_attn, w_proj, b_proj, n_head)

    with pytest.raises(ExerciseFailed, match="your function raised"):
        check_multi_head_attention(untransposed)


def test_multi_head_attention_wrong_only_past_position_zero_is_caught():
    def first_query_only(x, *weights):
        out = reference_multi_head_attention(x, *weights)
        return out[:, :1].expand(out.shape)  # right at position 0, wrong after it

    with pytest.raises(ExerciseFailed, match="wrong values"):
        check_multi_head_attention(first_query_only)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda Tq, Tk: Tensor.ones(Tq, Tk).tril(), "top-left corner"),
        (lambda Tq, Tk: Tensor.ones(Tq, Tk).tril(Tk - Tq - 1), "hides the diagonal"),
        (lambda Tq, Tk: Tensor.ones(Tq, Tk).triu(Tk - Tq), "upper triangle"),
        (lambda Tq, Tk: Tensor.ones(Tq, Tk), r"wrong values for Tq=4"),
        (lambda Tq, Tk: Tensor.ones(Tk, Tq).tril(), r"shape \(3, 7\), got \(7, 3\)"),
    ],
    ids=["top-left", "no-diagonal", "upper", "all-ones", "transposed-shape"],
)
def test_causal_mask_mistakes_are_caught(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_causal_mask(wrong)


# Lesson 03


def block_with(change: str):
    """The reference block with one typical mistake, from the state dict."""

    def forward(x, weights, n_head):
        w = dict(weights)
        if change == "ln1-twice":
            w["ln2.weight"], w["ln2.bias"] = w["ln1.weight"], w["ln1.bias"]
        if change == "relu":
            original = Tensor.gelu
            Tensor.gelu = Tensor.relu
            try:
                return reference_block_forward(x, w, n_head)
            finally:
                Tensor.gelu = original
        out = reference_block_forward(x, w, n_head)
        if change == "no-residual-in-mlp":
            return out - x
        return out

    return forward


@pytest.mark.parametrize(
    ("change", "message"),
    [("ln1-twice", "ln1's weights are used for both norms"), ("relu", "uses ReLU")],
)
def test_block_mistakes_are_named(change, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_block_forward(block_with(change))


def test_block_without_residuals_is_named():
    def no_residuals(x, weights, n_head):
        # attention sublayer only through the package's parts, to keep it short
        from minigpt.transformer import Block

        block = Block(x.shape[-1], n_head)
        for name, t in weights.items():
            obj = block
            *path, last = name.split(".")
            for part in path:
                obj = getattr(obj, part)
            setattr(obj, last, t)
        return block.mlp(block.ln2(block.attn(block.ln1(x))))

    with pytest.raises(ExerciseFailed, match="residual connections are missing"):
        check_block_forward(no_residuals)


@pytest.mark.parametrize(
    ("slip", "message"),
    [("mlp-not-added", "output is not added back"), ("mlp-reads-ln1", "the MLP reads ln1")],
)
def test_block_mlp_residual_slips_are_named(slip, message):
    def forward(x, weights, n_head):
        from minigpt.transformer import Block

        block = Block(x.shape[-1], n_head)
        for name, t in weights.items():
            obj = block
            *path, last = name.split(".")
            for part in path:
                obj = getattr(obj, part)
            setattr(obj, last, t)
        h = x + block.attn(block.ln1(x))
        return block.mlp(block.ln2(h)) if slip == "mlp-not-added" else h + block.mlp(block.ln1(x))

    with pytest.raises(ExerciseFailed, match=message):
        check_block_forward(forward)


def test_block_with_post_norm_is_named():
    def post_norm(x, weights, n_head):
        from minigpt.transformer import Block

        block = Block(x.shape[-1], n_head)
        for name, t in weights.items():
            obj = block
            *path, last = name.split(".")
            for part in path:
                obj = getattr(obj, part)
            setattr(obj, last, t)
        h = block.ln1(x + block.attn(x))
        return block.ln2(h + block.mlp(h))

    with pytest.raises(ExerciseFailed, match="post-norm"):
        check_block_forward(post_norm)


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
        (lambda c: reference_count_params(c) - 9 * c.n_embd * c.n_layer, "the biases"),
        (lambda c: None, r"returned None \(NoneType\); expected a whole number"),
        (lambda c: "809,856", "returned '809,856' \\(str\\)"),
        (lambda c: reference_count_params(c) + 0.5, r"\(float\); expected a whole number"),
    ],
    ids=["tied-head-twice", "no-pos-emb", "no-biases", "none", "string", "fraction"],
)
def test_parameter_count_mistakes_are_caught(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_count_params(wrong)


def test_parameter_count_as_a_whole_float_passes():
    assert check_count_params(lambda c: float(reference_count_params(c))).passed


# Lesson 04


def test_cross_entropy_mean_of_row_means_is_caught():
    def row_means(logits, targets):
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        picked = np.take_along_axis(log_probs, np.where(targets != -1, targets, 0)[..., None], -1)
        losses = np.where(targets != -1, -picked[..., 0], 0.0)
        return (losses.sum(1) / (targets != -1).sum(1)).mean()

    with pytest.raises(ExerciseFailed, match="mean of each row's mean"):
        check_cross_entropy(row_means)


def test_cross_entropy_averaged_over_all_positions_is_caught():
    def over_all(logits, targets):
        return reference_cross_entropy(logits, targets) * (targets != -1).mean()

    with pytest.raises(ExerciseFailed, match="averaged over all 18 positions; only the 12"):
        check_cross_entropy(over_all)


def test_cross_entropy_without_the_max_shift_is_caught():
    def naive(logits, targets):
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        scored = targets != -1
        picked = np.take_along_axis(probs, np.where(scored, targets, 0)[..., None], -1)[..., 0]
        return -np.log(picked[scored]).mean()

    with np.errstate(all="ignore"), pytest.raises(ExerciseFailed, match="NaN or inf"):
        check_cross_entropy(naive)


def test_cross_entropy_per_position_array_is_explained():
    with pytest.raises(ExerciseFailed, match=r"expected one number, got an array of shape"):
        check_cross_entropy(lambda logits, targets: logits.max(-1))


def test_cross_entropy_in_tinygrad_passes():
    def in_tinygrad(logits, targets):
        lg, tg = Tensor(logits.astype(np.float32)), Tensor(targets.astype(np.int32))
        return lg.sparse_categorical_crossentropy(tg, reduction="sum") / (tg != -1).sum()

    assert check_cross_entropy(in_tinygrad).passed


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (
            lambda s, c: c.lr * s / c.warmup if s < c.warmup else reference_learning_rate(s, c),
            "warmup starts at 0",
        ),
        (
            lambda s, c: (
                reference_learning_rate(s, c)
                if s < c.warmup
                else c.lr * 0.5 * (1 + math.cos(math.pi * (s - c.warmup) / (c.steps - c.warmup)))
            ),
            "cosine ends at 0",
        ),
        (
            lambda s, c: (
                reference_learning_rate(s, c)
                if s < c.warmup
                else c.min_lr + (c.lr - c.min_lr) * 0.5 * (1 + math.cos(math.pi * s / c.steps))
            ),
            "cosine runs over all `steps`",
        ),
        (lambda s, c: None, r"expected one number, got None"),
    ],
    ids=["warmup-from-0", "cosine-to-0", "cosine-over-all-steps", "none"],
)
def test_learning_rate_mistakes_are_named(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_learning_rate(wrong)


def test_learning_rate_as_a_float32_tensor_passes():
    assert check_learning_rate(lambda s, c: Tensor([reference_learning_rate(s, c)])).passed


def sum_of_squares(grads):
    return sum(float((g.astype(np.float64) ** 2).sum()) for g in grads)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (
            lambda g, m: min(1.0, m / (sum(np.linalg.norm(a) for a in g) + 1e-6)),
            "sum of the tensors' norms",
        ),
        (lambda g, m: m / (math.sqrt(sum_of_squares(g)) + 1e-6), r"take min\(1, \.\.\.\)"),
        (lambda g, m: min(1.0, m / (sum_of_squares(g) + 1e-6)), "missing its square root"),
        (
            lambda g, m: min(1.0, m / (max(np.linalg.norm(a) for a in g) + 1e-6)),
            "largest tensor's norm",
        ),
    ],
    ids=["sum-of-norms", "no-min", "no-sqrt", "largest-tensor"],
)
def test_clip_scale_mistakes_are_named(wrong, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_clip_scale(wrong)


def adamw_with(change: str):
    def update(param, grad, m, v, t, lr, config):
        b1, b2 = config.betas
        wd = config.weight_decay if (param.ndim >= 2 or change == "decay-all") else 0.0
        if change == "coupled":
            grad, wd = grad + wd * param, 0.0
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad**2
        m_hat, v_hat = (m, v) if change == "no-correction" else (m / (1 - b1**t), v / (1 - b2**t))
        return param - lr * (m_hat / (np.sqrt(v_hat) + 1e-8) + wd * param), m, v

    return update


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("decay-all", r"linear.bias \(shape \(3,\)\) after step 1[\s\S]*decay is applied to every"),
        ("no-correction", "bias correction is missing"),
        ("coupled", "AdamW decouples"),
    ],
)
def test_adamw_mistakes_are_named(change, message):
    with pytest.raises(ExerciseFailed, match=message):
        check_adamw_update(adamw_with(change))


def test_adamw_wrong_only_from_step_two_names_the_step():
    def forgets_m(param, grad, m, v, t, lr, config):
        return reference_adamw_update(param, grad, np.zeros_like(m), v, t, lr, config)

    with pytest.raises(ExerciseFailed, match="after step 2"):
        check_adamw_update(forgets_m)


def test_adamw_returning_only_the_parameter_is_explained():
    with pytest.raises(ExerciseFailed, match=r"expected a triple \(param, m, v\)"):
        check_adamw_update(lambda *args: reference_adamw_update(*args)[0])


def test_adamw_in_float32_tinygrad_passes():
    def in_tinygrad(param, grad, m, v, t, lr, config):
        return tuple(
            Tensor(a.astype(np.float32))
            for a in reference_adamw_update(param, grad, m, v, t, lr, config)
        )

    assert check_adamw_update(in_tinygrad).passed


def test_clip_scale_as_a_numpy_float32_passes():
    assert check_clip_scale(lambda g, m: np.float32(reference_clip_scale(g, m))).passed
