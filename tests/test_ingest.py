"""Ingestion: the pure decoder (ingest.py) and the Beam pipeline in both DirectRunner modes."""
from __future__ import annotations

import glob
import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from components.image_example_gen import beam_ingest, ingest, ledger
from dcgan_common.config import IngestConfig
from conftest import encode, exif_rotated_jpeg, photo_array, write
from dcgan_common import features

OPTS = ingest.DecodeOptions()


def _decoded(result) -> np.ndarray:
    assert isinstance(result, ingest.AcceptedImage), result
    return ingest.decode_stored(result)


# --- pure decoder ------------------------------------------------------------------------------
def test_sniff_ignores_extension_and_knows_formats():
    assert ingest.sniff_format(encode(photo_array(0), "PNG")) == "png"
    assert ingest.sniff_format(encode(photo_array(0), "JPEG")) == "jpeg"
    assert ingest.sniff_format(encode(photo_array(0), "GIF")) == "gif"
    assert ingest.sniff_format(encode(photo_array(0), "BMP")) == "bmp"
    assert ingest.sniff_format(encode(photo_array(0), "WEBP")) == "webp"
    assert ingest.sniff_format(encode(photo_array(0), "TIFF")) == "unsupported"
    assert ingest.sniff_format(b"<html>") is None


def test_plain_jpeg_is_stored_as_original_bytes():
    data = encode(photo_array(1), "JPEG", quality=90)
    out = ingest.normalize_image(data, OPTS)
    assert out.passthrough and out.encoded == data and out.format == "jpeg"
    assert (out.height, out.width) == (96, 128)


def test_large_jpeg_is_stored_dct_downscaled():
    """606x875 (the benchmark's size): decoded once at 1/8 (not 1/4: Pillow's draft request must
    be side // 8) and stored as an uncompressed PNG; store_min_side=0 keeps the original bytes."""
    data = encode(photo_array(7, 875, 606), "JPEG", quality=90)
    out = ingest.normalize_image(data, OPTS)
    assert out.format == "png" and not out.passthrough and (out.height, out.width) == (110, 76)
    assert len(out.encoded) > 3 * 110 * 76                    # pixels stored, not deflated
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (76, 110))                           # ceil(side / 8) lands on 1/4
        assert im.size == (152, 219)
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (606 // 8, 875 // 8))                # side // 8 gives 1/8
        ref = np.asarray(im.convert("RGB"))
    assert ref.shape == (110, 76, 3)
    np.testing.assert_array_equal(_decoded(out), ref)
    full = ingest.normalize_image(data, ingest.DecodeOptions(store_min_side=0))
    assert full.passthrough and full.encoded == data and (full.height, full.width) == (875, 606)
    # A truncated large JPEG is still caught by the scaled decode.
    bad = ingest.normalize_image(data[: len(data) // 2], OPTS)
    assert isinstance(bad, ingest.Rejection) and bad.reason == "truncated"


def test_uncompressed_png_writer():
    a = np.ascontiguousarray(photo_array(8, 24, 30)[:7, :5])   # odd sizes: row padding
    png = ingest.encode_png_uncompressed(a)
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), a)
    with pytest.raises(ValueError):
        ingest.encode_png_uncompressed(a.astype(np.float32))
    with pytest.raises(ValueError):
        ingest.encode_png_uncompressed(a[..., :2])


def test_png_roundtrip_is_lossless():
    a = photo_array(2)
    out = ingest.normalize_image(encode(a, "PNG"), OPTS)
    assert out.format == "png" and not out.passthrough
    np.testing.assert_array_equal(_decoded(out), a)


def test_exif_orientation_applied():
    upright = photo_array(3)
    out = ingest.normalize_image(exif_rotated_jpeg(upright, quality=98), OPTS)
    got = _decoded(out).astype(int)
    assert got.shape == upright.shape
    assert np.abs(got - upright).mean() < 3.0          # JPEG noise only
    wrong = np.rot90(upright, k=-1).astype(int)         # what ignoring EXIF would give
    assert got.shape != wrong.shape


def test_alpha_composited_on_background():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :8, 3] = 0      # transparent left half → background
    rgba[:, 8:, 3] = 255    # opaque right half → the colour
    got = _decoded(ingest.normalize_image(encode(rgba, "PNG"), ingest.DecodeOptions(background=(10, 20, 30))))
    assert (got[:, :8] == [10, 20, 30]).all()
    assert (got[:, 8:] == [200, 0, 0]).all()
    half = rgba.copy()
    half[..., 3] = 128
    got = _decoded(ingest.normalize_image(encode(half, "PNG"), OPTS))
    # (200*128 + 255*127 + 127) // 255 = 227 ; (0*128 + 255*127 + 127) // 255 = 127
    assert (got[0, 0] == [227, 127, 127]).all()


