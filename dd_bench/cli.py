"""Moved to :mod:`dd_bench.app.cli`; this old import path keeps working (CHANGELOG, "Moved"), as the entry point of
installs made before the move and as ``python -m dd_bench.cli``."""

import sys
from typing import TYPE_CHECKING

from dd_bench.app.cli import (
    HELP_FLAGS,
    __getattr__,  # noqa: F401  (``run``, imported when first asked for: it imports torch)
    main,
    method_option_error,
    override_type_error,
    print_help,
    split_task,
)

if TYPE_CHECKING:
    from dd_bench.app.tasks import run

__all__ = ["HELP_FLAGS", "main", "method_option_error", "override_type_error", "print_help", "run", "split_task"]

if __name__ == "__main__":
    sys.exit(main())
