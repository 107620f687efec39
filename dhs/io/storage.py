"""One storage interface for local paths and ``s3://`` URIs (``s3a://``/``s3n://`` accepted).

Everything that reads or writes a dataset goes through these functions, so a stage never cares
whether ``data_root`` is a local folder or a bucket. S3 goes through pyarrow's S3FileSystem;
``configure`` sets the endpoint (e.g. a local S3 server), region and credentials for the process.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Optional

from dhs.errors import DhsError
from dhs.uris import basename, dirname, is_http, is_s3, join, normalize  # noqa: F401  (part of this interface)

if TYPE_CHECKING:  # pyarrow.fs loads on first use (not at CLI start-up)
    from pyarrow import fs as pafs


@dataclass(frozen=True)
class StorageSettings:
    """Object-store settings of a process: S3 endpoint (e.g. a local S3 server), region and
    credentials; None falls back to the AWS_* environment."""

    endpoint_url: Optional[str] = None
    region: Optional[str] = None
    access_key: Optional[str] = None
    secret_key: Optional[str] = field(default=None, repr=False)
    session_token: Optional[str] = field(default=None, repr=False)
    #: Refuse anonymous S3 access: a process without credentials raises StorageCredentialsError.
    require_credentials: bool = False


class StorageCredentialsError(DhsError):
    """S3 is used where no AWS credentials can be found (the message names the host and fix)."""


def for_executors(settings: StorageSettings, remote: bool) -> StorageSettings:
    """The storage settings shipped to the executors of a cluster.

    Executors on other hosts do not see this process's environment: with ``remote``, keys
    missing from the config are taken from this process's AWS_ACCESS_KEY_ID /
    AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; when there are none the executors must find their
    own (instance role, their own environment or files) and refuse to go anonymous.
    """
    if not remote or settings.access_key:
        return settings
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return replace(settings, access_key=env["AWS_ACCESS_KEY_ID"],
                       secret_key=env["AWS_SECRET_ACCESS_KEY"],
                       session_token=env.get("AWS_SESSION_TOKEN") or settings.session_token)
    return replace(settings, require_credentials=True)


def _check_credentials() -> None:
    """Raise unless the default AWS chain (environment, files, instance role) finds credentials."""
    import socket

    import botocore.session

    if botocore.session.get_session().get_credentials() is None:
        raise StorageCredentialsError(
            f"no AWS credentials on {socket.gethostname()}: S3 would be used anonymously. Set "
            "storage.aws_access_key_id and storage.aws_secret_access_key (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY where dhs is started), or give the cluster's nodes an "
            "instance role.")


_SETTINGS = StorageSettings()
_S3FS: Optional[pafs.FileSystem] = None
_LOCAL: Optional[pafs.FileSystem] = None


def configure(endpoint_url: Optional[str] = None, region: Optional[str] = None,
              access_key: Optional[str] = None, secret_key: Optional[str] = None) -> None:
    """Set the process-wide S3 settings (None falls back to the AWS_* environment)."""
    global _S3FS
    _S3FS = None
    configure_from(StorageSettings(endpoint_url, region, access_key, secret_key))


def configure_from(settings: StorageSettings) -> None:
    """Make ``settings`` the process-wide S3 settings (workers call it before each shard; the
    S3 filesystem is kept while the settings stay the same)."""
    global _SETTINGS, _S3FS
    if settings != _SETTINGS:
        _S3FS = None
    _SETTINGS = settings


def settings() -> StorageSettings:
    return _SETTINGS


def _s3fs() -> pafs.FileSystem:
    global _S3FS
    if _S3FS is None:
        s = _SETTINGS
        kwargs: dict[str, Any] = {}
        endpoint = s.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs["endpoint_override"] = host or scheme
            kwargs["scheme"] = scheme if host else "https"
        region = s.region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
        if region:
            kwargs["region"] = region
        if s.access_key:
            kwargs["access_key"] = s.access_key
            kwargs["secret_key"] = s.secret_key
            if s.session_token:
                kwargs["session_token"] = s.session_token
        elif s.require_credentials:
            _check_credentials()
        _S3FS = _pafs().S3FileSystem(**kwargs)
    return _S3FS


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and the path inside it for ``uri``."""
    uri = normalize(uri)
    if is_s3(uri):
        return _s3fs(), uri[len("s3://"):]
    global _LOCAL
    if _LOCAL is None:
        _LOCAL = _pafs().LocalFileSystem()
    return _LOCAL, os.path.abspath(uri)


def _pafs() -> Any:
    """pyarrow.fs, imported on first use."""
    from pyarrow import fs as pafs

    return pafs


def exists(uri: str) -> bool:
    if not is_s3(normalize(uri)):  # a local path: no pyarrow needed (CLI start-up, stage=plan)
        return os.path.exists(normalize(uri))
    f, p = filesystem(uri)
    return f.get_file_info(p).type != _pafs().FileType.NotFound


def isdir(uri: str) -> bool:
    if not is_s3(normalize(uri)):
        return os.path.isdir(normalize(uri))
    f, p = filesystem(uri)
    return f.get_file_info(p).type == _pafs().FileType.Directory


def size(uri: str) -> int:
    f, p = filesystem(uri)
    info = f.get_file_info(p)
    if info.type == _pafs().FileType.NotFound:
        raise FileNotFoundError(uri)
    return int(info.size or 0)


