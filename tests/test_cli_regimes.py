"""The command line's regimes, ablation and heuristics print what they promise, and a flag the
user sets replaces the regime's value instead of being replaced by it."""

from dataclasses import replace

import pytest

from neurosymbolic.__main__ import build_parser, chosen_regime, main
from neurosymbolic.evaluate import REGIMES


def test_evaluate_hard_regime_ablation(capsys):
    main(["evaluate", "--regime", "hard", "--ablation", "--n-worlds", "1", "--seed", "2"])
    out = capsys.readouterr().out
    assert "hard regime" in out and "budget 1.25x optimal" in out and "20x20" in out
    for name in ["hybrid", "no perception", "no policy", "no monitoring", "95% CI"]:
        assert name in out


def test_evaluate_flags_override_the_regime(capsys):
    main(["evaluate", "--n-worlds", "1", "--noise", "0.3", "--budget", "2", "--ablation"])
    out = capsys.readouterr().out
    assert "default regime" in out and "noise 0.3" in out and "budget 2.0x" in out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run"], REGIMES["default"]),
        (["run", "--regime", "hard"], REGIMES["hard"]),
        (["run", "--regime", "hard", "--size", "8"], replace(REGIMES["hard"], size=8)),
        # 0.8 is the default regime's noise: set by the user, it still wins over hard's 0.6
        (["run", "--noise", "0.8", "--regime", "hard"], replace(REGIMES["hard"], noise=0.8)),
        (["run", "--slip", "0.2"], replace(REGIMES["default"], slip=0.2)),
        (
            ["evaluate", "--regime", "hard", "--noise", "0.3", "--budget", "2"],
            replace(REGIMES["hard"], noise=0.3, budget=2.0),
        ),
    ],
)
def test_a_flag_the_user_sets_wins_over_the_regime(args, expected):
    assert chosen_regime(build_parser().parse_args(args)) == expected


def test_heuristics_is_its_own_command(capsys):
    main(["heuristics", "--n-maps", "2"])
    out = capsys.readouterr().out
    assert out.startswith("2 generated 32x32 maps, seed 0")
    for name in ["A* (Manhattan)", "weighted A* w=1.5", "learned heuristic", "true cost-to-go"]:
        assert name in out


def test_evaluate_has_no_heuristics_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--heuristics"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --heuristics" in capsys.readouterr().err


def test_run_hard_regime(tmp_path, capsys):
    out = tmp_path / "episode.png"
    main(["run", "--regime", "hard", "--seed", "1", "--out", str(out)])
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "step budget" in capsys.readouterr().out
