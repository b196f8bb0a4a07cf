#!/usr/bin/env bash
# Build pykeepalived_VERSION-1_all.deb from this repository with dpkg-deb (no debhelper needed).
#   packaging/build-deb.sh [OUTDIR]        (default OUTDIR: build/deb/, which git ignores)
# PYTHON (default: .venv/bin/python, else python3) must have the pinned pyroute2 and dnspython
# installed: they are copied into the package (/usr/lib/pykeepalived/vendor), since Debian 12's
# python3-pyroute2 (0.7.2) lacks the asyncio API the daemon uses. docs/packaging.md says more.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=${1:-$repo/build/deb}
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then python=$repo/.venv/bin/python; else python=python3; fi
fi
version=$(PYTHONPATH=$repo/src "$python" -c 'import pykeepalived; print(pykeepalived.__version__)')
debver="$version-1"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
dist_packages=$root/usr/lib/python3/dist-packages
vendor=$root/usr/lib/pykeepalived/vendor
doc=$root/usr/share/doc/pykeepalived
mkdir -p "$dist_packages" "$vendor" "$doc/examples" "$root/usr/sbin" "$root/lib/systemd/system" \
    "$root/etc/default" "$root/usr/share/man/man8" "$root/DEBIAN"

# the package itself, without caches (postinst byte-compiles)
cp -r "$repo/src/pykeepalived" "$dist_packages/"
find "$dist_packages" -name __pycache__ -prune -exec rm -rf {} +

# the pinned dependencies, from PYTHON's environment, checked against pyproject.toml's pins
"$python" - "$vendor" "$repo/pyproject.toml" <<'PY'
import importlib.metadata as md, os, re, shutil, sys, tomllib
vendor, pyproject = sys.argv[1], sys.argv[2]
with open(pyproject, "rb") as f:
    pins = tomllib.load(f)["project"]["dependencies"]
for pin in pins:
    name, want = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", pin).groups()
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        sys.exit(f"build-deb: {name} is not installed for {sys.executable}: set PYTHON to the project's venv "
                 "(./bootstrap.sh deb does), whose pinned dependencies go into the package")
    if dist.version != want:
        sys.exit(f"build-deb: {name} {dist.version} is installed for {sys.executable}, pyproject pins {want}")
    tops = sorted({f.parts[0].removesuffix(".py") for f in dist.files or []
                   if not f.parts[0].endswith((".dist-info", ".pth")) and f.parts[0] not in ("..", "__pycache__")})
    for top in tops:
        src = dist.locate_file(top)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(vendor, top), ignore=shutil.ignore_patterns("__pycache__"))
        elif os.path.isfile(f"{src}.py"):
            shutil.copy(f"{src}.py", vendor)
    licenses = [f for f in dist.files or [] if re.search(r"(LICEN[CS]E|COPYING)", f.name)]
    with open(os.path.join(vendor, f"{name}.LICENSE"), "w") as f:
        f.write(f"{name} {dist.version}, license: {dist.metadata.get('License') or dist.metadata.get('License-Expression')}\n\n")
        for lic in licenses:
            f.write(lic.read_text() + "\n")
PY

# the command: Debian's python3, the vendored packages first (children and workers inherit
# PYTHONPATH, as they start with `python3 -m pykeepalived`); PYTHONSAFEPATH keeps the working
# directory out of sys.path (a pykeepalived/ directory in the cwd must not shadow ours)
cat > "$root/usr/sbin/pykeepalived" <<'SH'
#!/bin/sh
PYTHONPATH=/usr/lib/pykeepalived/vendor${PYTHONPATH:+:$PYTHONPATH}
PYTHONSAFEPATH=1
export PYTHONPATH PYTHONSAFEPATH
exec /usr/bin/python3 -m pykeepalived "$@"
SH
chmod 755 "$root/usr/sbin/pykeepalived"

install -m 644 packaging/pykeepalived.service "$root/lib/systemd/system/pykeepalived.service"
install -m 644 packaging/default "$root/etc/default/pykeepalived"
PYTHONPATH=$repo/src "$python" packaging/manpage.py | gzip -9n > "$root/usr/share/man/man8/pykeepalived.8.gz"
install -m 644 examples/*.conf "$doc/examples/"
for f in README.md docs/packaging.md; do [ -f "$f" ] && install -m 644 "$f" "$doc/"; done
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: pykeepalived"
    echo
    echo "Files: *"
    echo "Copyright: the pykeepalived authors"
    echo "License: MIT"
    echo
    echo "Files: usr/lib/pykeepalived/vendor/*"
    echo "Copyright: the authors of pyroute2 (GPL-2+ or Apache-2.0) and of dnspython (ISC)"
    echo "License: see usr/lib/pykeepalived/vendor/*.LICENSE"
    echo
    echo "License: MIT"
    sed -e 's/^$/./' -e 's/^/ /' LICENSE
} > "$doc/copyright"
printf 'pykeepalived (%s) unstable; urgency=medium\n\n  * Built from the repository by packaging/build-deb.sh.\n\n -- the pykeepalived authors <pykeepalived@localhost>  %s\n' \
    "$debver" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")" | gzip -9n > "$doc/changelog.Debian.gz"

installed_kb=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: pykeepalived
Version: $debver
Architecture: all
Maintainer: the pykeepalived authors <pykeepalived@localhost>
Installed-Size: $installed_kb
Depends: python3 (>= 3.11), python3-nftables
Recommends: iproute2, kmod, nftables, python3-aiohttp, python3-prometheus-client
Suggests: ipvsadm, snmpd, frr
Section: net
Priority: optional
Description: keepalived's job (VRRP, health checks, LVS) in Python
 pykeepalived reads keepalived.conf and does what keepalived 2.2.7 does:
 VRRP with keepalived and FRR as peers, health checks of real servers and
 the LVS data plane on IPVS or nftables, with reloads that change only
 what changed. It takes keepalived's flags and files, so switching from
 keepalived is changing the binary's name (pykeepalived.service conflicts
 with keepalived.service).
CONTROL
echo "/etc/default/pykeepalived" > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
# byte-compile what we ship, so that nothing unowned is written under /usr at run time
python3 -m compileall -q -f /usr/lib/python3/dist-packages/pykeepalived /usr/lib/pykeepalived/vendor >/dev/null || true
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
# not enabled or started here: on a router running keepalived, starting ours would stop it
# (Conflicts=); `systemctl enable --now pykeepalived` after `pykeepalived doctor`.
exit 0
SH
cat > "$root/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop pykeepalived.service >/dev/null 2>&1 || true
fi
find /usr/lib/python3/dist-packages/pykeepalived /usr/lib/pykeepalived -name __pycache__ -type d -prune \
    -exec rm -rf {} + 2>/dev/null || true
exit 0
SH
cat > "$root/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
    rm -rf /run/pykeepalived
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
SH
chmod 755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb="$out/pykeepalived_${debver}_all.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
