"""Tests that need a kernel with IPVS: Debian's own kernel booted under qemu (see README.md)."""
