"""`pip install .` in a fresh virtualenv gives a working command; the missing nftables binding is one clear line.

The venv is made without the system site-packages, so libnftables' Python
binding (Debian's python3-nftables, not on PyPI) is not importable in it: the
state of anyone who runs `pip install pykeepalived` without reading further.
The command must still work (--version, -t), and a daemon that needs nftables
must say what is missing and how to fix it (the Debian package and
--system-site-packages) in one line, not a traceback. A second venv made with
--system-site-packages sees the binding and starts the nftables data plane.
The daemons run in a network namespace of their own (unshare -n), so their
nftables table never touches this machine's.

pip reaches PyPI here (pyroute2 and dnspython, setuptools for the build);
without it the test is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.base_prefix) / "bin" / "python3"  # the interpreter the project venv was made from

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                 reason="needs root and unshare for the daemon's own network namespace")]

CONFIG = """global_defs {
    router_id pip_test
}
virtual_server 192.0.2.10 80 {
    delay_loop 5
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.20 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""


def clean_env() -> dict[str, str]:
    """No PYTHONPATH (the tests run with this repo's src on it): the venv must stand alone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    return env


def copy_source(dest: Path) -> Path:
    """What an sdist holds; pip builds in the tree, so it builds in a copy and the repo gets no build/."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def make_venv(path: Path, source: Path, system_site: bool) -> Path:
    args = [str(PYTHON), "-m", "venv", *(["--system-site-packages"] if system_site else []), str(path)]
    subprocess.run(args, check=True, env=clean_env(), timeout=120)
    done = subprocess.run([str(path / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(source)],
                          capture_output=True, text=True, env=clean_env(), timeout=600, check=False)
    if done.returncode != 0 and any(w in done.stderr for w in ("NewConnectionError", "Could not find a version",
                                                                "No matching distribution", "Network is unreachable")):
        pytest.skip(f"pip cannot reach a package index here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    return path / "bin" / "pykeepalived"


def run_checker(command: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """The checker alone with --dataplane nftables, in a network namespace of its own, for a few seconds."""
    conf = work / "keepalived.conf"
    conf.write_text(CONFIG)
    argv = ["unshare", "-n", "timeout", "-s", "TERM", "6", str(command), "-n", "-l", "-C", "--dataplane", "nftables",
            "-f", str(conf), "-p", str(work / "p.pid"), "-c", str(work / "c.pid"),
            "--status-file", str(work / "status.json")]
    return subprocess.run(argv, capture_output=True, text=True, env=dict(clean_env(), TMPDIR=str(work)), timeout=60,
                          check=False)


def test_pip_install_in_a_fresh_venv(tmp_path: Path) -> None:
    source = copy_source(tmp_path / "source")
    command = make_venv(tmp_path / "venv", source, system_site=False)
    assert command.is_file()

    version = subprocess.run([str(command), "--version"], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert version.returncode == 0 and "pykeepalived 0." in version.stdout + version.stderr
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG)
    test = subprocess.run([str(command), "-t", "-f", str(conf)], capture_output=True, text=True, env=clean_env(),
                          timeout=60)
    assert test.returncode == 0, test.stdout + test.stderr
    licenses = list((tmp_path / "venv").glob("lib/python3*/site-packages/pykeepalived-*.dist-info/licenses/LICENSE"))
    assert licenses and "MIT License" in licenses[0].read_text()

    venv_python = tmp_path / "venv" / "bin" / "python"
    no_binding = subprocess.run([str(venv_python), "-c", "import nftables"], capture_output=True, env=clean_env())
    assert no_binding.returncode != 0, "the fresh venv sees python3-nftables: the test proves nothing"

    work = tmp_path / "run"
    work.mkdir()
    ran = run_checker(command, work)
    out = ran.stdout + ran.stderr
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if "python3-nftables" in line]
    assert len(lines) == 1, out
    assert "--system-site-packages" in lines[0] and "not on PyPI" in lines[0], lines[0]
    assert ran.returncode == 1, out  # --dataplane nftables asked for what cannot be had: the checker stops


def test_system_site_packages_venv_sees_the_binding(tmp_path: Path) -> None:
    """The fix the message names works: with --system-site-packages the nftables data plane starts."""
    if subprocess.run([str(PYTHON), "-c", "import nftables"], capture_output=True).returncode != 0:
        pytest.skip("python3-nftables is not installed on this machine")
    source = copy_source(tmp_path / "source")
    command = make_venv(tmp_path / "venv", source, system_site=True)
    work = tmp_path / "run"
    work.mkdir()
    ran = run_checker(command, work)
    out = ran.stdout + ran.stderr
    assert "python3-nftables" not in out and "Traceback" not in out, out
    assert "Checking 1 real servers" in out, out


def test_wheel_carries_the_license(tmp_path: Path) -> None:
    """The wheel's .dist-info holds the MIT text (pyproject's license-files)."""
    source = copy_source(tmp_path / "source")
    done = subprocess.run([str(PYTHON), "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
                           "-w", str(tmp_path / "wheels"), str(source)],
                          capture_output=True, text=True, env=clean_env(), timeout=600, check=False)
    if done.returncode != 0 and "No module named pip" in done.stderr:
        pytest.skip("Debian's python3 has no pip here")
    assert done.returncode == 0, done.stderr
    wheel = next((tmp_path / "wheels").glob("pykeepalived-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.endswith("/LICENSE")]
        assert names and "MIT License" in z.read(names[0]).decode()
