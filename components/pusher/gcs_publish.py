"""Atomic promotion of a pushed generator to ``gs://``: upload under a version prefix, flip a pointer last.

Layout under a destination ``gs://BUCKET/PREFIX``::

    PREFIX/versions/<version>/...              the model files, written once, never overwritten
    PREFIX/versions/<version>/_MANIFEST.json   written after every file of that version is uploaded
    PREFIX/LATEST                              the pointer (JSON), written last; readers start here

Why a pointer and not a rename: Cloud Storage has no directory rename (a "move" is a copy plus a
delete per object), so there is no moment at which a whole directory appears at once. A single
object write *is* atomic: a reader gets either the previous object or the new one. So the version
prefix plays the part of the temporary directory: nobody reads it until ``LATEST`` names it, and
``LATEST`` only names versions whose files and manifest are all uploaded. A crash mid-upload leaves
``LATEST`` on the previous version (and the half-written prefix is deleted on a best-effort basis;
it has no manifest, so :func:`resolve_latest` and :func:`download_version` would never use it).

Version names are ``<UTC time>-<8 hex>`` (e.g. ``20261130T071502123456Z-1f2e3d4c``): sortable,
unique, and deliberately not integers, so a TF Serving instance pointed at ``PREFIX/versions`` does
not pick up a half-written directory (it only loads integer-named versions).

Concurrent publishers: ``publish_model_dir`` remembers the pointer's generation when it starts and
refuses to flip the pointer if it moved meanwhile (:class:`PublishConflictError`); on real Cloud
Storage the final write also carries ``if_generation_match`` so the check-and-write is one atomic
step. (The local emulator used in tests ignores preconditions; the explicit re-read still catches
the conflict there.)

The source may be a local directory (uploaded) or a ``gs://`` prefix (copied server-side; on
Vertex the Trainer's model artifact is already in the pipeline root bucket). ``extra_files`` adds
e.g. ``metrics.json`` at the version's top level, as components/pusher/publish.py does locally.

Everything goes through google-cloud-storage: ``tf.io.gfile`` does not reach the test emulator
(platform.md), and the client gives us generations and preconditions.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

from components.pusher.base import PublishError, file_hashes
from dcgan_common import gcs
from dcgan_common.gcs import is_gcs, parse_gcs

log = logging.getLogger(__name__)

POINTER_NAME = "LATEST"
VERSIONS_DIRNAME = "versions"
MANIFEST_NAME = "_MANIFEST.json"
#: Format tag written into the pointer and each manifest; readers refuse other formats.
FORMAT = "dcgan-tfx/gcs-push/v1"


class PublishConflictError(PublishError):
    """Another publisher moved the pointer while this one was uploading; this version is not live."""


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def _default_client(client):
    return client if client is not None else gcs.client()


def new_version_id(now: datetime.datetime | None = None) -> str:
    """A unique, sortable, non-integer version name: ``YYYYmmddTHHMMSSffffffZ-xxxxxxxx`` (UTC)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}"


def _local_files(local_dir: str) -> tuple[list[str], list[str]]:
    """Relative POSIX paths of every file and every empty directory under ``local_dir``, sorted.

    Raises:
      ValueError: a symlink or special file (its target could change mid-upload) or no files.
    """
    files, empty_dirs = [], []
    for root, dirs, names in os.walk(local_dir):
        dirs.sort()
        rel_root = os.path.relpath(root, local_dir)
        if root != local_dir and not dirs and not names:
            empty_dirs.append(rel_root.replace(os.sep, "/"))
        for name in names:
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path):
                raise ValueError(f"refusing to publish {path}: not a regular file")
            files.append(os.path.normpath(os.path.join(rel_root, name)).replace(os.sep, "/"))
    if not files:
        raise ValueError(f"nothing to publish: {local_dir} holds no files")
    return sorted(files), sorted(empty_dirs)


