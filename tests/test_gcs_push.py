"""components/pusher/gcs_publish.py against a real gcp-storage-emulator server started by the test (no cloud)."""
from __future__ import annotations

import json
import os
import threading

import pytest

from components.pusher import gcs_publish as gcs_push
from tests.gcs_emulator import anonymous_client, gcs_emulator

BUCKET = "models"


@pytest.fixture(scope="module")
def client():
    """One emulator for the module; each test uses its own prefix, so tests do not interact."""
    with gcs_emulator((BUCKET,)):
        yield anonymous_client()


def _make_model_dir(root, tag: str, n_files: int = 4, size: int = 2048) -> str:
    """A fake SavedModel-like tree whose every file names ``tag`` (so mixes are detectable)."""
    d = os.path.join(root, tag)
    os.makedirs(os.path.join(d, "variables"))
    os.makedirs(os.path.join(d, "assets"))  # empty, like a SavedModel without assets
    with open(os.path.join(d, "saved_model.pb"), "wb") as f:
        f.write(f"{tag}:saved_model".encode() + os.urandom(size))
    for i in range(n_files - 1):
        with open(os.path.join(d, "variables", f"variables.data-{i:05d}"), "wb") as f:
            f.write(f"{tag}:{i}:".encode() + os.urandom(size))
    return d


def _tags_in(local_dir: str) -> set[str]:
    tags = set()
    for root, _, names in os.walk(local_dir):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                tags.add(f.read().split(b":", 1)[0].decode())
    return tags


def _names_under(client, prefix: str) -> list[str]:
    return sorted(b.name for b in client.list_blobs(BUCKET, prefix=prefix))


def test_publish_resolve_download_roundtrip(client, tmp_path):
    dest = f"gs://{BUCKET}/roundtrip/generator"
    with pytest.raises(LookupError):
        gcs_push.resolve_latest(dest, client=client)
    src = _make_model_dir(tmp_path, "v1")
    uri = gcs_push.publish_model_dir(src, dest, {"fid": 41.5, "model_id": 7}, client=client)

    assert uri.startswith(f"{dest}/versions/")
    version = uri.rsplit("/", 1)[1]
    assert not version.isdigit()  # TF Serving must not treat a version dir as a servable
    assert gcs_push.resolve_latest(dest, client=client) == uri
    pointer = gcs_push.read_pointer(dest, client=client)
    assert pointer["version"] == version and pointer["metadata"] == {"fid": 41.5, "model_id": 7}
    assert pointer["previous_version"] is None
    manifest = gcs_push.read_manifest(uri, client=client)
    assert [e["path"] for e in manifest["files"]] == [
        "saved_model.pb", "variables/variables.data-00000", "variables/variables.data-00001",
        "variables/variables.data-00002"]
    assert manifest["empty_dirs"] == ["assets"]
    pointer_blob = client.bucket(BUCKET).get_blob("roundtrip/generator/LATEST")
    assert pointer_blob.cache_control == "no-store"

    out = gcs_push.download_version(uri, str(tmp_path / "dl"), client=client)
    for rel in ("saved_model.pb", "variables/variables.data-00002"):
        with open(os.path.join(src, rel), "rb") as a, open(os.path.join(out, rel), "rb") as b:
            assert a.read() == b.read()
    assert os.path.isdir(os.path.join(out, "assets"))


def test_second_publish_moves_pointer_and_keeps_old_version(client, tmp_path):
    dest = f"gs://{BUCKET}/second"
    uri1 = gcs_push.publish_model_dir(_make_model_dir(tmp_path, "v1"), dest, client=client)
    uri2 = gcs_push.publish_model_dir(_make_model_dir(tmp_path, "v2"), dest, client=client)
    assert uri1 != uri2
    assert gcs_push.resolve_latest(dest, client=client) == uri2
    assert gcs_push.read_pointer(dest, client=client)["previous_version"] == uri1.rsplit("/", 1)[1]
    # the old version stays readable (rollback = point LATEST back at it)
    assert _tags_in(gcs_push.download_version(uri1, str(tmp_path / "old"), client=client)) == {"v1"}


