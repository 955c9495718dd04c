"""`python -m minigpt`: train a tiny run into a directory, then sample from it; bad input,
damaged or diverged runs, a second writer and Ctrl-C end with a plain message and lose nothing.

Training and sampling run in-process through `main` with the model and batch shapes of
tests/test_train.py, so the compiled kernels are shared (compiling dominates these tests);
the subprocess tests check the `python -m minigpt` entry point and its exit codes.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tinygrad import Tensor
from tinygrad.nn.state import get_state_dict, safe_save

from minigpt.__main__ import build_parser, interrupt_outside_finalizers, main
from minigpt.checkpoint import load_checkpoint
from minigpt.train import TrainConfig, train

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


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    letters = np.array(list("abcdef\n"))  # 7 characters: the vocabulary of tests/test_train.py
    path.write_text("".join(np.random.default_rng(0).choice(letters, 3000)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus):
    """A finished 4-step run; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--corpus", str(corpus), "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def run_copy(trained, tmp_path):
    return Path(shutil.copytree(trained, tmp_path / "run"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_out_with_other_files_is_refused_before_any_work(tmp_path, corpus, capsys):
    out = tmp_path / "mine"
    (out / "other_run").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me")
    for extra in ([], ["--force"]):
        assert main(["train", "--corpus", str(corpus), "--out", str(out), *TINY, *extra]) == 2
        captured = capsys.readouterr()
        assert "not part of a checkpoint (notes.txt, other_run)" in captured.err
        assert "corpus" not in captured.out  # refused before the corpus was even read
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "other_run"]
    assert (out / "notes.txt").read_text() == "keep me"
    assert not list(tmp_path.glob(".mine*"))  # no lock or temporary left behind


def test_existing_checkpoint_needs_resume_or_force(run_copy, corpus, capsys, monkeypatch):
    before = snapshot(run_copy)
    assert main(["train", "--corpus", str(corpus), "--out", str(run_copy), *TINY]) == 2
    assert "already holds a checkpoint.\nhelp: add --resume" in capsys.readouterr().err
    assert snapshot(run_copy) == before
    args = ["train", "--corpus", str(corpus), "--out", str(run_copy), *TINY]
    reads = []
    monkeypatch.setattr(
        "minigpt.__main__.load_checkpoint",
        lambda *a, **k: reads.append(a) or load_checkpoint(*a, **k),
    )
    assert main([*args, "--resume", "--steps", "6"]) == 0
    assert len(reads) == 1  # --resume reads the checkpoint once
    assert "step 6: train loss" in capsys.readouterr().out
    assert load_checkpoint(run_copy)[2].step == 6


def test_diverging_run_stops_and_keeps_the_checkpoint(run_copy, corpus, capsys):
    before = snapshot(run_copy)
    args = ["train", "--corpus", str(corpus), "--out", str(run_copy), *TINY, "--force"]
    assert main([*args, "--lr", "1e30"]) == 2
    assert "training diverged, and nothing from this step on was saved" in capsys.readouterr().err
    assert snapshot(run_copy) == before


def test_out_paths_are_checked_before_any_work(tmp_path, corpus, capsys, monkeypatch):
    (tmp_path / "a_file").write_text("mine")
    cases = {
        str(tmp_path / "a_file"): "a_file is a file",
        str(tmp_path / "a_file" / "run"): "cannot write next to --out",
        ".": "is the current folder or one above it",
        "..": "is the current folder or one above it",
    }
    monkeypatch.chdir(tmp_path)
    for out, message in cases.items():
        assert main(["train", "--corpus", str(corpus), "--out", out, *TINY]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and "corpus" not in captured.out
    assert (tmp_path / "a_file").read_text() == "mine"


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--out", "x", "--lr", "inf"], "argument --lr: 'inf' is not a finite number"),
        (["train", "--out", "x", "--weight-decay", "nan"], "--weight-decay: 'nan' is not a finite"),
        (["train", "--out", "x", "--grad-clip", "nan"], "--grad-clip: 'nan' is not a finite"),
        (["train", "--out", "x", "--seed", "-1"], "argument --seed: -1 must be >= 0"),
        (["train", "--out", "x", "--steps", "0"], "argument --steps: 0 must be positive"),
        (["sample", "--ckpt", "x", "--temperature", "nan"], "--temperature: 'nan' is not a finite"),
        (["sample", "--ckpt", "x", "--tokens", "-3"], "argument --tokens: -3 must be >= 0"),
        (["sample", "--ckpt", "x", "--top-k", "2.5"], "argument --top-k: '2.5' is not int"),
    ],
)
def test_numbers_are_checked_by_the_parser(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_empty_and_short_corpora(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("abcdef\n" * 8)  # 56 characters: 6 for validation
    for name, message in [
        ("empty.txt", "empty.txt' is empty"),
        ("short.txt", "its validation part has 6 characters, too few for one window of "),
    ]:
        args = ["train", "--corpus", str(tmp_path / name), "--out", str(tmp_path / "run"), *TINY]
        assert main(args) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_device_problems_are_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEV", "NOSUCH")
    assert main(["sample", "--ckpt", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: DEV='NOSUCH' is not a tinygrad device")
    monkeypatch.setenv("DEV", "CPU")
    monkeypatch.setenv("CC", "gcc")
    assert main(["sample", "--ckpt", str(tmp_path)]) == 2
    assert "error: DEV='CPU' needs clang" in capsys.readouterr().err


def test_device_that_does_not_work_in_a_fresh_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "minigpt", "sample", "--ckpt", str(tmp_path)],
        env={**os.environ, "DEV": "CUDA"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if result.returncode == 0 or "no checkpoint directory" in result.stderr:
        pytest.skip("CUDA works on this machine")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: DEV='CUDA' does not work on this machine")


def test_interrupted_save_is_restored_not_deleted(run_copy, corpus, capsys):
    before = snapshot(run_copy)
    old = run_copy.with_name(".run.old")
    shutil.move(run_copy, old)  # what a kill between the two renames of a save leaves
    assert main(["train", "--corpus", str(corpus), "--out", str(run_copy), *TINY]) == 2
    captured = capsys.readouterr()
    assert "restored" in captured.out and "already holds a checkpoint" in captured.err
    assert snapshot(run_copy) == before and not old.exists()


def test_second_run_into_the_same_out_is_refused(run_copy, corpus, capsys):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_copy.with_name(".run.lock").write_text(str(sleeper.pid))
        args = ["train", "--corpus", str(corpus), "--out", str(run_copy), *TINY, "--resume"]
        assert main(args) == 2
        assert f"another run (process {sleeper.pid}) is writing to" in capsys.readouterr().err
    finally:
        sleeper.kill()
        sleeper.wait()
    assert run_copy.with_name(".run.lock").read_text() == str(sleeper.pid)  # not ours to remove


def test_sampling_needs_only_the_model(run_copy, capsys):
    (run_copy / "optimizer.safetensors").write_bytes(b"damaged")
    args = ["sample", "--ckpt", str(run_copy), "--prompt", "ab", "--tokens", "3", "--seed", "0"]
    assert main(args) == 0
    assert len(capsys.readouterr().out) == 6  # "ab", 3 new characters, a newline
    model, _, _ = load_checkpoint(run_copy, with_optimizer=False)
    weights = {k: v.numpy().copy() for k, v in get_state_dict(model).items()}
    weights["lm_head.weight" if "lm_head.weight" in weights else "tok_emb.weight"][0, 0] = np.inf
    safe_save({k: Tensor(v) for k, v in weights.items()}, str(run_copy / "model.safetensors"))
    assert main(args) == 2
    assert "holds NaN or infinite values" in capsys.readouterr().err


def test_ctrl_c_inside_a_finalizer_is_delivered_afterwards():
    """A KeyboardInterrupt raised in `__del__` is printed and dropped by Python; the handler
    must instead send it again once the finalizer is over."""

    class Finalized:
        def __del__(self):
            handled.append(interrupt_outside_finalizers(signal.SIGINT, sys._getframe()))

    handled = []
    previous = signal.signal(signal.SIGINT, interrupt_outside_finalizers)
    try:
        with pytest.raises(KeyboardInterrupt):
            Finalized()  # deleted at once: its __del__ runs the handler
            assert handled == [None]  # returned instead of raising inside the finalizer
            for _ in range(200):  # the interrupt comes back within about 50 ms
                time.sleep(0.01)
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
def test_ctrl_c_stops_a_training_run(tmp_path, corpus):
    out = tmp_path / "run"
    args = ["train", "--corpus", str(corpus), "--out", str(out), *TINY, "--steps", "100000"]
    args += ["--checkpoint-interval", "1"]
    child = subprocess.Popen(
        [sys.executable, "-m", "minigpt", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (out / "config.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # wait for the first checkpoint
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert "holds the last checkpoint" in err and "Traceback" not in err
    assert load_checkpoint(out)[2].step >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no lock, no temporaries


def test_the_api_behind_the_flags_names_bad_values(trained):
    model, _, _ = load_checkpoint(trained)
    ids = np.zeros((1, 2), np.int32)
    for kwargs, message in [
        (dict(top_k=2.5), "top_k=2.5; expected None or an int"),
        (dict(temperature="hot"), "temperature='hot'; expected a finite number"),
        (dict(temperature=float("nan")), "temperature=nan; expected a finite number"),
    ]:
        with pytest.raises(ValueError, match=message):
            model.generate(ids, 3, **kwargs)
    for name in ("lr", "weight_decay", "grad_clip"):
        with pytest.raises(ValueError, match=f"TrainConfig.{name}=inf; expected a finite number"):
            TrainConfig(**{name: float("inf")})
    empty = (np.zeros((0, 8), np.int32), np.zeros((0, 8), np.int32))
    with pytest.raises(ValueError, match="train_tokens has no rows"):
        train(model, empty, empty, TrainConfig(steps=2, warmup=0), progress=False)
