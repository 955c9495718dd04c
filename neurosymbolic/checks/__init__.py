"""Exercise checkers for the neurosymbolic lessons (08-12), one module a lesson.

Each checker runs the learner's function beside the package's reference on small worlds or noisy
maps and answers in plain words: which input, expected against got, and a hint. The machinery is
shared with the minigpt lessons (`course.checks`).
"""

from course.checks import (
    CheckResult,
    ExerciseFailed,
    checker,
    compare,
    run_learner,
    to_numpy,
)
from neurosymbolic.checks.lesson08 import (
    check_successors,
    check_worlds,
    exact_costs_to_go,
    plan_with_closed_key,
    plan_with_successors,
    reference_astar,
    reference_successors,
)
from neurosymbolic.checks.lesson08_astar import check_astar
from neurosymbolic.checks.lesson09 import (
    check_mean_filter,
    check_perception_loss,
    check_training,
    reference_mean_filter,
    reference_perception_loss,
    reference_training,
)
from neurosymbolic.checks.lesson10 import (
    check_imitation_step,
    check_local_view,
    check_plan_examples,
    reference_imitation_step,
    reference_local_view,
    reference_plan_examples,
)
from neurosymbolic.checks.lesson11 import (
    check_needs_replan,
    check_recovery_move,
    check_sense,
    check_success_and_optimality,
    reference_needs_replan,
    reference_recovery_move,
    reference_sense,
    reference_success_and_optimality,
)
from neurosymbolic.checks.lesson12 import check_asymmetric_loss, reference_asymmetric_loss

__all__ = [
    "reference_needs_replan",
    "CheckResult",
    "ExerciseFailed",
    "check_asymmetric_loss",
    "check_imitation_step",
    "check_astar",
    "check_local_view",
    "check_mean_filter",
    "check_perception_loss",
    "check_needs_replan",
    "check_plan_examples",
    "check_recovery_move",
    "check_sense",
    "check_success_and_optimality",
    "check_successors",
    "check_training",
    "check_worlds",
    "checker",
    "compare",
    "exact_costs_to_go",
    "plan_with_closed_key",
    "plan_with_successors",
    "reference_asymmetric_loss",
    "reference_imitation_step",
    "reference_astar",
    "reference_local_view",
    "reference_mean_filter",
    "reference_perception_loss",
    "reference_plan_examples",
    "reference_recovery_move",
    "reference_sense",
    "reference_success_and_optimality",
    "reference_successors",
    "reference_training",
    "run_learner",
    "to_numpy",
]
