"""Checkers of lesson 03 (`minigpt.checks.lesson03`): the references pass, typical wrong
answers fail with the message that names the mistake."""

import pytest
from tinygrad import Tensor

from minigpt.checks import (
    ExerciseFailed,
    check_block_forward,
    check_count_params,
    reference_block_forward,
    reference_count_params,
)

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


def package_block(x, weights, n_head):
    """The package's Block holding the checker's `weights`, for answers that rewire its parts."""
    from minigpt.transformer import Block

    block = Block(x.shape[-1], n_head)
    for name, t in weights.items():
        obj = block
        *path, last = name.split(".")
        for part in path:
            obj = getattr(obj, part)
        setattr(obj, last, t)
    return block


def test_block_without_residuals_is_named():
    def no_residuals(x, weights, n_head):
        block = package_block(x, weights, n_head)  # the package's parts, to keep it short
        return block.mlp(block.ln2(block.attn(block.ln1(x))))

    with pytest.raises(ExerciseFailed, match="residual connections are missing"):
        check_block_forward(no_residuals)


@pytest.mark.parametrize(
    ("slip", "message"),
    [("mlp-not-added", "output is not added back"), ("mlp-reads-ln1", "the MLP reads ln1")],
)
def test_block_mlp_residual_slips_are_named(slip, message):
    def forward(x, weights, n_head):
        block = package_block(x, weights, n_head)
        h = x + block.attn(block.ln1(x))
        return block.mlp(block.ln2(h)) if slip == "mlp-not-added" else h + block.mlp(block.ln1(x))

    with pytest.raises(ExerciseFailed, match=message):
        check_block_forward(forward)


def test_block_with_post_norm_is_named():
    def post_norm(x, weights, n_head):
        block = package_block(x, weights, n_head)
        h = block.ln1(x + block.attn(x))
        return block.ln2(h + block.mlp(h))

    with pytest.raises(ExerciseFailed, match="post-norm"):
        check_block_forward(post_norm)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (
            lambda c: reference_count_params(c) + c.vocab_size * c.n_embd * c.tie_weights,
            r"hint: you counted too many: the head",
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


def test_a_parameter_count_off_in_no_known_way_gets_no_hint():
    with pytest.raises(ExerciseFailed, match=r"off by \+1\)\.$"):
        check_count_params(lambda c: reference_count_params(c) + 1)


def test_parameter_count_as_a_whole_float_passes():
    assert check_count_params(lambda c: float(reference_count_params(c))).passed
