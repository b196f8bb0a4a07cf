"""Run a shell script as root inside Debian's own kernel, booted under qemu over this machine's root filesystem.

Why: the kernel the tests run on may lack IPVS, and the checker's job is to fill
the IPVS table. A qemu guest with Debian's stock kernel (IPVS as modules) and this
machine's files (Python, keepalived, ipvsadm, the repository) lets a test run the
real thing and compare. KVM is not assumed: qemu's software emulation (TCG)
boots in a few seconds.

How: ``prepare_image`` (see ``tests.vm.image``) fetches and caches the kernel;
``run_in_guest`` appends the per-run part of the initramfs (``tests.vm.initramfs``),
starts qemu with the host root shared read-only over 9p (an in-memory overlay on
top) and optionally one host directory shared read-write at the same path, and
reads the script's output from the second serial port, which carries nothing
but that output between per-run markers. The guest powers itself off; qemu is
killed whatever happens.

CLI, for humans: ``python -m tests.vm.guest [--share DIR] -- COMMAND...``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.vm import initramfs
from tests.vm.errors import GuestError
from tests.vm.image import DEFAULT_CACHE_DIR, GuestImage, prepare_image

__all__ = ["GuestError", "GuestImage", "GuestResult", "guest_available", "prepare_image", "run_in_guest"]

QEMU = "qemu-system-x86_64"
GUEST_HOSTNAME = "pkvm-guest"
KERNEL_CMDLINE = "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init"
POLL_INTERVAL_S = 0.05
POWEROFF_GRACE_S = 15.0
KILL_WAIT_S = 10.0
OVERLAP_BYTES = 256  # longer than any marker line


@dataclass(frozen=True)
class GuestResult:
    """What one guest run gave back.

    ``boot_s`` is the time from starting qemu until the script started (firmware,
    kernel, both init stages); ``elapsed_s`` runs until qemu exited.
    """

    returncode: int
    output: str
    boot_s: float
    elapsed_s: float


def guest_cpus() -> int:
    """vCPUs for a guest that runs many things at once (ipvs_compare, the inner pytest): two where the
    host has them."""
    return min(2, os.cpu_count() or 1)


def guest_available() -> str | None:
    """None when guests can run here, else the reason to skip (cheap: no download, no boot)."""
    if platform.machine() != "x86_64":
        return f"the guest harness boots an amd64 kernel; this machine is {platform.machine()}"
    if os.geteuid() != 0:
        return "booting the qemu guest needs root (9p passthrough of / and the kernel package cache)"
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found (apt-get install qemu-system-x86)"
    if not initramfs.BUSYBOX.is_file():
        return f"{initramfs.BUSYBOX} not found (apt-get install busybox-static)"
    has_cache = any(DEFAULT_CACHE_DIR.glob("linux-image-*/image.json"))
    if not has_cache and (shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None):
        return "no cached guest kernel and no apt-get/dpkg-deb to fetch Debian's kernel package"
    return None


# --- the serial port carrying the script's output -----------------------------------------------------------------


class _Markers:
    """The framing stage 2 writes around the script's output on ttyS1, unique per run."""

    def __init__(self) -> None:
        self.nonce = f"@@pkvm-{uuid.uuid4().hex}@@"
        self.start = f"{self.nonce} START "
        self.exit = f"\n{self.nonce} EXIT "

    def started(self, text: str) -> bool:
        return self.start in text

    def finished(self, text: str) -> bool:
        return self.exit in text

    def output(self, text: str) -> str:
        """The script's output: after the start line, before the exit marker (or to the end if none)."""
        begin = text.find(self.start)
        if begin < 0:
            return ""
        body_start = text.find("\n", begin) + 1
        end = text.find(self.exit, body_start)
        return text[body_start:] if end < 0 else text[body_start:end]

    def returncode(self, text: str) -> int | None:
        index = text.rfind(self.exit)
        if index < 0:
            return None
        value = text[index + len(self.exit) :].split("\n", 1)[0].strip()
        return int(value) if value.lstrip("-").isdigit() else None


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


# --- qemu ---------------------------------------------------------------------------------------------------------


def _virtfs(path: Path, tag: str, *, readonly: bool) -> list[str]:
    escaped = str(path).replace(",", ",,")
    options = f"local,path={escaped},mount_tag={tag},security_model=none,multidevs=remap"
    return ["-virtfs", options + (",readonly=on" if readonly else "")]


def _qemu_argv(
    image: GuestImage, initrd: Path, run_dir: Path, share: Path | None, memory_mb: int, cpus: int
) -> list[str]:
    argv = [QEMU, "-nodefaults", "-no-user-config", "-accel", "tcg", "-cpu", "max"]
    argv += ["-smp", str(cpus), "-m", str(memory_mb), "-display", "none", "-no-reboot"]
    argv += ["-rtc", "base=utc,clock=host"]
    argv += ["-kernel", str(image.kernel), "-initrd", str(initrd), "-append", KERNEL_CMDLINE]
    argv += ["-serial", f"file:{run_dir / 'console.log'}", "-serial", f"file:{run_dir / 'output.log'}"]
    argv += _virtfs(Path("/"), "hostroot", readonly=True)
    if share is not None:
        argv += _virtfs(share, "share", readonly=False)
    return argv


def _settings(image: GuestImage, share: Path | None, markers: _Markers) -> dict[str, str]:
    return {
        "PKVM_NONCE": markers.nonce,
        "PKVM_KVER": image.kernel_version,
        "PKVM_MODULES": str(image.modules_dir),
        "PKVM_SHARE": str(share) if share is not None else "",
        "PKVM_HOSTNAME": GUEST_HOSTNAME,
        "PKVM_EPOCH": str(int(time.time())),
    }


