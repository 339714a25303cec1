"""gs:// URIs and the Cloud Storage client: the one place the project parses them or makes one.

Everything gs:// goes through google-cloud-storage, not ``tf.io.gfile``: the client honours
``STORAGE_EMULATOR_HOST`` (the tests run a local gcp-storage-emulator, and gfile does not reach
it) and gives object generations and preconditions, which the Pusher's pointer flip needs.
Credentials come from the environment (Application Default Credentials), never from arguments.
The client library is imported only when a client is made, so gs://-free runs never pay for it.
"""
from __future__ import annotations

GCS_SCHEME = "gs://"


def is_gcs(uri) -> bool:
    """True for a string that starts with ``gs://``; False for anything else (other types too)."""
    return isinstance(uri, str) and uri.startswith(GCS_SCHEME)


def parse_gcs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b/`` -> ``("bucket", "a/b")``: the bucket, and the object name or prefix
    without surrounding slashes ("" for the bucket itself).

    Raises:
      ValueError: not a gs:// URI (or not a string), or no bucket name.
    """
    if not is_gcs(uri):
        raise ValueError(f"not a gs://bucket[/path] URI: {uri!r}")
    bucket, _, rest = uri[len(GCS_SCHEME):].partition("/")
    if not bucket:
        raise ValueError(f"gs:// URI without a bucket: {uri!r}")
    return bucket, rest.strip("/")


def client():
    """A new ``google.cloud.storage.Client`` from the environment.

    With ``STORAGE_EMULATOR_HOST`` set it talks to that emulator with anonymous credentials;
    otherwise it uses Application Default Credentials.
    """
    from google.cloud import storage  # lazy: slow to import, and only gs:// users need it

    return storage.Client()


def read_object(uri: str) -> bytes:
    """The bytes of the object ``gs://bucket/name``.

    Raises:
      ValueError: not a gs:// URI.
      google.api_core.exceptions.NotFound: no such object or bucket; other GoogleAPICallErrors
        for other failures.
    """
    bucket, name = parse_gcs(uri)
    return client().bucket(bucket).blob(name).download_as_bytes()


def write_object(uri: str, data: bytes) -> None:
    """Upload ``data`` as the object ``gs://bucket/name`` in one request (readers see the old
    object or the new one, never a part).

    Raises:
      ValueError: not a gs:// URI, or one that names no object (no name, or a trailing ``/``).
      google.api_core.exceptions.GoogleAPICallError: the upload failed (NotFound for a missing
        bucket, Forbidden, ...).
    """
    bucket, name = parse_gcs(uri)
    if not name or uri.endswith("/"):
        raise ValueError(f"gs:// URI does not name an object: {uri!r}")
    client().bucket(bucket).blob(name).upload_from_string(data)
