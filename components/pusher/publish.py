"""Publish a model directory to a serving destination so that no reader sees a half-written model.

The push destination is a TF-Serving style base directory holding one numeric version folder per
pushed model. Readers (TF Serving, ``tf.saved_model.load`` on the newest version) list that
directory; they must never see a version folder before it is complete.

* Local filesystem: copy into a hidden temp folder *beside* the destination (same filesystem),
  add the extra files, then ``os.rename`` it to ``<base>/<version>`` - a single atomic step.
  TF Serving ignores non-numeric folder names, so the temp folder is invisible to it.
* ``gs://``: object stores have no atomic directory rename, so :mod:`gcs_publish` uploads
  write-once into ``versions/<version>/`` and moves the ``LATEST`` pointer last; readers follow
  the pointer (``gcs_publish.resolve_latest``).
"""
from __future__ import annotations

import os
import shutil
import time
import uuid


class PublishError(RuntimeError):
    """The destination cannot be written (unsupported scheme, or the copy failed)."""


def next_version(base_directory: str, now: float | None = None) -> str:
    """Unix-timestamp version (as the stock Pusher uses), bumped past any existing folder.

    The stock Pusher skips the push when the folder exists (two pushes in one second); bumping
    keeps the newest push visible as the newest version instead.
    """
    version = int(time.time() if now is None else now)
    while os.path.exists(os.path.join(base_directory, str(version))):
        version += 1
    return str(version)


def publish_local(model_dir: str, base_directory: str, extra_files: dict[str, str] | None = None,
                  version: str | None = None) -> str:
    """Atomically publish ``model_dir`` as ``<base_directory>/<version>``.

    Args:
      model_dir: local SavedModel directory to copy (left untouched).
      base_directory: local serving base directory (created if missing).
      extra_files: {file name inside the version folder: local source path}, e.g. metrics.json.
      version: folder name; None = :func:`next_version`.
    Returns:
      the published path ``<base_directory>/<version>``.
    Raises:
      PublishError: the version folder already exists or the copy failed (the temp folder is
        removed, nothing partial becomes visible).
    """
    os.makedirs(base_directory, exist_ok=True)
    version = version or next_version(base_directory)
    final = os.path.join(base_directory, version)
    tmp = os.path.join(base_directory, f".tmp-{version}-{uuid.uuid4().hex}")
    try:
        shutil.copytree(model_dir, tmp)
        for name, source in (extra_files or {}).items():
            if os.path.basename(name) != name:
                raise PublishError(f"extra file name {name!r} must be a plain file name")
            shutil.copyfile(source, os.path.join(tmp, name))
        if os.path.exists(final):
            raise PublishError(f"{final} already exists; refusing to overwrite a published version")
        os.rename(tmp, final)  # atomic within one filesystem
    except OSError as exc:
        raise PublishError(f"could not publish {model_dir} to {final}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def publish(model_dir: str, base_directory: str, extra_files: dict[str, str] | None = None) -> tuple[str, str]:
    """Dispatch on the destination scheme. Returns (published path or URI, version).

    Raises:
      PublishError: an unsupported URL scheme, or the copy failed.
      gcs_publish.PublishConflictError: another publisher moved the gs:// pointer meanwhile.
    """
    if base_directory.startswith("gs://"):
        from components.pusher import gcs_publish

        uri = gcs_publish.publish_model_dir(model_dir, base_directory, extra_files=extra_files)
        return uri, uri.rstrip("/").rsplit("/", 1)[-1]
    if "://" in base_directory:
        raise PublishError(f"push destination {base_directory!r}: only local directories and gs:// "
                           "are supported")
    path = publish_local(model_dir, base_directory, extra_files)
    return path, os.path.basename(path)
