"""The Pusher does not publish a second copy of the model that is already live (local destination).

Real files in tmp_path; the gs:// side of the same check is in test_gcs_push.py and the whole
pipeline (evaluator + pusher, re-run with the same model) in test_fid_component.py.
"""
from __future__ import annotations

import os

from components.pusher import executor, publish


def _model_dir(root, tag: str) -> str:
    """A SavedModel-like tree whose content depends on ``tag``."""
    d = os.path.join(root, tag)
    os.makedirs(os.path.join(d, "variables"))
    os.makedirs(os.path.join(d, "assets"))
    with open(os.path.join(d, "saved_model.pb"), "wb") as f:
        f.write(f"{tag}:graph".encode())
    with open(os.path.join(d, "variables", "variables.data-00000-of-00001"), "wb") as f:
        f.write(f"{tag}:weights".encode() * 100)
    return d


def _metrics(root, text: str = '{"fid": 12.0}') -> str:
    path = os.path.join(root, f"metrics-{abs(hash(text))}.json")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_identical_model_is_not_pushed_twice(tmp_path):
    serving = str(tmp_path / "serving")
    model = _model_dir(tmp_path, "a")
    path1, version1, already1 = executor.push_unless_live(
        model, serving, {"metrics.json": _metrics(tmp_path)})
    assert not already1 and os.listdir(serving) == [version1]
    # Same files again (another evaluation, so a different metrics.json): nothing new is written.
    path2, version2, already2 = executor.push_unless_live(
        model, serving, {"metrics.json": _metrics(tmp_path, '{"fid": 12.5}')})
    assert already2 and (path2, version2) == (path1, version1)
    assert os.listdir(serving) == [version1]
    # A copy of the same files elsewhere (a re-imported artifact) is recognised by content.
    copy = str(tmp_path / "copy")
    os.rename(model, copy)
    assert executor.push_unless_live(copy, serving, {})[2] is True
    assert os.listdir(serving) == [version1]


def test_changed_model_is_pushed_as_a_new_version(tmp_path):
    serving = str(tmp_path / "serving")
    model = _model_dir(tmp_path, "a")
    _, version1, _ = executor.push_unless_live(model, serving, {})
    with open(os.path.join(model, "variables", "variables.data-00000-of-00001"), "ab") as f:
        f.write(b"one more byte")
    _, version2, already = executor.push_unless_live(model, serving, {})
    assert not already and int(version2) > int(version1)
    assert sorted(os.listdir(serving), key=int) == [version1, version2]
    # An extra file in the model is a difference too.
    with open(os.path.join(model, "assets", "vocab.txt"), "w") as f:
        f.write("x")
    assert publish.find_live_copy(model, serving, skip=("metrics.json",)) is None


def test_only_the_live_version_counts(tmp_path):
    """Going back to an older model (a rollback) publishes it again as the newest version."""
    serving = str(tmp_path / "serving")
    old, new = _model_dir(tmp_path, "old"), _model_dir(tmp_path, "new")
    _, v_old, _ = executor.push_unless_live(old, serving, {})
    _, v_new, _ = executor.push_unless_live(new, serving, {})
    assert publish.live_local_version(serving) == v_new
    path, v_again, already = executor.push_unless_live(old, serving, {})
    assert not already and int(v_again) > int(v_new)
    assert publish.find_live_copy(old, serving) == (path, v_again)


def test_live_version_ignores_temp_folders_and_missing_destination(tmp_path):
    serving = str(tmp_path / "serving")
    model = _model_dir(tmp_path, "a")
    assert publish.live_local_version(serving) is None
    assert publish.find_live_copy(model, serving) is None
    os.makedirs(os.path.join(serving, ".tmp-99999999999-abc"))
    os.makedirs(os.path.join(serving, "9"))
    os.makedirs(os.path.join(serving, "10"))
    assert publish.live_local_version(serving) == "10"  # numeric, not string, order
    assert publish.find_live_copy(model, serving) is None  # the live version is empty
