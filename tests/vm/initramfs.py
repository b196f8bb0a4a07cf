"""The guest's initramfs: a busybox, the modules needed to reach the host over 9p, and the init scripts.

The archive comes in two parts that the kernel unpacks one after the other (it
accepts concatenated cpio archives, later files winning):

- the *base* part, built once per kernel by ``prepare_image`` and cached: the host's
  static busybox and the decompressed modules for virtio-pci, 9p and overlayfs in
  load order;
- the *run* part, built for every boot: ``/init``, the stage-2 script, the user's
  script and its settings. Keeping the scripts out of the cache means editing them
  never needs a rebuild.

Stage 1 (``/init``, busybox in the initramfs) mounts this machine's root read-only
over 9p, lays a tmpfs overlay on top (so ``/lib/modules/<guest kernel>`` and
``/sbin/modprobe`` can exist even where the host has neither), mounts the usual
pseudo and scratch filesystems and the shared directory, then ``switch_root``s.
Stage 2 runs the script with its output on the second serial port (``ttyS1``),
which carries nothing else, framed by markers carrying a per-run nonce, and
powers the guest off.
"""

from __future__ import annotations

import gzip
import lzma
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.vm.errors import GuestError

BUSYBOX = Path("/bin/busybox")
# What stage 1 needs before the host root is reachable; their dependencies come from modules.dep.
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
# Directories that get an empty tmpfs in the guest when they exist on the host (mode).
SCRATCH_DIRS = {
    "/run": "755",
    "/tmp": "1777",
    "/var/log": "755",
    "/var/tmp": "1777",
    "/var/lib/nginx": "755",
    "/var/cache/nginx": "755",
}
NINEP_OPTIONS = "trans=virtio,version=9p2000.L,msize=262144"
CPIO_MAGIC = b"070701"


# --- cpio "newc" writer -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpioEntry:
    """One member of a newc archive: a directory, regular file, symlink or device node."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _cpio_header(entry: CpioEntry, ino: int) -> bytes:
    name = entry.name.lstrip("/").encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, *entry.rdev, len(name), 0)
    header = CPIO_MAGIC + b"".join(b"%08X" % value for value in fields) + name
    return header + _pad4(len(header))


def cpio_archive(entries: Iterable[CpioEntry]) -> bytes:
    """Serialise ``entries`` as an uncompressed newc archive, the format the kernel unpacks."""
    chunks: list[bytes] = []
    for ino, entry in enumerate([*entries, CpioEntry("TRAILER!!!", 0)], start=1):
        chunks.append(_cpio_header(entry, ino))
        chunks.append(entry.data + _pad4(len(entry.data)))
    return b"".join(chunks)


def directory(name: str) -> CpioEntry:
    return CpioEntry(name, stat.S_IFDIR | 0o755)


def regular_file(name: str, data: bytes, mode: int = 0o644) -> CpioEntry:
    return CpioEntry(name, stat.S_IFREG | mode, data)


# --- modules ------------------------------------------------------------------------------------------------------


def module_name(path: str) -> str:
    """``kernel/net/9p/9pnet_virtio.ko.xz`` -> ``9pnet_virtio`` (dashes folded, as modprobe does)."""
    base = path.rsplit("/", 1)[-1]
    for suffix in MODULE_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def read_modules_dep(modules_dir: Path) -> dict[str, tuple[str, list[str]]]:
    """Module name -> (its path relative to ``modules_dir``, the names it depends on)."""
    table: dict[str, tuple[str, list[str]]] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        path, _, deps = line.partition(":")
        if path:
            table[module_name(path)] = (path, [module_name(dep) for dep in deps.split()])
    return table


def read_builtin(modules_dir: Path) -> set[str]:
    builtin = modules_dir / "modules.builtin"
    return {module_name(line) for line in builtin.read_text().split()} if builtin.exists() else set()


def load_order(modules_dir: Path, wanted: Iterable[str] = BOOT_MODULES) -> list[str]:
    """Relative paths of the loadable modules behind ``wanted``, every module after its dependencies.

    Built-in modules are skipped; a wanted module that is neither loadable nor
    built in is an error, since the guest could not reach its root without it.
    """
    table, builtin = read_modules_dep(modules_dir), read_builtin(modules_dir)
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        if name not in table:
            if name not in builtin:
                raise GuestError(f"kernel module {name} is neither in modules.dep nor built in ({modules_dir})")
            return
        path, deps = table[name]
        for dep in deps:
            visit(dep)
        order.append(path)

    for name in wanted:
        visit(name.replace("-", "_"))
    return order


def read_module(path: Path) -> bytes:
    """The module's ELF bytes; busybox insmod in the initramfs cannot decompress."""
    if path.name.endswith(".xz"):
        return lzma.decompress(path.read_bytes())
    if path.name.endswith(".gz"):
        return gzip.decompress(path.read_bytes())
    if path.name.endswith(".zst"):
        return _unzstd(path)
    return path.read_bytes()


