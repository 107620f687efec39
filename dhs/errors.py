"""Errors a user can fix (bad input, failed checks, stale outputs): the CLI prints them without a
traceback and exits with status 2."""


class DhsError(RuntimeError):
    """An error the user can fix; its message names the file, column or value and the fix."""
