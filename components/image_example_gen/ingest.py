"""Pure ingestion logic: one file's path and bytes → an accepted record or a recorded rejection.

No Beam, no TFX, no TensorFlow here: the Beam pipeline (``beam_ingest.py``), the TFX executor
and the ``check-data`` CLI all call these functions, and the tests call them directly.

Storage decision (measured, see README.md in this folder):

* A JPEG whose short side allows libjpeg's DCT scaling (1/2, 1/4, 1/8) while staying at least
  ``DecodeOptions.store_min_side`` pixels (default 64, the training size) is decoded once, here,
  at that scale (Pillow ``draft``: libjpeg's scaled ISLOW IDCT, bit-identical to TensorFlow's
  ``decode_jpeg(ratio=k, dct_method="INTEGER_ACCURATE")``, tested), normalised to 8-bit RGB and
  stored as an **uncompressed PNG** of those pixels (``image/format = png``). Transform then
  only has to read pixels instead of entropy-decoding the JPEG again in each of its passes.
* A JPEG too small to shrink (k = 1) that TensorFlow's ``decode_jpeg(channels=3)`` turns into
  exactly the RGB image we want — 8-bit YCbCr or greyscale, no EXIF rotation — is stored as its
  **original bytes** (``image/format = jpeg``), validated by a 1/8-scale decode.
* Everything else (PNG, GIF, BMP, WebP, small CMYK/YCCK or EXIF-rotated JPEGs) is normalised with
  Pillow to 8-bit RGB and stored as a **lossless PNG** (zlib level 1) at full resolution.

Layout rules (``classify_path``): ``<root>/<category>/<any sub-folders>/<file>``. The category is
the first-level folder; files in sub-folders of a category ARE read and belong to that category
(shops nest pages/colours inside a category; losing them silently would be worse). Files
directly under the root, anything whose path has a component starting with ``.`` (hidden files
and folders, AppleDouble ``._*``), ``Thumbs.db`` and ``desktop.ini`` are skipped and recorded.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import struct
import warnings
import zlib
from typing import Optional

import numpy as np
from PIL import Image, ImageFile, ImageOps

from dcgan_common import features

# --- ledger vocabulary -------------------------------------------------------------------------
STATUS_INGESTED = "ingested"
STATUS_REJECTED = "rejected"
STATUS_SKIPPED = "skipped"
STATUS_DUPLICATE = "duplicate"
STATUSES = (STATUS_INGESTED, STATUS_REJECTED, STATUS_SKIPPED, STATUS_DUPLICATE)

# Rejection reasons (a fixed vocabulary; the ledger's ``reason`` is one of these).
REASON_EMPTY = "empty_file"                 # zero bytes
REASON_NOT_IMAGE = "not_an_image"           # no known image signature in the first bytes
REASON_UNSUPPORTED = "unsupported_format"   # an image format we do not accept (TIFF, HEIF/AVIF, ...)
REASON_TRUNCATED = "truncated"              # the decoder ran out of data
REASON_CORRUPT = "corrupt"                  # the decoder rejected the data
REASON_TOO_LARGE = "too_large"              # over the pixel cap and not decodable downscaled
REASON_TOO_SMALL = "too_small"              # a side below IngestConfig.min_side (tracking pixels)
REASON_BAD_NAME = "bad_filename"            # the path is not valid UTF-8
REASON_UNREADABLE = "unreadable"            # the file could not be read (I/O error)
REJECTION_REASONS = (REASON_EMPTY, REASON_NOT_IMAGE, REASON_UNSUPPORTED, REASON_TRUNCATED,
                     REASON_CORRUPT, REASON_TOO_LARGE, REASON_TOO_SMALL, REASON_BAD_NAME,
                     REASON_UNREADABLE)

# Skip reasons.
SKIP_ROOT_FILE = "root_file"                # directly under the root: belongs to no category
SKIP_HIDDEN = "hidden"                      # a path component starts with "." (incl. "._*")
SKIP_SYSTEM = "system_file"                 # Thumbs.db, desktop.ini
SKIP_LINKED_FOLDER = "linked_folder"        # a link to a folder read under its own path, or a loop
SKIP_REASONS = (SKIP_ROOT_FILE, SKIP_HIDDEN, SKIP_SYSTEM, SKIP_LINKED_FOLDER)
#: Compared case-insensitively (Windows writes them with varying case).
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})

# Duplicate reason: the ledger says which file was kept.
DUPLICATE_REASON_PREFIX = "same_bytes_as:"

# --- formats -----------------------------------------------------------------------------------
FORMAT_JPEG = "jpeg"
FORMAT_PNG = "png"
FORMAT_GIF = "gif"
FORMAT_BMP = "bmp"
FORMAT_WEBP = "webp"
ACCEPTED_FORMATS = (FORMAT_JPEG, FORMAT_PNG, FORMAT_GIF, FORMAT_BMP, FORMAT_WEBP)
#: The two formats ever stored in ``image/format``.
STORED_FORMATS = (FORMAT_JPEG, FORMAT_PNG)

#: libjpeg's DCT scaling can shrink by at most 8 per side, so a JPEG up to 64x the cap decodes
#: within it (Pillow ``draft``). Pillow's own bomb check is set to this bound as a backstop.
MAX_JPEG_DRAFT_FACTOR = 8
#: libjpeg's DCT scaling factors (scale_denom with scale_num 1) that Pillow's ``draft`` uses.
JPEG_DCT_SCALES = (1, 2, 4, 8)
#: zlib level for re-encoded PNGs: level 1 was ~4x faster than the default 6 for about 10 %
#: larger files on the shared photos (README.md, "What is stored").
PNG_COMPRESS_LEVEL = 1


@dataclasses.dataclass(frozen=True)
class Rejection:
    """A file that did not become an example. ``reason`` is in REJECTION_REASONS; ``detail`` is
    the decoder's message (free text, for humans)."""

    reason: str
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class AcceptedImage:
    """A normalised image ready to become a tf.Example.

    encoded: the stored bytes (original JPEG bytes or a lossless RGB PNG).
    format: "jpeg" or "png" (STORED_FORMATS).
    height, width: pixels of the stored image (after EXIF rotation / downscaled decode).
    source_format: the sniffed format of the original file (ACCEPTED_FORMATS).
    passthrough: True when ``encoded`` is the original file.
    """

    encoded: bytes
    format: str
    height: int
    width: int
    source_format: str
    passthrough: bool


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
    """What ``normalize_image`` needs from IngestConfig (plain values, picklable).

    max_pixels: cap on decoded width*height; JPEGs above it are decoded downscaled by DCT
      scaling (1/2, 1/4, 1/8), other formats are rejected as too_large.
    background: RGB 0-255 onto which alpha is composited.
    min_side: images with a side shorter than this (pixels, as stored) are rejected as too_small.
    store_min_side: JPEGs are stored DCT-downscaled by the largest k in {1, 2, 4, 8} that keeps
      their short side >= this many pixels (``dct_store_scale``); 0 keeps every JPEG at full
      size (original bytes when possible). Default: the training size, features.IMAGE_SIZE.
    """

    max_pixels: int = 40_000_000
    background: tuple[int, int, int] = (255, 255, 255)
    min_side: int = 8
    store_min_side: int = features.IMAGE_SIZE

    @classmethod
    def from_config(cls, config) -> "DecodeOptions":
        """From a ``dcgan_common.config.IngestConfig`` (duck-typed: any object with those fields)."""
        return cls(max_pixels=int(config.max_pixels), background=tuple(int(c) for c in config.background),
                   min_side=int(getattr(config, "min_side", 8)),
                   store_min_side=int(getattr(config, "jpeg_store_min_side", features.IMAGE_SIZE)))


