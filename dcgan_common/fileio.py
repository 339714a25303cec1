"""Whole-file atomic writes to a local path, a ``gs://`` object or another ``tf.io.gfile`` URI.

The one "write to a temporary name, then rename" helper of the project: whoever reads the file
(a scheduler picking up a compiled spec, a second FID run hitting the statistics cache, someone
opening ``training_summary.json`` mid-training) sees the old content or the new one, never a prefix.

No TensorFlow at import time: it is imported only for schemes other than local paths and ``gs://``.
"""
from __future__ import annotations

import os
import re
import uuid

from dcgan_common import gcs

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def atomic_write(uri: str, data: bytes) -> None:
    """Replace the file at ``uri`` with ``data`` in one step.

    * Local path (no ``scheme://``): parent folders are created; ``data`` goes to a uniquely named
      hidden temp file in the same folder, is fsynced, then ``os.replace``d onto ``uri`` (atomic on
      POSIX, since both names are on one filesystem) and the folder is fsynced. New files get the
      mode ``open()`` would give (0o666 minus the umask).
    * ``gs://bucket/object``: a single object upload, which Cloud Storage publishes all at once,
      through :mod:`dcgan_common.gcs` (credentials from the environment;
      ``STORAGE_EMULATOR_HOST`` is honoured).
    * Any other scheme ``tf.io.gfile`` knows (``s3://``, ``hdfs://``, ``ram://`` …): written to a temp
      name beside ``uri``, then ``tf.io.gfile.rename(..., overwrite=True)``; as atomic as that
      filesystem's rename. Parent folders are not created.

    On failure nothing is left behind at the temp name (best effort for gfile schemes) and an
    existing file at ``uri`` keeps its old content.

    Args:
      uri: destination: a local path (relative or absolute) or ``scheme://…``.
      data: the complete new content; bytes or any bytes-like object (bytearray, memoryview).
    Raises:
      TypeError: ``data`` is not bytes-like (a ``str`` included: encode it first).
      ValueError: a ``gs://`` URI without a bucket or object name, or one ending in ``/``.
      OSError: local I/O failures, e.g. IsADirectoryError when ``uri`` is a folder,
        PermissionError, or an OSError when a parent path component is a file.
      google.api_core.exceptions.GoogleAPICallError: ``gs://`` upload failures (NotFound for a
        missing bucket, Forbidden, …).
      tensorflow.errors.OpError: failures of other ``tf.io.gfile`` schemes.
    """
    if gcs.is_gcs(uri):
        gcs.write_object(uri, _as_bytes(data))
    elif _SCHEME.match(uri):
        _write_gfile(uri, _as_bytes(data))
    else:
        _write_local(uri, data)


def _as_bytes(data) -> bytes:
    # memoryview() rejects str and non-buffer objects with TypeError, as the local path does.
    return data if isinstance(data, bytes) else memoryview(data).tobytes()


def _write_local(path: str, data) -> None:
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Hidden, unique per call (concurrent writers never share a temp), name kept for debugging a
    # leftover after a hard kill, truncated so the temp name stays under NAME_MAX.
    tmp = os.path.join(folder, f".{name[:180]}.tmp-{uuid.uuid4().hex}")
    # os.open with 0o666 (not mkstemp's 0o600) so the umask decides the mode, as for open().
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # The caller's spelling, not the abspath: a trailing "/" must fail, not write "dir" as a file.
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: str) -> None:
    """Persist the rename itself (the directory entry); skipped where directories cannot be synced."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_gfile(uri: str, data: bytes) -> None:
    import tensorflow as tf  # lazy: only schemes other than local and gs:// need it

    tmp = f"{uri}.tmp-{uuid.uuid4().hex}"  # beside uri, so the rename stays within one filesystem
    try:
        with tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(data)
        tf.io.gfile.rename(tmp, uri, overwrite=True)
    except BaseException:
        try:
            if tf.io.gfile.exists(tmp):
                tf.io.gfile.remove(tmp)
        except tf.errors.OpError:
            pass  # keep the original error, not the clean-up's
        raise


def read_if_exists(uri: str) -> bytes | None:
    """The bytes at ``uri`` (local path, gs:// or another tf.io.gfile scheme), or None if absent.

    The reading side of :func:`atomic_write`: a file it wrote is either whole or absent.
    Raises:
      OSError (local), google.api_core.exceptions.GoogleAPICallError other than NotFound (gs://),
      tf.errors.OpError other than NotFoundError (other schemes): the read failed for another reason.
    """
    # The same dispatch as atomic_write, so a URI is read from where it was written.
    if gcs.is_gcs(uri):
        from google.api_core import exceptions
        try:
            return gcs.read_object(uri)
        except exceptions.NotFound:
            return None
    if _SCHEME.match(uri):
        import tensorflow as tf
        try:
            with tf.io.gfile.GFile(uri, "rb") as f:
                return f.read()
        except tf.errors.NotFoundError:
            return None
    try:
        with open(uri, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
