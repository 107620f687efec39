"""Errors a user can fix (bad input, failed checks, stale outputs).

Every one subclasses :class:`DhsError`; the CLI prints its message as one line (no traceback)
and exits with status 2. The message names the file, key or value and what to run or change.
Errors that live with the code that raises them subclass DhsError too (``InputTableError`` in
dhs.io.tables, ``BankError`` in dhs.cosmos.bank, ``BrickFileError`` in dhs.survey.fits_checks,
``EmrError`` in dhs.executors.emr.submit, ...). Any other exception is a bug and keeps its
traceback. ``RunFailedError`` (rows or bricks failed for good) exits with status 3 instead.
"""

from __future__ import annotations


class DhsError(RuntimeError):
    """An error the user can fix; its message names the file, column or value and the fix."""


class ConfigError(DhsError, ValueError):
    """A configuration key or value is invalid; the message names the key, the allowed values
    and the file (or command-line override) the value came from."""


class InputTableError(DhsError, ValueError):
    """An input table is missing, unreadable or lacks a column; the message names the fix."""


class MissingInputError(DhsError, FileNotFoundError):
    """An input a stage needs does not exist (yet); the message names it and the stage to run."""


class RunFailedError(DhsError):
    """A stage ran to its end, but rows or bricks failed for good (after retries), or every row
    failed. The stage has printed its table of reasons (and the command that retries what can be
    retried) and committed what it made; the CLI prints this one line and exits with status 3."""

    exit_code = 3

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = summary
