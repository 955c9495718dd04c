"""Tests for minigpt.tuning_in_step: THREAD splits change no number, the step is timed kernel by
kernel for every candidate, and each kernel keeps its fastest candidate's choices."""

import json

import numpy as np
import pytest
from tinygrad import Device
from tinygrad.codegen.opt import Opt, OptOps
from tinygrad.engine import realize
from tinygrad.runtime.ops_cpu import CPUProgram

from minigpt import cpu_threads, tuning
from minigpt import tuning_in_step as in_step
from minigpt.compiled import StepInputs
from minigpt.model import GPTConfig

TINY = GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=16)
BATCH = 4
THREADS = Device["CPU"].renderer.global_max[0]  # the most pieces a kernel may be split into here
needs_two_threads = pytest.mark.skipif(THREADS < 2, reason="one CPU thread: nothing to split")


@pytest.fixture(autouse=True)
def restore_tinygrad():
    compile_step, call = realize.lower_and_compile, CPUProgram.__call__
    yield
    cpu_threads.use_cpu_threads(1)
    tuning.use_stored_choices(True)
    assert realize.lower_and_compile is compile_step and CPUProgram.__call__ is call


@pytest.fixture(scope="module")
def kernels():
    return in_step.kernels_of_step(TINY, BATCH)


def no_choices(kernels) -> tuning.Table:
    """A table that gives every kernel of the step no choices at all (plain loops)."""
    return {key: () for key in kernels}


def losses(table: tuning.Table, tmp_path, threads: int, steps: int = 3) -> list[float]:
    path = tmp_path / f"table{len(list(tmp_path.iterdir()))}.json"
    tuning.save_table(table, path, {})
    tuning.use_stored_choices(True, path)
    cpu_threads.use_cpu_threads(threads)
    step, inputs = in_step.training_step(TINY), StepInputs()
    lr = np.array([1e-2], dtype=np.float32)
    return [
        step(*inputs.load(x, y, lr)).item()
        for x, y in in_step.step_batches(TINY, BATCH, steps, seed=1)
    ]


@needs_two_threads
def test_a_thread_split_keeps_the_choices_before_it_and_changes_no_number(kernels, tmp_path):
    plain = no_choices(kernels)
    split = in_step.with_thread_split(plain, kernels, THREADS)
    changed = [key for key in plain if split[key] != plain[key]]
    assert changed, "no kernel of the step could be split"
    for key in changed:
        assert split[key][:-1] == plain[key]
        assert split[key][-1].op is OptOps.THREAD and split[key][-1].arg == THREADS
    before = losses(plain, tmp_path, threads=1)
    assert losses(split, tmp_path, threads=1) == before  # pieces in turn
    assert losses(split, tmp_path, threads=THREADS) == before  # pieces on the pool
    assert cpu_threads.status().pooled_calls > 0


def test_a_kernel_split_already_and_a_kernel_with_no_entry_are_left_alone(kernels):
    key = sorted(kernels)[0]
    table = {key: (Opt(OptOps.THREAD, 0, 2),)}
    assert in_step.with_thread_split(table, kernels, 2) == table  # the other kernels have no entry


def test_each_kernel_keeps_the_choices_it_ran_fastest_with():
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    first = {a: (Opt(OptOps.UPCAST, 0, 4),), b: (Opt(OptOps.UPCAST, 0, 2),)}
    second = {a: (Opt(OptOps.UNROLL, 0, 4),), c: (Opt(OptOps.UPCAST, 1, 4),)}
    times = [
        in_step.StepTimes(1.0, {a: 0.2, b: 0.1, c: 0.5}),
        in_step.StepTimes(1.0, {a: 0.3, b: 0.4, c: 0.1}),
    ]
    best, wins = in_step.keep_faster([first, second], times)
    assert best[a] == first[a]  # faster in the first candidate's step
    assert best[b] == first[b]  # the last table has no entry for b: the winner's is added
    assert best[c] == second[c]
    assert wins == {0: 2, 1: 1}


def test_a_kernel_fastest_with_the_heuristics_gets_no_entry():
    a = "a" * 64
    times = [in_step.StepTimes(1.0, {a: 0.1}), in_step.StepTimes(1.0, {a: 0.2})]
    best, _ = in_step.keep_faster([{}, {a: (Opt(OptOps.UPCAST, 0, 4),)}], times)
    assert best == {}


def test_every_candidate_is_timed_on_the_same_kernels(kernels):
    plain = no_choices(kernels)
    split = in_step.with_thread_split(plain, kernels, THREADS)
    times = in_step.time_in_step([plain, split], THREADS, replays=2, config=TINY, batch=BATCH)
    timed = set(times[0].kernels)
    assert set(times[1].kernels) == timed  # the same kernels, however each was compiled
    assert len(timed) > 10 and timed <= set(kernels)  # the replayed ones (not first-call setup)
    for t in times:
        assert 0 < max(t.kernels.values()) < t.step  # (a program two keys share counts for each)
    assert cpu_threads.status().threads == 1  # the pool is off again


@needs_two_threads
def test_make_tune_times_the_search_against_the_table_before_in_the_step(
    kernels, tmp_path, monkeypatch, capsys
):
    from minigpt import tuning_search

    out = tmp_path / "table.json"
    before = no_choices(kernels)
    tuning.save_table(before, out, {"made": "before"})
    # the search itself (BEAM, minutes even for a tiny model) is replaced by its result: a table
    # that splits every kernel it can; the pass after it runs for real
    searched = in_step.with_thread_split(before, kernels, THREADS)

    def search(*args, path, threads, command, **kwargs):
        assert threads == THREADS
        tuning.save_table(searched, path, {"command": command})
        return searched

    monkeypatch.setattr(tuning_search, "search", search)
    shapes = ["--vocab", "16", "--block-size", "8", "--n-layer", "1", "--n-head", "2"]
    args = [*shapes, "--n-embd", "16", "--batch-size", str(BATCH), "--threads", str(THREADS)]
    args += ["--no-sampling", "--keep-faster-in-step", "--replays", "2", "--out", str(out)]
    tuning_search.main(args)
    table = tuning.load_table(out)
    about = json.loads(out.read_text())["about"]
    assert about["command"] == " ".join(["python -m minigpt.tuning_search", *args])
    lines = about["in_step"]["candidates"]
    assert [line.split(":")[0] for line in lines] == [
        "table before",
        "table before, split",
        "search, split",
        "search",
    ]
    wins = sum(int(line.rsplit("fastest for ", 1)[1].split()[0]) for line in lines)
    assert wins > 10  # every kernel the step replays went to one candidate
    assert all(table[key] in (before[key], searched[key]) for key in table)
    assert "kernels in" in capsys.readouterr().out
    assert cpu_threads.status().threads == 1 and not tuning.status().hooked