def _unzstd(path: Path) -> bytes:
    if shutil.which("zstd") is None:
        raise GuestError(f"{path.name} is zstd-compressed and the zstd tool is missing (apt-get install zstd)")
    done = subprocess.run(["zstd", "-dc", str(path)], capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise GuestError(f"zstd could not decompress {path}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def base_archive(modules_dir: Path) -> bytes:
    """The cached part: busybox, the boot modules (decompressed) and their load order in /pkvm/modules.list."""
    if not BUSYBOX.is_file():
        raise GuestError(f"{BUSYBOX} is missing (apt-get install busybox-static)")
    entries = [directory(d) for d in ("bin", "dev", "proc", "sys", "run", "tmp", "pkvm", "pkvm/modules")]
    entries.append(CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    entries.append(regular_file("bin/busybox", BUSYBOX.read_bytes(), 0o755))
    names: list[str] = []
    for relative in load_order(modules_dir):
        name = module_name(relative) + ".ko"
        entries.append(regular_file(f"pkvm/modules/{name}", read_module(modules_dir / relative)))
        names.append(name)
    entries.append(regular_file("pkvm/modules.list", "".join(f"{n}\n" for n in names).encode()))
    return cpio_archive(entries)


# --- per-run part -------------------------------------------------------------------------------------------------


def shell_assignments(values: Mapping[str, str]) -> bytes:
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items()).encode()


def run_archive(settings: Mapping[str, str], script: str) -> bytes:
    """The per-boot part: init scripts, the user's script and the settings both stages read."""
    scratch = " ".join(f"{path}:{mode}" for path, mode in SCRATCH_DIRS.items())
    env = {**settings, "PKVM_SCRATCH": scratch, "PKVM_9P": NINEP_OPTIONS}
    return cpio_archive(
        [
            directory("pkvm"),
            regular_file("init", STAGE1.encode(), 0o755),
            regular_file("pkvm/stage2", STAGE2.encode(), 0o755),
            regular_file("pkvm/run.env", shell_assignments(env)),
            regular_file("pkvm/script", script.encode()),
        ]
    )


STAGE1 = r"""#!/bin/busybox sh
# pykeepalived test guest, stage 1: reach the host root over 9p, prepare it, switch_root into it.
/bin/busybox --install -s /bin
export PATH=/bin
. /pkvm/run.env
say() { echo "pkvm: [$(cut -d' ' -f1 /proc/uptime)] $*" | tee -a /pkvm/boot.log; }
die() { say "FATAL: $*"; poweroff -f; echo o > /proc/sysrq-trigger; sleep 5; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say "stage 1 started"
while read -r m; do insmod "/pkvm/modules/$m" || die "insmod $m failed"; done < /pkvm/modules.list

say "modules loaded"
mkdir -p /lower /upper /newroot
mount -t 9p -o "$PKVM_9P,ro,cache=loose" hostroot /lower || die "cannot mount the host root over 9p"
mount -t tmpfs -o mode=755 tmpfs /upper && mkdir /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot \
    || die "cannot mount the overlay root"
R=/newroot
say "host root mounted"

mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
for entry in $PKVM_SCRATCH; do
    dir=${entry%%:*}
    [ -d "$R$dir" ] && mount -t tmpfs -o "mode=${entry##*:}" tmpfs "$R$dir"
done
mkdir -p $R/run/netns $R/run/lock $R/run/pkvm
chmod 1777 $R/run/lock

# The extracted kernel package, where plain modprobe (busybox or kmod) looks for it.
mkdir -p "$R/lib/modules/$PKVM_KVER"
mount -o bind "/lower$PKVM_MODULES" "$R/lib/modules/$PKVM_KVER" || die "cannot bind the kernel modules"
for tool in modprobe insmod rmmod lsmod modinfo; do
    [ -e "$R/sbin/$tool" ] || ln -s /bin/busybox "$R/sbin/$tool"
done

if [ -n "$PKVM_SHARE" ]; then
    mkdir -p "$R$PKVM_SHARE"
    mount -t 9p -o "$PKVM_9P,cache=none" share "$R$PKVM_SHARE" || die "cannot mount the share $PKVM_SHARE"
fi

hostname "$PKVM_HOSTNAME"
echo "$PKVM_HOSTNAME" > $R/etc/hostname
printf '127.0.1.1\t%s\n' "$PKVM_HOSTNAME" >> $R/etc/hosts
ip link set lo up
# The RTC gives the host's time; correct it if it is far off (a guest clock that lies breaks logs and timeouts).
now=$(date +%s)
if [ $((now - PKVM_EPOCH)) -gt 120 ] || [ $((PKVM_EPOCH - now)) -gt 120 ]; then date -s "@$PKVM_EPOCH" >/dev/null; fi

say "switching root"
cp /pkvm/stage2 /pkvm/run.env /pkvm/script /pkvm/boot.log $R/run/pkvm/
exec switch_root $R /bin/busybox env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM=dumb LANG=C.UTF-8 /bin/busybox sh /run/pkvm/stage2
die "switch_root failed"
"""

STAGE2 = r"""# pykeepalived test guest, stage 2 (PID 1 in the host root): run the script, report, power off.
. /run/pkvm/run.env
exec 3>/dev/ttyS1
/bin/busybox stty -F /dev/ttyS1 raw -echo
cd "${PKVM_SHARE:-/}"
printf '%s START %s\n' "$PKVM_NONCE" "$(cut -d' ' -f1 /proc/uptime)" >&3
/bin/sh -c "$(cat /run/pkvm/script)" </dev/null >&3 2>&3 3>&-
rc=$?
printf '\n%s EXIT %d\n' "$PKVM_NONCE" "$rc" >&3
exec 3>&-
sync
/bin/busybox poweroff -f
echo o > /proc/sysrq-trigger
"""
