"""The compiled-step cache: entries checked before they are unpickled, written atomically, kept
under a size cap; cached training and sampling equal to compiling, to the last bit."""

import os
import subprocess
import sys

import numpy as np
import pytest
from tinygrad import Tensor
from tinygrad.nn.optim import AdamW
from tinygrad.nn.state import get_state_dict

from minigpt import cpu_threads, step_cache, tuning
from minigpt.compiled import StoredSteps, _constant_fill, cacheable, generate
from minigpt.data import synthetic_task
from minigpt.model import GPTConfig, MiniGPT
from minigpt.train import TrainConfig, train

CONFIG = GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=16)
KEY = "ab" * 32


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder of the test's own, on, with the default cap."""
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    step_cache.use_step_cache(True, step_cache.DEFAULT_MAX_BYTES)
    yield step_cache.folder()
    step_cache.use_step_cache(True, step_cache.DEFAULT_MAX_BYTES)


def test_an_entry_round_trips_in_a_private_folder(cache):
    path = step_cache.store(KEY, {"weights": [1.5, 2.5]})
    assert step_cache.load(KEY) == {"weights": [1.5, 2.5]}
    assert path.parent == cache and path.name == f"{KEY}.step"
    assert (cache.stat().st_mode & 0o777, path.stat().st_mode & 0o777) == (0o700, 0o600)
    assert step_cache.load("cd" * 32) is None  # never stored
    with pytest.raises(ValueError, match="not a 64-digit hex hash"):
        step_cache.load("../../etc/passwd")


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda b: b[: len(b) // 2], "truncated or damaged"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "truncated or damaged"),
        (lambda b: b"not a cache entry" + b, "does not start with the cache's header"),
        (lambda b: b.replace(b'"format": 1', b'"format": 0'), "format 0, this version reads 1"),
        (lambda b: b.replace(KEY.encode(), b"cd" * 32), "names another key"),
    ],
)
def test_a_damaged_entry_is_deleted_and_named_in_one_line(cache, capsys, damage, reason):
    path = step_cache.store(KEY, list(range(1000)))
    path.write_bytes(damage(path.read_bytes()))
    assert step_cache.load(KEY) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and reason in err and "building it again" in err
    assert not path.exists()


def test_an_entry_that_fails_to_unpickle_is_rebuilt(cache, capsys):
    step_cache.store(KEY, [1, 2, 3])

    def broken(payload: bytes):
        raise AttributeError("Can't get attribute 'Gone' on <module 'minigpt.model'>")

    assert step_cache.load(KEY, broken) is None
    assert "unusable (Can't get attribute 'Gone'" in capsys.readouterr().err
    assert step_cache.info().entries == 0


def test_only_the_users_own_private_folder_and_regular_files_are_read(cache, tmp_path, capsys):
    cache.mkdir(parents=True)
    cache.chmod(0o755)  # ours, but open to others: made private before use
    step_cache.store(KEY, "x")
    assert cache.stat().st_mode & 0o777 == 0o700
    elsewhere = tmp_path / "planted.step"
    elsewhere.write_bytes((cache / f"{KEY}.step").read_bytes())
    (cache / f"{KEY}.step").unlink()
    (cache / f"{KEY}.step").symlink_to(elsewhere)  # a link is never followed
    assert step_cache.load(KEY) is None
    assert "unusable" in capsys.readouterr().err and elsewhere.exists()
    os.rmdir(cache)
    cache.symlink_to(tmp_path)  # the folder itself a link: not used at all
    assert step_cache.store(KEY, "x") is None
    assert "not a folder owned by this user" in capsys.readouterr().err


def test_the_size_cap_deletes_the_entries_used_longest_ago(cache):
    step_cache.use_step_cache(True, max_bytes=25_000)
    keys = [c * 64 for c in "abcd"]
    for i, key in enumerate(keys[:2]):
        step_cache.store(key, os.urandom(10_000))
        os.utime(cache / f"{key}.step", (1000 + i, 1000 + i))
    assert step_cache.load(keys[0]) is not None  # used now: newer than b
    step_cache.store(keys[2], os.urandom(10_000))
    left = sorted(p.stem[0] for p in cache.glob("*.step"))
    assert left == ["a", "c"] and step_cache.info().bytes <= 25_000


