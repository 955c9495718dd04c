"""notebooks/run_course.py stores outputs as a learner sees them and runs its kernels quietly."""

import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("run_course", ROOT / "notebooks" / "run_course.py")
run_course = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_course)

# A progress bar as tqdm writes it to a notebook: many updates, each starting with a carriage return.
BAR = """import sys, time
for step in range(1, 6):
    sys.stderr.write(f"\\rtrain: {step}/5")
    sys.stderr.flush()
    time.sleep(0.05)
sys.stderr.write("\\n")
print("Key result: five steps")"""


def test_lesson_stores_the_last_bar_line_and_its_key_result(tmp_path, capfd):
    lesson = tmp_path / "99_bar.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(BAR)]), lesson)
    out = tmp_path / "out"
    out.mkdir()

    seconds, status, key = run_course.run_lesson(lesson, out, timeout=120, cwd=tmp_path)

    assert (status, key) == ("ok", "five steps") and seconds > 0
    outputs = nbformat.read(out / lesson.name, as_version=4).cells[0].outputs
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert stderr == ["train: 5/5\n"]
    assert not list(out.glob("*.part")), "a partial file was left behind"
    assert "without encryption" not in capfd.readouterr().err