def test_sixteen_bit_grey_scaled_not_clipped():
    a = np.array([[0, 257, 32896, 65535]], np.uint16).repeat(8, 0).repeat(2, 1)
    got = _decoded(ingest.normalize_image(encode(Image.fromarray(a, "I;16"), "PNG"), OPTS))
    assert list(got[0, ::2, 0]) == [0, 1, 128, 255]
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()


def test_cmyk_and_grey_and_palette_become_rgb():
    a = photo_array(4)
    cmyk = ingest.normalize_image(encode(Image.fromarray(a).convert("CMYK"), "JPEG", quality=95), OPTS)
    assert cmyk.format == "png" and np.abs(_decoded(cmyk).astype(int) - a).mean() < 12
    grey = ingest.normalize_image(encode(a[..., 0], "JPEG"), OPTS)
    assert grey.passthrough  # TF's decode_jpeg(channels=3) replicates grey, like Pillow
    pal = ingest.normalize_image(encode(Image.fromarray(a).convert("P"), "PNG"), OPTS)
    assert _decoded(pal).shape == (96, 128, 3)


def test_gif_first_frame():
    frames = [Image.fromarray(np.full((20, 20, 3), v, np.uint8)).convert("P") for v in (10, 200)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    got = _decoded(ingest.normalize_image(buf.getvalue(), OPTS))
    assert abs(int(got.mean()) - 10) <= 2


@pytest.mark.parametrize("data,reason", [
    (b"", "empty_file"),
    (b"hello world", "not_an_image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "corrupt"),
])
def test_rejections(data, reason):
    out = ingest.normalize_image(data, OPTS)
    assert isinstance(out, ingest.Rejection) and out.reason == reason


def test_truncated_jpeg_and_png():
    for fmt in ("JPEG", "PNG"):
        data = encode(photo_array(5, 200, 200), fmt)
        out = ingest.normalize_image(data[: len(data) * 2 // 3], OPTS)
        assert isinstance(out, ingest.Rejection) and out.reason == "truncated", (fmt, out)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) \
        + chunk(b"IEND", b"")


def test_pixel_cap():
    small = ingest.DecodeOptions(max_pixels=100 * 100)
    # A decompression bomb header (10^10 px) is refused before any pixel is allocated.
    bomb = ingest.normalize_image(_png_header_only(100_000, 100_000), OPTS)
    assert isinstance(bomb, ingest.Rejection) and bomb.reason == "too_large"
    png = ingest.normalize_image(encode(photo_array(6, 200, 200), "PNG"), small)
    assert isinstance(png, ingest.Rejection) and png.reason == "too_large"
    # A baseline JPEG over the cap is decoded downscaled (DCT scaling) instead.
    jpg = ingest.normalize_image(encode(photo_array(6, 200, 200), "JPEG"), small)
    assert isinstance(jpg, ingest.AcceptedImage) and (jpg.height, jpg.width) == (100, 100)
    prog = ingest.normalize_image(encode(photo_array(6, 200, 200), "JPEG", progressive=True), small)
    assert isinstance(prog, ingest.Rejection) and prog.reason == "too_large"


def test_path_rules():
    assert ingest.classify_path("a.jpg") == "root_file"
    assert ingest.classify_path("cat/.x.jpg") == "hidden"
    assert ingest.classify_path("cat/._x.jpg") == "hidden"
    assert ingest.classify_path(".cat/x.jpg") == "hidden"
    assert ingest.classify_path("cat/sub/.d/x.jpg") == "hidden"
    assert ingest.classify_path("cat/THUMBS.DB") == "system_file"
    assert ingest.classify_path("cat/sub/x.jpg") is None
    assert ingest.category_of("cat/sub/x.jpg") == "cat"


def test_split_is_stable_and_roughly_proportional():
    shas = [ingest.sha256_hex(str(i).encode()) for i in range(2000)]
    evals = sum(ingest.split_for(s, 10) == "eval" for s in shas)
    assert 140 < evals < 260
    assert all(ingest.split_for(s, 0) == "train" for s in shas)
    assert ingest.split_for(shas[0], 10) == ingest.split_for(shas[0], 10)


# --- Beam pipeline -----------------------------------------------------------------------------
# min_train_examples=1: the dirty crawl is far smaller than one training batch.
LENIENT = IngestConfig(max_rejected_fraction=1.0, allow_empty_categories=True, min_train_examples=1)


def _read_examples(examples_dir):
    import tensorflow as tf
    out = {}
    for split in ("train", "eval"):
        files = sorted(glob.glob(os.path.join(examples_dir, f"Split-{split}", "*")))
        assert files, f"no files for split {split}"
        recs = []
        for rec in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            recs.append(tf.train.Example.FromString(rec.numpy()))
        out[split] = recs
    return out


def _feature(ex, key):
    f = ex.features.feature[key]
    return f.bytes_list.value[0] if f.bytes_list.value else f.int64_list.value[0]


def _check_ledger(report, expected):
    got = {e["path"]: (e["status"], e["reason"], e["category"]) for e in report["files"]}
    assert got == expected
    status = report["counts_by_status"]
    assert sum(status.values()) == report["seen"] == len(expected)
    for cat, counts in report["counts_by_category"].items():
        assert counts["seen"] == sum(1 for v in expected.values() if v[2] == cat)
        assert counts["seen"] == sum(counts[s] for s in ingest.STATUSES)


_RUNS: dict = {}
MODES = ["in_memory", pytest.param("multi_processing", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    from conftest import build_dirty_crawl
    base = tmp_path_factory.mktemp("ingest")
    root = str(base / "crawl")
    os.makedirs(root)
    expected = build_dirty_crawl(root)
    # Names that are not valid UTF-8 (possible on local disks, not in GCS): recorded, never a crash.
    # os.walk gives them as surrogate escapes; the ledger shows U+FFFD in their place.
    jpeg = encode(photo_array(60), "JPEG")
    for raw, row in ((b"cats/caf\xe9.jpg", ("rejected", "bad_filename", "cats")),
                     (b"cats/.hid\xe9.jpg", ("skipped", "hidden", "cats")),
                     (b"bad\xff/x.jpg", ("rejected", "bad_filename", None))):
        path = os.path.join(os.fsencode(root), raw)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(jpeg)
        expected[raw.decode("utf-8", "replace")] = row
    expected.update(_add_links_and_special_files(base, root))
    return base, root, expected


def _deep_folder(parent: str, name: str, data: bytes, path_max: int = 4096) -> str:
    """Nest 250-character folders under ``parent`` until past ``path_max`` (Linux PATH_MAX), put
    ``name`` at the bottom (through directory fds), and return the root-relative path of the first
    folder os.walk cannot list (its absolute path reaches ``path_max``)."""
    level, parts, first_unlistable = "d" * 250, [], None
    fd = os.open(parent, os.O_RDONLY)
    while len(os.path.join(parent, *parts)) < path_max + 300:
        os.mkdir(level, dir_fd=fd)
        inner = os.open(level, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd, parts = inner, parts + [level]
        if first_unlistable is None and len(os.fsencode(os.path.join(parent, *parts))) >= path_max:
            first_unlistable = "/".join(["cats"] + parts)
    out = os.open(name, os.O_WRONLY | os.O_CREAT, dir_fd=fd)
    os.write(out, data)
    os.close(out)
    os.close(fd)
    return first_unlistable


def _add_links_and_special_files(base, root) -> dict:
    """Local-disk-only entries: a named pipe, a dangling link and links to folders.

    A link to a folder outside the root is walked (at the top level it is a category); a link
    to a folder inside the root, or back to the root (a loop), is recorded once and not walked.
    """
    elsewhere = base / "elsewhere"                       # outside the root: read through links
    elsewhere.mkdir()
    (elsewhere / "far.jpg").write_bytes(encode(photo_array(61), "JPEG"))
    os.mkfifo(os.path.join(root, "cats", "pipe.jpg"))   # reading it would block forever
    os.symlink(os.path.join(root, "nowhere.jpg"), os.path.join(root, "cats", "dangling.jpg"))
    os.symlink(elsewhere, os.path.join(root, "linked"))             # a category on another disk
    os.symlink(os.path.join(root, "dogs"), os.path.join(root, "cats", "alias"))
    os.symlink(root, os.path.join(root, "dogs", "loop"))
    os.symlink(os.path.join(root, "cats"), os.path.join(root, "alias_of_cats"))
    os.symlink(base, os.path.join(root, "cats", "up"))             # holds the root: a loop too
    # A folder nested past the OS path limit cannot be listed: it is one recorded rejection.
    unlistable = _deep_folder(os.path.join(root, "cats"), "deep.jpg", encode(photo_array(62), "JPEG"))
    return {unlistable: ("rejected", "unreadable", "cats"),
            "cats/pipe.jpg": ("rejected", "unreadable", "cats"),
            "cats/dangling.jpg": ("rejected", "unreadable", "cats"),
            "linked/far.jpg": ("ingested", "", "linked"),
            "cats/alias": ("skipped", "linked_folder", "cats"),
            "dogs/loop": ("skipped", "linked_folder", "dogs"),
            "cats/up": ("skipped", "linked_folder", "cats"),
            "alias_of_cats": ("skipped", "linked_folder", None)}


def _run(crawl, mode):
    """The dirty crawl ingested once per Beam mode (multi_processing: 2 workers, slow to start)."""
    base, root, expected = crawl
    if mode not in _RUNS:
        report = beam_ingest.run_ingestion(
            root, LENIENT, str(base / mode / "report.json"), str(base / mode / "examples"),
            beam_ingest.beam_options(mode, workers=2))
        _RUNS[mode] = (report, str(base / mode / "examples"))
    return root, expected, _RUNS[mode]


@pytest.mark.parametrize("mode", MODES)
def test_ledger_exact(crawl, mode):
    _, expected, (report, _) = _run(crawl, mode)
    _check_ledger(report, expected)
    assert report["labels"] == {"cats": 0, "dogs": 1, "linked": 2, "Ünïcødé 服": 3}
    details = {e["path"]: e["detail"] for e in report["files"]}
    assert "named pipe" in details["cats/pipe.jpg"]
    assert report["counts_by_category"]["broken"]["ingested"] == 0
    assert report["policy"]["passed"]
    assert report["rejection_reasons"]["empty_file"] == 2  # dogs/empty.jpg, broken/empty2.jpg


@pytest.mark.parametrize("mode", MODES)
def test_examples_content(crawl, mode):
    root, expected, (report, examples_dir) = _run(crawl, mode)
    exs = _read_examples(examples_dir)
    names = sorted(_feature(e, features.FILENAME_KEY).decode() for s in exs.values() for e in s)
    assert names == sorted(p for p, v in expected.items() if v[0] == "ingested")
    assert {s: len(v) for s, v in exs.items()} == report["splits"]
    for split, recs in exs.items():
        shas = [_feature(e, features.SHA256_KEY) for e in recs]
        assert shas == sorted(shas)  # one shard here: records sorted by content hash
        for ex in recs:
            path = _feature(ex, features.FILENAME_KEY).decode()
            cat = _feature(ex, features.CLASS_TEXT_KEY).decode()
            assert cat == expected[path][2]
            assert _feature(ex, features.CLASS_LABEL_KEY) == report["labels"][cat]
            sha = _feature(ex, features.SHA256_KEY).decode()
            with open(os.path.join(root, *path.split("/")), "rb") as f:
                assert ingest.sha256_hex(f.read()) == sha
            assert ingest.split_for(sha, LENIENT.eval_percent) == split
            fmt = _feature(ex, features.IMAGE_FORMAT_KEY).decode()
            im = Image.open(io.BytesIO(_feature(ex, features.IMAGE_ENCODED_KEY)))
            assert im.format.lower() == fmt and im.mode in ("RGB", "L")
            assert (im.height, im.width) == (_feature(ex, features.HEIGHT_KEY), _feature(ex, features.WIDTH_KEY))
            if path == "cats/rotated.jpg":
                assert fmt == "png" and (im.height, im.width) == (96, 128)   # EXIF applied
            if path == "cats/plain.jpg":
                assert fmt == "jpeg"


@pytest.mark.slow
def test_modes_give_identical_records(crawl):
    """Same records in the same order in both modes, down to the bytes of the files."""
    _, _, (ra, da) = _run(crawl, "in_memory")
    _, _, (rb, db) = _run(crawl, "multi_processing")
    import tensorflow as tf
    for split in ("train", "eval"):
        fa = sorted(os.listdir(os.path.join(da, f"Split-{split}")))
        assert fa == sorted(os.listdir(os.path.join(db, f"Split-{split}")))
        for name in fa:
            recs = [[r.numpy() for r in tf.data.TFRecordDataset(os.path.join(d, f"Split-{split}", name),
                                                                compression_type="GZIP")] for d in (da, db)]
            assert recs[0] == recs[1] and recs[0]
            with open(os.path.join(da, f"Split-{split}", name), "rb") as fa_, \
                    open(os.path.join(db, f"Split-{split}", name), "rb") as fb_:
                assert fa_.read() == fb_.read()
    assert ra["files"] == rb["files"] and ra["labels"] == rb["labels"] and ra["splits"] == rb["splits"]


def test_policy_failure_writes_ledger_first(dirty_crawl, tmp_path):
    root, expected = dirty_crawl
    report_path = str(tmp_path / "report.json")
    with pytest.raises(ledger.IngestionPolicyError) as err:
        beam_ingest.run_ingestion(root, IngestConfig(), report_path, None)
    msg = str(err.value)
    assert "broken" in msg and "max_rejected_fraction" in msg
    with open(report_path, encoding="utf-8") as f:
        report = json.load(f)
    assert not report["policy"]["passed"]
    _check_ledger(report, expected)


def test_listing_order_does_not_matter(tmp_path):
    """Same bytes in a different folder creation order → the same ledger and kept file."""
    for order, name in ((("b", "a"), "one"), (("a", "b"), "two")):
        root = tmp_path / name
        data = encode(photo_array(9), "JPEG")
        for cat in order:
            (root / cat).mkdir(parents=True)
            (root / cat / "x.jpg").write_bytes(data)
            (root / cat / "own.jpg").write_bytes(encode(photo_array(ord(cat)), "JPEG"))
    cfg = IngestConfig(min_train_examples=1)   # 3 images: far below one training batch
    r1 = beam_ingest.run_ingestion(str(tmp_path / "one"), cfg, str(tmp_path / "r1.json"))
    r2 = beam_ingest.run_ingestion(str(tmp_path / "two"), cfg, str(tmp_path / "r2.json"))
    assert r1["files"] == r2["files"]
    dup = [e for e in r1["files"] if e["status"] == "duplicate"]
    assert dup == [{"path": "b/x.jpg", "status": "duplicate", "reason": "same_bytes_as:a/x.jpg",
                    "category": "b", "detail": ""}]


# --- minimum train split -------------------------------------------------------------------------
def test_min_train_examples_resolves_to_one_training_batch():
    from dcgan_common.config import ConfigError, TrainConfig
    assert IngestConfig().min_train_examples == 0
    assert IngestConfig().resolve_min_train_examples().min_train_examples == TrainConfig().batch_size == 32
    assert IngestConfig().resolve_min_train_examples(8).min_train_examples == 8
    assert IngestConfig(min_train_examples=3).resolve_min_train_examples(8).min_train_examples == 3
    with pytest.raises(ConfigError, match="min_train_examples"):
        IngestConfig(min_train_examples=-1).validate()


def test_policy_min_train_examples_boundary():
    counts = {"ingested": 5, "rejected": 0, "skipped": 0, "duplicate": 0}
    assert ledger.evaluate_policy(counts, [], 0.05, False, train_examples=5, min_train_examples=5)[1] == []
    assert ledger.evaluate_policy(counts, [], 0.05, False, train_examples=5, min_train_examples=0)[1] == []
    _, errors = ledger.evaluate_policy(counts, [], 0.05, False, train_examples=5, min_train_examples=6)
    assert len(errors) == 1 and "only 5 train examples" in errors[0] and "min_train_examples 6" in errors[0]
    # Nothing ingested: one reason, not two.
    none = {"ingested": 0, "rejected": 0, "skipped": 0, "duplicate": 0}
    assert ledger.evaluate_policy(none, [], 0.05, False, 0, 32)[1] == ["no image was ingested"]


def _five_good_photos(root):
    for i in range(5):
        write(root, f"shirts/p{i}.jpg", encode(photo_array(50 + i), "JPEG", quality=90))


def test_root_smaller_than_one_batch_fails_after_ledger(tmp_path):
    root = str(tmp_path / "crawl")
    _five_good_photos(root)
    report_path = str(tmp_path / "report.json")
    # eval_percent=0: all 5 go to train, so the count in the message is known.
    with pytest.raises(ledger.IngestionPolicyError) as err:
        beam_ingest.run_ingestion(root, IngestConfig(eval_percent=0), report_path, str(tmp_path / "ex"))
    msg = str(err.value)
    assert "only 5 train examples" in msg and "min_train_examples 32" in msg
    assert "add photos" in msg and "train.batch_size" in msg and "eval_percent" in msg
    with open(report_path, encoding="utf-8") as f:
        report = json.load(f)
    assert not report["policy"]["passed"] and len(report["policy"]["errors"]) == 1
    assert report["config"]["min_train_examples"] == 32       # the default, resolved and recorded
    assert [(e["path"], e["status"]) for e in report["files"]] == [
        (f"shirts/p{i}.jpg", "ingested") for i in range(5)]
    assert report["splits"] == {"train": 5, "eval": 0}

    ok = beam_ingest.run_ingestion(root, IngestConfig(eval_percent=0, min_train_examples=5),
                                   str(tmp_path / "ok.json"), str(tmp_path / "ex_ok"))
    assert ok["policy"] == {"passed": True, "errors": []} and ok["config"]["min_train_examples"] == 5
    assert len(_read_examples(str(tmp_path / "ex_ok"))["train"]) == 5


def test_rejection_detail_is_the_same_run_after_run():
    """Pillow's message names the BytesIO object's address; the ledger must not."""
    data = b"GIF89a" + b"\x00" * 3          # a GIF signature Pillow cannot identify
    first, second = ingest.normalize_image(data), ingest.normalize_image(data)
    assert isinstance(first, ingest.Rejection) and first.reason == ingest.REASON_CORRUPT
    assert first.detail == second.detail and "0x" not in first.detail
    assert first.detail.startswith("UnidentifiedImageError: cannot identify image file")


def test_summary_table_columns_line_up_for_wide_category_names():
    from components.image_example_gen import ledger
    counts = {s: 1 for s in ("seen",) + ingest.STATUSES}
    report = {"counts_by_category": {"dress": counts, "服装": counts, "Ünï\ncødé": counts},
              "labels": {"dress": 0, "服装": 1, "Ünï\ncødé": 2}, "counts_by_status": {s: 3 for s in ingest.STATUSES},
              "seen": 12, "rejection_reasons": {}, "splits": {"train": 2, "eval": 1},
              "rejected_fraction": 0.25, "policy": {"passed": True, "errors": []}}
    rows = ledger.format_table(report).splitlines()[:5]   # header, three categories, all files
    assert "Ünï\\ncødé" in rows[3]                      # a line break in a name is shown escaped
    # Numbers are right-aligned in fixed columns, so aligned rows are equally wide on a terminal
    # (where a CJK character takes two columns).
    assert len({ledger._display_width(row) for row in rows}) == 1, rows
