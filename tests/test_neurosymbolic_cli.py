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


def test_bad_values_exit_with_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--n-worlds", "0"])
    assert exit_info.value.code == 2
    assert "help:" in capsys.readouterr().err


def test_every_flag_has_help():
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {"run", "evaluate", "train"}
    for sub in commands.choices.values():
        for action in sub._actions:
            assert action.help, f"{action.option_strings} has no help"