def makedirs(uri: str) -> None:
    f, p = filesystem(uri)
    f.create_dir(p, recursive=True)


def listdir(uri: str) -> list[str]:
    """Names (not paths) directly under ``uri``, sorted; empty if it does not exist."""
    f, p = filesystem(uri)
    if f.get_file_info(p).type == _pafs().FileType.NotFound:
        return []
    infos = f.get_file_info(_pafs().FileSelector(p, recursive=False))
    return sorted(posixpath.basename(i.path.rstrip("/")) for i in infos)


def walk_files(uri: str) -> list[str]:
    """All files below ``uri``, sorted, spelled like ``uri`` (a relative folder gives relative paths)."""
    f, p = filesystem(uri)
    if f.get_file_info(p).type == _pafs().FileType.NotFound:
        return []
    infos = f.get_file_info(_pafs().FileSelector(p, recursive=True))
    base = normalize(uri).rstrip("/")
    root = p.rstrip("/")
    return sorted(base + i.path[len(root):] for i in infos if i.type == _pafs().FileType.File)


def read_bytes(uri: str) -> bytes:
    f, p = filesystem(uri)
    with f.open_input_stream(p) as s:
        return s.read()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def open_input(uri: str):
    """A seekable binary file for reading (pyarrow NativeFile)."""
    f, p = filesystem(uri)
    return f.open_input_file(p)


def open_output(uri: str):
    """A binary output stream (not atomic; prefer write_bytes_atomic)."""
    f, p = filesystem(uri)
    if not is_s3(normalize(uri)):
        f.create_dir(os.path.dirname(p), recursive=True)
    return f.open_output_stream(p)


def rename(src: str, dst: str) -> None:
    """Move ``src`` to ``dst`` (atomic on a local filesystem; copy+delete on S3)."""
    f, ps = filesystem(src)
    _, pd = filesystem(dst)
    if not is_s3(normalize(dst)):
        f.create_dir(os.path.dirname(pd), recursive=True)
    f.move(ps, pd)


def rename_dir(src: str, dst: str) -> None:
    """Move the folder ``src`` to ``dst`` (one rename locally; object by object on S3)."""
    if not is_s3(normalize(src)):
        rename(src, dst)
        return
    base = normalize(src).rstrip("/")
    for f in walk_files(base):
        rename(f, normalize(dst).rstrip("/") + f[len(base):])
    remove(src)


def tmp_name(uri: str) -> str:
    """A hidden temporary sibling of ``uri`` (ignored by dataset readers: leading '.')."""
    return join(dirname(uri), f".tmp-{uuid.uuid4().hex[:12]}-{basename(uri)}")


def write_bytes_atomic(uri: str, data: bytes) -> None:
    """Write to a temporary name, then rename, so readers never see a partial file.

    On S3 a single PUT is already atomic, so the object is written in place.
    """
    if is_s3(normalize(uri)):
        with open_output(uri) as out:
            out.write(data)
        return
    tmp = tmp_name(uri)
    with open_output(tmp) as out:
        out.write(data)
    rename(tmp, uri)


def write_text_atomic(uri: str, text: str) -> None:
    write_bytes_atomic(uri, text.encode("utf-8"))


def sha256(uri: str, *, copy_to: Optional[str] = None, block: int = 8 << 20) -> str:
    """Hex sha256 of a file (local or s3://), streamed in ``block``-byte reads; with ``copy_to``
    the bytes are also written to that local path (one pass for download + checksum)."""
    import hashlib

    h = hashlib.sha256()
    dst = open(copy_to, "wb") if copy_to else None
    try:
        with open_input(uri) as src:
            while True:
                buf = src.read(block)
                if not buf:
                    break
                h.update(buf)
                if dst is not None:
                    dst.write(buf)
    finally:
        if dst is not None:
            dst.close()
    return h.hexdigest()


def content_id(uri: str) -> str:
    """What identifies a file's content: ``sha256:<hex>`` of its bytes (streamed) for a local
    file; for s3:// ``size:<bytes>,mtime:<ns>``, the object's size and modification time (a
    content checksum of a remote input would download it on every rerun; an object rewritten
    with other bytes gets a new modification time)."""
    if not is_s3(normalize(uri)):
        return "sha256:" + sha256(uri)
    f, p = filesystem(uri)
    info = f.get_file_info(p)
    if info.type == _pafs().FileType.NotFound:
        raise FileNotFoundError(uri)
    return f"size:{int(info.size or 0)},mtime:{int(info.mtime_ns or 0)}"


def remove(uri: str) -> None:
    f, p = filesystem(uri)
    info = f.get_file_info(p)
    if info.type == _pafs().FileType.Directory:
        f.delete_dir(p)
    elif info.type == _pafs().FileType.File:
        f.delete_file(p)


def tree_digest(uri: str, exclude_names: tuple[str, ...] = ()) -> dict[str, str]:
    """{path relative to ``uri``: sha256 hex} of every file below ``uri`` (local or s3://),
    leaving out files whose base name is in ``exclude_names``; compares two outputs byte for byte."""
    import hashlib

    base = normalize(uri).rstrip("/")
    out = {}
    for file_uri in walk_files(base):
        rel = file_uri[len(base):].lstrip("/")
        if basename(rel) not in exclude_names:
            out[rel] = hashlib.sha256(read_bytes(file_uri)).hexdigest()
    return out
