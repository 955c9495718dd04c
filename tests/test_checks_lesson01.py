"""Checkers of lesson 01 (`minigpt.checks.lesson01`): the references pass, typical wrong
answers fail with the message that names the mistake."""

import numpy as np
import pytest
from tinygrad import Tensor

from minigpt.checks import (
    ExerciseFailed,
    check_mlp_backward,
    check_sgd_step,
    check_square_loss_grads,
    reference_mlp_backward,
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

    with pytest.raises(ExerciseFailed, match=r"new w[\s\S]*step goes up the gradient"):
        check_sgd_step(uphill)


def test_sgd_step_wrong_in_no_known_way_gets_no_hint_and_uphill_gets_exactly_its_own():
    def off(w, b, x, y, lr):
        new_w, new_b = reference_sgd_step(w, b, x, y, lr)
        return new_w + 0.01, new_b

    with pytest.raises(ExerciseFailed) as refusal:
        check_sgd_step(off)
    assert "hint" not in str(refusal.value) and "largest difference 0.01" in str(refusal.value)

    def uphill(w, b, x, y, lr):
        new_w, new_b = reference_sgd_step(w, b, x, y, lr)
        return 2 * w - new_w, 2 * b - new_b

    with pytest.raises(ExerciseFailed) as refusal:
        check_sgd_step(uphill)
    assert str(refusal.value).count("hint:") == 1
    assert str(refusal.value).endswith(
        "hint: the step goes up the gradient: step against it, w - lr * dL/dw."
    )


def test_sgd_step_with_the_lessons_learning_rate_written_in_fails_on_the_other_case():
    def fixed_lr(w, b, x, y, lr):
        return reference_sgd_step(w, b, x, y, 0.1)

    with pytest.raises(
        ExerciseFailed, match=r"lr=0.03[\s\S]*hint: the step uses the lesson's lr=0.1"
    ):
        check_sgd_step(fixed_lr)
