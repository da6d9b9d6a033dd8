"""The command line and what it reads: the top layer, and the only one that sees a config object.

``cli.py`` (the ``dd-bench`` entry point), ``tasks.py`` (one function per task: the composed config adapted to the
library's keyword-argument calls), ``demo.py``, ``exchange_tasks.py`` (export, import), ``input_checks.py`` (every
key a task reads, before any work), ``config_schema.py`` / ``compose.py`` / ``presets.py`` (the Hydra configs),
``help_text.py`` / ``help_manifest.py`` (``--help`` without torch) and ``sweep_board.py`` (a multirun's board).
Nothing here is imported at ``import dd_bench``; nothing below this package imports it.
"""