def test_failure_mid_upload_leaves_pointer_on_old_version(client, tmp_path):
    dest = f"gs://{BUCKET}/crash"
    uri1 = gcs_push.publish_model_dir(_make_model_dir(tmp_path, "v1"), dest, client=client)
    src2 = _make_model_dir(tmp_path, "v2", n_files=6)

    def crash_after_three(rel, done, total):
        if done == 3:
            raise ConnectionError("network dropped (simulated)")

    with pytest.raises(ConnectionError):
        gcs_push.publish_model_dir(src2, dest, client=client, version="v2-broken",
                                   on_progress=crash_after_three)
    assert gcs_push.resolve_latest(dest, client=client) == uri1
    assert _names_under(client, "crash/versions/v2-broken/") == []  # partial upload cleaned up
    with pytest.raises(LookupError):
        gcs_push.read_manifest(f"{dest}/versions/v2-broken", client=client)
    assert _tags_in(gcs_push.download_version(uri1, str(tmp_path / "after"), client=client)) == {"v1"}


def test_reader_never_sees_a_partial_version(client, tmp_path):
    """Deterministic part: at every step of the upload the staging prefix is partial, yet a reader
    following the pointer gets the complete old version. Threaded part: a reader looping during the
    upload only ever sees complete v1 or complete v2."""
    dest = f"gs://{BUCKET}/concurrent"
    uri1 = gcs_push.publish_model_dir(_make_model_dir(tmp_path, "v1", n_files=5), dest, client=client)
    src2 = _make_model_dir(tmp_path, "v2", n_files=12)
    staging_seen = []

    def check_reader(rel, done, total):
        staged = _names_under(client, "concurrent/versions/v2-next/")
        staging_seen.append(len(staged))
        assert len(staged) == done and not any(n.endswith(gcs_push.MANIFEST_NAME) for n in staged)
        assert gcs_push.resolve_latest(dest, client=client) == uri1

    observations, errors = [], []
    stop = threading.Event()

    def reader():
        reader_client = anonymous_client()
        i = 0
        while not stop.is_set():
            try:
                uri = gcs_push.resolve_latest(dest, client=reader_client)
                out = gcs_push.download_version(uri, str(tmp_path / f"r{i}"), client=reader_client)
                n_files = sum(len(names) for _, _, names in os.walk(out))
                observations.append((uri, frozenset(_tags_in(out)), n_files))
            except Exception as e:  # any reader error fails the test below
                errors.append(e)
            i += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        uri2 = gcs_push.publish_model_dir(src2, dest, client=client, version="v2-next",
                                          on_progress=check_reader)
        for _ in range(200):  # let the reader observe the new version at least once
            if any(o[0] == uri2 for o in observations) or errors:
                break
            threading.Event().wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors
    assert staging_seen == list(range(1, 13))
    assert observations
    for uri, tags, n_files in observations:
        assert (uri, tags, n_files) in {(uri1, frozenset({"v1"}), 5), (uri2, frozenset({"v2"}), 12)}
    assert observations[-1][0] == uri2


def test_concurrent_publisher_conflict_is_refused(client, tmp_path):
    dest = f"gs://{BUCKET}/conflict"
    gcs_push.publish_model_dir(_make_model_dir(tmp_path, "v1"), dest, client=client)
    src_slow, src_fast = _make_model_dir(tmp_path, "slow"), _make_model_dir(tmp_path, "fast")
    fast_uri = []

    def other_publisher_wins(rel, done, total):
        if done == 1:
            fast_uri.append(gcs_push.publish_model_dir(src_fast, dest, client=client))

    with pytest.raises(gcs_push.PublishConflictError):
        gcs_push.publish_model_dir(src_slow, dest, client=client, version="slow",
                                   on_progress=other_publisher_wins)
    assert gcs_push.resolve_latest(dest, client=client) == fast_uri[0]
    assert _names_under(client, "conflict/versions/slow/") == []