def read_pointer(gs_dest: str, *, client=None) -> dict[str, Any] | None:
    """The current pointer of ``gs_dest`` as a dict, or None when nothing was ever published.

    The dict has ``format``, ``version``, ``uri`` (gs:// of the version prefix), ``manifest``,
    ``published_at`` (ISO 8601 UTC), ``metadata`` (what the publisher passed) and
    ``generation`` (the pointer object's Cloud Storage generation, int).
    Raises:
      ValueError: bad URI, or the pointer is not in this module's format.
    """
    bucket_name, prefix = parse_gcs(gs_dest)
    client = _default_client(client)
    blob = client.bucket(bucket_name).get_blob(_join(prefix, POINTER_NAME))
    if blob is None:
        return None
    generation = int(blob.generation)  # read before downloading: a download may reset it
    # If a publisher overwrites the pointer between the metadata read and this download, we get
    # the newer content with the older generation number: the only effect is that a publisher's
    # conflict check errs on the safe side (reports a conflict), never the reverse.
    pointer = json.loads(blob.download_as_bytes())
    if not isinstance(pointer, dict) or pointer.get("format") != FORMAT:
        raise ValueError(f"gs://{bucket_name}/{_join(prefix, POINTER_NAME)} is not a {FORMAT} pointer")
    pointer["generation"] = generation
    return pointer


def resolve_latest(gs_dest: str, *, client=None) -> str:
    """The ``gs://`` URI of the live version under ``gs_dest`` (the directory holding the model).

    Raises:
      LookupError: nothing has been published under ``gs_dest`` yet.
      ValueError: bad URI or a pointer in an unknown format.
    """
    pointer = read_pointer(gs_dest, client=client)
    if pointer is None:
        raise LookupError(f"no model published under {gs_dest} (no {POINTER_NAME} pointer)")
    return pointer["uri"]


def _gs_files(source: str, client) -> tuple[list[tuple[str, Any]], list[str]]:
    """(relative path, blob) of every object under a gs:// source prefix, and its empty "dirs".

    Raises:
      ValueError: nothing under the prefix.
    """
    bucket_name, prefix = parse_gcs(source)
    base = prefix + "/" if prefix else ""
    files, empty_dirs = [], []
    for blob in client.list_blobs(bucket_name, prefix=base):
        rel = blob.name[len(base):]
        if not rel:
            continue
        if rel.endswith("/"):  # a folder placeholder written by some tools (e.g. the console)
            empty_dirs.append(rel.rstrip("/"))
        else:
            files.append((rel, blob))
    if not files:
        raise ValueError(f"nothing to publish: no objects under {source}")
    files.sort(key=lambda item: item[0])
    has_files = {rel.rsplit("/", 1)[0] for rel, _ in files if "/" in rel}
    return files, sorted(d for d in empty_dirs if not any(h == d or h.startswith(d + "/") for h in has_files))


