"""The one exception type for mistakes in what the user asked for.

A :class:`UserError` is reported by the command line in one line (``error: ...``, exit status 2) without a
traceback: it names the bad value and the valid options. Every other exception is a bug in dd-bench (or in a
dependency) and keeps its traceback, with a line saying where to report it.

``UserError`` subclasses ``ValueError`` so library callers that catch ``ValueError`` keep working;
:class:`UserFileNotFoundError` is also a ``FileNotFoundError`` for missing inputs (data, sets, weights).
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input: an unknown option, an impossible value, a file that is not what it should be."""


class UserFileNotFoundError(UserError, FileNotFoundError):
    """An input the user pointed at (a data root, a synthetic set, a weights file) does not exist."""


REPORT_BUGS = ("this is a bug in dd-bench, not in your command; please report it with the command line and the "
               "traceback above")
