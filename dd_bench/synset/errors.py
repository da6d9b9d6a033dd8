"""The error of a set on disk, beneath every module of the set format (the composers raise it too)."""

from dd_bench.errors import UserError


class SynsetError(UserError):
    """A synthetic set on disk is missing, corrupted, foreign or of an unsupported version."""
