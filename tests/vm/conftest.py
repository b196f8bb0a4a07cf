"""Fixtures for tests that boot Debian's kernel under qemu (see tests/vm/README.md)."""

from __future__ import annotations

import compileall

import pytest

from tests.vm.guest import GuestImage, guest_available, prepare_image
from tests.vm.shares import REPO


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    """The cached guest kernel and initramfs, prepared once per session; skips where guests cannot run."""
    reason = guest_available()
    if reason is not None:
        pytest.skip(reason)
    compile_checkout()
    return prepare_image()


def compile_checkout() -> None:
    """Byte-compile the package and the tests on the host before any guest runs them.

    The guest sees the checkout read-only: a module without a current
    __pycache__ entry is compiled from source at every import there, under
    software emulation. On a fresh clone, where no test had imported the
    daemon's modules yet, that held a daemon's start-up and its first table
    for minutes (tests/vm/test_ipvs_compare.py timed out its first steps).
    """
    for tree in (REPO / "src", REPO / "tests"):
        if not compileall.compile_dir(tree, quiet=1, workers=0):
            raise RuntimeError(f"byte-compiling {tree} for the guest failed (see above)")
