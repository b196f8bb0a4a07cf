"""Debian's own kernel, fetched once and cached: the guest's ``vmlinuz``, modules tree and base initramfs.

The machine running the tests may have no IPVS at all (a container's or a
micro-VM's kernel), but Debian's stock kernel package builds IPVS as modules.
We download that package with apt (no installation: nothing on the host
changes), unpack it, index its modules with depmod and build the cached part of
the initramfs. The result lives under one directory per package version, made
under a temporary name and renamed when complete, with a lock file so that two
pytest processes preparing at once do the work once.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import lzma
import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.vm import initramfs
from tests.vm.errors import GuestError

DEFAULT_CACHE_DIR = Path("/var/cache/pykeepalived-vm")
META_PACKAGE = "linux-image-amd64"
# Bumped when the cached layout or the base initramfs contents change.
LAYOUT_VERSION = 2
APT_TIMEOUT_S = 900.0
TOOL_TIMEOUT_S = 300.0
MANIFEST = "image.json"


@dataclass(frozen=True)
class GuestImage:
    """A prepared kernel: everything ``run_in_guest`` boots from (all paths on this machine)."""

    package: str  # e.g. linux-image-6.1.0-56-amd64
    package_version: str  # e.g. 6.1.192-2
    kernel_version: str  # the guest's `uname -r`
    root: Path  # the unpacked package
    kernel: Path  # vmlinuz
    initrd: Path  # the cached (base) part of the initramfs

    @property
    def modules_dir(self) -> Path:
        """``<root>/lib/modules/<kernel_version>``: what the guest sees as its ``/lib/modules/$(uname -r)``."""
        return self.root / "lib" / "modules" / self.kernel_version


def _run(argv: list[str], *, cwd: Path | None = None, timeout_s: float = TOOL_TIMEOUT_S) -> str:
    """Run a host tool; its failure becomes a GuestError quoting its stderr."""
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise GuestError(f"{argv[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise GuestError(f"{' '.join(argv)} did not finish within {timeout_s:.0f} s") from None
    if done.returncode != 0:
        raise GuestError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return done.stdout


# --- which package ------------------------------------------------------------------------------------------------


def _candidate_version(package: str) -> str | None:
    for line in _run(["apt-cache", "show", "--no-all-versions", package]).splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return None


def _resolve_once() -> tuple[str, str] | None:
    """(real kernel package, version) behind the metapackage, from apt's local lists; None if unknown."""
    try:
        depends = _run(["apt-cache", "depends", "--important", META_PACKAGE])
        for line in depends.splitlines():
            kind, _, name = line.strip().partition(": ")
            if kind == "Depends" and name.startswith("linux-image-"):
                version = _candidate_version(name)
                return (name, version) if version else None
    except GuestError:
        return None
    return None


def resolve_kernel_package() -> tuple[str, str]:
    """Find the kernel package to boot, refreshing apt's lists once if they do not know it (fresh machines)."""
    found = _resolve_once()
    if found is None:
        _run(["apt-get", "update", "-qq"], timeout_s=APT_TIMEOUT_S)
        found = _resolve_once()
    if found is None:
        raise GuestError(f"apt does not know {META_PACKAGE} or the kernel package it depends on")
    return found


# --- the cache ----------------------------------------------------------------------------------------------------


@contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load(directory: Path) -> GuestImage | None:
    """The image in ``directory`` if it was completed, else None."""
    try:
        meta = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if meta.get("layout") != LAYOUT_VERSION:
        return None
    image = GuestImage(
        package=meta["package"],
        package_version=meta["package_version"],
        kernel_version=meta["kernel_version"],
        root=directory / "root",
        kernel=directory / meta["kernel"],
        initrd=directory / "initrd.img",
    )
    return image if image.kernel.is_file() and image.initrd.is_file() else None


def _newest_cached(cache_dir: Path) -> GuestImage | None:
    manifests = sorted(cache_dir.glob(f"linux-image-*/{MANIFEST}"), key=lambda m: m.stat().st_mtime)
    images = [image for m in manifests if (image := _load(m.parent))]
    return images[-1] if images else None


def _image_key(package: str, version: str) -> str:
    return f"{package}_{version.replace(':', '%')}_v{LAYOUT_VERSION}"


# --- building -----------------------------------------------------------------------------------------------------


def _download_and_unpack(package: str, version: str, work: Path) -> Path:
    _run(["apt-get", "download", "-q", f"{package}={version}"], cwd=work, timeout_s=APT_TIMEOUT_S)
    debs = sorted(work.glob("*.deb"))
    if not debs:
        raise GuestError(f"apt-get download {package}={version} left no .deb in {work}")
    root = work / "root"
    _run(["dpkg-deb", "-x", str(debs[0]), str(root)])
    debs[0].unlink()  # 70 MB we no longer need
    return root


