"""Moved to :mod:`dd_bench.app.tasks`, which reads its config through :mod:`dd_bench.app.job`; the set's plan is
:mod:`dd_bench.pipeline.plan`'s and ``evaluation_real`` :mod:`dd_bench.data.validation`'s. This old import path keeps
working (CHANGELOG, "Moved")."""

from dd_bench.app.job import (
    check_image_store_of,
    check_models,
    job_config,
    label_sources_of,
    load_real,
    protocol_of,
)
from dd_bench.app.tasks import (
    LOGGERS,
    plan_distill,
    run,
    task_demo,
    task_distill,
    task_evaluate,
    task_leaderboard,
    task_relabel,
    task_report,
    task_run,
)
from dd_bench.data.validation import evaluation_real
from dd_bench.pipeline.plan import DistillPlan

__all__ = ["LOGGERS", "DistillPlan", "check_image_store_of", "check_models", "evaluation_real", "job_config",
           "label_sources_of", "load_real", "plan_distill", "protocol_of", "run", "task_demo", "task_distill",
           "task_evaluate", "task_leaderboard", "task_relabel", "task_report", "task_run"]
