"""Exercise checkers for the neurosymbolic lessons (08-11).

Each checker runs the learner's function beside the package's reference on small worlds or noisy
maps and answers in plain words: which input, expected against got, and a hint. The machinery
(`checker`, `compare`, `run_learner`, `ExerciseFailed`, `CheckResult`) is shared with the minigpt
lessons and lives in `minigpt.checks`.
"""

from minigpt.checks import CheckResult, ExerciseFailed, checker, compare, run_learner

__all__ = ["CheckResult", "ExerciseFailed", "checker", "compare", "run_learner"]


# ---------------------------------------------------------------------------------------------
# Lesson 08 · Grid worlds and A*
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Lesson 09 · Neural perception
# ---------------------------------------------------------------------------------------------
