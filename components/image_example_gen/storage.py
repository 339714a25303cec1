"""Listing and reading a data root on local disk or ``gs://bucket/prefix``.

gs:// goes through :mod:`dcgan_common.gcs` (google-cloud-storage, not ``tf.io.gfile``: see there
for why). Credentials come from the environment (ADC), never from arguments.
"""
from __future__ import annotations

import os
import stat
from typing import Iterator, NamedTuple

from dcgan_common import gcs
from dcgan_common.fileio import atomic_write
from dcgan_common.gcs import is_gcs, parse_gcs


#: ListedEntry kinds.
KIND_FILE = "file"
KIND_DIR = "dir"
KIND_LINKED_DIR = "linked_dir"
KIND_UNLISTABLE = "unlistable"


class ListedEntry(NamedTuple):
    """One listing result, ``relpath`` relative to the root and '/'-separated.

    kind ``KIND_FILE``: a file (anything that is not a folder: FIFOs and dangling links too, so
    reading them can be recorded). ``KIND_DIR``: a first-level folder name (so an empty category
    folder is still seen). ``KIND_LINKED_DIR``: a symbolic link to a folder that is not walked
    because that folder is read anyway (see ``list_entries``). ``KIND_UNLISTABLE``: a folder whose
    contents could not be listed (permissions, a path too long for the OS): its files are unknown,
    so the folder itself is recorded.
    """

    kind: str
    relpath: str
    detail: str = ""   # why, for KIND_UNLISTABLE


class NotRegularFileError(OSError):
    """A path that is not a regular file (named pipe, socket, device): never read, since reading
    a FIFO blocks forever and a device may never end."""


