"""`python -m minigpt`: train a tiny run into a directory, then sample from it; bad input,
damaged or diverged runs, a second writer and Ctrl-C end with a plain message and lose nothing.

Training and sampling run in-process through `main` with the model and batch shapes of
tests/test_train.py, so the compiled kernels are shared (compiling dominates these tests);
the subprocess tests check the `python -m minigpt` entry point and its exit codes.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
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


HOLDER = """
import sys, time
from minigpt.checkpoint import CheckpointLock
with CheckpointLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


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
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_copy)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        args = ["train", "--corpus", str(corpus), "--out", str(run_copy), *TINY, "--resume"]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"another run (process {holder.pid}) is writing to" in err and "ps -p" in err
        assert run_copy.with_name(".run.lock").read_text() == str(holder.pid)  # not ours
    finally:
        holder.kill()
        holder.wait()


def test_a_refused_run_leaves_no_folders_behind(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "run"
    args = ["train", "--corpus", str(tmp_path / "missing.txt"), "--out", str(out), *TINY]
    assert main(args) == 2  # refused after the lock was taken: the corpus does not exist
    assert "missing.txt' is not a file" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_resume_into_a_folder_with_a_foreign_file_is_refused_before_work(run_copy, corpus, capsys):
    (run_copy / "notes.txt").write_text("keep me")
    before = snapshot(run_copy)
    args = ["train", "--corpus", str(corpus), "--out", str(run_copy), *TINY, "--resume"]
    assert main([*args, "--steps", "6"]) == 2
    captured = capsys.readouterr()
    assert "not part of a checkpoint (notes.txt)" in captured.err
    assert "corpus" not in captured.out  # refused before compiling and training
    assert snapshot(run_copy) == before


def test_resume_without_a_tokenizer_is_one_error_line(run_copy, corpus, capsys):
    (run_copy / "tokenizer.json").unlink()
    args = ["train", "--corpus", str(corpus), "--out", str(run_copy), *TINY, "--resume"]
    assert main([*args, "--steps", "6"]) == 2
    captured = capsys.readouterr()
    assert "has no tokenizer.json" in captured.err and "corpus" not in captured.out


def test_force_does_not_replace_a_users_files_named_like_a_checkpoints(tmp_path, corpus, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"theme": "dark"}')
    (out / "model.safetensors").write_bytes(b"my own model")
    before = snapshot(out)
    args = ["train", "--corpus", str(corpus), "--out", str(out), *TINY, "--force"]
    assert main(args) == 2
    assert "named like a checkpoint's, but no checkpoint" in capsys.readouterr().err
    assert snapshot(out) == before


def test_a_symlinked_out_is_refused_and_kept(run_copy, corpus, capsys):
    link = run_copy.with_name("link")
    link.symlink_to(run_copy)
    for extra in (["--force"], ["--resume", "--steps", "6"]):
        args = ["train", "--corpus", str(corpus), "--out", str(link), *TINY, *extra]
        assert main(args) == 2
        assert "is a symbolic link" in capsys.readouterr().err
        assert link.is_symlink() and load_checkpoint(link)[2].step == 4


@pytest.mark.parametrize(
    "flags",
    [
        ["--n-embd", "1048576", "--n-head", "1"],
        ["--n-layer", "1000000"],
        ["--block-size", "10000000"],
        ["--batch-size", "100000000"],
        ["--n-embd", "65536", "--n-layer", "96", "--block-size", "65536", "--batch-size", "4096"],
    ],
)
def test_enormous_sizes_are_refused_with_the_estimate_before_work(tmp_path, corpus, capsys, flags):
    args = ["train", "--corpus", str(corpus), "--out", str(tmp_path / "run"), *TINY, *flags]
    started = time.perf_counter()
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "needs about" in captured.err and "of this machine's memory" in captured.err
    assert "--max-memory-gb" in captured.err and "corpus" not in captured.out
    assert time.perf_counter() - started < 5 and os.listdir(tmp_path) == []


def test_the_memory_limit_can_be_set(tmp_path, corpus, capsys):
    args = ["train", "--corpus", str(corpus), "--out", str(tmp_path / "run"), *TINY]
    assert main([*args, "--max-memory-gb", "0.0001"]) == 2
    assert "(the limit you set)" in capsys.readouterr().err


def test_a_config_claiming_an_enormous_model_is_refused_before_building_it(run_copy, capsys):
    meta = json.loads((run_copy / "config.json").read_text())
    meta["model"]["n_embd"] = 2**20
    (run_copy / "config.json").write_text(json.dumps(meta))
    assert main(["sample", "--ckpt", str(run_copy), "--tokens", "3"]) == 2
    assert "describes a model of" in capsys.readouterr().err


def test_a_tiny_temperature_samples_greedily_without_warnings(run_copy, capsys):
    args = ["sample", "--ckpt", str(run_copy), "--prompt", "ab", "--tokens", "8", "--seed", "1"]
    assert main([*args, "--temperature", "0"]) == 0
    greedy = capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow and invalid-value warnings
        for tiny in ("1e-300", "5e-324", "0.0009"):
            assert main([*args, "--temperature", tiny]) == 0
            assert capsys.readouterr().out == greedy, tiny


def test_too_many_tokens_are_refused_before_loading(tmp_path, capsys):
    assert main(["sample", "--ckpt", str(tmp_path), "--tokens", "10000000000"]) == 2
    assert "more than the limit of 1,000,000" in capsys.readouterr().err


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
