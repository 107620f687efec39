"""The run context handed to every stage: where the run lives, the console, the record writer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from rich.console import Console


@dataclass
class RunContext:
    """What a stage needs beyond its config: run directory, console, Hydra choices/overrides."""

    run_dir: Path
    console: Console
    overrides: list[str] = field(default_factory=list)
    choices: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def record_dataset(self, uri: str, cfg: Any, *, inputs: Optional[dict] = None,
                       counts: Optional[dict] = None, extra: Optional[dict] = None) -> dict:
        """Write ``_dhs_record.json`` next to a dataset, with ``cfg`` as plain data (see
        dhs.provenance.write_dataset_record)."""
        from dhs.provenance import write_dataset_record

        return write_dataset_record(uri, cfg, self, inputs=inputs or {}, counts=counts or {},
                                    extra=extra or {})

    def print(self, *args: Any, **kwargs: Any) -> None:
        self.console.print(*args, **kwargs)


def make_context(run_dir: str | Path | None = None) -> RunContext:
    """A context outside Hydra (tests, notebooks): run_dir defaults to a temporary folder."""
    import tempfile

    from dhs.console import console

    rd = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="dhs-run-"))
    rd.mkdir(parents=True, exist_ok=True)
    return RunContext(run_dir=rd, console=console())