def list_entries(root: str) -> Iterator[ListedEntry]:
    """Every file under ``root`` (recursively, hidden ones included so the ledger can record
    them) plus every first-level folder.

    Symbolic links (local roots): a link to a file is read as that file. A link to a folder is
    walked when the folder lies outside the root's own tree (a category kept on another disk);
    a link to a folder inside the root, to a folder holding the root (a loop) or to a folder
    already reached through another link is listed once as ``KIND_LINKED_DIR`` and not walked, so every
    file is read once, under one path. Folders are walked in sorted order, so which of two links
    to the same outside folder is walked does not depend on the file system's listing order.

    A folder that cannot be listed is yielded as ``KIND_UNLISTABLE`` (os.walk would skip it
    silently).

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
    walked = _folder_ids(root)   # the root's own tree: never walked again through a link
    real_root = os.path.realpath(root)
    unlistable: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=unlistable.append):
        while unlistable:
            yield _unlistable(unlistable.pop(), root)
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        kept = []
        for name in sorted(dirnames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                target = _folder_id(path)
                # A link to a folder holding the root (its parent, "/") is a loop too.
                if target is None or target in walked or _is_within(real_root, os.path.realpath(path)):
                    yield ListedEntry(KIND_LINKED_DIR, rel)
                    continue
                walked |= _folder_ids(path)
            kept.append(name)
            if not rel_dir:
                yield ListedEntry(KIND_DIR, name)
        dirnames[:] = kept   # os.walk descends only into these
        for name in filenames:
            yield ListedEntry(KIND_FILE, f"{rel_dir}/{name}" if rel_dir else name)
    for error in unlistable:
        yield _unlistable(error, root)


def _unlistable(error: OSError, root: str) -> ListedEntry:
    relpath = os.path.relpath(os.fsdecode(error.filename), root).replace(os.sep, "/")
    return ListedEntry(KIND_UNLISTABLE, relpath, f"folder could not be listed: {error.strerror}")


def _is_within(path: str, folder: str) -> bool:
    """Whether the real path ``path`` is ``folder`` or below it."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _folder_id(path: str) -> tuple[int, int] | None:
    """(device, inode) of the folder at ``path`` (links followed); None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _folder_ids(top: str) -> set[tuple[int, int]]:
    """Ids of ``top`` and every folder below it, not following links."""
    ids = {_folder_id(top)}
    for dirpath, dirnames, _ in os.walk(top, followlinks=False):
        ids.update(_folder_id(os.path.join(dirpath, d)) for d in dirnames
                   if not os.path.islink(os.path.join(dirpath, d)))
    ids.discard(None)
    return ids


def check_root(root: str) -> None:
    """Fail early, with a clear message, for a data root that does not exist.

    Raises:
      FileNotFoundError: a local root that is not a directory; a gs:// bucket that does not
        exist, or a gs:// prefix with no object under it (gs:// has no folders: an empty
        prefix is a root that does not exist, usually a typo).
      ValueError: a malformed gs:// URI (``parse_gcs``).
    """
    if not is_gcs(root):
        if not os.path.isdir(root):
            raise FileNotFoundError(f"data root is not a directory: {root!r}")
        return
    from google.api_core import exceptions as gcs_errors

    bucket, prefix = parse_gcs(root)
    try:
        found = list(gcs.client().list_blobs(bucket, prefix=(prefix + "/") if prefix else None,
                                             max_results=1))
    except gcs_errors.NotFound as exc:
        raise FileNotFoundError(f"data root {root!r}: bucket {bucket!r} does not exist") from exc
    if not found:
        raise FileNotFoundError(f"data root {root!r}: no object under it")


def _list_gcs(root: str) -> Iterator[ListedEntry]:
    bucket, prefix = parse_gcs(root)
    client = gcs.client()
    list_prefix = prefix + "/" if prefix else ""
    top_dirs: set[str] = set()
    for blob in client.list_blobs(bucket, prefix=list_prefix or None):
        rel = blob.name[len(list_prefix):]
        if not rel:
            continue
        parts = rel.split("/")
        if len(parts) >= 2 and parts[0] not in top_dirs:
            top_dirs.add(parts[0])
            yield ListedEntry(KIND_DIR, parts[0])
        if rel.endswith("/"):
            # A zero-byte "folder/" marker written by consoles: a directory, not a file.
            continue
        yield ListedEntry(KIND_FILE, rel)


def join(root: str, relpath: str) -> str:
    """Root + relative '/'-path → a local path or a gs:// URI."""
    if is_gcs(root):
        return root.rstrip("/") + "/" + relpath
    return os.path.join(root, *relpath.split("/"))


class Reader:
    """Reads files under one root; keeps one GCS client per instance (create it once per worker).

    ``read(relpath)`` returns the whole file as bytes and raises OSError (local;
    ``NotRegularFileError`` for a named pipe, socket or device) or google.api_core exceptions
    (gs://) on failure.
    """

    def __init__(self, root: str):
        self.root = root
        self._bucket = None
        self._prefix = ""
        if is_gcs(root):
            bucket, self._prefix = parse_gcs(root)
            self._bucket = gcs.client().bucket(bucket)

    def read(self, relpath: str) -> bytes:
        if self._bucket is not None:
            name = f"{self._prefix}/{relpath}" if self._prefix else relpath
            return self._bucket.blob(name).download_as_bytes()
        # Only regular files are opened (a FIFO would block, a socket cannot be opened); O_NONBLOCK
        # and the check on the open descriptor cover a file that changes kind in between.
        path = join(self.root, relpath)
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(f"not a regular file: {_file_kind(mode)}")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise NotRegularFileError(f"not a regular file: {_file_kind(mode)}")
            return f.read()


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "named pipe (FIFO)"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISDIR, "folder")):
        if test(mode):
            return name
    return "special file"


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to a local path or a gs:// object atomically: the ingestion ledger's writer.

    A thin alias of :func:`dcgan_common.fileio.atomic_write` (see there for behaviour and errors).
    """
    atomic_write(uri, data)


def read_bytes(uri: str) -> bytes:
    """Read a local path or a gs:// object."""
    if is_gcs(uri):
        return gcs.read_object(uri)
    with open(uri, "rb") as f:
        return f.read()
