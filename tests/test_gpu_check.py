"""The GPU check is prepared on the CPU: what it runs exists, and it never writes into an old report."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def test_every_test_file_and_lesson_it_runs_exists():
    for name in gpu_check.UNIT_TESTS:
        assert (ROOT / "tests" / name).is_file(), name
    for prefix in gpu_check.LESSONS:
        assert len(list((ROOT / "notebooks").glob(f"{prefix}*.ipynb"))) == 1, prefix


def test_out_folder_must_be_new_or_empty(tmp_path):
    assert gpu_check.check_out_folder(tmp_path / "new" / "report").is_dir()
    assert gpu_check.check_out_folder(tmp_path / "new" / "report").is_dir()  # empty is fine
    (tmp_path / "new" / "report" / "log.txt").write_text("an older run")
    with pytest.raises(SystemExit, match="not an empty folder"):
        gpu_check.check_out_folder(tmp_path / "new" / "report")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit, match="help: name a new folder"):
        gpu_check.check_out_folder(tmp_path / "file")


def test_lesson_status_reads_run_courses_summary():
    rows = "lesson  seconds  status key result\n----\n{}\ntotal  12.0\n"
    ok = "04_minigpt      12.0  ok         text validation loss 4.48 -> 3.06"
    failed = "05_fusion      3.1  FAILED: ValueError: no kernel"
    assert gpu_check.lesson_status(rows.format(ok)) == ("ok", "text validation loss 4.48 -> 3.06")
    assert gpu_check.lesson_status(rows.format(failed)) == ("FAILED: ValueError: no kernel", "")
    assert gpu_check.lesson_status("lesson\n----\ntotal 0\n") == ("no result", "")
