"""Rich progress bars and summary tables shared by every stage.

Titles, headers, cells and progress descriptions are printed as written: brackets in values
(``bands=[g,r,z]``, ``s3://b/[x]``) are escaped, never taken for Rich markup.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator, Mapping, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

_CONSOLE: Console | None = None


def console() -> Console:
    """The process-wide console (stderr when stdout is not a terminal keeps data pipes clean)."""
    global _CONSOLE
    if _CONSOLE is None:
        _CONSOLE = Console(stderr=not sys.stdout.isatty() and False)
    return _CONSOLE


@contextlib.contextmanager
def progress(con: Console | None = None, *, transient: bool = False) -> Iterator[Progress]:
    """A progress bar with count, elapsed and remaining time."""
    bar = Progress(
        TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=con or console(), transient=transient,
        disable=False,
    )
    with bar:
        yield bar


def summary_table(title: str, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
                  columns: Sequence[str] | None = None) -> Table:
    """A rich table from a mapping (two columns) or a list of row mappings (text escaped)."""
    table = Table(title=escape(title), title_justify="left")
    if isinstance(rows, Mapping):
        table.add_column("quantity")
        table.add_column("value", justify="right")
        for k, v in rows.items():
            table.add_row(escape(str(k)), _fmt(v))
        return table
    cols = list(columns or (rows[0].keys() if rows else []))
    for c in cols:
        table.add_column(escape(str(c)),
                         justify="right" if rows and isinstance(rows[0].get(c), (int, float)) else "left")
    for r in rows:
        table.add_row(*[_fmt(r.get(c)) for c in cols])
    return table


def _fmt(v: Any) -> str:
    """A cell: floats to 4 significant digits, everything escaped for Rich."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(str(v))


class TransferProgress:
    """A bar over bricks or targets (``label``) with files, MB and MB/s (silent without a console)."""

    def __init__(self, con: Console | None, total: int, label: str = "4b bricks"):
        self.con, self.total, self.label = con, total, label

    def __enter__(self) -> tuple[Any, Any]:
        self.bar = Progress(
            TextColumn(f"[bold]{escape(self.label)}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[files]} files  {task.fields[mb]:.1f} MB  "
                       "{task.fields[mbps]:.1f} MB/s"),
            TimeElapsedColumn(), console=self.con, disable=self.con is None,
        )
        self.bar.__enter__()
        task = self.bar.add_task("bricks", total=self.total, files=0, mb=0.0, mbps=0.0)
        return self.bar, task

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)