@pytest.mark.parametrize("dest", ["/local/path", "gs://", "s3://bucket/x"])
def test_bad_destination_is_refused(client, tmp_path, dest):
    with pytest.raises(ValueError):
        gcs_push.publish_model_dir(_make_model_dir(tmp_path, "v1"), dest, client=client)


def test_bad_inputs_are_refused(client, tmp_path):
    dest = f"gs://{BUCKET}/bad"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no files"):
        gcs_push.publish_model_dir(str(empty), dest, client=client)
    with pytest.raises(ValueError, match="not a directory"):
        gcs_push.publish_model_dir(str(tmp_path / "missing"), dest, client=client)
    src = _make_model_dir(tmp_path, "v1")
    with pytest.raises(ValueError, match="JSON"):
        gcs_push.publish_model_dir(src, dest, {"x": object()}, client=client)
    os.symlink("/etc/hostname", os.path.join(src, "link"))
    with pytest.raises(ValueError, match="regular file"):
        gcs_push.publish_model_dir(src, dest, client=client)
    assert _names_under(client, "bad/") == []  # nothing was written by any refused call
    client.bucket(BUCKET).blob("bad/LATEST").upload_from_string(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="pointer"):
        gcs_push.resolve_latest(dest, client=client)


def _upload_dir(client, local_dir, prefix: str) -> None:
    """Upload every file under ``local_dir`` to ``gs://BUCKET/<prefix>/<relative path>``."""
    bucket = client.bucket(BUCKET)
    for root, _, names in os.walk(local_dir):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), local_dir).replace(os.sep, "/")
            bucket.blob(f"{prefix}/{rel}").upload_from_filename(os.path.join(root, name))


def test_publish_from_gs_source_with_extra_file(client, tmp_path):
    """On Vertex the Trainer's model already lives in gs://: it is copied server-side."""
    src = _make_model_dir(tmp_path, "v1")
    _upload_dir(client, src, "pipeline-root/Trainer/model/7/Format-Serving")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"fid": 12.5}))
    dest = f"gs://{BUCKET}/from-gs"
    uri = gcs_push.publish_model_dir(f"gs://{BUCKET}/pipeline-root/Trainer/model/7/Format-Serving", dest,
                                     {"fid": 12.5}, client=client, extra_files={"metrics.json": str(metrics)})
    assert gcs_push.resolve_latest(dest, client=client) == uri
    manifest = gcs_push.read_manifest(uri, client=client)
    assert {e["path"] for e in manifest["files"]} == {
        "saved_model.pb", "metrics.json", "variables/variables.data-00000",
        "variables/variables.data-00001", "variables/variables.data-00002"}
    out = gcs_push.download_version(uri, str(tmp_path / "dl"), client=client)
    with open(os.path.join(src, "saved_model.pb"), "rb") as a, open(os.path.join(out, "saved_model.pb"), "rb") as b:
        assert a.read() == b.read()
    assert json.loads(open(os.path.join(out, "metrics.json")).read()) == {"fid": 12.5}
    with pytest.raises(ValueError, match="overwrite"):
        gcs_push.publish_model_dir(src, dest, client=client, extra_files={"saved_model.pb": str(metrics)})
    with pytest.raises(ValueError, match="plain file name"):
        gcs_push.publish_model_dir(src, dest, client=client, extra_files={"../x.json": str(metrics)})
    with pytest.raises(ValueError, match="no objects"):
        gcs_push.publish_model_dir(f"gs://{BUCKET}/nothing-here", dest, client=client)


def test_pusher_publish_dispatches_gs_destinations_to_the_pointer_route(client, tmp_path):
    from components.pusher.publish import publish

    dest = f"gs://{BUCKET}/serving/via-pusher"
    src = _make_model_dir(tmp_path, "v1")
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"fid": 12.0}')
    uri, version = publish(src, dest, extra_files={"metrics.json": str(metrics)})
    assert uri == gcs_push.resolve_latest(dest, client=client)
    assert uri.endswith("/" + version)
    out = gcs_push.download_version(uri, str(tmp_path / "dl"), client=client)
    assert open(os.path.join(out, "metrics.json")).read() == '{"fid": 12.0}'


