"""Moved to :mod:`dd_bench.app.input_checks`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.app.input_checks import (
    GROUPS,
    LONG_LIST,
    check_demo_keys,
    check_distill_keys,
    check_eval,
    check_evaluation_keys,
    check_ipc,
    check_method,
    check_model_list,
    check_protocol,
    check_references,
    check_scores,
    check_seeds,
    check_task_inputs,
    check_validation,
    group_choice_error,
)

__all__ = ["GROUPS", "LONG_LIST", "check_demo_keys", "check_distill_keys", "check_eval", "check_evaluation_keys",
           "check_ipc", "check_method", "check_model_list", "check_protocol", "check_references", "check_scores",
           "check_seeds", "check_task_inputs", "check_validation", "group_choice_error"]
