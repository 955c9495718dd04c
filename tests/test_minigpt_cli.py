"""`python -m minigpt`: train a tiny run into a directory, then sample from it.

Training and sampling run in-process through `main` with the model and batch shapes of
tests/test_train.py, so the compiled kernels are shared (compiling dominates these tests);
the subprocess tests check the `python -m minigpt` entry point and its exit codes.
"""

import subprocess
import sys

import numpy as np
import pytest

from minigpt.__main__ import build_parser, main

TINY = [
    "--steps", "4", "--batch-size", "16", "--block-size", "8", "--n-layer", "2", "--n-head", "2",
    "--n-embd", "32", "--warmup", "1", "--eval-interval", "2", "--eval-batches", "1",
    "--checkpoint-interval", "2", "--no-progress",
]  # fmt: skip


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "minigpt", *args], capture_output=True, text=True, timeout=300
    )


def test_every_flag_has_help():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "train" in a.choices).choices
    for name, sub in subparsers.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help"


def test_module_entry_point_and_exit_codes(tmp_path):
    helped = run_module("train", "--help")
    assert helped.returncode == 0 and "--n-layer" in helped.stdout and "--resume" in helped.stdout
    failed = run_module("sample", "--ckpt", str(tmp_path / "missing"))
    assert failed.returncode == 2
    assert "error: no checkpoint directory at" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_train_then_sample(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    letters = np.array(list("abcdef\n"))  # 7 characters: the vocabulary of tests/test_train.py
    corpus.write_text("".join(np.random.default_rng(0).choice(letters, 3000)), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--corpus", str(corpus), "--out", str(out), *TINY]) == 0
    assert "step 4: train loss" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "tokenizer.json"}
    args = ["sample", "--ckpt", str(out), "--prompt", "abc", "--tokens", "6", "--seed", "0"]
    assert main([*args, "--top-k", "3"]) == 0
    text = capsys.readouterr().out[:-1]  # print added one newline
    assert text.startswith("abc") and len(text) == 9 and set(text) <= set("abcdef\n")
    assert main([*args, "--prompt", "abz"]) == 2
    assert "character 'z'" in capsys.readouterr().err


def test_missing_required_flag_exits():
    with pytest.raises(SystemExit):
        main(["train"])  # --out is required: argparse explains and exits
