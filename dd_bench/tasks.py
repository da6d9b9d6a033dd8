"""Moved to :mod:`dd_bench.app.tasks`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.app.tasks import (
    LOGGERS,
    DistillPlan,
    check_image_store_of,
    check_models,
    evaluation_real,
    job_config,
    label_sources_of,
    load_real,
    plan_distill,
    protocol_of,
    run,
    task_demo,
    task_distill,
    task_evaluate,
    task_leaderboard,
    task_relabel,
    task_report,
    task_run,
)

__all__ = ["LOGGERS", "check_image_store_of", "check_models", "DistillPlan", "evaluation_real", "job_config",
           "label_sources_of", "load_real", "plan_distill", "protocol_of", "run", "task_demo", "task_distill",
           "task_evaluate", "task_leaderboard", "task_relabel", "task_report", "task_run"]