def _check_share(share: Path | None) -> Path | None:
    if share is None:
        return None
    resolved = share.resolve()
    if not resolved.is_dir():
        raise GuestError(f"share {share} is not a directory")
    if resolved == Path("/"):
        raise GuestError("share must be a directory below /, which the guest already sees read-only")
    return resolved


@dataclass
class _Run:
    """One qemu process and the files it writes; ``wait`` follows it to the end."""

    process: subprocess.Popen[bytes]
    run_dir: Path
    markers: _Markers
    started_at: float
    boot_s: float | None = None
    finished_at: float | None = None
    scanned: int = 0  # bytes of output.log already searched for markers

    @property
    def output_text(self) -> str:
        return _read_text(self.run_dir / "output.log")

    def _new_output(self) -> str:
        """What ttyS1 carried since the last call, with enough overlap that no marker is split."""
        start = max(0, self.scanned - OVERLAP_BYTES)
        try:
            with open(self.run_dir / "output.log", "rb") as log:
                log.seek(start)
                chunk = log.read()
        except FileNotFoundError:
            return ""
        self.scanned = start + len(chunk)
        return chunk.decode(errors="replace")

    @property
    def console_text(self) -> str:
        return _read_text(self.run_dir / "console.log") + _read_text(self.run_dir / "qemu.log")

    def _poll_markers(self, now: float) -> None:
        text = self._new_output()
        if self.boot_s is None and self.markers.started(text):
            self.boot_s = now - self.started_at
        if self.finished_at is None and self.markers.finished(text):
            self.finished_at = now

    def wait(self, timeout_s: float) -> None:
        """Until qemu exits; the guest gets a grace period to power off once the script has finished."""
        deadline = self.started_at + timeout_s
        while self.process.poll() is None:
            now = time.monotonic()
            self._poll_markers(now)
            if self.finished_at is not None and now > self.finished_at + POWEROFF_GRACE_S:
                return  # the script is done; a guest that will not power off is killed by the caller
            if now > deadline:
                raise GuestError(
                    f"guest timed out after {timeout_s:.0f} s",
                    output=self.markers.output(self.output_text),
                    console=self.console_text,
                )
            time.sleep(POLL_INTERVAL_S)
        self._poll_markers(time.monotonic())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            pass  # a qemu stuck in D state: nothing more a test can do

    def result(self) -> GuestResult:
        text = self.output_text
        returncode = self.markers.returncode(text)
        if returncode is None or self.boot_s is None:
            qemu_rc = self.process.returncode
            raise GuestError(
                f"guest stopped before the script finished (qemu exit code {qemu_rc})",
                output=self.markers.output(text),
                console=self.console_text,
            )
        elapsed_s = time.monotonic() - self.started_at
        return GuestResult(returncode, self.markers.output(text), self.boot_s, elapsed_s)


def _start(argv: list[str], run_dir: Path, markers: _Markers) -> _Run:
    with open(run_dir / "qemu.log", "wb") as qemu_log:
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=qemu_log, stderr=subprocess.STDOUT)
        except OSError as exc:
            raise GuestError(f"cannot start {argv[0]}: {exc}") from None
    return _Run(process, run_dir, markers, time.monotonic())


def run_in_guest(
    script: str,
    *,
    share: Path | None = None,
    timeout_s: float = 300,
    memory_mb: int = 1024,
    cpus: int = 1,
    image: GuestImage | None = None,
) -> GuestResult:
    """Boot a guest, run ``script`` with ``/bin/sh -c`` as root inside it, power it off, return what happened.

    ``share``, if given, is mounted read-write at the same path in the guest (and
    is the script's working directory): write inputs there before, read results
    after. ``timeout_s`` covers the whole run, boot included; on timeout, or any
    other failure, qemu is killed and GuestError raised. ``image`` defaults to
    ``prepare_image()``.
    """
    share = _check_share(share)
    image = image if image is not None else prepare_image()
    markers = _Markers()
    with tempfile.TemporaryDirectory(prefix="pkvm-run-") as tmp:
        run_dir = Path(tmp)
        initrd = run_dir / "initrd.img"
        initrd.write_bytes(image.initrd.read_bytes() + initramfs.run_archive(_settings(image, share, markers), script))
        run = _start(_qemu_argv(image, initrd, run_dir, share, memory_mb, cpus), run_dir, markers)
        try:
            run.wait(timeout_s)
        finally:
            run.kill()
        return run.result()


# --- CLI ----------------------------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.vm.guest",
        description="Boot Debian's kernel under qemu over this machine's root and run COMMAND inside as root. "
        "A single COMMAND argument is run as a shell script ('modprobe ip_vs && ipvsadm -Ln').",
    )
    parser.add_argument("--share", type=Path, help="host directory mounted read-write at the same path")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole run (default 300)")
    parser.add_argument("--memory", type=int, default=1024, help="guest memory in MiB (default 1024)")
    parser.add_argument("--cpus", type=int, default=1, help="guest CPUs (default 1)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command given (usage: python -m tests.vm.guest [--share DIR] -- COMMAND...)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Print the command's output and return its exit code; 125 when the guest itself failed."""
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    script = args.command[0] if len(args.command) == 1 else shlex.join(args.command)
    reason = guest_available()
    if reason is not None:
        print(f"guest unavailable: {reason}", file=sys.stderr)
        return 125
    try:
        result = run_in_guest(script, share=args.share, timeout_s=args.timeout, memory_mb=args.memory, cpus=args.cpus)
    except GuestError as exc:
        print(f"guest failed: {exc}", file=sys.stderr)
        return 125
    sys.stdout.write(result.output)
    sys.stdout.flush()
    print(
        f"[guest: exit {result.returncode}, boot {result.boot_s:.1f} s, total {result.elapsed_s:.1f} s]",
        file=sys.stderr,
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