FILL = """
import sys
from minigpt import step_cache
for _ in range(15):
    step_cache.store(sys.argv[1], bytes([int(sys.argv[2])]) * 3_000_000)
"""


def test_two_processes_filling_one_entry_leave_it_whole(cache):
    env = {**os.environ, "MINIGPT_CACHE": str(cache.parent)}
    writers = [
        subprocess.Popen([sys.executable, "-c", FILL, KEY, str(seed)], env=env) for seed in (1, 2)
    ]
    whole = (b"\x01" * 3_000_000, b"\x02" * 3_000_000)
    while any(w.poll() is None for w in writers):
        got = step_cache.load(KEY)
        assert got is None or got in whole  # never a mixture or a torn file
    assert [w.wait() for w in writers] == [0, 0]
    assert step_cache.load(KEY) in whole
    assert not list(cache.glob(".*")), "a temporary file was left behind"


def test_the_cli_shows_and_clears_only_its_entries(cache):
    step_cache.store(KEY, "x")
    (cache / "notes.txt").write_text("mine")
    env = {**os.environ, "MINIGPT_CACHE": str(cache.parent)}
    run = [sys.executable, "-m", "minigpt", "cache"]
    shown = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
    assert f"{cache}: 1 entries" in shown
    cleared = subprocess.run([*run, "--clear"], env=env, capture_output=True, text=True).stdout
    assert "removed 1 file from" in cleared and ": 0 entries" in cleared
    assert (cache / "notes.txt").read_text() == "mine"


def test_code_from_outside_the_package_or_dropout_is_not_cached():
    class Mine(MiniGPT):
        pass

    model = MiniGPT(CONFIG)
    assert cacheable(model)
    assert not cacheable(Mine(CONFIG))
    assert not cacheable(MiniGPT(GPTConfig(**{**CONFIG.to_dict(), "dropout": 0.1})))
    model.blocks[0].forward = lambda x: x  # a function set on one block
    assert not cacheable(model)


def test_the_key_changes_with_the_program_but_not_with_the_learning_rate(cache):
    state = [Tensor.zeros(3).contiguous().realize()]
    base = {"step": "train", "grad_clip": 1.0}
    key = StoredSteps(base, state).key
    assert StoredSteps({**base, "grad_clip": 0.0}, state).key != key
    assert StoredSteps(base, [Tensor.zeros(4).contiguous().realize()]).key != key
    try:
        tuning.use_stored_choices(False)
        assert StoredSteps(base, state).key != key
    finally:
        tuning.use_stored_choices(True)
    assert StoredSteps(None, state).key is None


def test_fresh_optimizer_state_is_read_from_its_graph_without_a_kernel():
    weight = Tensor.ones(3, 4).contiguous().realize()
    adamw = AdamW([weight])
    assert (_constant_fill(adamw.m[0]), _constant_fill(adamw.b1_t)) == (0.0, 1.0)
    for other in (weight, Tensor.ones(3).contiguous() * 2, Tensor.rand(3)):
        assert _constant_fill(other) is None  # realized, or computed: read by running it


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    return synthetic_task("copy", 200, 3, 5, rng), synthetic_task("copy", 50, 3, 5, rng)


def _run(task, **config) -> tuple[MiniGPT, object]:
    Tensor.manual_seed(3)
    model = MiniGPT(CONFIG)
    settings = dict(steps=20, batch_size=8, lr=1e-2, warmup=2, eval_interval=10, eval_batches=2)
    return model, train(model, *task, TrainConfig(**{**settings, **config}), progress=False)


def test_cached_training_and_sampling_equal_compiled_ones_to_the_last_bit(cache, task):
    model, compiled = _run(task)  # compiles and stores
    tokens = generate(model, np.array([[1, 2]]), 6, seed=0)
    # the initial weights, the training step, the sampling steps
    assert not compiled.cached_steps and step_cache.info().entries == 3
    cached_model, cached = _run(task)  # loads: fresh weights copied into the stored buffers
    cached_tokens = generate(cached_model, np.array([[1, 2]]), 6, seed=0)
    assert cached.cached_steps and cached.step_losses[0] != cached.step_losses[-1]
    assert cached.step_losses == compiled.step_losses  # 20 steps, every bit
    assert cached.val_losses == compiled.val_losses
    np.testing.assert_array_equal(cached_tokens, tokens)
    cpu_threads.use_cpu_threads(2)  # and with each kernel's pieces on two threads
    try:
        _, pooled = _run(task)
    finally:
        cpu_threads.use_cpu_threads(1)
    assert pooled.cached_steps and pooled.step_losses == compiled.step_losses
    want = get_state_dict(model)
    for name, t in get_state_dict(cached_model).items():
        np.testing.assert_array_equal(t.numpy(), want[name].numpy(), err_msg=name)