def test_fid_weights_from_gs_are_downloaded_once_and_hash_checked(client, tmp_path):
    import hashlib

    from dcgan_common.fid.weights import WeightsError, resolve_weights

    payload = b"stand-in weights file " * 1000
    sha1 = hashlib.sha1(payload).hexdigest()
    client.bucket(BUCKET).blob("weights/default_1.pt").upload_from_string(payload)
    cache = tmp_path / "cache"
    local = resolve_weights(f"gs://{BUCKET}/weights/default_1.pt", str(cache), expected_sha1=sha1)
    assert open(local, "rb").read() == payload and os.path.dirname(local) == str(cache)
    client.bucket(BUCKET).blob("weights/default_1.pt").delete()
    # Second call: served from the cache (the object is gone).
    assert resolve_weights(f"gs://{BUCKET}/weights/default_1.pt", str(cache), expected_sha1=sha1) == local
    client.bucket(BUCKET).blob("weights/other.pt").upload_from_string(b"tampered")
    with pytest.raises(WeightsError, match="sha1"):
        resolve_weights(f"gs://{BUCKET}/weights/other.pt", str(tmp_path / "c2"), expected_sha1=sha1)
    assert not any(n.endswith(".pt") for n in os.listdir(tmp_path / "c2"))


def test_identical_model_is_not_published_twice(client, tmp_path):
    """An identical re-run finds its model already live under the pointer: no second version."""
    from components.pusher.executor import push_unless_live

    dest = f"gs://{BUCKET}/rerun"
    src = _make_model_dir(tmp_path, "v1")
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"fid": 12.0}')
    assert gcs_push.find_live_copy(src, dest, client=client) is None  # nothing published yet
    # push_unless_live makes its own client (the emulator, from the environment), as the Pusher does.
    uri, version, already = push_unless_live(src, dest, {"metrics.json": str(metrics)})
    assert not already and uri == gcs_push.resolve_latest(dest, client=client)
    before = _names_under(client, "rerun/")

    metrics.write_text('{"fid": 12.5}')  # a new evaluation of the same model
    assert push_unless_live(src, dest, {"metrics.json": str(metrics)}) == (uri, version, True)
    assert _names_under(client, "rerun/") == before  # not one object written
    assert gcs_push.read_pointer(dest, client=client)["previous_version"] is None

    # Different bytes (same size) are a different model: published as a new version.
    with open(os.path.join(src, "variables", "variables.data-00001"), "r+b") as f:
        f.seek(10)
        f.write(b"\x00\x01")
    uri2, _, already = push_unless_live(src, dest, {"metrics.json": str(metrics)})
    assert not already and uri2 != uri and gcs_push.resolve_latest(dest, client=client) == uri2


def test_live_copy_found_for_a_gs_source(client, tmp_path):
    """On Vertex the model is in gs:// and its files were copied server-side (MD5 only)."""
    src = _make_model_dir(tmp_path, "v1")
    source = f"gs://{BUCKET}/root-live/Trainer/model/9/Format-Serving"
    _upload_dir(client, src, "root-live/Trainer/model/9/Format-Serving")
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"fid": 3.0}')
    dest = f"gs://{BUCKET}/live-from-gs"
    uri = gcs_push.publish_model_dir(source, dest, client=client,
                                     extra_files={"metrics.json": str(metrics)})
    version = uri.rsplit("/", 1)[1]
    assert gcs_push.find_live_copy(source, dest, ("metrics.json",), client=client) == (uri, version)
    # metrics.json is only ignored when the caller says it was added beside the model.
    assert gcs_push.find_live_copy(source, dest, client=client) is None
    # The same files from a local directory match too (MD5 computed locally).
    assert gcs_push.find_live_copy(src, dest, ("metrics.json",), client=client) == (uri, version)
    client.bucket(BUCKET).blob("root-live/Trainer/model/9/Format-Serving/extra.txt").upload_from_string(b"x")
    assert gcs_push.find_live_copy(source, dest, ("metrics.json",), client=client) is None
