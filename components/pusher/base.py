"""What the local and the gs:// publisher share: the error they raise and the file hash they record.

A module of its own so that ``publish`` (the dispatcher, which imports ``gcs_publish`` when the
destination is gs://) and ``gcs_publish`` both import it, and neither imports the other back.
"""
from __future__ import annotations

import base64
import hashlib

_READ_CHUNK = 1 << 20  # bytes per read when hashing: bounded memory for any model size


class PublishError(RuntimeError):
    """The destination cannot be written (unsupported scheme, or the copy failed)."""


def file_hashes(path: str) -> tuple[str, str]:
    """(sha256 hex, md5 base64) of a local file, read in 1 MiB chunks; md5 in base64 is what Cloud
    Storage reports for an object (gcs_publish's manifests record both)."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_READ_CHUNK), b""):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), base64.b64encode(md5.digest()).decode("ascii")
