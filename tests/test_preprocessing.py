"""The Transform preprocessing_fn: decode paths, aspect policies, analyzers (tf.Transform on Beam)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.image_example_gen import ingest
from conftest import encode, exif_rotated_jpeg, photo_array
from dcgan_common import features
from trainer import preprocessing

SIZE = features.IMAGE_SIZE


def _stored(data: bytes) -> ingest.AcceptedImage:
    out = ingest.normalize_image(data)
    assert isinstance(out, ingest.AcceptedImage), out
    return out


def _transform(stored: list[ingest.AcceptedImage], aspect="squash", background=(255, 255, 255)) -> np.ndarray:
    return preprocessing.images_from_bytes(
        tf.constant([s.encoded for s in stored]), tf.constant([s.format.encode() for s in stored]),
        tf.constant([s.height for s in stored], tf.int64), tf.constant([s.width for s in stored], tf.int64),
        SIZE, aspect, background).numpy()


def test_jpeg_ratio_python_and_tensor_agree():
    assert preprocessing.jpeg_ratio(600, 800, 64) == 8
    assert preprocessing.jpeg_ratio(300, 400, 64) == 4
    assert preprocessing.jpeg_ratio(100, 900, 64) == 1
    assert preprocessing.jpeg_ratio(505, 900, 64) == 8   # ceil(505 / 8) = 64
    assert preprocessing.jpeg_ratio(503, 900, 64) == 4
    assert preprocessing.jpeg_ratio(20, 20, 64) == 1
    for h in (20, 64, 127, 128, 129, 255, 256, 511, 512, 513, 2000):
        for w in (64, 300, 4000):
            assert int(preprocessing.jpeg_ratio(tf.constant(h, tf.int64), tf.constant(w, tf.int64), 64)) \
                == preprocessing.jpeg_ratio(h, w, 64)


def test_dct_store_scale_matches_transform_ratio():
    """Ingestion stores JPEGs at the scale Transform's own JPEG path would decode them at."""
    for h in (20, 64, 127, 128, 129, 255, 256, 505, 511, 512, 513, 875, 2000):
        for w in (64, 300, 606, 4000):
            assert ingest.dct_store_scale(w, h, SIZE) == preprocessing.jpeg_ratio(h, w, SIZE), (h, w)
    assert ingest.dct_store_scale(606, 875, 0) == 1


def test_stored_dct_pixels_equal_tensorflow_scaled_decode(sample_photos):
    """Pillow's draft at ingestion == TF decode_jpeg(ratio=k, INTEGER_ACCURATE), bit for bit, so
    storing the DCT-downscaled pixels changes nothing downstream; and it stays close to a full
    decode + the same resize."""
    for _, data in sample_photos:
        s = _stored(data)
        width, height = Image.open(io.BytesIO(data)).size
        k = preprocessing.jpeg_ratio(height, width, SIZE)
        assert s.format == "png" and not s.passthrough and k >= 2
        stored = ingest.decode_stored(s)
        tf_scaled = tf.io.decode_jpeg(data, channels=3, ratio=k, dct_method="INTEGER_ACCURATE").numpy()
        assert stored.shape == tf_scaled.shape
        np.testing.assert_array_equal(stored, tf_scaled)
        # Same tensor as Transform's own JPEG path on the original bytes (stored at full size).
        original = ingest.normalize_image(data, ingest.DecodeOptions(store_min_side=0))
        assert original.passthrough and original.encoded == data
        fast, via_jpeg = _transform([s, original])
        np.testing.assert_array_equal(fast, via_jpeg)
        full = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
        slow = preprocessing.resize_image(full, SIZE, "squash").numpy() / 127.5 - 1
        diff = np.abs(fast - slow) * 127.5          # in uint8 levels
        # Measured: mean 1.0-1.6 levels, 99th percentile 18-19 (hard edges: DCT scaling is a sharper low-pass).
        assert diff.mean() < 2.5 and np.percentile(diff, 99) <= 24, (diff.mean(), np.percentile(diff, 99))


def test_squash_filter_matches_pillow_bilinear():
    """Documented filter: tf antialiased bilinear == Pillow BILINEAR (triangle, widened on downscale)."""
    a = photo_array(5, 300, 200)
    got = (_transform([_stored(encode(a, "PNG"))])[0] + 1) * 127.5
    ref = np.asarray(Image.fromarray(a).resize((SIZE, SIZE), Image.BILINEAR), np.float64)
    diff = np.abs(got - ref)
    assert diff.mean() < 0.6 and diff.max() <= 2, (diff.mean(), diff.max())
    # A non-antialiased resize (the seed's) is measurably different on the same image.
    alias = tf.image.resize(a.astype(np.float32), [SIZE, SIZE], method="bilinear", antialias=False).numpy()
    assert np.abs(alias - ref).mean() > 3 * diff.mean()


def test_exif_rotated_twin_gives_same_tensor():
    upright = photo_array(11, 96, 128)
    twin_upright = _stored(encode(upright, "JPEG", quality=100, subsampling=0))
    twin_rotated = _stored(exif_rotated_jpeg(upright, quality=100, subsampling=0))
    assert twin_upright.format == "jpeg" and twin_rotated.format == "png"
    a, b = _transform([twin_upright, twin_rotated])
    # Equal up to JPEG rounding: the two files hold differently rotated 8x8 blocks.
    diff = np.abs(a - b) * 127.5
    assert diff.max() <= 3 and diff.mean() < 0.5, (diff.max(), diff.mean())
    # Ignoring EXIF would give a very different tensor.
    unrotated = _transform([_stored(encode(np.ascontiguousarray(np.rot90(upright, -1)), "PNG"))])[0]
    assert (np.abs(a - unrotated) * 127.5).mean() > 10


