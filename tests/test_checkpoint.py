"""Checkpoints: exact round trip, atomic replacement, and clear errors for damaged files."""

import json
import shutil

import numpy as np
import pytest
from tinygrad import Tensor

from minigpt import checkpoint
from minigpt.checkpoint import load_checkpoint, load_weights, save_checkpoint
from minigpt.data import CharTokenizer
from minigpt.model import GPTConfig, MiniGPT
from minigpt.train import TrainConfig

CONFIG = GPTConfig(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=32)
IDS = np.random.default_rng(0).integers(0, 7, (2, 8))


@pytest.fixture(scope="module")
def model():
    Tensor.manual_seed(0)
    return MiniGPT(CONFIG)


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer("abcdef|")


@pytest.fixture
def saved(tmp_path, model, tokenizer):
    state = {"m.tok_emb.weight": Tensor.ones(7, 32).contiguous()}
    history = {"eval_steps": [0, 5], "train_losses": [2.0, 1.0], "val_losses": [2.1, 1.2]}
    return save_checkpoint(
        tmp_path / "ckpt", model, tokenizer, 5, state, TrainConfig(steps=10, warmup=1), history
    )


def test_round_trip_gives_identical_logits(saved, model):
    loaded, tok, info = load_checkpoint(saved)
    assert loaded.config == CONFIG and tok.chars == "abcdef|"
    np.testing.assert_array_equal(loaded(IDS).numpy(), model(IDS).numpy())
    assert info.step == 5 and info.train_config["steps"] == 10
    assert info.train_config["betas"] == [0.9, 0.99]
    assert info.history["val_losses"] == [2.1, 1.2]
    np.testing.assert_array_equal(info.optimizer_state["m.tok_emb.weight"].numpy(), 1.0)


def test_saving_again_replaces_and_leaves_no_temporaries(saved, model):
    save_checkpoint(saved, model, step=9)
    _, tok, info = load_checkpoint(saved)
    assert info.step == 9 and tok is None and info.optimizer_state is None
    assert sorted(p.name for p in saved.parent.iterdir()) == ["ckpt"]


def test_crash_while_saving_keeps_the_old_checkpoint(saved, model, monkeypatch):
    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "safe_save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(saved, model, step=99)
    assert load_checkpoint(saved)[2].step == 5
    assert sorted(p.name for p in saved.parent.iterdir()) == ["ckpt"]


def test_missing_directory_and_files(saved, tmp_path):
    with pytest.raises(ValueError, match="no checkpoint directory at .*nowhere"):
        load_checkpoint(tmp_path / "nowhere")
    (saved / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="model.safetensors is missing"):
        load_checkpoint(saved)


def test_interrupted_swap_is_explained(saved):
    shutil.move(saved, saved.with_name(".ckpt.old"))
    with pytest.raises(ValueError, match="a save was interrupted; rename .ckpt.old back"):
        load_checkpoint(saved)


def test_corrupt_json_names_the_file(saved):
    (saved / "config.json").write_text("{ not json")
    with pytest.raises(ValueError, match=r"config.json is not valid JSON.*\nhelp: the checkpoint"):
        load_checkpoint(saved)


def test_truncated_weights_name_the_file(saved):
    path = saved / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="model.safetensors is not a readable safetensors file"):
        load_checkpoint(saved)
    path.write_bytes(b"\x01")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_checkpoint(saved)


def test_config_that_does_not_fit_the_weights_lists_the_shapes(saved):
    meta = json.loads((saved / "config.json").read_text())
    meta["model"]["n_layer"] = 1
    meta["model"]["block_size"] = 16
    (saved / "config.json").write_text(json.dumps(meta))
    with pytest.raises(
        ValueError, match=r"(?s)unexpected: blocks\.1\..*shape pos_emb.weight.*disagree"
    ):
        load_checkpoint(saved)


def test_tokenizer_that_does_not_fit_the_model(saved):
    (saved / "tokenizer.json").write_text(CharTokenizer("ab").to_json())
    with pytest.raises(ValueError, match="has 2 characters but the model expects vocab_size=7"):
        load_checkpoint(saved)


def test_load_weights_lists_missing_names(model):
    with pytest.raises(ValueError, match="missing: blocks.0.attn.c_attn.bias"):
        load_weights(MiniGPT(CONFIG), {"tok_emb.weight": Tensor.zeros(7, 32)})
