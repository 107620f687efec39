"""One-line messages for configuration mistakes: unknown keys and options (with a did-you-mean),
values of the wrong type, and Hydra's composition errors rewritten in the user's terms.

Messages name keys as the user writes them (``psf.beta``, ``source=cosmos``), never a schema.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from typing import Any, Optional, Sequence

from dhs.config.groups import GROUPS, fixed_name, schemas_of

_LIST_HINT = "a list"


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _group_of(full_key: str) -> Optional[str]:
    group = full_key.split(".", 1)[0]
    return group if group in GROUPS and "." in full_key else None


def option_label(group: str, cls: type) -> str:
    """How a user selects ``cls``: 'psf=moffat' for a schema that fixes its name, else 'grid'."""
    name = fixed_name(cls) if dataclasses.is_dataclass(cls) else None
    return f"{group}={name}" if name else group


def _root() -> type:
    from dhs.config.schema import DhsConfig

    return DhsConfig


def _hints(cls: type) -> dict[str, Any]:
    import dhs.config.groups
    import dhs.config.schema

    ns = {**vars(dhs.config.groups), **vars(dhs.config.schema)}
    try:
        return typing.get_type_hints(cls, globalns=ns)
    except Exception:  # an annotation that does not resolve: no type information
        return {}


def _child_classes(cls: type, key: str) -> list[type]:
    """The schemas a field of ``cls`` can hold (every option schema for a group field)."""
    if cls is _root() and key in GROUPS:
        return schemas_of(key)
    typ = _hints(cls).get(key)
    return [typ] if dataclasses.is_dataclass(typ) else []


def key_paths(cls: Optional[type] = None, prefix: str = "") -> list[str]:
    """Every key path the schemas declare (all options of every group), e.g. 'validate.target'."""
    cls = cls or _root()
    out: list[str] = []
    for key in _fields(cls):
        out.append(prefix + key)
        for child in _child_classes(cls, key):
            out += [p for p in key_paths(child, f"{prefix}{key}.") if p not in out]
    return out


def _close(word: str, candidates: Sequence[str]) -> Optional[str]:
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_key(full_key: str, node_cls: type, origin: Optional[str] = None) -> str:
    """A key that ``node_cls`` (the schema of its node) does not declare: what it could be."""
    parent, _, leaf = full_key.rpartition(".")
    where = f" ({origin})" if origin else ""
    group = _group_of(full_key) if parent and "." not in parent else None
    if group:
        label = option_label(group, node_cls)
        owners = [option_label(group, c) for c in schemas_of(group) if c is not node_cls and leaf in _fields(c)]
        if owners:
            return (f"{full_key} does not apply to {label}{where}; it is a key of {' and '.join(owners)}: "
                    f"remove it or choose {owners[0]}.")
        head = f"{full_key}: no such key for {label}{where}."
    else:
        head = f"{full_key}: no such key{where}."
    fields = _fields(node_cls)
    close = _close(leaf, fields)
    moved = [p for p in key_paths() if p.rsplit(".", 1)[-1] == leaf and p != full_key]
    if moved and not (close and parent):  # a key of another node: validate.target for target
        return f"{head} Did you mean {' or '.join(moved[:3])}?"
    if close:
        return f"{head} Did you mean {parent + '.' if parent else ''}{close}?"
    close = _close(full_key, key_paths())
    if close:
        return f"{head} Did you mean {close}?"
    if parent:
        return f"{head} Keys: {', '.join(fields)}."
    return f"{head} See `dhs --cfg job` for every key and `dhs --help` for the groups."


def _field_default(cls: Optional[type], key: str) -> Any:
    if not dataclasses.is_dataclass(cls):
        return None
    for f in dataclasses.fields(cls):
        if f.name == key:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                return f.default_factory()  # type: ignore[misc]
    return None


def _fmt(value: Any) -> str:
    """A value written as an override takes it: lists as [a,b], no quotes."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def as_list_hint(full_key: str, value: Any) -> str:
    """``bands=grz`` -> 'bands=[g,r,z]'; ``tier.stamp_sizes=64`` -> 'tier.stamp_sizes=[64]'."""
    text = _fmt(value)
    from dhs.config.checks import BANDS

    if full_key.rsplit(".", 1)[-1] == "bands" and text and all(c in BANDS for c in text):
        items = list(text)
    else:
        items = [t for t in text.split(",") if t] or [text]
    return f"{full_key}=[{','.join(items)}]"


_TYPE_WORDS = {"Float": "a number", "Integer": "an integer", "Boolean": "true or false",
               "String": "a string"}


def wrong_type(full_key: str, value: Any, msg: str, node_cls: Optional[type]) -> str:
    """A value Hydra could not assign to ``full_key``: what the key takes, with an example."""
    key = full_key.rsplit(".", 1)[-1]
    default = _field_default(node_cls, key)
    if "ListConfig, list or tuple" in msg:
        return f"{full_key}={_fmt(value)}: {full_key} is {_LIST_HINT}; write {as_list_hint(full_key, value)}."
    m = re.search(r"converted to (\w+)", msg)
    if m:
        what = _TYPE_WORDS.get(m.group(1), m.group(1).lower())
        example = f", e.g. {full_key}={_fmt(default)}" if default is not None else ""
        return f"{full_key}={_fmt(value)}: {full_key} takes {what}{example}."
    return f"{full_key}={_fmt(value)}: {_first_line(msg)}."


