"""scripts/in-env on the rootfs route: paths the chroot would not share with the host are refused.

The tests call the real shell helper (check_paths_shared in scripts/env-common.sh) in a fresh bash; it
only reads the file system, so it behaves the same on the host and inside the root filesystem. The
end-to-end test runs scripts/in-env itself and so only runs on a rootfs-route host outside the chroot
(running in-env inside the chroot would make setup-env re-decide the route there).
"""
import os
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_HINT = "DCGAN_TFX_BIND=/that/folder (colon-separated)"
# /nonexistdir/r.html spelled relative to the repository: '..' up to / and back down.
OUT_REL = os.path.relpath("/nonexistdir/r.html", REPO)


def check(*args, cwd=REPO, bind=None):
    """Run check_paths_shared ARGS in bash; return the CompletedProcess (rc, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "DCGAN_TFX_BIND"}
    if bind is not None:
        env["DCGAN_TFX_BIND"] = bind
    script = 'repo=$1; shift; source "$repo/scripts/env-common.sh"; check_paths_shared "$@"'
    return subprocess.run(["bash", "-c", script, "_", REPO, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=30)


def assert_refused(result, path):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("dcgan-tfx in-env: ")
    assert path in lines[0] and "/tmp" in lines[0] and REPO in lines[0] and SHARED_HINT in lines[0]


@pytest.mark.parametrize("args", [
    ["dcgan-tfx", "report", "/tmp/x", "--out", "/nonexistdir/r.html"],
    ["dcgan-tfx", "run", "--output-root=/nonexistdir/r.html"],
    ["ls", "/tmp/../nonexistdir/r.html"],
    ["ls", "/root/nonexistdir/r.html"],
])
def test_unshared_absolute_paths_are_refused(args):
    assert_refused(check(*args), "/nonexistdir/r.html")


@pytest.mark.parametrize("args", [
    ["python", "-m", "pytest", "tests", "-k", "fid"],
    ["uv", "pip", "compile", "requirements.in", "-o", "requirements.lock"],
    ["/usr/bin/env", "true", "/dev/null", "/etc/hosts", "--x=/proc/self/status"],
    ["dcgan-tfx", "run", "--data-root", "gs://bucket/crawl", "--output-root=gs://b/out", "a/b"],
    ["dcgan-tfx", "report", "/tmp/not-yet/deeper/r.html", os.path.join(REPO, "out", "new")],
    ["python", "-m", "pytest", "tests", "-q"],
    ["dcgan-tfx", "run", "--output-root", "out", "--data-root=./data/../data/new"],
    ["ls", os.path.join("..", os.path.basename(REPO), "tests"), "."],
    # Code strings, not paths, even when they mention one leading out.
    ["python", "-c", "print(open('%s').read())" % OUT_REL],
    ["bash", "-c", "cd ../..; ls", "-I../.."],
])
def test_shared_relative_and_system_paths_pass(args):
    result = check(*args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("args", [
    ["ls", "-la", OUT_REL],
    ["ls", os.path.join("tests", "..", OUT_REL)],
    ["dcgan-tfx", "run", "--output-root=" + OUT_REL],
])
def test_relative_paths_leading_out_are_refused(args):
    # Resolved against the current folder (the repository), '..' leads out of every shared folder.
    assert_refused(check(*args), "/nonexistdir/r.html")


def test_relative_symlink_leading_out_is_refused(tmp_path):
    (tmp_path / "out_link").symlink_to("/var")
    assert_refused(check("ls", "out_link/r.html", cwd=tmp_path), "/out_link/r.html")
    # A plain word that exists on the host is a path too.
    assert_refused(check("ls", "out_link", cwd=tmp_path), "/out_link")


def test_symlink_in_a_shared_folder_leading_out_is_refused(tmp_path):
    (tmp_path / "out").symlink_to("/var")
    assert_refused(check("ls", str(tmp_path / "out" / "r.html")), str(tmp_path / "out" / "r.html"))


def test_symlink_outside_leading_in_is_refused(tmp_path):
    # The link itself does not exist inside the root filesystem, whatever it points to.
    outside = tempfile.mkdtemp(dir="/var/tmp")
    try:
        os.symlink(tmp_path, os.path.join(outside, "in"))
        path = os.path.join(outside, "in", "r.html")
        assert_refused(check("ls", path), path)
        assert check("ls", path, bind=outside).returncode == 0
    finally:
        shutil.rmtree(outside)


def test_dcgan_tfx_bind_shares_more():
    assert_refused(check("ls", "/var/tmp/x"), "/var/tmp/x")
    assert check("ls", "/var/tmp/x", bind="/nope-not-here:/var/tmp").returncode == 2
    result = check("ls", "/var/tmp/x", bind=":/var/tmp")
    assert result.returncode == 0, result.stderr


def test_current_folder_outside_is_refused():
    result = check("ls", "r.html", cwd="/")
    assert_refused(result, "current folder /")


def _on_rootfs_host():
    """Whether this is a rootfs-route host and we are outside the chroot (in-env sets DCGAN_TFX_ROOT)."""
    try:
        with open(os.path.join(REPO, ".env-route")) as f:
            route = f.read().strip()
    except FileNotFoundError:
        return False
    return route == "rootfs" and "DCGAN_TFX_ROOT" not in os.environ


@pytest.mark.skipif(not _on_rootfs_host(), reason="needs the rootfs route, run from the host (not inside the chroot)")
def test_in_env_refuses_before_running_the_command():
    result = subprocess.run([os.path.join(REPO, "scripts", "in-env"), "true", "/nonexistdir/x"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert "dcgan-tfx in-env: /nonexistdir/x is outside" in result.stderr


@pytest.mark.parametrize("folder", ["/", "/usr/lib", "/etc"])
def test_binding_the_root_or_a_system_folder_is_refused(folder):
    result = check("/tmp/x", bind=folder)
    assert result.returncode == 2 and "system folder" in result.stderr, result.stderr


@pytest.mark.skipif(not os.environ.get("DCGAN_TFX_ROOT"), reason="only inside the root filesystem")
def test_in_env_inside_the_root_filesystem_just_runs_the_command():
    route_file = os.path.join(REPO, ".env-route")
    before = open(route_file).read()
    result = subprocess.run([os.path.join(REPO, "scripts", "in-env"), "python", "-c", "print('nested')"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "nested", result.stderr
    assert "setup-env" not in result.stderr            # no second set-up from inside
    assert open(route_file).read() == before
