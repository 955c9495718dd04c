"""Exercise checkers for the minigpt lessons (01-07), one module a lesson.

A checker runs the learner's function beside the package's reference on random inputs and
answers in plain words: which input, expected against got, the largest difference, a hint. The
shared machinery is in `course.checks`; lessons import every checker from here: ``from minigpt.checks import
check_causal_mask``.
"""

from course.checks import (
    CheckResult,
    ExerciseFailed,
    checker,
    compare,
    run_learner,
    to_numpy,
)
from minigpt.checks.lesson01 import (
    check_mlp_backward,
    check_sgd_step,
    check_square_loss_grads,
    reference_mlp_backward,
    reference_sgd_step,
    reference_square_loss_grads,
)
from minigpt.checks.lesson02 import (
    check_causal_mask,
    check_multi_head_attention,
    reference_causal_mask,
    reference_multi_head_attention,
)
from minigpt.checks.lesson03 import (
    check_block_forward,
    check_count_params,
    reference_block_forward,
    reference_count_params,
)
from minigpt.checks.lesson04 import (
    check_adamw_update,
    check_clip_scale,
    check_cross_entropy,
    check_learning_rate,
    reference_adamw_update,
    reference_clip_scale,
    reference_cross_entropy,
    reference_learning_rate,
)
from minigpt.checks.lesson05 import (
    check_count_kernels,
    check_fused_standardize,
    check_rmse_one_kernel,
    reference_count_kernels,
    reference_fused_standardize,
    reference_rmse_one_kernel,
)
from minigpt.checks.lesson06 import (
    check_gelu_kernel,
    check_logsumexp,
    check_softplus,
    reference_gelu_backward,
    reference_gelu_forward,
    reference_gelu_kernel,
    reference_logsumexp,
    reference_softplus,
)
from minigpt.checks.lesson07 import (
    check_decode_step,
    check_positions_processed,
    check_steady_tokens_per_second,
    reference_decode_step,
    reference_positions_processed,
    reference_steady_tokens_per_second,
)

__all__ = [
    "reference_steady_tokens_per_second",
    "reference_positions_processed",
    "reference_decode_step",
    "check_steady_tokens_per_second",
    "check_positions_processed",
    "check_decode_step",
    "CheckResult",
    "check_mlp_backward",
    "reference_mlp_backward",
    "check_multi_head_attention",
    "reference_multi_head_attention",
    "check_adamw_update",
    "check_clip_scale",
    "check_learning_rate",
    "reference_adamw_update",
    "reference_clip_scale",
    "reference_learning_rate",
    "ExerciseFailed",
    "check_block_forward",
    "check_causal_mask",
    "check_count_kernels",
    "check_count_params",
    "check_cross_entropy",
    "check_fused_standardize",
    "check_logsumexp",
    "check_rmse_one_kernel",
    "check_sgd_step",
    "check_softplus",
    "check_square_loss_grads",
    "check_gelu_kernel",
    "checker",
    "compare",
    "reference_block_forward",
    "reference_causal_mask",
    "reference_count_kernels",
    "reference_count_params",
    "reference_cross_entropy",
    "reference_logsumexp",
    "reference_rmse_one_kernel",
    "reference_sgd_step",
    "reference_softplus",
    "reference_square_loss_grads",
    "reference_fused_standardize",
    "reference_gelu_backward",
    "reference_gelu_forward",
    "reference_gelu_kernel",
    "run_learner",
    "to_numpy",
]