# --- paths -------------------------------------------------------------------------------------
def split_relpath(relpath: str) -> list[str]:
    """'/'-separated path relative to the root → its non-empty components."""
    return [p for p in relpath.split("/") if p]


def category_of(relpath: str) -> Optional[str]:
    """The category (first-level folder) of a root-relative path, or None for root files."""
    parts = split_relpath(relpath)
    return parts[0] if len(parts) >= 2 else None


def classify_path(relpath: str) -> Optional[str]:
    """Decide from the path alone whether a file is skipped.

    Args:
      relpath: path relative to the data root, '/'-separated (e.g. ``"dress/a.jpg"``).
    Returns:
      A skip reason from SKIP_REASONS, or None when the file is to be read.
    """
    parts = split_relpath(relpath)
    if any(p.startswith(".") for p in parts):
        return SKIP_HIDDEN
    if len(parts) < 2:
        return SKIP_ROOT_FILE
    if parts[-1].lower() in SYSTEM_FILES:
        return SKIP_SYSTEM
    return None


def is_category_name(name: str) -> bool:
    """Whether a first-level folder name can be a category (not hidden)."""
    return bool(name) and not name.startswith(".")


def check_utf8(relpath: str) -> bool:
    """True when ``relpath`` encodes to UTF-8 (os.walk yields lone surrogates for bad bytes)."""
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def sha256_hex(data: bytes) -> str:
    """Lower-case hex sha256 of ``data`` (64 characters)."""
    return hashlib.sha256(data).hexdigest()