def publish_model_dir(local_dir: str, gs_dest: str, metadata: dict[str, Any] | None = None, *,
                      client=None, version: str | None = None,
                      extra_files: dict[str, str] | None = None,
                      on_progress: Callable[[str, int, int], None] | None = None) -> str:
    """Publish a model directory as a new version under ``gs_dest`` and make it live, atomically.

    Steps: read the pointer (remember its generation) → copy every file to
    ``versions/<version>/`` with ``if_generation_match=0`` (write-once), checking each copy's MD5
    against the source → write the manifest → re-read the pointer and refuse if it moved →
    write the pointer (``if_generation_match`` = the remembered generation, ``Cache-Control:
    no-store`` so no cache serves a stale pointer).

    Args:
      local_dir: the model directory: a local path (uploaded) or a ``gs://`` prefix (copied
        server-side, no download — on Vertex the Trainer's model artifact already lives in gs://).
        Every regular file is published; empty sub-directories are recorded in the manifest.
      gs_dest: ``gs://bucket/prefix``; the pointer is ``gs_dest/LATEST``.
      metadata: JSON-serialisable facts stored in the manifest and the pointer (FID, model id …).
      client: a ``google.cloud.storage.Client``; default: a new one from the environment.
      version: version name; default :func:`new_version_id`. Must not contain ``/``.
      extra_files: ``{plain file name: local path}`` added at the version's top level (e.g.
        ``metrics.json`` from the evaluation), like components/pusher/publish.py does locally.
      on_progress: called as ``on_progress(relative_path, files_done, files_total)`` after each
        file; an exception it raises aborts the publish like any upload failure would.
    Returns:
      The ``gs://`` URI of the new live version.
    Raises:
      ValueError: bad URI, empty/missing source, non-regular files, bad extra file names or a
        clash with a model file, unserialisable metadata, bad version.
      PublishConflictError: another publisher moved the pointer meanwhile (this version not live).
      PublishError: a copy came back with the wrong checksum.
      Exception: any upload error, re-raised after the partial version was (best-effort) deleted;
        the pointer is untouched in every failure case.
    """
    bucket_name, prefix = parse_gcs(gs_dest)
    metadata, version = _checked_metadata_and_version(local_dir, metadata, version)
    client = _default_client(client)
    sources, empty_dirs = _publish_sources(local_dir, client, extra_files)

    bucket = client.bucket(bucket_name)
    before = read_pointer(gs_dest, client=client)
    before_generation = before["generation"] if before else 0
    version_prefix = _join(prefix, VERSIONS_DIRNAME, version)
    version_uri = f"gs://{bucket_name}/{version_prefix}"
    uploaded = []
    try:
        entries = _copy_sources(sources, bucket, version_prefix, uploaded, on_progress)
        published_at = datetime.datetime.now(datetime.timezone.utc).isoformat()
        manifest = {"format": FORMAT, "version": version, "files": entries, "empty_dirs": empty_dirs,
                    "metadata": metadata, "created_at": published_at, "source": local_dir}
        uploaded.append(_upload_json(bucket.blob(_join(version_prefix, MANIFEST_NAME)), manifest, 0))

        current = read_pointer(gs_dest, client=client)
        current_generation = current["generation"] if current else 0
        if current_generation != before_generation:
            raise PublishConflictError(
                f"the pointer under {gs_dest} moved to {current and current.get('version')} while "
                f"{version} was uploading; {version} was not made live")
        pointer = {"format": FORMAT, "version": version, "uri": version_uri,
                   "manifest": f"{version_uri}/{MANIFEST_NAME}", "published_at": published_at,
                   "previous_version": before["version"] if before else None, "metadata": metadata}
        _flip_pointer(bucket.blob(_join(prefix, POINTER_NAME)), pointer, before_generation, gs_dest)
    except BaseException:
        _delete_quietly(uploaded)
        raise
    log.info("published %d files as %s (previous: %s)", len(sources), version_uri,
             before["version"] if before else None)
    return version_uri


def _checked_metadata_and_version(local_dir: str, metadata: dict[str, Any] | None,
                                  version: str | None) -> tuple[dict[str, Any], str]:
    """The metadata (a copy) and the version name, after the checks :func:`publish_model_dir` lists.

    Raises:
      ValueError: a local source that is not a directory, unserialisable metadata, a bad version.
    """
    if not is_gcs(local_dir) and not os.path.isdir(local_dir):
        raise ValueError(f"not a directory: {local_dir}")
    metadata = dict(metadata or {})
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata must be JSON-serialisable: {e}") from e
    version = version or new_version_id()
    if "/" in version or version in ("", ".", ".."):
        raise ValueError(f"bad version name {version!r}")
    return metadata, version


def _publish_sources(local_dir: str, client, extra_files: dict[str, str] | None):
    """(sources, empty dirs): sources are (relative path, local path or None, source blob or None),
    the model files first, then the extra files.

    Raises:
      ValueError: no files, a non-regular file, or an extra file that is badly named, clashes with
        a model file or does not exist.
    """
    if is_gcs(local_dir):
        gs_files, empty_dirs = _gs_files(local_dir, client)
        sources = [(rel, None, blob) for rel, blob in gs_files]
    else:
        files, empty_dirs = _local_files(local_dir)
        sources = [(rel, os.path.join(local_dir, *rel.split("/")), None) for rel in files]
    names = {rel for rel, _, _ in sources}
    for name, path in sorted((extra_files or {}).items()):
        if os.path.basename(name) != name or name in ("", ".", "..", MANIFEST_NAME):
            raise ValueError(f"extra file name {name!r} must be a plain file name")
        if name in names:
            raise ValueError(f"extra file {name!r} would overwrite a model file")
        if not os.path.isfile(path):
            raise ValueError(f"extra file {name!r}: {path} is not a file")
        sources.append((name, path, None))
    return sources, empty_dirs


