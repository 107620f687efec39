"""Pure string operations on storage locations: local paths and ``s3://`` URIs (``s3a://`` and
``s3n://`` read as ``s3://``, ``file://`` as a local path), and http(s) URLs. No I/O."""

from __future__ import annotations

import os
import posixpath

S3_SCHEMES = ("s3://", "s3a://", "s3n://")


def normalize(uri: str) -> str:
    """``s3a://``/``s3n://`` -> ``s3://``; ``file:///x`` -> ``/x``; anything else as given."""
    uri = str(uri)
    for scheme in S3_SCHEMES[1:]:
        if uri.startswith(scheme):
            return "s3://" + uri[len(scheme):]
    if uri.startswith("file://"):
        return uri[len("file://"):]
    return uri


def is_s3(uri: str) -> bool:
    return str(uri).startswith(S3_SCHEMES)


def is_http(uri: str) -> bool:
    return str(uri).startswith(("http://", "https://"))


def join(base: str, *parts: str) -> str:
    """Join path parts with '/', keeping the scheme of ``base``."""
    base = normalize(base)
    if is_s3(base) or is_http(base):
        return "/".join([base.rstrip("/")] + [p.strip("/") for p in parts if p])
    return os.path.join(base, *parts)


def dirname(uri: str) -> str:
    uri = normalize(uri)
    if is_s3(uri):
        return "s3://" + posixpath.dirname(uri[len("s3://"):].rstrip("/"))
    return os.path.dirname(uri)


def basename(uri: str) -> str:
    return posixpath.basename(normalize(uri).rstrip("/"))