def split_for(sha_hex: str, eval_percent: int) -> str:
    """Stable train/eval assignment from the content hash.

    The first 8 bytes of the sha256 as an unsigned integer, modulo 100, below ``eval_percent``
    → "eval", else "train". Depends only on the bytes, so it is the same in every runner, worker
    count and listing order, and byte duplicates always land in the same split.
    """
    return "eval" if int(sha_hex[:16], 16) % 100 < eval_percent else "train"


# --- format sniffing -----------------------------------------------------------------------------
def sniff_format(data: bytes) -> Optional[str]:
    """The image format from the file's leading bytes (magic numbers), not its extension.

    Returns:
      One of ACCEPTED_FORMATS; ``"unsupported"`` for recognised image formats we do not accept
      (TIFF, HEIF/AVIF, ICO, JPEG 2000, JPEG XL, PSD); None when no signature matches.
    Sources: JPEG SOI FF D8 FF (ITU T.81); PNG 8-byte signature (RFC 2083); GIF87a/89a; BMP "BM";
    WebP "RIFF....WEBP" (RFC 9649); TIFF "II*\\0"/"MM\\0*"; ISO-BMFF "ftyp" brands.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return FORMAT_JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return FORMAT_PNG
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return FORMAT_GIF
    if data.startswith(b"BM") and len(data) >= 26:
        return FORMAT_BMP
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return FORMAT_WEBP
    if (data[:4] in (b"II*\x00", b"MM\x00*") or data[:4] == b"8BPS"
            or data[:4] == b"\x00\x00\x01\x00"
            or data.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or data.startswith(b"\xff\x0a")
            or data.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n")
            or (data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1",
                                                        b"avif", b"avis", b"hevc"))):
        return "unsupported"
    return None


# --- decoding ------------------------------------------------------------------------------------
def configure_pillow(max_pixels: int) -> None:
    """Set Pillow's process-wide decompression-bomb bound.

    Our own check in ``normalize_image`` applies the exact policy; Pillow's bound is a backstop
    set to ``MAX_JPEG_DRAFT_FACTOR**2 * max_pixels`` (the largest JPEG we still decode
    downscaled). Pillow warns above it and raises ``DecompressionBombError`` above twice it; we
    turn the warning into an error and record both as ``too_large``.
    """
    Image.MAX_IMAGE_PIXELS = int(max_pixels) * MAX_JPEG_DRAFT_FACTOR ** 2
    # Truncated files must raise, never come back half grey.
    ImageFile.LOAD_TRUNCATED_IMAGES = False


def _to_rgb_array(im: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    """Any Pillow mode → uint8 [H, W, 3] RGB.

    16-bit greys (I;16*, I) are scaled by 255/65535 with rounding (Pillow's own convert clips
    instead of scaling); palettes are expanded; alpha (RGBA, LA, PA, P/L/RGB with a
    ``transparency`` entry) is composited onto ``background`` with
    ``out = (rgb*a + bg*(255-a) + 127) // 255`` in integers; CMYK (incl. YCCK, which libjpeg
    hands over as CMYK) uses Pillow's CMYK→RGB conversion.
    """
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im).astype(np.int64)
        a = np.clip(a, 0, 65535)
        grey = ((a * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        a = np.nan_to_num(np.asarray(im, dtype=np.float64))
        grey = np.clip(np.round(a), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint32)
        alpha = rgba[:, :, 3:4]
        bg = np.asarray(background, dtype=np.uint32).reshape(1, 1, 3)
        out = (rgba[:, :, :3] * alpha + bg * (255 - alpha) + 127) // 255
        return out.astype(np.uint8)
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def _encode_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def _png_chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def encode_png_uncompressed(rgb: np.ndarray) -> bytes:
    """uint8 [H, W, 3] RGB → a valid PNG with no filtering and no compression.

    Layout (PNG spec, RFC 2083 / ISO 15948): signature, IHDR (8-bit, colour type 2 = RGB, no
    interlace), one IDAT holding a zlib stream of stored (level 0) deflate blocks over the rows,
    each prefixed with filter type 0, and IEND. About 3·H·W + 8 bytes. Used for the small
    DCT-downscaled images, where writing costs ~0.1 ms against ~0.8 ms for Pillow's encoder at
    level 0 and ~1.6 ms at level 1 (76x110 pixels), and decoding is a plain copy.

    Raises:
      ValueError: ``rgb`` is not a non-empty uint8 [H, W, 3] array.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"expected non-empty uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
    h, w, _ = rgb.shape
    rows = np.zeros((h, 1 + 3 * w), np.uint8)   # column 0: filter type 0 (None) for every row
    rows[:, 1:] = rgb.reshape(h, 3 * w)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 0)) + _png_chunk(b"IEND", b""))


