"""`python -m minigpt`: train a tiny run into a directory, then sample from it."""

import subprocess
import sys
from pathlib import Path

import pytest

from minigpt.__main__ import build_parser, main

TINY = [
    "--steps", "4", "--batch-size", "4", "--block-size", "8", "--n-layer", "1", "--n-head", "2",
    "--n-embd", "16", "--warmup", "1", "--eval-interval", "2", "--eval-batches", "1",
    "--checkpoint-interval", "2", "--no-progress",
]  # fmt: skip


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "minigpt", *args], capture_output=True, text=True, timeout=600
    )


def test_every_flag_has_help():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "train" in a.choices).choices
    for name, sub in subparsers.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help"


def test_train_then_sample(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("def add(a, b):\n    return a + b\n" * 40, encoding="utf-8")
    out = tmp_path / "run"
    trained = run_cli("train", "--corpus", str(corpus), "--out", str(out), *TINY)
    assert trained.returncode == 0, trained.stderr
    assert "step 4: train loss" in trained.stdout
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "tokenizer.json"}
    sampled = run_cli("sample", "--ckpt", str(out), "--prompt", "def ", "--tokens", "12",
                      "--seed", "0", "--top-k", "5")  # fmt: skip
    assert sampled.returncode == 0, sampled.stderr
    text = sampled.stdout.rstrip("\n")
    assert text.startswith("def ") and len(text) == 16
    assert set(text) <= set(corpus.read_text())


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    assert main(["sample", "--ckpt", str(tmp_path / "missing")]) == 2
    assert "error: no checkpoint directory at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train"])  # --out is required: argparse explains and exits


def test_unknown_prompt_character(tmp_path, capsys):
    from minigpt.checkpoint import save_checkpoint
    from minigpt.data import CharTokenizer
    from minigpt.model import GPTConfig, MiniGPT

    tokenizer = CharTokenizer("ab")
    model = MiniGPT(GPTConfig(vocab_size=2, block_size=4, n_layer=1, n_head=1, n_embd=4))
    save_checkpoint(Path(tmp_path / "ck"), model, tokenizer)
    assert main(["sample", "--ckpt", str(tmp_path / "ck"), "--prompt", "abc"]) == 2
    assert "character 'c'" in capsys.readouterr().err
