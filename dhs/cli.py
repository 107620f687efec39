"""The ``dhs`` entry point: one ``@hydra.main`` that dispatches ``cfg.stage.name`` to a stage.

    dhs stage=4c source=cosmos psf=moffat
    dhs -m stage=plan source=sersic,cosmos psf=moffat,gaussian

A mistake the user can fix (a :class:`dhs.errors.DhsError`, or a Hydra composition error: an
unknown option, key or type) is printed as one line on stderr and exits with status 2, without a
traceback; in a sweep every failed job prints its own line. Anything else is a bug and keeps its
traceback (exit 1). A stage that ends with rows or bricks failed for good prints its table of
reasons and exits with status 3 (``dhs.errors.RunFailedError``). ``HYDRA_FULL_ERROR=1`` shows the
traceback of every error.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional

import hydra
from omegaconf import DictConfig, OmegaConf

from dhs.config import schema as dhs_config  # registers the structured configs
from dhs.errors import DhsError

log = logging.getLogger("dhs")

#: Exit status of an error the user can fix (a bug exits with 1, as Python does).
EXIT_USER_ERROR = 2
#: Exit status of a stage that ran to its end with rows or bricks failed for good
#: (``dhs.errors.RunFailedError``; its table of reasons is printed above the error line).
EXIT_RUN_FAILED = 3


def conf_dir() -> str:
    """Absolute path of the packaged config tree (``dhs.conf``; ``conf/`` in the source tree)."""
    spec = importlib.util.find_spec("dhs.conf")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("dhs.conf is missing: reinstall dhs")
    return str(Path(list(spec.submodule_search_locations)[0]).resolve())


def user_message(exc: BaseException) -> Optional[str]:
    """The one-line message of an error the user can fix; None for a bug."""
    if isinstance(exc, DhsError):
        return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    from dhs.config.messages import explain

    return explain(exc, sys.argv[1:])


def print_error(message: str) -> None:
    """``dhs: <message>`` on stderr, one line, as written (no markup), bold red on a terminal."""
    text = f"dhs: {message}"
    if sys.stderr.isatty():
        text = f"\x1b[1;31m{text}\x1b[0m"
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _context(cfg: DictConfig) -> Any:
    from hydra.core.hydra_config import HydraConfig

    from dhs.console import console
    from dhs.context import RunContext

    hc = HydraConfig.get()
    choices = {k: v for k, v in hc.runtime.choices.items() if v is not None}
    choices["stage"] = str(cfg.stage.name)  # the stage id, also when an alias chose it
    overrides = OmegaConf.to_container(hc.overrides.task, resolve=False)  # as typed: ${...} kept
    return RunContext(run_dir=Path(hc.runtime.output_dir), console=console(),
                      overrides=list(overrides), choices=choices)


def run_stage(cfg: DictConfig, ctx: Any) -> dict:
    """Validate ``cfg`` and run its stage (or submit it to EMR with cluster=emr)."""
    from dhs import stages
    from dhs.io import storage
    from dhs.stages.settings import storage_settings

    dhs_config.check(cfg)
    prepare_paths(cfg, ctx)
    storage.configure_from(storage_settings(cfg))
    name = cfg.stage.name
    if cfg.cluster.name == "emr" and name != "plan":
        from dhs.executors.emr.submit import submit
        from dhs.config.records import config_for_record
        from dhs.stages.settings import emr_settings

        return submit(emr_settings(cfg), config_for_record(cfg), list(ctx.overrides), ctx.console)
    return stages.load(name).run(cfg, ctx)


def prepare_paths(cfg: DictConfig, ctx: Any) -> None:
    """Relative local paths made absolute in the driver when the executors run elsewhere
    (dhs.config.paths)."""
    from rich.markup import escape

    from dhs.config.paths import absolute_paths, note

    changed = absolute_paths(cfg)
    if changed:
        ctx.console.print(f"[yellow]{escape(note(cfg, changed))}[/yellow]", soft_wrap=True)


def _job_label() -> Optional[str]:
    """'#<n>' inside a sweep's job (Hydra's log lists each job's overrides), None in a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        hc = HydraConfig.get()
    except ValueError:
        return None
    if hc.mode != RunMode.MULTIRUN:
        return None
    return f"#{hc.job.num}"