def _move_modules_to_lib(root: Path) -> str:
    """Newer packages ship /usr/lib/modules; keep one place (``root/lib/modules``) and return the version."""
    for parent in (root / "lib" / "modules", root / "usr" / "lib" / "modules"):
        versions = sorted(p.name for p in parent.glob("*") if p.is_dir()) if parent.is_dir() else []
        if versions:
            if parent != root / "lib" / "modules":
                (root / "lib").mkdir(exist_ok=True)
                parent.rename(root / "lib" / "modules")
            return versions[-1]
    raise GuestError(f"no lib/modules/<version> in the unpacked kernel package ({root})")


def _depmod(root: Path, kernel_version: str) -> None:
    """Index the modules for both modprobes the guest may run: busybox's always, kmod's if the host has it."""
    _run([str(initramfs.BUSYBOX), "depmod", "-b", str(root), kernel_version])
    kmod_depmod = shutil.which("depmod", path="/usr/sbin:/sbin")
    if kmod_depmod and os.path.realpath(kmod_depmod) != str(initramfs.BUSYBOX):
        _run([kmod_depmod, "-b", str(root), kernel_version])


def _bzimage_payload(bzimage: bytes) -> bytes:
    """The compressed vmlinux inside a bzImage (boot protocol >= 2.08: payload_offset/length in the setup header)."""
    setup_sects = bzimage[0x1F1] or 4
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    return bzimage[start : start + length]


def _decompress_payload(payload: bytes) -> bytes | None:
    try:
        if payload.startswith(b"\xfd7zXZ\x00"):
            return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
        if payload.startswith(b"\x1f\x8b"):
            return gzip.decompress(payload)
    except (lzma.LZMAError, OSError, EOFError):
        return None
    return None  # zstd, lz4...: keep booting the bzImage


def _pvh_kernel(root: Path, kernel_version: str, bzimage: Path) -> Path:
    """An uncompressed vmlinux qemu can boot directly (PVH entry), else the bzImage itself.

    Why: under software emulation, the bzImage's own decompressor takes ~3 s of
    every boot; decompressing once here and booting the ELF through its PVH entry
    point skips both that and the real-mode setup.
    """
    config = root / "boot" / f"config-{kernel_version}"
    if not config.is_file() or "\nCONFIG_PVH=y\n" not in config.read_text():
        return bzimage
    vmlinux = _decompress_payload(_bzimage_payload(bzimage.read_bytes()))
    if vmlinux is None or not vmlinux.startswith(b"\x7fELF"):
        return bzimage
    target = root / "boot" / f"vmlinux-{kernel_version}"
    target.write_bytes(vmlinux)
    return target


def _build(package: str, version: str, work: Path) -> dict[str, object]:
    root = _download_and_unpack(package, version, work)
    kernel_version = _move_modules_to_lib(root)
    bzimage = root / "boot" / f"vmlinuz-{kernel_version}"
    if not bzimage.is_file():
        raise GuestError(f"{package} has no boot/vmlinuz-{kernel_version}")
    kernel = _pvh_kernel(root, kernel_version, bzimage)
    _depmod(root, kernel_version)
    modules_dir = root / "lib" / "modules" / kernel_version
    (work / "initrd.img").write_bytes(initramfs.base_archive(modules_dir))
    return {
        "layout": LAYOUT_VERSION,
        "package": package,
        "package_version": version,
        "kernel_version": kernel_version,
        "kernel": str(kernel.relative_to(work)),
    }


def _prune(cache_dir: Path, keep: Path) -> None:
    """Drop images of older kernels or layouts (~0.5 GB each); only reached when a new one was just built."""
    for other in cache_dir.glob("linux-image-*"):
        if other != keep and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)


def _build_into(cache_dir: Path, key: str, package: str, version: str) -> GuestImage:
    final = cache_dir / key
    work = cache_dir / f".{key}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        meta = _build(package, version, work)
        (work / MANIFEST).write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _prune(cache_dir, keep=final)
    image = _load(final)
    if image is None:
        raise GuestError(f"the image built in {final} does not load back")
    return image


def prepare_image(cache_dir: Path = DEFAULT_CACHE_DIR) -> GuestImage:
    """Return the cached guest image for the current kernel package, building it first if needed.

    Idempotent and safe to call from concurrent processes (they serialise on
    ``cache_dir/.lock``). Without apt lists or network, a previously built image
    is used rather than failing.
    """
    with _locked(cache_dir):
        try:
            package, version = resolve_kernel_package()
        except GuestError:
            cached = _newest_cached(cache_dir)
            if cached is not None:
                return cached
            raise
        key = _image_key(package, version)
        return _load(cache_dir / key) or _build_into(cache_dir, key, package, version)
