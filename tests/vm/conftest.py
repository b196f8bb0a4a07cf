"""Fixtures for tests that boot Debian's kernel under qemu (see tests/vm/README.md)."""

from __future__ import annotations

import pytest

from tests.vm.guest import GuestImage, guest_available, prepare_image


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    """The cached guest kernel and initramfs, prepared once per session; skips where guests cannot run."""
    reason = guest_available()
    if reason is not None:
        pytest.skip(reason)
    return prepare_image()