def _copy_sources(sources, bucket, version_prefix: str, uploaded: list,
                  on_progress: Callable[[str, int, int], None] | None) -> list[dict[str, Any]]:
    """Write every source once under ``version_prefix`` (upload or server-side copy, write-once),
    checking each stored MD5 against the source's; returns the manifest entries.

    Each written blob is appended to ``uploaded`` as soon as it exists, so the caller can delete a
    partial version whatever fails next.
    Raises:
      PublishError: a stored copy's MD5 differs from the source's.
    """
    entries = []
    for i, (rel, path, src_blob) in enumerate(sources, start=1):
        name = _join(version_prefix, rel)
        if src_blob is None:
            sha256, md5 = file_hashes(path)
            blob = bucket.blob(name)
            blob.upload_from_filename(path, if_generation_match=0)
            entry = {"path": rel, "size": os.path.getsize(path), "sha256": sha256, "md5": md5}
        else:
            md5 = src_blob.md5_hash
            blob = src_blob.bucket.copy_blob(src_blob, bucket, name, if_generation_match=0)
            entry = {"path": rel, "size": int(src_blob.size), "md5": md5}
        uploaded.append(blob)
        if md5 is not None and blob.md5_hash is not None and blob.md5_hash != md5:
            raise PublishError(f"checksum mismatch after copying {rel}: "
                               f"source md5 {md5}, stored {blob.md5_hash}")
        entries.append(entry)
        if on_progress is not None:
            on_progress(rel, i, len(sources))
    return entries


def _upload_json(blob, data: dict[str, Any], if_generation_match: int):
    """Upload ``data`` as indented JSON under a generation precondition; returns the blob."""
    blob.upload_from_string(json.dumps(data, indent=2, sort_keys=True),
                            content_type="application/json", if_generation_match=if_generation_match)
    return blob


def _flip_pointer(pointer_blob, pointer: dict[str, Any], before_generation: int, gs_dest: str) -> None:
    """Write the pointer only if it still has the generation seen at the start (0: absent).

    ``Cache-Control: no-store`` so that no cache serves a stale pointer.
    Raises:
      PublishConflictError: Cloud Storage refused the precondition (another publisher won).
    """
    pointer_blob.cache_control = "no-store"
    try:
        _upload_json(pointer_blob, pointer, before_generation)
    except Exception as e:
        from google.api_core import exceptions as gexc
        if isinstance(e, gexc.PreconditionFailed):
            raise PublishConflictError(
                f"the pointer under {gs_dest} changed during publish; {pointer['version']} was not "
                "made live") from e
        raise


def _candidate_files(model_dir: str, client) -> dict[str, tuple[int, Any]]:
    """{relative path: (size, local path or source blob)} of a local or gs:// model directory."""
    if is_gcs(model_dir):
        files, _ = _gs_files(model_dir, client)
        return {rel: (int(blob.size), blob) for rel, blob in files}
    files, _ = _local_files(model_dir)
    return {rel: (os.path.getsize(path), path)
            for rel, path in ((rel, os.path.join(model_dir, *rel.split("/"))) for rel in files)}


def _same_file(entry: dict[str, Any], size: int, source: Any) -> bool:
    """Whether a manifest entry describes the candidate file (size, then SHA-256 or MD5)."""
    if entry.get("size") != size:
        return False
    if isinstance(source, str):  # local file: hash it the way the manifest recorded it
        sha256, md5 = file_hashes(source)
        if "sha256" in entry:
            return entry["sha256"] == sha256
        return entry.get("md5") is not None and entry["md5"] == md5
    # gs:// source blob: Cloud Storage's MD5 is all we have without a download
    return entry.get("md5") is not None and entry["md5"] == source.md5_hash