def _drawn(seed: int, config: GPTConfig = CONFIG) -> tuple[dict, np.ndarray]:
    """A seeded model's weights and the next random numbers tinygrad draws after it."""
    Tensor.manual_seed(seed)
    model = MiniGPT(config)
    weights = {name: t.numpy() for name, t in get_state_dict(model).items()}
    return weights, Tensor.rand(5).numpy()


def _same(a: tuple[dict, np.ndarray], b: tuple[dict, np.ndarray]) -> bool:
    (wa, ra), (wb, rb) = a, b
    return (
        wa.keys() == wb.keys()
        and all(np.array_equal(wa[k], wb[k]) for k in wa)
        and (np.array_equal(ra, rb))
    )


def test_a_seeded_models_weights_are_kept_and_equal_drawing_them(cache, monkeypatch):
    config = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.1)
    step_cache.use_step_cache(False)
    drawn = _drawn(5, config)
    step_cache.use_step_cache(True)
    assert _same(_drawn(5, config), drawn) and step_cache.info().entries == 1  # drawn, kept
    draws = []
    monkeypatch.setattr(MiniGPT, "_init_weights", lambda self: draws.append(self))
    assert _same(_drawn(5, config), drawn) and draws == []  # restored, to the last bit
    assert not _same(_drawn(6, config), drawn) and len(draws) == 1  # another seed is drawn


def test_a_second_process_restores_the_weights_and_the_random_counter(cache):
    script = (
        "import numpy as np; from tinygrad import Tensor; from tinygrad.nn.state import get_state_dict\n"
        "from minigpt.model import GPTConfig, MiniGPT\n"
        "Tensor.manual_seed(3)\n"
        "m = MiniGPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=16))\n"
        "w = np.concatenate([t.numpy().ravel() for t in get_state_dict(m).values()])\n"
        "print(w.tobytes().hex()[:4000], Tensor.rand(4).numpy().tobytes().hex())\n"
    )
    env = {**os.environ, "MINIGPT_CACHE": str(cache.parent)}
    runs = [
        subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stdout == runs[1].stdout and step_cache.info().entries == 1


def test_unseeded_models_and_subclasses_are_drawn_and_not_kept(cache):
    from minigpt import initial_weights

    Tensor.manual_seed(initial_weights._CLOCK_SEED)  # as if manual_seed were never called
    MiniGPT(CONFIG)

    class Wider(MiniGPT):  # a subclass may draw its weights another way
        pass

    Tensor.manual_seed(1)
    Wider(CONFIG)
    Tensor.manual_seed(1)
    Tensor.rand(1).realize()  # the counter has moved: the key would not say where
    MiniGPT(CONFIG)
    assert step_cache.info().entries == 0


def test_kept_weights_are_read_without_pickle(cache, capsys):
    from minigpt.initial_weights import KeptWeights, _to_npz

    Tensor.manual_seed(2)
    key = KeptWeights(CONFIG.to_dict()).key
    step_cache.store(key, {"tok_emb.weight": np.array([object()], dtype=object)}, _to_npz)
    step_cache.use_step_cache(False)
    drawn = _drawn(2)
    step_cache.use_step_cache(True)
    assert _same(_drawn(2), drawn)  # the foreign entry was refused, the weights drawn
    assert "unusable" in capsys.readouterr().err


def test_bypassed_compiles_inside_and_puts_the_switch_back_even_after_an_error():
    for on in (True, False):
        step_cache.use_step_cache(on)
        with pytest.raises(RuntimeError), step_cache.bypassed():
            assert not step_cache.enabled()
            raise RuntimeError("a search that fails")
        assert step_cache.enabled() is on
    step_cache.use_step_cache(True)
