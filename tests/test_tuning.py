"""Tests for minigpt.tuning: stored choices are applied in a scope, unknown kernels fall back, and
tinygrad's compile step is untouched outside the scope."""

import json

import numpy as np
import pytest
from tinygrad import Tensor
from tinygrad.codegen.opt import Opt, OptOps
from tinygrad.engine import realize
from tinygrad.engine.realize import run_linear
from tinygrad.uop.ops import Ops

from minigpt import tuning
from minigpt.fusion import kernel_sources

# a choice the default heuristics do not make for this matmul (they upcast and unroll more)
STORED = (Opt(OptOps.UPCAST, 0, 2),)


TINYGRAD_COMPILE = realize.lower_and_compile  # tinygrad's own compile step, before any test


@pytest.fixture(autouse=True)
def restore_hook():
    """Leave tinygrad and the switch as the test found them (on, the shipped table, not hooked)."""
    yield
    realize.lower_and_compile = TINYGRAD_COMPILE
    tuning.use_stored_choices(True)


def matmul_inputs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((24, 40), np.float32), rng.standard_normal((40, 56), np.float32)


def matmul_kernel(a: np.ndarray, b: np.ndarray):
    """The matmul's kernel sources and result; inputs are realized first so only it compiles."""
    ta, tb = Tensor(a).realize(), Tensor(b).realize()
    out = {}
    sources = kernel_sources(lambda: out.setdefault("c", (ta @ tb).numpy()))
    (source,) = sources
    return source, out["c"]


@pytest.fixture(scope="module")
def table_file(tmp_path_factory) -> str:
    """A table holding STORED for the 24x40 @ 40x56 matmul, keyed as the default path sees it."""
    a, b = matmul_inputs(0)
    linear = Tensor.schedule_linear(Tensor(a).realize() @ Tensor(b).realize())
    keys = [tuning.kernel_key(c.src[0]) for c in linear.src if c.src[0].op is Ops.SINK]
    run_linear(linear)
    assert len(keys) == 1, keys
    path = tmp_path_factory.mktemp("tuned") / "table.json"
    tuning.save_table({keys[0]: STORED}, path, about={"test": True})
    return str(path)


def test_stored_choices_are_applied_and_results_match(table_file):
    tuning.use_stored_choices(True, table_file)
    a, b = matmul_inputs(1)
    default_source, default_result = matmul_kernel(a, b)
    hits = tuning.status().hits
    with tuning.stored_choices() as state:
        assert state.hooked and state.kernels == 1
        tuned_source, tuned_result = matmul_kernel(a, b)
    assert tuned_source.opts == "UPCAST(axis=0, 2)"
    assert default_source.opts != tuned_source.opts
    assert tuning.status().hits == hits + 1
    reference = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(tuned_result, reference, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tuned_result, default_result, rtol=1e-5, atol=1e-5)


def test_unknown_kernels_fall_back_to_heuristics(table_file):
    tuning.use_stored_choices(True, table_file)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((24, 40), np.float32), rng.standard_normal((40, 72), np.float32)
    before = tuning.status()
    with tuning.stored_choices():
        c = (Tensor(a).realize() @ Tensor(b).realize()).numpy()  # another shape: not in the table
    state = tuning.status()
    assert state.hits == before.hits and state.misses >= before.misses + 1
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_leaving_the_scope_restores_tinygrad(table_file):
    tuning.use_stored_choices(True, table_file)
    with tuning.stored_choices():
        assert realize.lower_and_compile is not TINYGRAD_COMPILE
        with tuning.stored_choices():  # nested: the inner block changes nothing
            pass
        assert tuning.status().hooked
    assert realize.lower_and_compile is TINYGRAD_COMPILE and not tuning.status().hooked
    a, b = matmul_inputs(4)  # same shapes as the table's kernel: outside, the heuristics decide
    source, _ = matmul_kernel(a, b)
    assert source.opts != "UPCAST(axis=0, 2)"


