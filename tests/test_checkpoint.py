"""Checkpoints: exact round trip, atomic replacement, and clear errors for damaged files."""

import errno
import json
import multiprocessing
import os
import shutil
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from tinygrad import Tensor
from tinygrad.nn.state import get_state_dict, safe_save

from minigpt import checkpoint
from minigpt.checkpoint import CheckpointLock, load_checkpoint, load_weights, save_checkpoint
from minigpt.data import CharTokenizer
from minigpt.model import GPTConfig, MiniGPT
from minigpt.train import TrainConfig

CONFIG = GPTConfig(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=32)
IDS = np.random.default_rng(0).integers(0, 7, (2, 8))


def _header(entries: dict) -> bytes:
    """A safetensors file with this header and 8 bytes of data."""
    text = json.dumps(entries).encode()
    return struct.pack("<Q", len(text)) + text + bytes(8)


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


def _with_nan(model, name="blocks.0.mlp.c_fc.weight"):
    weights = dict(get_state_dict(model))
    bad = weights[name].numpy().copy()
    bad[0, 0] = np.nan
    weights[name] = Tensor(bad)
    return weights


def test_folder_with_other_files_is_never_replaced(tmp_path, model):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"holds files that are not part of a checkpoint \(notes"):
        save_checkpoint(folder, model)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ValueError, match="a_file is a file"):
        save_checkpoint(tmp_path / "a_file", model)


def test_nan_weights_are_neither_saved_nor_loaded(saved, model, tmp_path):
    diverged = MiniGPT(CONFIG)
    load_weights(diverged, _with_nan(model))
    with pytest.raises(ValueError, match=r"not saving .*ckpt: tensor 'blocks.0.mlp.c_fc.weight'"):
        save_checkpoint(saved, diverged, step=7)
    assert load_checkpoint(saved)[2].step == 5  # the good checkpoint is untouched
    safe_save(_with_nan(model), str(saved / "model.safetensors"))
    with pytest.raises(
        ValueError, match=r"model.safetensors: tensor 'blocks.0.mlp.c_fc.weight' holds"
    ):
        load_checkpoint(saved)


@pytest.mark.parametrize(
    "header, match",
    [
        (struct.pack("<Q", 10**15), "the header claims 1000000000000000 bytes"),
        (struct.pack("<Q", 2) + b"[]", "the header is a list"),
        (
            _header({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 8]}}),
            r"tensor 'w' of shape \[2, 3\] needs 24 bytes",
        ),
        (_header({"w": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}), "no known dtype"),
        (
            _header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}),
            "outside the file",
        ),
    ],
)
def test_damaged_safetensors_headers(saved, header, match):
    (saved / "model.safetensors").write_bytes(header)
    with pytest.raises(
        ValueError, match=f"model.safetensors is not a readable safetensors file.*{match}"
    ):
        load_checkpoint(saved)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("step", None, "step is None, expected an int >= 0"),
        ("step", -2, "step is -2"),
        ("history", [1, 2], "'history' is a list, expected an object or null"),
        ("history", {"val_losses": ["a"]}, "history 'val_losses' is not a list of numbers"),
        ("train", "fast", "'train' is a str"),
    ],
)
def test_damaged_config_fields(saved, key, value, match):
    meta = json.loads((saved / "config.json").read_text())
    meta[key] = value
    (saved / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=f"config.json: {match}"):
        load_checkpoint(saved)


