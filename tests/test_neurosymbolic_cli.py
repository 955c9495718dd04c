"""The command line: run saves a figure, evaluate prints the table, bad flags explain themselves."""

import argparse

import pytest

from neurosymbolic.__main__ import build_parser, main


def test_run_saves_a_figure(tmp_path, capsys):
    out = tmp_path / "episode.png"
    main(["run", "--seed", "1", "--out", str(out), "--size", "8", "--objects", "1"])
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "steps" in capsys.readouterr().out


def test_evaluate_prints_the_table(capsys):
    main(["evaluate", "--n-worlds", "2", "--seed", "3"])
    out = capsys.readouterr().out
    for name in ["planner-noisy", "planner-perceived", "policy", "hybrid", "success"]:
        assert name in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "--n-worlds", "0"], "--n-worlds must be >= 1"),
        (["evaluate", "--seed", "-1"], "--seed must be >= 0"),
        (["evaluate", "--regime", "hard", "--budget", "0.5"], "budget must be >= 1"),
        (["heuristics", "--n-maps", "0"], "--n-maps must be >= 1"),
        (["train", "--nets", "heuristic", "--heuristic-steps", "0"], "--heuristic-steps must be"),
    ],
)
def test_bad_values_exit_with_help(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "help:" in err


def test_every_flag_has_help():
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {"run", "evaluate", "heuristics", "train"}
    for sub in commands.choices.values():
        for action in sub._actions:
            assert action.help, f"{action.option_strings} has no help"


@pytest.mark.parametrize(
    "out, message",
    [
        ("noext", "does not end in a picture format (no extension)"),
        ("picture.xyz", "does not end in a picture format (.xyz)"),
        (".", "is a folder"),
        ("a_file/episode.png", "a_file is a file, not a folder"),
    ],
)
def test_figure_path_is_checked_before_the_episode(tmp_path, monkeypatch, capsys, out, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--out", out, "--size", "8", "--objects", "1"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and "steps" not in captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing written
    assert (tmp_path / "a_file").read_text() == "mine"


def test_save_figure_without_an_extension_writes_png(tmp_path):
    from matplotlib.figure import Figure

    from neurosymbolic.viz import save_figure

    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1])
    save_figure(fig, tmp_path / "noext")
    assert (tmp_path / "noext").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["noext"]
    with pytest.raises(ValueError, match="is a folder"):
        save_figure(fig, tmp_path)


@pytest.mark.parametrize(
    "args", [["run", "--noise", "nan"], ["evaluate", "--noise", "inf"], ["run", "--slip", "nan"]]
)
def test_non_finite_numbers_are_refused(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "is not a finite number" in capsys.readouterr().err


def test_device_problems_are_one_error_line(monkeypatch, capsys):
    monkeypatch.setenv("DEV", "NOSUCH")
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--n-worlds", "1"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: DEV='NOSUCH' is not a tinygrad device")


def test_train_out_must_be_a_writable_folder(tmp_path, capsys):
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path / "a_file"), "--perception-steps", "1"])
    assert "a_file is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "2000"], "--size 2000 is outside 2..64"),
        (["--size", "64", "--objects", "9"], "20,971,520 planner states, over the limit"),
        (["--objects", "30"], "--objects must be in 0..26"),
    ],
)
def test_run_refuses_worlds_too_large_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / "figures" / "episode.png"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--out", str(out), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # not even the figure's folder


def test_a_negative_seed_names_the_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--seed", "-1", "--out", str(tmp_path / "e.png"), "--size", "8"])
    assert exit_info.value.code == 2
    assert "--seed must be >= 0, got -1.\nhelp:" in capsys.readouterr().err


def test_a_format_that_needs_latex_is_refused_before_the_episode(tmp_path, capsys):
    import shutil

    if shutil.which("xelatex"):
        pytest.skip("LaTeX is installed: .pgf can be written here")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--out", str(tmp_path / "e.pgf"), "--size", "8", "--objects", "1"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "matplotlib cannot write .pgf" in captured.err and "steps" not in captured.out
    assert list(tmp_path.iterdir()) == []


def test_evaluating_absurdly_many_worlds_is_refused_with_an_estimate(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--n-worlds", "1000000000"])
    assert exit_info.value.code == 2
    assert "would take about" in capsys.readouterr().err


def test_train_never_overwrites_files_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "nets"
    out.mkdir()
    (out / "policy.json").write_text('{"my": "settings"}')  # a user's own file of that name
    for extra in ([], ["--force"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--out", str(out), "--perception-steps", "1", *extra])
        assert exit_info.value.code == 2
        assert "policy.json, which is not a network saved by" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["policy.json"]
    assert (out / "policy.json").read_text() == '{"my": "settings"}'


def test_train_replaces_its_own_networks_only_with_force(tmp_path, capsys):
    import shutil

    from neurosymbolic.checkpoint import SHIPPED

    out = tmp_path / "nets"
    out.mkdir()
    for name in ("perception.json", "perception.safetensors"):
        shutil.copy(SHIPPED / name, out / name)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(SystemExit):
        main(["train", "--out", str(out), "--perception-steps", "1"])
    assert "already holds a trained perception network" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_train_checks_every_flag_before_training_and_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "nets"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(out), "--perception-steps", "1", "--policy-steps", "0"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "--policy-steps must be >= 1" in captured.err
    assert "perception" not in captured.out  # refused before the first network was trained
    assert list(tmp_path.iterdir()) == []  # not even the folders of --out
