"""A local Google Cloud Storage server for tests: ``gcp-storage-emulator`` run as a subprocess.

Usage::

    from tests.gcs_emulator import gcs_emulator

    with gcs_emulator(buckets=("models",)) as url:   # url: "http://127.0.0.1:PORT"
        client = storage.Client()                   # talks to the emulator

or the ``gcs_server`` pytest fixture (function scope) defined below; a test module opts in with
``from tests.gcs_emulator import gcs_server  # noqa: F401``.

Self-contained on purpose: other test modules may start their own emulator; each instance gets its
own free port and its own in-memory store, so they never share state.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

#: Seconds to wait for the emulator to answer before giving up (it starts in ~1 s here).
STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    """Poll the bucket-list endpoint until it answers HTTP 200.

    Raises:
      RuntimeError: the process exited, or it did not answer within ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gcp-storage-emulator exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            last_error = e
        time.sleep(0.1)
    raise RuntimeError(f"gcp-storage-emulator did not answer on {url} within {timeout_s} s: {last_error}")


@contextlib.contextmanager
def gcs_emulator(buckets: tuple[str, ...] = ("test-bucket",), *,
                 set_env: bool = True) -> Iterator[str]:
    """Start an in-memory GCS emulator on 127.0.0.1 at a free port; yield its base URL.

    Args:
      buckets: bucket names created before yielding (through the JSON API, like a user would).
      set_env: also set ``STORAGE_EMULATOR_HOST`` (read by google-cloud-storage when a Client is
        made) for the duration, restoring the previous value afterwards.
    Yields:
      ``"http://127.0.0.1:PORT"``.
    Raises:
      RuntimeError: the server did not come up (its stderr is in the message).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
         "--port", str(port), "--in-memory", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    try:
        try:
            _wait_until_up(url, proc, STARTUP_TIMEOUT_S)
        except RuntimeError as e:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise RuntimeError(f"{e}\nemulator stderr:\n{err.decode(errors='replace')[-2000:]}") from None
        if set_env:
            os.environ["STORAGE_EMULATOR_HOST"] = url
        for name in buckets:
            request = urllib.request.Request(
                f"{url}/storage/v1/b?project=test", data=f'{{"name": "{name}"}}'.encode(),
                headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                if response.status != 200:
                    raise RuntimeError(f"could not create bucket {name!r}: HTTP {response.status}")
        yield url
    finally:
        if set_env:
            if previous is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def anonymous_client():
    """A ``google.cloud.storage.Client`` for the emulator named by ``STORAGE_EMULATOR_HOST``.

    Anonymous credentials and a placeholder project: the emulator checks neither, and nothing
    here may look for real credentials.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="test", credentials=AnonymousCredentials())


@pytest.fixture
def gcs_server() -> Iterator[str]:
    """Pytest fixture: a fresh emulator with bucket ``test-bucket``; yields its URL."""
    with gcs_emulator(("test-bucket",)) as url:
        yield url
