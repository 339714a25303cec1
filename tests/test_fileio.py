"""dcgan_common/fileio.py: atomic_write on local disk, on gs:// (a local gcp-storage-emulator) and ram://."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dcgan_common.fileio import atomic_write, read_if_exists
from tests.gcs_emulator import anonymous_client, gcs_server  # noqa: F401  (gcs_server: fixture)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAYLOAD = bytes(range(256)) * 64  # every byte value: nothing may be re-encoded on the way


class ExplodingBuffer:
    """Bytes-like on the surface, but exporting its buffer (its bytes conversion) raises."""

    def __buffer__(self, flags):  # PEP 688 (Python >= 3.12); older Pythons reject the object
        raise RuntimeError("boom while converting to bytes")

    def __bytes__(self):
        raise RuntimeError("boom while converting to bytes")


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_local_write_creates_parents_and_writes_exact_bytes(tmp_path):
    target = tmp_path / "a" / "b" / "c.bin"
    atomic_write(str(target), PAYLOAD)
    assert _read(target) == PAYLOAD
    assert os.listdir(target.parent) == ["c.bin"]  # no temp file left beside it
    # Any bytes-like object is accepted and written as is.
    atomic_write(str(target), bytearray(b"abc"))
    assert _read(target) == b"abc"
    atomic_write(str(target), memoryview(b"xyz"))
    assert _read(target) == b"xyz"


def test_local_relative_path_in_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    atomic_write("out.json", b"{}")
    assert _read(tmp_path / "out.json") == b"{}"
    assert os.listdir(tmp_path) == ["out.json"]


def test_local_overwrite_replaces_the_file_instead_of_rewriting_it(tmp_path):
    target = tmp_path / "spec.json"
    atomic_write(str(target), b"old content")
    with open(target, "rb") as reader:
        atomic_write(str(target), b"new")
        # A reader that opened the file before sees the complete old file, not a mix: the new
        # content went to another file that was renamed over the name.
        assert reader.read() == b"old content"
    assert _read(target) == b"new"
    assert os.listdir(tmp_path) == ["spec.json"]


def test_local_mode_follows_umask_like_open(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(str(tmp_path / "report.html"), b"<html></html>")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "report.html").st_mode & 0o777 == 0o640


@pytest.mark.parametrize("bad", [ExplodingBuffer(), "a str is not bytes"], ids=["raising-buffer", "str"])
def test_local_failed_conversion_keeps_old_file_and_leaves_no_temp(tmp_path, bad):
    target = tmp_path / "stats.npz"
    atomic_write(str(target), b"previous")
    expected = RuntimeError if isinstance(bad, ExplodingBuffer) and sys.version_info >= (3, 12) else TypeError
    with pytest.raises(expected):
        atomic_write(str(target), bad)
    assert _read(target) == b"previous"
    assert os.listdir(tmp_path) == ["stats.npz"]


def test_local_directory_target_fails_after_writing_and_cleans_up(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "keep.txt").write_bytes(b"k")
    with pytest.raises(IsADirectoryError):
        atomic_write(str(folder), PAYLOAD)  # the temp is complete here; only the rename fails
    assert sorted(os.listdir(tmp_path)) == ["reports"]
    assert os.listdir(folder) == ["keep.txt"]
    # A trailing slash names a folder: refused, never written as a file without the slash.
    with pytest.raises(NotADirectoryError):
        atomic_write(str(tmp_path / "x") + "/", b"data")
    assert sorted(os.listdir(tmp_path)) == ["reports"]


def test_import_and_local_write_do_not_load_tensorflow_or_gcs(tmp_path):
    code = ("import sys; from dcgan_common.fileio import atomic_write; "
            f"atomic_write({str(tmp_path / 'f.bin')!r}, b'1'); "
            "print(sorted(m for m in ('tensorflow', 'google.cloud.storage') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"
    assert _read(tmp_path / "f.bin") == b"1"


def test_gcs_round_trip_against_emulator(gcs_server):
    from google.api_core import exceptions

    from components.image_example_gen import storage

    client = anonymous_client()
    uri = "gs://test-bucket/runs/7/training_summary.json"
    atomic_write(uri, PAYLOAD)
    assert client.bucket("test-bucket").blob("runs/7/training_summary.json").download_as_bytes() == PAYLOAD
    atomic_write(uri, bytearray(b"second"))  # overwrite, bytes-like input
    assert storage.read_bytes(uri) == b"second"
    # One object, no temporary objects beside it.
    assert [b.name for b in client.list_blobs("test-bucket")] == ["runs/7/training_summary.json"]
    # The ledger's writer is the same function.
    storage.write_bytes("gs://test-bucket/reports/ingestion_report.json", b"{}")
    assert storage.read_bytes("gs://test-bucket/reports/ingestion_report.json") == b"{}"

    for bad_uri in ("gs://test-bucket", "gs://test-bucket/", "gs://test-bucket/folder/"):
        with pytest.raises(ValueError):
            atomic_write(bad_uri, b"x")
    with pytest.raises(TypeError):
        atomic_write(uri, "a str is not bytes")
    with pytest.raises(exceptions.NotFound):
        atomic_write("gs://no-such-bucket/x.json", b"x")
    assert storage.read_bytes(uri) == b"second"
    assert read_if_exists(uri) == b"second"
    assert read_if_exists("gs://test-bucket/runs/7/absent.json") is None


def test_read_if_exists_local(tmp_path):
    assert read_if_exists(str(tmp_path / "absent.bin")) is None
    atomic_write(str(tmp_path / "present.bin"), b"abc")
    assert read_if_exists(str(tmp_path / "present.bin")) == b"abc"
    with pytest.raises(IsADirectoryError):
        read_if_exists(str(tmp_path))


def test_other_gfile_scheme_via_tensorflow_rename():
    import tensorflow as tf

    folder = "ram://fileio-test"
    uri = f"{folder}/summary.json"
    atomic_write(uri, b"first")
    atomic_write(uri, PAYLOAD)
    with tf.io.gfile.GFile(uri, "rb") as f:
        assert f.read() == PAYLOAD
    assert tf.io.gfile.listdir(folder) == ["summary.json"]
    with pytest.raises(TypeError):
        atomic_write(uri, "a str is not bytes")
    with tf.io.gfile.GFile(uri, "rb") as f:
        assert f.read() == PAYLOAD
