"""Shared fixtures for the data-path tests: a generated dirty crawl with its expected ledger.

Every file is made here with PIL/numpy (nothing downloaded). ``dirty_crawl`` returns the root and
``{relpath: (status, reason, category)}`` — the exact ledger the ingestion must produce.
"""
from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_ROOT = os.path.join(REPO_ROOT, "data", "sample")


def photo_array(seed: int, height: int = 96, width: int = 128) -> np.ndarray:
    """A smooth, photo-like uint8 [h, w, 3] image (gradients + blobs; deterministic per seed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        img[..., c] = 128 + 60 * np.sin(xx / (7 + 5 * rng.random()) + rng.random() * 6) \
            + 50 * np.cos(yy / (9 + 5 * rng.random()) + c)
    cy, cx = rng.integers(10, height - 10), rng.integers(10, width - 10)
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < 80] = rng.integers(0, 255, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(array_or_image, fmt: str, **kwargs) -> bytes:
    """Encode with PIL to bytes (``fmt`` a PIL format name)."""
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def exif_rotated_jpeg(upright: np.ndarray, quality: int = 95, **kwargs) -> bytes:
    """A JPEG of ``upright`` rotated 90° clockwise, tagged EXIF Orientation 8 (display: rotate 90°
    counter-clockwise), so applying the orientation restores ``upright`` (up to JPEG loss)."""
    stored = np.ascontiguousarray(np.rot90(upright, k=-1))  # clockwise
    exif = Image.Exif()
    exif[0x0112] = 8
    return encode(stored, "JPEG", quality=quality, exif=exif.tobytes(), **kwargs)


def write(root, relpath: str, data: bytes) -> None:
    path = os.path.join(root, *relpath.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def build_dirty_crawl(root) -> dict[str, tuple[str, str, str | None]]:
    """Write a crawl with every kind of junk under ``root``; return the expected ledger.

    Categories: "cats" (mixed good formats), "dogs" (+ duplicates, unicode), "broken" (every file
    bad), "Ünïcødé 服" (unicode category). Expected values: (status, reason, category).
    """
    exp: dict[str, tuple[str, str, str | None]] = {}
    ok = ("ingested", "")

    def add(relpath, data, expected):
        write(root, relpath, data)
        exp[relpath] = expected

    a = photo_array(1)
    add("cats/plain.jpg", encode(a, "JPEG", quality=90), (*ok, "cats"))
    add("cats/UPPER.JPEG", encode(photo_array(2), "JPEG", quality=90), (*ok, "cats"))
    add("cats/png_named.jpg", encode(photo_array(3), "PNG"), (*ok, "cats"))
    add("cats/anim.gif", _gif(), (*ok, "cats"))
    add("cats/pic.BMP", encode(photo_array(4), "BMP"), (*ok, "cats"))
    add("cats/pic.webp", encode(photo_array(5), "WEBP", lossless=True), (*ok, "cats"))
    add("cats/cmyk.jpg", encode(Image.fromarray(photo_array(6)).convert("CMYK"), "JPEG", quality=90),
        (*ok, "cats"))
    add("cats/grey16.png", encode(Image.fromarray((photo_array(7)[..., 0].astype(np.uint16) * 257), "I;16"),
                                  "PNG"), (*ok, "cats"))
    rgba = np.dstack([photo_array(8), np.tile(np.linspace(0, 255, 128, dtype=np.uint8), (96, 1))])
    add("cats/alpha.png", encode(rgba, "PNG"), (*ok, "cats"))
    add("cats/palette.png", encode(Image.fromarray(photo_array(9)).convert("P"), "PNG"), (*ok, "cats"))
    add("cats/grey.jpg", encode(photo_array(10)[..., 1], "JPEG"), (*ok, "cats"))
    add("cats/rotated.jpg", exif_rotated_jpeg(photo_array(11)), (*ok, "cats"))
    add("cats/sub/nested.jpg", encode(photo_array(12), "JPEG"), (*ok, "cats"))
    add("cats/.hidden.jpg", encode(photo_array(13), "JPEG"), ("skipped", "hidden", "cats"))
    add("cats/._plain.jpg", b"\x00\x05\x16\x07AppleDouble", ("skipped", "hidden", "cats"))
    add("cats/Thumbs.db", b"\xd0\xcf\x11\xe0thumbs", ("skipped", "system_file", "cats"))
    add("cats/desktop.ini", b"[.ShellClassInfo]\r\n", ("skipped", "system_file", "cats"))
    add("cats/tiny.gif", encode(np.zeros((1, 1, 3), np.uint8), "GIF"), ("rejected", "too_small", "cats"))
    dup = encode(photo_array(20), "JPEG", quality=90)
    # The kept copy is the smallest path in code point order, whatever the category.
    add("dogs/a_first.jpg", dup, ("duplicate", "same_bytes_as:cats/copy_of_dog.jpg", "dogs"))
    add("dogs/z_copy.jpg", dup, ("duplicate", "same_bytes_as:cats/copy_of_dog.jpg", "dogs"))
    add("cats/copy_of_dog.jpg", dup, (*ok, "cats"))
    add("dogs/ünïcode 名前.jpg", encode(photo_array(21), "JPEG"), (*ok, "dogs"))
    add("dogs/empty.jpg", b"", ("rejected", "empty_file", "dogs"))
    add("dogs/notes.txt", b"not an image at all\n", ("rejected", "not_an_image", "dogs"))
    add("Ünïcødé 服/photo.jpg", encode(photo_array(22), "JPEG"), (*ok, "Ünïcødé 服"))
    good = encode(photo_array(30), "JPEG", quality=90)
    add("broken/truncated.jpg", good[: len(good) // 2], ("rejected", "truncated", "broken"))
    add("broken/corrupt.png", corrupt_png(), ("rejected", "corrupt", "broken"))
    add("broken/tiff.jpg", encode(photo_array(31), "TIFF"), ("rejected", "unsupported_format", "broken"))
    add("broken/empty2.jpg", b"", ("rejected", "empty_file", "broken"))
    add("root_file.jpg", encode(photo_array(40), "JPEG"), ("skipped", "root_file", None))
    add("README.txt", b"crawl notes", ("skipped", "root_file", None))
    add(".git/config", b"[core]", ("skipped", "hidden", None))
    add(".cache/x.jpg", encode(photo_array(41), "JPEG"), ("skipped", "hidden", None))
    return exp


def png_chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def corrupt_png() -> bytes:
    """A well-formed PNG container whose IDAT is not a zlib stream (decoder error, not EOF)."""
    ihdr = struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"\x12\x34garbage" * 40)
            + png_chunk(b"IEND", b""))


def _gif() -> bytes:
    frames = [Image.fromarray(photo_array(50 + i)).convert("P") for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


@pytest.fixture
def dirty_crawl(tmp_path):
    """(root path, expected {relpath: (status, reason, category)})."""
    root = tmp_path / "crawl"
    root.mkdir()
    expected = build_dirty_crawl(str(root))
    return str(root), expected


@pytest.fixture(scope="session")
def sample_photos():
    """Five real JPEGs from data/sample (bytes), one per category, sorted by path."""
    out = []
    cats = [c for c in sorted(os.listdir(SAMPLE_ROOT)) if os.path.isdir(os.path.join(SAMPLE_ROOT, c))]
    for cat in cats[::2]:
        d = os.path.join(SAMPLE_ROOT, cat)
        name = sorted(os.listdir(d))[0]
        with open(os.path.join(d, name), "rb") as f:
            out.append((f"{cat}/{name}", f.read()))
    return out