def test_damaged_optimizer_file_does_not_stop_sampling(saved):
    (saved / "optimizer.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(ValueError, match="optimizer.safetensors is not a readable"):
        load_checkpoint(saved)
    _, tokenizer, info = load_checkpoint(saved, with_optimizer=False)
    assert tokenizer.chars == "abcdef|" and info.optimizer_state is None and info.step == 5


def test_stale_temporaries_go_live_ones_stay(saved, model):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = saved.parent / f".ckpt.{dead.pid}.abc.tmp"
    live = saved.parent / f".ckpt.{os.getppid()}.def.tmp"  # our parent process is running
    for folder in (stale, live):
        folder.mkdir()
    save_checkpoint(saved, model, step=6)
    assert not stale.exists() and live.exists()
    assert load_checkpoint(saved)[2].step == 6
    assert oct(saved.stat().st_mode & 0o777) == "0o755"
    assert {oct(p.stat().st_mode & 0o777) for p in saved.iterdir()} == {"0o644"}


def test_save_after_an_interrupted_swap_restores_first(saved, model):
    """Killed between the two renames, only .ckpt.old is left; the next save must not delete it
    before its own checkpoint is in place."""
    shutil.move(saved, saved.with_name(".ckpt.old"))
    assert checkpoint.recover_interrupted_save(saved)
    assert load_checkpoint(saved)[2].step == 5 and not saved.with_name(".ckpt.old").exists()


HOLDER = """
import sys, time
from minigpt.checkpoint import CheckpointLock
with CheckpointLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_lock_refuses_a_second_writer_and_takes_over_a_dead_ones(tmp_path):
    lock_path = tmp_path / ".run.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(
            ValueError, match=rf"(?s)another run \(process {holder.pid}\) is writing.*ps -p"
        ):
            CheckpointLock(tmp_path / "run").__enter__()
    finally:
        holder.kill()  # kill -9: no cleanup runs, the lock file stays behind
        holder.wait()
    assert lock_path.read_text() == str(holder.pid)
    with CheckpointLock(tmp_path / "run"):  # its owner is gone: the lock is free
        assert lock_path.read_text() == str(os.getpid())
    assert not lock_path.exists()


def test_a_lock_file_naming_a_live_unrelated_process_does_not_block(tmp_path):
    """A lock file left by a dead run whose process id now belongs to another program."""
    (tmp_path / ".run.lock").write_text(str(os.getppid()))  # alive, and not holding it
    with CheckpointLock(tmp_path / "run"):
        assert (tmp_path / ".run.lock").read_text() == str(os.getpid())


def test_a_lock_name_that_is_a_users_file_or_a_link_is_left_alone(tmp_path):
    lock_path = tmp_path / ".run.lock"
    lock_path.write_text("my notes")
    with pytest.raises(ValueError, match=r"(?s)not a lock file written here.*help: move"):
        CheckpointLock(tmp_path / "run").__enter__()
    assert lock_path.read_text() == "my notes"
    lock_path.unlink()
    (tmp_path / "target.txt").write_text("keep me")
    lock_path.symlink_to(tmp_path / "target.txt")
    with pytest.raises(ValueError, match=r"(?s)cannot create the lock file.*symbolic link"):
        CheckpointLock(tmp_path / "run").__enter__()
    assert (tmp_path / "target.txt").read_text() == "keep me" and lock_path.is_symlink()


def _race_for_the_lock(directory, barrier, holders) -> None:
    alive = checkpoint._pid_alive

    def slow_alive(pid: int) -> bool:  # a busy machine: each step of a takeover takes a while
        time.sleep(0.05)
        return alive(pid)

    checkpoint._pid_alive = slow_alive  # in this forked racer only
    barrier.wait()  # all start together
    try:
        with CheckpointLock(directory):
            with holders.get_lock():
                holders.value += 1
            time.sleep(0.3)  # hold it while the others try
    except ValueError:
        pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the racers are forked")
def test_eight_processes_racing_for_a_dead_runs_lock_exactly_one_wins(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    context = multiprocessing.get_context("fork")
    for round_ in range(4):
        (tmp_path / ".run.lock").write_text(str(dead.pid))  # a dead run's lock
        barrier, holders = context.Barrier(8), context.Value("i", 0)
        racers = [
            context.Process(target=_race_for_the_lock, args=(tmp_path / "run", barrier, holders))
            for _ in range(8)
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(30)
        assert holders.value == 1, f"round {round_}: {holders.value} processes held the lock"


def test_a_users_files_named_like_a_checkpoints_are_not_replaced(tmp_path, model):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "config.json").write_text('{"theme": "dark"}')  # a user's own config.json
    with pytest.raises(ValueError, match=r"(?s)named like a checkpoint's.*help:"):
        save_checkpoint(mine, model)
    assert os.listdir(mine) == ["config.json"]
    assert not checkpoint.is_checkpoint(mine)


def test_names_near_our_temporaries_are_left_alone(saved, model, tmp_path):
    """Only ``.ckpt.<dead pid>.<random>.tmp`` holding our marker (or nothing) is deleted."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ours_killed = tmp_path / f".ckpt.{dead.pid}.k1ll3d_x.tmp"
    ours_killed.mkdir()
    (ours_killed / checkpoint.MARKER_FILE).write_bytes(checkpoint.MARKER)
    (ours_killed / "model.safetensors").write_bytes(b"half")
    near = [
        ".ckpt.backup.tmp",  # no process id
        f".ckpt.1.{dead.pid}.abcdefgh.tmp",  # a neighbouring run "ckpt.1"'s temporary
        f".ckptx.{dead.pid}.abcdefgh.tmp",
        f".ckpt.{dead.pid}.abcdefgh.tmp.bak",
        f".ckpt.{dead.pid}.abcdefgh.tmp",  # our exact name, but holding a user's file
        f"ckpt.{dead.pid}.abcdefgh.tmp",
    ]
    for name in near:
        (tmp_path / name).mkdir()
        (tmp_path / name / "mine.txt").write_text("keep me")
    save_checkpoint(saved, model, step=6)
    assert not ours_killed.exists()
    for name in near:
        assert (tmp_path / name / "mine.txt").read_text() == "keep me", name


def test_a_users_dot_old_folder_is_neither_restored_nor_deleted(saved, model):
    old = saved.with_name(".ckpt.old")
    old.mkdir()
    (old / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"(?s)\.ckpt\.old is in the way.*help: move"):
        save_checkpoint(saved, model, step=6)
    assert load_checkpoint(saved)[2].step == 5 and os.listdir(old) == ["config.json"]
    shutil.rmtree(saved)
    assert not checkpoint.recover_interrupted_save(saved)
    assert not saved.exists() and os.listdir(old) == ["config.json"]


def test_a_symlinked_folder_is_refused_and_the_link_kept(saved, model, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(saved)
    with pytest.raises(ValueError, match=r"(?s)link is a symbolic link.*help: name the real"):
        save_checkpoint(link, model, step=6)
    assert link.is_symlink() and load_checkpoint(link)[2].step == 5


def test_a_checkpoint_respects_a_private_umask(tmp_path, model):
    old = os.umask(0o077)
    try:
        out = save_checkpoint(tmp_path / "private", model)
    finally:
        os.umask(old)
    assert oct(out.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == {"0o600"}


def test_a_full_disk_names_the_checkpoint_and_leaves_the_old_one(saved, model, monkeypatch):
    def full(tensors, name):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "safe_save", full)
    with pytest.raises(ValueError, match=r"(?s)no space left.*ckpt \([\d,]+ bytes needed\)"):
        save_checkpoint(saved, model, step=6)
    assert load_checkpoint(saved)[2].step == 5
    assert sorted(p.name for p in saved.parent.iterdir()) == ["ckpt"]


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_a_deeply_nested_config_is_named_as_damaged(saved, depth):
    (saved / "config.json").write_text("[" * depth + "]" * depth)
    with pytest.raises(ValueError, match=r"(?s)config.json is not valid JSON.*too deeply"):
        load_checkpoint(saved)


def test_fuzz_every_file_of_a_checkpoint(saved, tmp_path):
    """Random bytes and random truncations of each file: a ValueError naming the file, or a
    successful load when the damage missed everything that matters; never another exception."""
    rng = np.random.default_rng(0)
    originals = {p.name: p.read_bytes() for p in saved.iterdir()}
    failures = 0
    for trial in range(12):
        name = sorted(originals)[trial % len(originals)]
        data = originals[name]
        if trial % 2:
            damaged = data[: int(rng.integers(0, len(data)))]
        else:
            damaged = bytearray(data)
            for i in rng.integers(0, min(len(data), 400), 4):  # headers live at the start
                damaged[i] = int(rng.integers(0, 256))
            damaged = bytes(damaged)
        (saved / name).write_bytes(damaged)
        try:
            load_checkpoint(saved)
        except ValueError as error:
            assert name in str(error), str(error)
            failures += 1
        (saved / name).write_bytes(data)
    assert failures >= 6  # every truncation at least


KILLS = 20
KILLER = """
import json, os, signal, sys, time
import numpy as np
from tinygrad import Tensor
from minigpt.checkpoint import load_checkpoint, recover_interrupted_save, save_checkpoint
from minigpt.model import GPTConfig, MiniGPT

out, kills = sys.argv[1], int(sys.argv[2])
model = MiniGPT(GPTConfig(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=32))
state = {"m.tok_emb.weight": Tensor.ones(7, 32).contiguous()}
save_checkpoint(out, model, step=0, optimizer_state=state)  # compiles what every save runs
rng, last = np.random.default_rng(3), 0
for _ in range(kills):
    read_end, write_end = os.pipe()
    pid = os.fork()  # a saver that starts at once: building the model again would take seconds
    if pid == 0:
        try:
            step = last  # resume from the step the folder holds
            while True:
                step += 1
                save_checkpoint(out, model, step=step, optimizer_state=state)
                os.write(write_end, b"%d\\n" % step)
        finally:
            os._exit(1)
    os.close(write_end)
    with os.fdopen(read_end) as saved:
        first = saved.readline()  # one save done: the loop is running
        time.sleep(float(rng.uniform(0.0, 0.3)))
        os.kill(pid, signal.SIGKILL)  # no cleanup runs, mid-save or not
        os.waitpid(pid, 0)
        printed = [int(first), *(int(line) for line in saved.read().split())]
    folder = os.path.dirname(out)
    mid_save = any(name.endswith((".tmp", ".old")) for name in os.listdir(folder))
    recover_interrupted_save(out)  # what the next save or run does first
    last = load_checkpoint(out)[2].step
    print(json.dumps({"printed": printed[-1], "loaded": last, "mid_save": mid_save}), flush=True)
save_checkpoint(out, model, step=last + 1)
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the saver processes are forked")
def test_kill_9_at_random_moments_never_loses_the_checkpoint(tmp_path):
    """Savers killed with SIGKILL at random moments (mid-save included), each resuming from the
    step the folder holds: the folder always yields one complete checkpoint with the last printed
    step or the one after it, and no temporary survives the next save."""
    out = tmp_path / "ckpt"
    run = subprocess.run(
        [sys.executable, "-c", KILLER, str(out), str(KILLS)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    trials = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(trials) == KILLS
    for before, trial in zip([{"loaded": 0}, *trials], trials, strict=False):
        assert trial["loaded"] in (trial["printed"], trial["printed"] + 1)
        assert trial["printed"] > before["loaded"]  # the saver resumed from the saved step
    assert any(trial["mid_save"] for trial in trials)  # some kills interrupted a save
    assert load_checkpoint(out)[2].step == trials[-1]["loaded"] + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