def test_aspect_policies_geometry():
    # A 64x192 landscape: left third red, middle green, right third blue.
    a = np.zeros((64, 192, 3), np.uint8)
    a[:, :64, 0] = 255
    a[:, 64:128, 1] = 255
    a[:, 128:, 2] = 255
    s = _stored(encode(a, "PNG"))
    squash, crop, pad = (_transform([s], aspect, (0, 0, 0))[0] for aspect in ("squash", "center_crop", "pad"))
    to8 = features.to_uint8
    assert (to8(crop)[..., 1] == 255).all() and (to8(crop)[..., [0, 2]] == 0).all()   # only the green middle
    assert to8(squash)[32, 2, 0] == 255 and to8(squash)[32, 61, 2] == 255              # all three thirds
    # pad: content 22 rows high (round(64*64/192) = 21.33 → 21), centred; background above and below.
    p8 = to8(pad)
    assert (p8[:20] == 0).all() and (p8[-20:] == 0).all() and p8[32, 2, 0] == 255
    white = to8(_transform([s], "pad", (255, 255, 255))[0])
    assert (white[:20] == 255).all()


def test_preprocessing_fn_rejects_bad_config():
    # The config is decoded before any input is read: the error comes first, whatever the inputs.
    with pytest.raises(ValueError, match="transform.aspect must be one of"):
        preprocessing.preprocessing_fn({}, {"aspect": "stretch"})
    with pytest.raises(ValueError, match="transform.image_size must be 64"):
        preprocessing.preprocessing_fn({}, {"image_size": 32})
    with pytest.raises(ValueError, match="transform.background must be three ints"):
        preprocessing.preprocessing_fn({}, {"background": [0, 0, 300]})


@pytest.mark.parametrize("aspect", ["squash", "center_crop", "pad"])
def test_analyze_and_transform_real_photos(sample_photos, tmp_path, aspect):
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam

    raw = []
    for i, (path, data) in enumerate(sample_photos):
        s = _stored(data)
        cat = path.split("/")[0]
        raw.append({features.IMAGE_ENCODED_KEY: s.encoded, features.IMAGE_FORMAT_KEY: s.format.encode(),
                    features.CLASS_TEXT_KEY: cat.encode(), features.CLASS_LABEL_KEY: i,
                    features.FILENAME_KEY: path.encode(), features.HEIGHT_KEY: s.height,
                    features.WIDTH_KEY: s.width, features.SHA256_KEY: ingest.sha256_hex(data).encode()})
    # One PNG-stored image too (the re-encode path), a copy of the first photo.
    png = _stored(encode(np.asarray(Image.open(io.BytesIO(sample_photos[0][1])).convert("RGB")), "PNG"))
    # Its category is a folder name with line breaks and a backslash (tft.vocabulary drops raw
    # line breaks: the category counts must still list it).
    raw.append(dict(raw[0], **{features.IMAGE_ENCODED_KEY: png.encoded, features.IMAGE_FORMAT_KEY: b"png",
                               features.CLASS_TEXT_KEY: 'odd\\name\nwith "breaks"\r'.encode()}))
    metadata = tft.DatasetMetadata.from_feature_spec(preprocessing.raw_feature_spec())
    config = {"aspect": aspect, "image_size": SIZE, "background": [255, 255, 255]}

    def fn(inputs):
        return preprocessing.preprocessing_fn(inputs, config)

    out_dir = str(tmp_path / "transform_fn")
    with tft_beam.Context(temp_dir=str(tmp_path / "tmp"), desired_batch_size=4):
        (transformed, _), transform_fn = ((raw, metadata) | tft_beam.AnalyzeAndTransformDataset(fn))
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    images = np.stack([np.asarray(t[features.IMAGE_KEY], np.float32).reshape(SIZE, SIZE, 3) for t in transformed])
    labels = [int(np.asarray(t[features.LABEL_KEY]).reshape(())) for t in transformed]
    assert images.shape == (len(raw), SIZE, SIZE, 3)
    assert sorted(labels) == sorted(r[features.CLASS_LABEL_KEY] for r in raw)
    assert images.min() >= -1.0 and images.max() <= 1.0
    grid = (images + 1) * 127.5
    assert np.abs(grid - np.round(grid)).max() < 1e-3        # on the uint8 grid
    assert images.std() > 0.1                                  # not blank
    # The same photo stored as JPEG (DCT-scaled decode) and as PNG (full decode): close.
    twins = images[[i for i, label in enumerate(labels) if label == 0]]
    assert len(twins) == 2 and np.abs(twins[0] - twins[1]).mean() * 127.5 < 1.5
    # Analyzer outputs, read back from the written transform graph.
    stats = preprocessing.read_analyzer_outputs(tft.TFTransformOutput(out_dir))
    pixels = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(stats["channel_mean"], pixels.mean(0), atol=1e-4)
    np.testing.assert_allclose(stats["channel_std"], pixels.std(0), atol=1e-4)
    cats = [r[features.CLASS_TEXT_KEY].decode() for r in raw]
    assert stats["category_counts"] == {c: cats.count(c) for c in sorted(set(cats))}
