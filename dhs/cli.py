"""The ``dhs`` entry point: one ``@hydra.main`` that dispatches ``cfg.stage.name`` to a stage.

    dhs stage=4c source=cosmos psf=moffat
    dhs -m stage=plan source=sersic,cosmos psf=moffat,gaussian
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from dhs.config import schema as dhs_config  # registers the structured configs
from dhs.errors import DhsError

log = logging.getLogger("dhs")


def conf_dir() -> str:
    """Absolute path of the packaged config tree (``dhs.conf``; ``conf/`` in the source tree)."""
    spec = importlib.util.find_spec("dhs.conf")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("dhs.conf is missing: reinstall dhs")
    return str(Path(list(spec.submodule_search_locations)[0]).resolve())




def _context(cfg: DictConfig) -> Any:
    from hydra.core.hydra_config import HydraConfig

    from dhs.context import RunContext
    from dhs.console import console

    hc = HydraConfig.get()
    return RunContext(
        run_dir=Path(hc.runtime.output_dir),
        console=console(),
        overrides=list(hc.overrides.task),
        choices={k: v for k, v in hc.runtime.choices.items() if v is not None},
    )


def run_stage(cfg: DictConfig, ctx: Any) -> dict:
    """Validate ``cfg`` and run its stage (or submit it to EMR with cluster=emr)."""
    from dhs import stages
    from dhs.io import storage
    from dhs.stages.settings import storage_settings

    dhs_config.check(cfg)
    storage.configure_from(storage_settings(cfg))
    name = cfg.stage.name
    if cfg.cluster.name == "emr" and name != "plan":
        from dhs.executors.emr.submit import submit
        from dhs.provenance import resolved_config
        from dhs.stages.settings import emr_settings

        return submit(emr_settings(cfg), resolved_config(cfg), list(ctx.overrides), ctx.console)
    return stages.load(name).run(cfg, ctx)


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        return False


@hydra.main(version_base=None, config_path=conf_dir(), config_name="config")
def _app(cfg: DictConfig) -> Any:
    from dhs import provenance
    from dhs.stages import StageNotAvailable

    ctx = _context(cfg)
    started = time.time()
    record = dict(overrides=ctx.overrides, choices=ctx.choices, started=started)
    status, error, summary = "ok", None, None
    try:
        provenance.redact_hydra_dir(ctx.run_dir)
        provenance.write_run_record(ctx.run_dir, provenance.run_record(cfg, **record))
        summary = run_stage(cfg, ctx)
    except (dhs_config.ConfigError, StageNotAvailable, DhsError, FileNotFoundError) as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        ctx.console.print(f"[bold red]dhs: {exc}[/bold red]")
    except KeyboardInterrupt:
        status, error = "interrupted", "KeyboardInterrupt"
        raise
    except Exception as exc:
        status, error = "failed", "".join(traceback.format_exception(exc))
        raise
    finally:
        rec = provenance.run_record(cfg, ended=time.time(), status=status, error=error, **record)
        if summary is not None:
            rec["summary"] = summary
        provenance.write_run_record(ctx.run_dir, rec)
        if status != "ok":
            ctx.console.print(f"[dim]run record: {ctx.run_dir / provenance.RUN_RECORD}[/dim]")
    if status != "ok":
        if _is_multirun():
            raise DhsError(error)
        sys.exit(2)
    return summary


def main() -> None:
    """Console-script entry point."""
    _app()


if __name__ == "__main__":  # pragma: no cover
    main()
