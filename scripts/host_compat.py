#!/usr/bin/env python3
"""Decide how this host runs the TFX 1.21 stack: a local venv, or a Debian 13 root filesystem.

tfx 1.21 depends on ml-metadata and tensorflow-data-validation wheels tagged
``manylinux_2_39`` whose extension modules need glibc >= 2.39 (TFDV: ``GLIBC_2.38``)
and GCC 14's libstdc++ (``GLIBCXX_3.4.32``, ``CXXABI_1.3.15``). Debian 12 has glibc
2.36 and GCC 12, so there the project runs inside a Debian 13 root filesystem
(facts measured in ``shared/notes/platform.md``).

Standard library only: this runs on the host, before any environment exists.

Usage: ``python3 scripts/host_compat.py`` prints ``venv`` or ``rootfs`` and a reason on stderr.
"""
from __future__ import annotations

import ctypes.util
import os
import platform
import sys
from dataclasses import dataclass

#: Oldest glibc that loads the manylinux_2_39 wheels (the wheel tag itself).
MIN_GLIBC = (2, 39)
#: Symbol versions from GCC 14's libstdc++ that metadata_store_extension.so needs.
REQUIRED_LIBSTDCXX_SYMBOLS = ("GLIBCXX_3.4.32", "CXXABI_1.3.15")

_LIBSTDCXX_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
    "/usr/lib64/libstdc++.so.6",
    "/usr/lib/libstdc++.so.6",
)


@dataclass(frozen=True)
class HostFacts:
    """What decides the route. ``glibc`` is (major, minor) or None when not glibc (e.g. musl)."""

    glibc: tuple[int, int] | None
    libstdcxx_symbols: frozenset[str]
    machine: str


@dataclass(frozen=True)
class Decision:
    route: str  # "venv" or "rootfs"
    reason: str


def parse_glibc(version: str) -> tuple[int, int] | None:
    """``"2.36"`` -> ``(2, 36)``; anything unparsable -> None."""
    try:
        major, minor = version.split(".")[:2]
        return int(major), int(minor)
    except (ValueError, AttributeError):
        return None


def libstdcxx_symbol_versions(path: str | None = None) -> frozenset[str]:
    """Symbol-version names (``GLIBCXX_*``, ``CXXABI_*``) found in the host's libstdc++ file.

    Reads the shared object as bytes; the version names are stored as plain strings in
    its ``.gnu.version_d`` section. Returns an empty set when no libstdc++ is found.
    """
    candidates = [path] if path else list(_LIBSTDCXX_CANDIDATES)
    found = ctypes.util.find_library("stdc++")
    if not path and found and os.path.isabs(found):
        candidates.insert(0, found)
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            with open(candidate, "rb") as f:
                data = f.read()
            names = set()
            for prefix in (b"GLIBCXX_", b"CXXABI_"):
                start = 0
                while (i := data.find(prefix, start)) != -1:
                    end = i
                    while end < len(data) and data[end] not in (0,):
                        end += 1
                    names.add(data[i:end].decode("ascii", "replace"))
                    start = end
            return frozenset(names)
    return frozenset()


def read_host_facts() -> HostFacts:
    libc, version = platform.libc_ver()
    glibc = parse_glibc(version) if libc == "glibc" else None
    return HostFacts(glibc=glibc, libstdcxx_symbols=libstdcxx_symbol_versions(),
                     machine=platform.machine())


def decide(facts: HostFacts) -> Decision:
    """Pick ``venv`` when the host can load the manylinux_2_39 wheels, else ``rootfs``."""
    if facts.machine not in ("x86_64", "aarch64"):
        return Decision("rootfs", f"no tfx 1.21 wheels for {facts.machine}")
    if facts.glibc is None:
        return Decision("rootfs", "host C library is not glibc")
    if facts.glibc < MIN_GLIBC:
        return Decision("rootfs", "glibc %d.%d < %d.%d needed by ml-metadata/TFDV wheels"
                        % (*facts.glibc, *MIN_GLIBC))
    missing = [s for s in REQUIRED_LIBSTDCXX_SYMBOLS if s not in facts.libstdcxx_symbols]
    if missing:
        return Decision("rootfs", "libstdc++ lacks " + ", ".join(missing) + " (needs GCC >= 14)")
    return Decision("venv", "glibc %d.%d and GCC 14 libstdc++ present" % facts.glibc)


def main() -> int:
    forced = os.environ.get("DCGAN_TFX_ROUTE")
    if forced in ("venv", "rootfs"):
        print(forced)
        print(f"route forced by DCGAN_TFX_ROUTE={forced}", file=sys.stderr)
        return 0
    decision = decide(read_host_facts())
    print(decision.route)
    print(decision.reason, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