def dct_store_scale(width: int, height: int, store_min_side: int) -> int:
    """The DCT downscale factor a JPEG is stored at.

    Returns the largest k in JPEG_DCT_SCALES with ``ceil(min(width, height) / k) >= store_min_side``
    (libjpeg's scaled output side is ``ceil(side / k)``: jdmaster.c, jpeg_core_output_dimensions),
    or 1 when ``store_min_side`` is 0 (store full size) or the image is already small. This is
    the same rule as ``trainer.preprocessing.jpeg_ratio`` with ``size = store_min_side`` (tested).
    """
    if store_min_side <= 0:
        return 1
    short = min(width, height)
    return max([k for k in JPEG_DCT_SCALES if -(-short // k) >= store_min_side] or [1])


def _draft_request(width: int, height: int, scale: int) -> tuple[int, int]:
    """The size to ask Pillow's ``draft`` for so that it picks exactly 1/``scale``.

    Pillow picks the largest k in (8, 4, 2, 1) with k <= min(W // w_req, H // h_req); asking for
    ``side // scale`` gives ``side // (side // scale) >= scale`` and, for sides >= 2·scale, less
    than 2·scale. (Asking for ``ceil(side / scale)`` can land one factor lower, e.g. 606 // 76 = 7.)
    """
    return max(1, width // scale), max(1, height // scale)


_OBJECT_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")


def _classify_decoder_error(exc: BaseException) -> Rejection:
    # Drop object addresses ("<_io.BytesIO object at 0x7f…>" from Pillow): the ledger must be the
    # same bytes for the same input, run after run.
    msg = _OBJECT_ADDRESS.sub(">", f"{type(exc).__name__}: {exc}")
    text = str(exc).lower()
    if isinstance(exc, EOFError) or "truncated" in text or "end of file" in text or "premature" in text or "unexpected end" in text \
            or "not enough data" in text or "image data is incomplete" in text:
        return Rejection(REASON_TRUNCATED, msg)
    return Rejection(REASON_CORRUPT, msg)


def normalize_image(data: bytes, options: DecodeOptions = DecodeOptions()) -> AcceptedImage | Rejection:
    """Decode one file's bytes into the stored form, or say why not.

    Args:
      data: the whole file.
      options: pixel cap, background, minimum side (DecodeOptions).
    Returns:
      ``AcceptedImage`` (8-bit RGB semantics: original JPEG bytes or a lossless RGB PNG) or a
      ``Rejection`` with a reason from REJECTION_REASONS. Never raises for bad input; memory is
      bounded by ``options.max_pixels`` decoded pixels (3 bytes each) per call.
    """
    if len(data) == 0:
        return Rejection(REASON_EMPTY, "zero bytes")
    fmt = sniff_format(data)
    if fmt is None:
        return Rejection(REASON_NOT_IMAGE, "no JPEG/PNG/GIF/BMP/WebP signature")
    if fmt == "unsupported":
        return Rejection(REASON_UNSUPPORTED, "recognised image format that is not accepted")
    configure_pillow(options.max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _normalize(data, fmt, options)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return Rejection(REASON_TOO_LARGE, f"{type(exc).__name__}: {exc}")
    except MemoryError as exc:
        return Rejection(REASON_TOO_LARGE, f"MemoryError: {exc}")
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a recorded rejection
        return _classify_decoder_error(exc)


def _normalize(data: bytes, fmt: str, options: DecodeOptions) -> AcceptedImage | Rejection:
    im = Image.open(io.BytesIO(data), formats=[fmt.upper()])
    width, height = im.size
    if width <= 0 or height <= 0:
        return Rejection(REASON_CORRUPT, f"bad size {width}x{height}")
    pixels = width * height
    scale = 1
    if pixels > options.max_pixels:
        if fmt != FORMAT_JPEG:
            return Rejection(REASON_TOO_LARGE, f"{width}x{height} > max_pixels {options.max_pixels}")
        if im.info.get("progressive") or im.info.get("progression"):
            # libjpeg keeps every DCT coefficient of a progressive scan in memory at full size:
            # a downscaled decode would not bound memory.
            return Rejection(REASON_TOO_LARGE, f"progressive JPEG {width}x{height} > max_pixels")
        while scale < MAX_JPEG_DRAFT_FACTOR and pixels / (scale * scale) > options.max_pixels:
            scale *= 2
        if pixels / (scale * scale) > options.max_pixels:
            return Rejection(REASON_TOO_LARGE, f"{width}x{height}: over max_pixels even at 1/8 scale")
    if fmt == FORMAT_JPEG:
        # The one pixel decode of this image in the whole pipeline happens here, at the scale
        # Transform would have decoded it at anyway (see the module docstring).
        scale = max(scale, dct_store_scale(width, height, options.store_min_side))
        # JPEG EXIF comes from the APP1 segment, read at open: no pixel decode needed for it.
        orientation = _orientation(im)
        passthrough = scale == 1 and im.mode in ("RGB", "L") and orientation == 1
        if scale > 1:
            im.draft(im.mode if im.mode in ("RGB", "L") else None, _draft_request(width, height, scale))
        elif passthrough:
            # Only validation is needed: a 1/8 DCT-scaled decode still entropy-decodes every
            # scan (so truncated and corrupt data raise) but skips most IDCT work.
            im.draft(im.mode, _draft_request(width, height, MAX_JPEG_DRAFT_FACTOR))
        im.load()
    else:
        # Decode first: for other formats getexif() may load the image itself, and a decoder
        # error inside it must not be mistaken for a broken EXIF block.
        im.load()  # first frame for GIF/WebP; raises on truncated or corrupt data
        orientation = _orientation(im)
        passthrough = False
    if passthrough:
        if min(width, height) < options.min_side:
            return Rejection(REASON_TOO_SMALL, f"{width}x{height} < min_side {options.min_side}")
        return AcceptedImage(encoded=data, format=FORMAT_JPEG, height=height, width=width,
                             source_format=fmt, passthrough=True)
    if orientation != 1:
        im = ImageOps.exif_transpose(im)
    rgb = _to_rgb_array(im, options.background)
    h, w = int(rgb.shape[0]), int(rgb.shape[1])
    if min(h, w) < options.min_side:
        return Rejection(REASON_TOO_SMALL, f"{w}x{h} < min_side {options.min_side}")
    # DCT-downscaled pixels are small: store them uncompressed (cheap both ways); full-size
    # re-encodes keep zlib level 1 so that large PNG/GIF/BMP/WebP sources stay compact.
    encoded = encode_png_uncompressed(rgb) if scale > 1 else _encode_png(rgb)
    return AcceptedImage(encoded=encoded, format=FORMAT_PNG, height=h, width=w,
                         source_format=fmt, passthrough=False)


def _orientation(im: Image.Image) -> int:
    """EXIF Orientation (1-8); 1 when absent or unreadable (bad metadata does not make bad pixels)."""
    try:
        value = int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - see docstring
        return 1
    return value if 1 <= value <= 8 else 1


def decode_stored(image: AcceptedImage) -> np.ndarray:
    """Decode a stored image back to uint8 [H, W, 3] RGB with Pillow (tests, check-data)."""
    with Image.open(io.BytesIO(image.encoded)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