def test_scope_restores_tinygrad_after_an_error(table_file):
    tuning.use_stored_choices(True, table_file)
    with pytest.raises(RuntimeError, match="inside"), tuning.stored_choices():
        raise RuntimeError("inside")
    assert realize.lower_and_compile is TINYGRAD_COMPILE


def test_the_switch_turns_every_scope_off_and_on(table_file):
    state = tuning.use_stored_choices(False)
    assert not state.enabled and state.path is None and not state.hooked
    with tuning.stored_choices():  # the scope of the compiled steps keeps the heuristics
        assert not tuning.status().hooked
        source, _ = matmul_kernel(*matmul_inputs(6))
    assert source.opts != "UPCAST(axis=0, 2)"
    state = tuning.use_stored_choices(True, table_file)
    assert state.enabled and state.path == table_file and state.kernels == 1
    with tuning.stored_choices():
        source, _ = matmul_kernel(*matmul_inputs(5))
    assert source.opts == "UPCAST(axis=0, 2)"
    assert realize.lower_and_compile is TINYGRAD_COMPILE


def test_building_training_and_sampling_leave_tinygrad_untouched(monkeypatch):
    """A model, a training run and sampling: the hook was used while they compiled (kernels were
    looked up in the shipped table) and is gone afterwards."""
    from minigpt import step_cache
    from minigpt.compiled import generate
    from minigpt.model import GPTConfig, MiniGPT
    from minigpt.train import TrainConfig, train

    monkeypatch.setattr(step_cache._Settings, "on", False)  # compile here, even if stored
    model = MiniGPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16))
    assert realize.lower_and_compile is TINYGRAD_COMPILE
    looked_up = tuning.status().hits + tuning.status().misses
    tokens = np.random.default_rng(0).integers(0, 11, 200)
    train(model, tokens, tokens, TrainConfig(steps=3, warmup=0, eval_batches=1), progress=False)
    assert realize.lower_and_compile is TINYGRAD_COMPILE
    trained = tuning.status().hits + tuning.status().misses
    assert trained > looked_up
    generate(model, [[1, 2]], 3, seed=0)
    assert realize.lower_and_compile is TINYGRAD_COMPILE
    assert tuning.status().hits + tuning.status().misses > trained


@pytest.mark.parametrize(
    "text", ["{not json", json.dumps({"kernels": {"ab": [["NOT_AN_OP", 0, 2]]}}), "[]"]
)
def test_corrupt_table_gives_clear_error(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="cannot read the tuned-kernel table .*bad.json"):
        tuning.use_stored_choices(True, path)
    assert tuning.status().path == str(tuning.TABLE_PATH)  # the switch is as it was
    assert realize.lower_and_compile is TINYGRAD_COMPILE
    with pytest.raises(ValueError, match="help: regenerate it with `make tune`"):
        tuning.load_table(path)


@pytest.mark.parametrize(
    "kernels, problem",
    [
        ({"ab": [["UPCAST", 0, 4]]}, "not a 64-digit hex hash"),
        ({"0" * 64: [["UPCAST", "0", 4]]}, "is not a valid choice"),
        ({"0" * 64: [["THREAD", 0, None]]}, "is not a valid choice"),
        ({"0" * 64: [["UPCAST", 0]]}, "is not \\[op, axis, arg\\]"),
        ({"0" * 64: "UPCAST"}, "is not \\[op, axis, arg\\]"),
        ([], "'kernels' must map kernel keys to choices"),
    ],
)
def test_table_entries_are_validated_on_load(tmp_path, kernels, problem):
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"kernels": kernels}))
    with pytest.raises(ValueError, match=f"table .*table.json: .*{problem}"):
        tuning.load_table(path)