@hydra.main(version_base=None, config_path=conf_dir(), config_name="config")
def _app(cfg: DictConfig) -> Any:
    from dhs import provenance
    from dhs.config import records

    ctx = _context(cfg)
    record = dict(overrides=ctx.overrides, choices=ctx.choices, started=time.time())
    status, error, summary = "ok", None, None
    try:
        records.redact_hydra_dir(ctx.run_dir)
        provenance.write_run_record(ctx.run_dir, provenance.run_record(records.config_for_record(cfg),
                                                                       **record))
        summary = run_stage(cfg, ctx)
    except KeyboardInterrupt:
        status, error = "interrupted", "KeyboardInterrupt"
        raise
    except Exception as exc:
        message = user_message(exc)
        status = "failed"
        summary = getattr(exc, "summary", None)
        error = (f"{type(exc).__name__}: {message}" if message is not None
                 else "".join(traceback.format_exception(exc)))
        job = _job_label()
        if message is not None and job is not None:  # a sweep reports every failed job
            print_error(f"job {job}: {message}")
            exc.dhs_reported = True  # type: ignore[attr-defined]
        raise
    finally:
        rec = provenance.run_record(records.config_for_record(cfg), ended=time.time(), status=status,
                                    error=error, **record)
        if summary is not None:
            rec["summary"] = summary
        provenance.write_run_record(ctx.run_dir, rec)
    return summary


class _HeldJobLine:
    """stderr while Hydra runs. Hydra writes 'Error executing job with overrides: [...]' before it
    re-raises a job's error; the line is held until ``main`` knows the error: dropped for a user
    error (its own line says it all), written for a bug (before the traceback)."""

    PREFIX = "Error executing job with overrides:"

    def __init__(self, stream: Any) -> None:
        self.stream, self.held = stream, ""

    def write(self, text: str) -> int:
        if text.startswith(self.PREFIX):
            self.held += text
            return len(text)
        self.release()
        return self.stream.write(text)

    def release(self) -> None:
        if self.held:
            self.stream.write(self.held)
            self.held = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


#: Overrides and flags through which a run could set ``hydra.mode`` (none of dhs's own config
#: files sets it).
_MODE_SOURCES = ("hydra.mode", "hydra.searchpath", "hydra/")
_CONFIG_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn")


def skip_mode_composition() -> None:
    """Hydra composes the whole config once only to read ``hydra.mode`` before it composes it
    again for the run (a third of the CPU of ``dhs stage=plan``). dhs's config files never set
    ``hydra.mode``, so unless an override or another config could set it, the answer is None
    (Hydra's default: run, or sweep with ``-m``) without that composition."""
    from hydra._internal.hydra import Hydra

    if getattr(Hydra.get_mode, "dhs_light", False):
        return
    composed = Hydra.get_mode

    def get_mode(self: Any, config_name: Optional[str], overrides: list[str]) -> Any:
        argv = sys.argv[1:]
        if any(src in o for o in overrides for src in _MODE_SOURCES) or \
                any(a.split("=")[0] in _CONFIG_FLAGS for a in argv):
            return composed(self, config_name, overrides)
        return None

    get_mode.dhs_light = True  # type: ignore[attr-defined]
    Hydra.get_mode = get_mode  # type: ignore[method-assign]


def main() -> None:
    """Console-script entry point: Hydra's app, with user errors as one line and exit 2."""
    skip_mode_composition()
    previous = os.environ.get("HYDRA_FULL_ERROR")
    full = previous == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing; we decide here
    held = _HeldJobLine(sys.stderr)
    sys.stderr = held  # type: ignore[assignment]
    try:
        _app()
    except Exception as exc:
        message = None if full else user_message(exc)
        if message is None:
            held.release()
            raise
        held.held = ""
        sys.stderr = held.stream
        if not getattr(exc, "dhs_reported", False):
            print_error(message)
        sys.exit(getattr(exc, "exit_code", EXIT_USER_ERROR))
    finally:
        held.release()
        sys.stderr = held.stream
        if previous is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


if __name__ == "__main__":  # pragma: no cover
    main()
