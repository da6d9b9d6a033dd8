"""Distil, evaluate, record: the library functions the tasks call, with explicit keyword arguments.

Nothing here reads a config object (:mod:`dd_bench.app` adapts the config to these calls). Every output is keyed by
its config (:mod:`dd_bench.results.keys`): a set whose directory already holds this set hash, or a record whose file
already exists, is reused unless ``rerun`` is set, so a killed sweep resumes where it stopped.
"""