def _first_line(text: str) -> str:
    return str(text).strip().splitlines()[0].rstrip(".") if str(text).strip() else ""


def _one_line(text: str) -> str:
    """Hydra's multi-line messages on one line, without OmegaConf's node details."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()
             and not ln.strip().startswith(("full_key:", "object_type=", "reference_type="))]
    return " ".join(ln if ln[-1] in ".:;?!" or i == len(lines) - 1 else ln + ";"
                    for i, ln in enumerate(lines))


def _override_for(key: str, overrides: Sequence[str]) -> Optional[str]:
    for ov in overrides:
        if ov.lstrip("+~").split("=", 1)[0] == key:
            return ov
    return None


def missing_option(missing: str, options: Sequence[str], where: str = "") -> str:
    """``source=cosmo`` -> 'source=cosmo: no such option. Did you mean source=cosmos? ...'."""
    group, _, option = missing.rpartition("/")
    opts = sorted(o for o in options if not o.endswith("_schema"))
    if not group:
        close = _close(option, options)
        hint = f" Did you mean {close}?" if close else ""
        return f"{where}could not find config {option!r}.{hint}"
    close = _close(option, opts)
    hint = f" Did you mean {group}={close}?" if close else ""
    return f"{where}{group}={option}: no such option.{hint} Options: {', '.join(opts)}."


def _schema_named(name: str) -> Optional[type]:
    import dhs.config.groups
    import dhs.config.schema

    for module in (dhs.config.groups, dhs.config.schema):
        cls = getattr(module, name, None)
        if dataclasses.is_dataclass(cls):
            return cls
    return None


def _in_file(text: str) -> Optional[str]:
    """An error in a YAML file, which Hydra reports as text only (no exception chained)."""
    full = re.search(r"full_key: (\S+)", text)
    if not full:
        return None
    key = re.search(r"Key '[^']+' not in '(\w+)'", text)
    if key and _schema_named(key.group(1)):
        return unknown_key(full.group(1), _schema_named(key.group(1)))  # type: ignore[arg-type]
    value = re.search(r"Value '(.*)' of type '\w+' could not be converted to \w+", text)
    node = re.search(r"object_type=(\w+)", text)
    if value:
        return wrong_type(full.group(1), value.group(1), text, _schema_named(node.group(1)) if node else None)
    return None


def explain(exc: BaseException, overrides: Sequence[str] = ()) -> Optional[str]:
    """A one-line message for a Hydra or OmegaConf configuration error; None if ``exc`` is not one."""
    from hydra.errors import (ConfigCompositionException, MissingConfigException,
                              OverrideParseException)
    from omegaconf.errors import (ConfigAttributeError, ConfigKeyError, InterpolationResolutionError,
                                  MissingMandatoryValue, ValidationError)

    if isinstance(exc, MissingConfigException):
        where = ""
        m = re.match(r"In '([^']+)': Could not find", str(exc))
        if m and m.group(1) != "config":
            where = f"conf/{m.group(1)}.yaml: "
        return missing_option(str(exc.missing_cfg_file or ""), exc.options or [], where)
    if isinstance(exc, OverrideParseException):
        return (f"{exc.override}: not a valid override ({_first_line(exc.message)}); write key=value, "
                f"lists as key=[a,b] (see `dhs --help`).")
    cause = exc.__cause__ if isinstance(exc, ConfigCompositionException) else exc
    where = ""
    m = re.match(r"In '([^']+)': \w+ raised while composing", str(exc))
    if m:
        where = f"conf/{m.group(1)}.yaml: "
        in_file = _in_file(str(exc))
        if in_file:
            return where + in_file
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and getattr(cause, "full_key", None):
        full = str(cause.full_key)
        node_cls = getattr(cause, "object_type", None)
        ov = _override_for(full, overrides)
        origin = f"command line override {ov!r}" if ov else None
        if dataclasses.is_dataclass(node_cls):
            return where + unknown_key(full, node_cls, origin=origin)
        return f"{where}{full}: {_first_line(cause.msg)}."
    if isinstance(cause, ValidationError) and getattr(cause, "full_key", None):
        return where + wrong_type(str(cause.full_key), cause.value, str(cause.msg),
                                  getattr(cause, "object_type", None))
    if isinstance(cause, MissingMandatoryValue) and getattr(cause, "full_key", None):
        return f"{cause.full_key} is not set (???); set it, e.g. `dhs {cause.full_key}=...`."
    if isinstance(cause, InterpolationResolutionError):
        key = getattr(cause, "full_key", "") or next((o for o in overrides if "${" in o), "")
        return f"{key + ': ' if key else ''}{_first_line(str(cause))}; fix the ${{...}} reference."
    if isinstance(exc, ConfigCompositionException):
        return where + _one_line(str(cause) if where and cause is not None else str(exc))
    return None
