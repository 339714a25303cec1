"""Listing and reading a data root on local disk or ``gs://bucket/prefix``.

gs:// goes through google-cloud-storage, not ``tf.io.gfile``: the client honours
``STORAGE_EMULATOR_HOST`` (tests run a local gcp-storage-emulator), gfile does not reach it
(shared/notes/platform.md). Credentials come from the environment (ADC), never from arguments.
"""
from __future__ import annotations

import os
from typing import Iterator, NamedTuple

from pipeline.fileio import atomic_write

GCS_SCHEME = "gs://"


class ListedEntry(NamedTuple):
    """One listing result. kind "file": ``relpath`` is a file path relative to the root,
    '/'-separated. kind "dir": ``relpath`` is a first-level folder name (so an empty category
    folder is still seen)."""

    kind: str
    relpath: str


def is_gcs(uri: str) -> bool:
    """True for ``gs://`` URIs."""
    return uri.startswith(GCS_SCHEME)


def parse_gcs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b/`` → ``("bucket", "a/b")`` (prefix without surrounding slashes).

    Raises:
      ValueError: not a gs:// URI or no bucket name.
    """
    if not is_gcs(uri):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    rest = uri[len(GCS_SCHEME):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"gs:// URI without a bucket: {uri!r}")
    return bucket, prefix.strip("/")


def gcs_client():
    """A google-cloud-storage client (anonymous against an emulator, ADC otherwise)."""
    from google.cloud import storage  # lazy: only gs:// users pay for the import
    return storage.Client()


def list_entries(root: str) -> Iterator[ListedEntry]:
    """Every file under ``root`` (recursively, hidden ones included so the ledger can record
    them) plus every first-level folder.

    Args:
      root: a local directory or ``gs://bucket[/prefix]``.
    Yields:
      ListedEntry values, in no particular order (callers must not depend on it).
    Raises:
      FileNotFoundError: a local root that is not a directory.
    """
    if is_gcs(root):
        yield from _list_gcs(root)
        return
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data root is not a directory: {root!r}")
    root = os.path.abspath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        if not rel_dir:
            for name in dirnames:
                yield ListedEntry("dir", name)
        for name in filenames:
            yield ListedEntry("file", f"{rel_dir}/{name}" if rel_dir else name)


def _list_gcs(root: str) -> Iterator[ListedEntry]:
    bucket, prefix = parse_gcs(root)
    client = gcs_client()
    list_prefix = prefix + "/" if prefix else ""
    top_dirs: set[str] = set()
    for blob in client.list_blobs(bucket, prefix=list_prefix or None):
        rel = blob.name[len(list_prefix):]
        if not rel:
            continue
        parts = rel.split("/")
        if len(parts) >= 2 and parts[0] not in top_dirs:
            top_dirs.add(parts[0])
            yield ListedEntry("dir", parts[0])
        if rel.endswith("/"):
            # A zero-byte "folder/" marker written by consoles: a directory, not a file.
            continue
        yield ListedEntry("file", rel)


def join(root: str, relpath: str) -> str:
    """Root + relative '/'-path → a local path or a gs:// URI."""
    if is_gcs(root):
        return root.rstrip("/") + "/" + relpath
    return os.path.join(root, *relpath.split("/"))


class Reader:
    """Reads files under one root; keeps one GCS client per instance (create it once per worker).

    ``read(relpath)`` returns the whole file as bytes and raises OSError (local) or
    google.api_core exceptions (gs://) on failure.
    """

    def __init__(self, root: str):
        self.root = root
        self._bucket = None
        self._prefix = ""
        if is_gcs(root):
            bucket, self._prefix = parse_gcs(root)
            self._bucket = gcs_client().bucket(bucket)

    def read(self, relpath: str) -> bytes:
        if self._bucket is not None:
            name = f"{self._prefix}/{relpath}" if self._prefix else relpath
            return self._bucket.blob(name).download_as_bytes()
        with open(join(self.root, relpath), "rb") as f:
            return f.read()


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to a local path or a gs:// object atomically: the ingestion ledger's writer.

    A thin alias of :func:`pipeline.fileio.atomic_write` (see there for behaviour and errors).
    """
    atomic_write(uri, data)


def read_bytes(uri: str) -> bytes:
    """Read a local path or a gs:// object."""
    if is_gcs(uri):
        bucket, name = parse_gcs(uri)
        return gcs_client().bucket(bucket).blob(name).download_as_bytes()
    with open(uri, "rb") as f:
        return f.read()
