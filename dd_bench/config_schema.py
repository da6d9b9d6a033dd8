"""Moved to :mod:`dd_bench.app.config_schema`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.app.config_schema import (
    TASK_CONFIGS,
    TASKS,
    DatasetSchema,
    DDBenchSchema,
    DemoSchema,
    EvalSchema,
    FullDataRow,
    LoggerSchema,
    WandbMode,
    method_schema,
    register_schemas,
)

__all__ = ["TASK_CONFIGS", "TASKS", "DatasetSchema", "DDBenchSchema", "DemoSchema", "EvalSchema", "FullDataRow",
           "LoggerSchema", "method_schema", "register_schemas", "WandbMode"]
