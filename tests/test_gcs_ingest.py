"""Ingest from gs:// against a gcp-storage-emulator server started here (127.0.0.1, free port)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from components.image_example_gen import beam_ingest
from conftest import build_dirty_crawl
from dcgan_common import gcs as gcs_lib
from dcgan_common.config import IngestConfig

BUCKET = "crawl-bucket"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def emulator(tmp_path, monkeypatch):
    """Start the emulator as a subprocess; STORAGE_EMULATOR_HOST points the client at it."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port),
         "--in-memory", "--default-bucket", BUCKET, "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("gcp-storage-emulator did not start: "
                                       + proc.stderr.read().decode(errors="replace")[-2000:])
                time.sleep(0.2)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
        yield f"gs://{BUCKET}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_ingest_from_gcs_matches_local(emulator, tmp_path):
    local = tmp_path / "crawl"
    local.mkdir()
    expected = build_dirty_crawl(str(local))
    bucket = gcs_lib.client().bucket(BUCKET)
    for dirpath, _, files in os.walk(local):
        for name in files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, local).replace(os.sep, "/")
            bucket.blob(f"shop/{rel}").upload_from_filename(path)
    bucket.blob("shop/emptycat/").upload_from_string(b"")   # a console-made "folder" marker
    bucket.blob("other/x.jpg").upload_from_string(b"outside the prefix")

    # min_train_examples=1: the crawl is far smaller than one training batch.
    cfg = IngestConfig(max_rejected_fraction=1.0, allow_empty_categories=True, min_train_examples=1)
    gcs = beam_ingest.run_ingestion(f"{emulator}/shop", cfg, str(tmp_path / "gcs.json"), str(tmp_path / "ex_gcs"))
    loc = beam_ingest.run_ingestion(str(local), cfg, str(tmp_path / "local.json"), str(tmp_path / "ex_local"))
    got = {e["path"]: (e["status"], e["reason"], e["category"]) for e in gcs["files"]}
    assert got == expected
    assert gcs["files"] == loc["files"] and gcs["labels"] == loc["labels"] and gcs["splits"] == loc["splits"]
    # The empty folder marker registers an (empty) category but is not a file.
    assert gcs["counts_by_category"]["emptycat"]["seen"] == 0
    assert "emptycat" not in loc["counts_by_category"]

    # The ledger itself can be written to gs:// too.
    beam_ingest.run_ingestion(f"{emulator}/shop", cfg, f"{emulator}/reports/ingestion_report.json")
    assert bucket.blob("reports/ingestion_report.json").exists()


@pytest.mark.parametrize("root,message", [
    ("gs://no-such-bucket/shop", "bucket 'no-such-bucket' does not exist"),
    (f"gs://{BUCKET}/shopp", "no object under it"),          # a typo in the prefix
])
def test_missing_gcs_root_is_a_clear_input_error(emulator, tmp_path, capsys, root, message):
    from pipeline import cli
    gcs_lib.client().bucket(BUCKET).blob("shop/cats/a.jpg").upload_from_string(b"x")
    assert cli.main(["check-data", root, "--report", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
