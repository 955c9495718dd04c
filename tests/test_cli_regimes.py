"""The command line's regime, ablation and heuristic flags print what they promise."""

from neurosymbolic.__main__ import main


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


def test_evaluate_heuristics(capsys):
    main(["evaluate", "--heuristics", "--n-worlds", "2"])
    out = capsys.readouterr().out
    for name in ["A* (Manhattan)", "weighted A* w=1.5", "learned heuristic", "true cost-to-go"]:
        assert name in out


def test_run_hard_regime(tmp_path, capsys):
    out = tmp_path / "episode.png"
    main(["run", "--regime", "hard", "--seed", "1", "--out", str(out)])
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "step budget" in capsys.readouterr().out
