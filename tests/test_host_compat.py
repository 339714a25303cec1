"""Host detection: which route (venv or Debian 13 root filesystem) a host needs."""
import importlib.util
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("host_compat", os.path.join(REPO, "scripts", "host_compat.py"))
host_compat = importlib.util.module_from_spec(_spec)
sys.modules["host_compat"] = host_compat
_spec.loader.exec_module(host_compat)

GCC14 = frozenset({"GLIBCXX_3.4.31", "GLIBCXX_3.4.32", "CXXABI_1.3.14", "CXXABI_1.3.15"})
GCC12 = frozenset({"GLIBCXX_3.4.30", "CXXABI_1.3.13"})


def test_debian12_needs_rootfs():
    d = host_compat.decide(host_compat.HostFacts(glibc=(2, 36), libstdcxx_symbols=GCC12, machine="x86_64"))
    assert d.route == "rootfs"
    assert "2.36" in d.reason


def test_debian13_uses_venv():
    d = host_compat.decide(host_compat.HostFacts(glibc=(2, 41), libstdcxx_symbols=GCC14, machine="x86_64"))
    assert d.route == "venv"


def test_new_glibc_but_old_libstdcxx_needs_rootfs():
    d = host_compat.decide(host_compat.HostFacts(glibc=(2, 39), libstdcxx_symbols=GCC12, machine="x86_64"))
    assert d.route == "rootfs"
    assert "CXXABI_1.3.15" in d.reason


def test_non_glibc_host_needs_rootfs():
    d = host_compat.decide(host_compat.HostFacts(glibc=None, libstdcxx_symbols=GCC14, machine="x86_64"))
    assert d.route == "rootfs"


@pytest.mark.parametrize("text,expected", [("2.36", (2, 36)), ("2.41", (2, 41)), ("", None), ("x.y", None)])
def test_parse_glibc(text, expected):
    assert host_compat.parse_glibc(text) == expected


def test_symbol_scan_reads_a_real_shared_object(tmp_path):
    lib = tmp_path / "libfake.so"
    lib.write_bytes(b"\x7fELF\x00junk\x00GLIBCXX_3.4.32\x00CXXABI_1.3.15\x00GLIBCXX_3.4\x00")
    assert host_compat.libstdcxx_symbol_versions(str(lib)) == {"GLIBCXX_3.4.32", "CXXABI_1.3.15", "GLIBCXX_3.4"}


def test_the_environment_we_run_in_can_load_the_stack():
    # The tests always run inside the project environment, which must be a venv-capable host
    # (natively, or the Debian 13 root filesystem): detection on it must say so.
    facts = host_compat.read_host_facts()
    assert host_compat.decide(facts).route == "venv", facts


def test_cli_prints_route_and_honours_override():
    out = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "host_compat.py")],
                         env={**os.environ, "DCGAN_TFX_ROUTE": "rootfs"}, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "rootfs"
