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

Before publishing, :func:`find_live_copy` tells whether the live version already holds exactly
these model files (an identical re-run: cached Trainer output re-blessed against itself), so the
Pusher can record that version instead of writing a duplicate.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable

from components.pusher.base import PublishError, file_hashes  # re-exported: callers catch publish.PublishError
from dcgan_common.gcs import is_gcs

log = logging.getLogger(__name__)


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
    if is_gcs(base_directory):
        from components.pusher import gcs_publish

        uri = gcs_publish.publish_model_dir(model_dir, base_directory, extra_files=extra_files)
        return uri, uri.rstrip("/").rsplit("/", 1)[-1]
    if "://" in base_directory:
        raise PublishError(f"push destination {base_directory!r}: only local directories and gs:// "
                           "are supported")
    path = publish_local(model_dir, base_directory, extra_files)
    return path, os.path.basename(path)


def file_digests(model_dir: str, skip: Iterable[str] = ()) -> dict[str, str]:
    """SHA-256 of every regular file under a local directory.

    Args:
      model_dir: local directory (a SavedModel, or a published version folder).
      skip: top-level file names to leave out (files the Pusher adds, e.g. metrics.json).
    Returns:
      {relative POSIX path: sha256 hex}; empty directories do not count.
    Raises:
      OSError: the directory or a file cannot be read.
    """
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"not a directory: {model_dir}")
    skip = set(skip)
    digests = {}
    for root, _, names in os.walk(model_dir):
        for name in names:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, model_dir).replace(os.sep, "/")
            if rel in skip:
                continue
            digests[rel] = file_hashes(path)[0]
    return digests


def live_local_version(base_directory: str) -> str | None:
    """The version TF Serving serves from a local base directory: the highest integer folder.

    Returns None when the directory is missing or holds no integer-named folder (temp folders
    ``.tmp-*`` are never candidates).
    """
    try:
        names = os.listdir(base_directory)
    except FileNotFoundError:
        return None
    versions = [n for n in names if n.isdigit() and os.path.isdir(os.path.join(base_directory, n))]
    return max(versions, key=int) if versions else None


def find_live_copy(model_dir: str, base_directory: str,
                   skip: Iterable[str] = ()) -> tuple[str, str] | None:
    """The live version at the destination if it holds exactly ``model_dir``'s files.

    Only the live (newest) version counts: a model equal to an older version is a rollback and
    is published again as the newest. Comparison is by content (path and SHA-256 / MD5 of every
    file), not by artifact URI, so a re-imported copy of the same model is recognised too.

    Args:
      model_dir: the candidate model directory (local; or gs:// for a gs:// destination).
      base_directory: the push destination (local base directory or ``gs://bucket/prefix``).
      skip: top-level names the Pusher adds next to the model (e.g. metrics.json), ignored.
    Returns:
      (published path or URI, version) of the identical live version, or None (nothing live,
      different content, an unsupported scheme, or the live version could not be read: then a
      normal publish follows).
    """
    skip = tuple(skip)
    if is_gcs(base_directory):
        from components.pusher import gcs_publish

        return gcs_publish.find_live_copy(model_dir, base_directory, skip)
    if "://" in base_directory or "://" in model_dir:
        return None
    version = live_local_version(base_directory)
    if version is None:
        return None
    live = os.path.join(base_directory, version)
    try:
        same = file_digests(live, skip) == file_digests(model_dir)
    except OSError as exc:  # unreadable live version: publishing a fresh copy is the safe side
        log.warning("could not compare %s with the live version %s: %s", model_dir, live, exc)
        return None
    return (live, version) if same else None