def find_live_copy(model_dir: str, gs_dest: str, skip: tuple[str, ...] = (), *,
                   client=None) -> tuple[str, str] | None:
    """The live version under ``gs_dest`` if its manifest lists exactly ``model_dir``'s files.

    Args:
      model_dir: candidate model directory, local or ``gs://``.
      gs_dest: ``gs://bucket/prefix`` (the pointer is ``gs_dest/LATEST``).
      skip: top-level names added beside the model at publish time (e.g. metrics.json), ignored.
      client: a ``google.cloud.storage.Client``; default: a new one from the environment.
    Returns:
      (version URI, version) when every file matches by path, size and checksum; None when
      nothing is live, the content differs, or the live version has no readable manifest.
    Raises:
      ValueError: bad URI, a pointer in an unknown format, or an empty/invalid model directory.
    """
    client = _default_client(client)
    pointer = read_pointer(gs_dest, client=client)
    if pointer is None:
        return None
    try:
        manifest = read_manifest(pointer["uri"], client=client)
    except (LookupError, ValueError) as e:  # a broken live version: publishing anew is the safe side
        log.warning("cannot compare with the live version %s: %s", pointer["uri"], e)
        return None
    entries = {e["path"]: e for e in manifest.get("files", []) if e["path"] not in set(skip)}
    candidate = _candidate_files(model_dir, client)
    if set(entries) != set(candidate):
        return None
    if all(_same_file(entries[rel], size, source) for rel, (size, source) in candidate.items()):
        return pointer["uri"], pointer["version"]
    return None


def _delete_quietly(blobs) -> None:
    """Best-effort removal of a failed version's objects; never masks the original error."""
    for blob in reversed(blobs):
        try:
            blob.delete()
        except Exception as e:  # the original exception matters more; this one is only logged
            log.warning("could not delete %s after a failed publish: %s", blob.name, e)


def read_manifest(version_uri: str, *, client=None) -> dict[str, Any]:
    """The manifest of a published version (``files``: path, size, sha256, md5; ``metadata``).

    Raises:
      LookupError: the version has no manifest (never published, or a failed upload).
      ValueError: bad URI or unknown manifest format.
    """
    bucket_name, version_prefix = parse_gcs(version_uri)
    client = _default_client(client)
    blob = client.bucket(bucket_name).get_blob(_join(version_prefix, MANIFEST_NAME))
    if blob is None:
        raise LookupError(f"{version_uri} has no {MANIFEST_NAME}: not a complete published version")
    manifest = json.loads(blob.download_as_bytes())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{version_uri}/{MANIFEST_NAME} is not a {FORMAT} manifest")
    return manifest


def download_version(version_uri: str, local_dir: str, *, client=None) -> str:
    """Download a published version into ``local_dir`` (created), verifying every file's size and
    SHA-256 (MD5 for files that were copied server-side from a gs:// source).

    Only files listed in the manifest are fetched, so stray objects never leak into a model.
    Returns:
      ``local_dir``.
    Raises:
      LookupError: no manifest (see :func:`read_manifest`) or a listed file is missing.
      PublishError: a downloaded file's size or checksum differs from the manifest.
    """
    from google.api_core import exceptions as gexc

    bucket_name, version_prefix = parse_gcs(version_uri)
    client = _default_client(client)
    bucket = client.bucket(bucket_name)
    manifest = read_manifest(version_uri, client=client)
    os.makedirs(local_dir, exist_ok=True)
    for rel in manifest.get("empty_dirs", []):
        os.makedirs(os.path.join(local_dir, *rel.split("/")), exist_ok=True)
    for entry in manifest["files"]:
        target = os.path.join(local_dir, *entry["path"].split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            data = bucket.blob(_join(version_prefix, entry["path"])).download_as_bytes()
        except gexc.NotFound as e:
            raise LookupError(f"{version_uri}: listed file {entry['path']} is missing") from e
        if "sha256" in entry:
            ok = hashlib.sha256(data).hexdigest() == entry["sha256"]
        else:  # copied server-side from gs://: Cloud Storage's MD5 is what we have
            ok = entry.get("md5") is None or base64.b64encode(hashlib.md5(data).digest()).decode() == entry["md5"]
        if len(data) != entry["size"] or not ok:
            raise PublishError(f"{version_uri}/{entry['path']}: content differs from the manifest")
        with open(target, "wb") as f:
            f.write(data)
    return local_dir
