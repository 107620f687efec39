"""Local paths for executors that run elsewhere: relative paths made absolute in the driver.

On a Spark master other than ``local``/``local[...]`` (a standalone ``spark://`` cluster,
``local-cluster[...]``, YARN, Kubernetes) each executor runs in its own working directory, so a
relative ``paths.data_root`` would resolve there: rows would be written to the workers' scratch
folders and ``_SUCCESS`` to the driver's. ``absolute_paths(cfg)`` rewrites every relative local
path of the config (keys of ``PATH_KEYS``, and any key named ``*_root``, ``*_path``, ``*_dir``,
``*_url``) to an absolute one, in place, before the settings leave the driver. Keys that
interpolate another (``paths.cache_root: ${paths.data_root}/coadd_cache``) follow it.
The executors must then see those folders (a shared filesystem), or use ``s3://`` paths.
"""

from __future__ import annotations

import os
import re
from typing import Any

#: Keys holding a local path or URI, besides those named *_root, *_path, *_dir, *_url.
PATH_KEYS = ("source.bank_path", "manifest.parent", "manifest.bricks_with_region",
             "manifest.region_selections", "completeness.scores", "compact.dataset",
             "cosmos_bank.input", "targets", "parent.input")
_SUFFIXES = ("_root", "_path", "_dir", "_url")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def remote_executors(cfg: Any) -> bool:
    """True when the configured executors may run outside the driver's working directory."""
    if str(cfg.cluster.name) != "spark_local":
        return False
    master = str(cfg.cluster.get("spark_master") or "local[*]")
    return not (master == "local" or master.startswith("local["))


def _is_relative_local(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not _SCHEME.match(value) and not os.path.isabs(value)


def absolute_paths(cfg: Any) -> dict[str, str]:
    """With remote executors, make every relative local path of ``cfg`` absolute (in place);
    returns {key: new value}. Interpolated keys are left to follow their source."""
    if not remote_executors(cfg):
        return {}
    from omegaconf import OmegaConf, open_dict

    changed: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        for key in list(node.keys()):
            full = f"{prefix}{key}"
            if not prefix and key == "hydra":
                continue
            child = node._get_node(key)
            if OmegaConf.is_dict(child):
                if not child._is_missing() and not child._is_none():
                    walk(child, full + ".")
                continue
            if OmegaConf.is_list(child) or child._is_missing() or child._is_interpolation():
                continue
            if full != "paths.runs_root" and (full in PATH_KEYS or str(key).endswith(_SUFFIXES)):
                value = node[key]
                if _is_relative_local(value):
                    with open_dict(node):
                        node[key] = os.path.abspath(value)
                    changed[full] = node[key]

    walk(cfg, "")
    return changed


def note(cfg: Any, changed: dict[str, str]) -> str:
    """What ``absolute_paths`` did, for the console."""
    keys = ", ".join(f"{k}={v}" for k, v in changed.items())
    return (f"cluster.spark_master={cfg.cluster.spark_master}: executors run in their own folders, "
            f"so relative paths were made absolute ({keys}); the executors must see them "
            "(a shared filesystem), or use s3:// paths")
