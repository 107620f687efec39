"""The composed config in run records: converted once, by the entry point, to plain data.

``config_for_record`` resolves the config's interpolations (as written where one does not
resolve, so a run that failed on one still gets its record) and redacts secrets;
``redact_hydra_dir`` redacts the copies Hydra keeps in ``<run>/.hydra``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from dhs.provenance import REDACTED, SECRET_ASSIGNMENT, SECRET_PATTERN, redact, redact_argv


def config_for_record(cfg: Any) -> dict:
    """The resolved config, secrets redacted; as written when an interpolation does not resolve."""
    try:
        return redact(OmegaConf.to_container(cfg, resolve=True))
    except (InterpolationResolutionError, MissingMandatoryValue):
        return redact(OmegaConf.to_container(cfg, resolve=False))


#: A line of Hydra's YAML that names a secret but holds none: ``aws_secret_access_key: null``.
_NULL_SECRET_LINE = re.compile(r"\s*[\w.\-]+:\s*(?:null|~)\s*")


def _may_hold_secret(text: str) -> bool:
    """False only when redacting ``text`` would change nothing: no ``key=value`` assignment of a
    secret and every line that names one is ``<key>: null``."""
    if SECRET_ASSIGNMENT.search(text):
        return True
    return any(SECRET_PATTERN.search(line) and not _NULL_SECRET_LINE.fullmatch(line)
               for line in text.splitlines())


def redact_hydra_dir(run_dir: Path) -> None:
    """Redact secrets in the copies Hydra keeps in ``<run>/.hydra`` (config, overrides, hydra)."""
    hydra_dir = Path(run_dir) / ".hydra"
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        path = hydra_dir / name
        if not path.is_file():
            continue
        text = path.read_text()
        if not _may_hold_secret(text):  # the usual case: the config names its (null) AWS keys
            continue
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        data = redact_argv(data) if isinstance(data, list) else _redact_deep(data)
        text = SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}={REDACTED}", OmegaConf.to_yaml(OmegaConf.create(data)))
        path.write_text(text)


def _redact_deep(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: (REDACTED if SECRET_PATTERN.search(str(k)) and v is not None else _redact_deep(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        if all(isinstance(v, str) for v in obj):
            return redact_argv(obj)
        return [_redact_deep(v) for v in obj]
    return obj