def test_fuzz_table_loader_random_bytes_and_truncations(tmp_path):
    """400 damaged tables (random bytes, truncations, flipped bytes of the shipped one): each is
    either a well-formed table or a ValueError naming the file, never another exception."""
    rng = np.random.default_rng(0)
    shipped = tuning.TABLE_PATH.read_bytes()
    path = tmp_path / "fuzzed.json"
    loaded = refused = 0
    for case in range(400):
        if case % 4 == 0:
            data = rng.bytes(int(rng.integers(0, 300)))
        elif case % 4 == 1:
            data = shipped[: int(rng.integers(0, len(shipped)))]
        else:
            flipped = bytearray(shipped)
            for i in rng.integers(0, len(shipped), size=1 + case % 3):
                flipped[i] = int(rng.integers(0, 256))
            data = bytes(flipped)
        path.write_bytes(data)
        try:
            table = tuning.load_table(path)
        except ValueError as error:
            assert str(path) in str(error) and "help: regenerate it" in str(error)
            refused += 1
            continue
        loaded += 1
        for key, opts in table.items():
            assert isinstance(key, str) and len(key) == 64
            assert all(isinstance(o, Opt) and isinstance(o.op, OptOps) for o in opts)
    assert refused >= 300 and loaded >= 1  # both outcomes were exercised


def test_shipped_table_loads():
    table = tuning.load_table()
    assert len(table) > 50
    assert all(isinstance(o, Opt) for opts in table.values() for o in opts)


def test_choices_this_machine_cannot_apply_fall_back(table_file, tmp_path):
    """More threads than this machine allows: the kernel keeps the heuristics instead of failing."""
    (key,) = tuning.load_table(table_file)
    path = tmp_path / "threads.json"
    tuning.save_table({key: (Opt(OptOps.THREAD, 0, 10**6),)}, path, about={})
    a, b = matmul_inputs(3)
    hits = tuning.use_stored_choices(True, path).hits
    with tuning.stored_choices():
        source, c = matmul_kernel(a, b)
    assert tuning.status().hits == hits and "THREAD" not in source.opts
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_tuning_imports_neither_model_nor_train():
    """The runtime module stands alone: the search lives in minigpt.tuning_search."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(tuning))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("minigpt")}, imported


def test_recording_collects_searched_choices_and_restores_the_switch(table_file):
    from tinygrad import Context

    from minigpt.tuning_search import recording

    tuning.use_stored_choices(True, table_file)
    a, b = matmul_inputs(7)
    with recording() as found, Context(BEAM=1), tuning.stored_choices():
        assert not tuning.status().hooked  # the search must not see the stored choices
        matmul_kernel(a, b)
    assert len(found) == 1 and all(isinstance(o, Opt) for o in next(iter(found.values())))
    state = tuning.status()
    assert state.enabled and state.path == table_file  # the switch is back as it was


def test_choices_that_fit_no_kernel_fall_back_with_one_warning(tmp_path):
    """A table whose choice names an axis the kernel lacks: the heuristics compile that kernel,
    the result is right, and the warning comes once, not at every compile."""
    a, b = matmul_inputs(5)
    linear = Tensor.schedule_linear(Tensor(a).realize() @ Tensor(b).realize())
    keys = [tuning.kernel_key(c.src[0]) for c in linear.src if c.src[0].op is Ops.SINK]
    path = tmp_path / "unfit.json"
    tuning.save_table({keys[0]: (Opt(OptOps.UPCAST, 9, 4),)}, path, about={"test": True})
    tuning.use_stored_choices(True, path)
    with pytest.warns(UserWarning, match=r"(?s)do not fit it.*heuristics instead") as caught:
        with tuning.stored_choices():
            c = (Tensor(a).realize() @ Tensor(b).realize()).numpy()
        a2, b2 = matmul_inputs(6)  # the same kernel again, with other data
        with tuning.stored_choices():
            d = (Tensor(a2).realize() @ Tensor(b2).realize()).numpy()
    assert len([w for w in caught if "do not fit" in str(w.message)]) == 1
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d, a2 @ b2, rtol=1e-4, atol=1e-4)
    assert tuning.status().hits == 0
