#!/usr/bin/env bash
# pykeepalived set-up: install everything a fresh Debian 12 machine needs (as root), then
#   ./bootstrap.sh main   run the main job
#   ./bootstrap.sh test   lint (mypy --strict, ruff), then run the whole test suite (what CI runs; the
#                         qemu suite tests/vm at nice 19 beside the labs, see run_tests); extra arguments go to
#                         pytest: ./bootstrap.sh test -q tests/unit/test_lexer.py
#   ./bootstrap.sh lint   the lint step alone
#   ./bootstrap.sh deb    build the Debian package into build/deb/ (packaging/build-deb.sh; docs/packaging.md)
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)

debian_packages=(python3 python3-venv python3-pip keepalived frr nftables python3-nftables iproute2 procps tcpdump tshark iputils-ping haproxy psmisc nginx-light dnsmasq-base opensmtpd openssl qemu-system-x86 busybox-static ipvsadm wrk conntrack vsftpd)
# packaging (tests/packaging): dpkg-deb builds the .deb, systemd runs it in a container, man-db
# lets `systemd-analyze verify` resolve the unit's man page
debian_packages+=(systemd man-db)
# issue 16: net-snmp's snmpd as the AgentX master and its tools (snmpwalk), chromium for the page's tests
debian_packages+=(snmpd snmp chromium)
# issue 17: conntrackd (connection sync for the nftables data plane), stress-ng (the no-false-failover load)
debian_packages+=(conntrackd stress-ng)

install_debian() {
    local missing=()
    for pkg in "${debian_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        echo "bootstrap: installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # keep Debian's keepalived service from starting on this machine
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        rm -f /usr/sbin/policy-rc.d
    fi
}

install_python() {
    # Debian's python3 so that python3-nftables (system site-packages) is importable
    if [ ! -x .venv/bin/python ]; then
        /usr/bin/python3 -m venv --system-site-packages .venv
    fi
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[api,test,dev]"
}

lint() {
    # The type checker and the linter run before any test: a red lint fails the command.
    # What they cover is in pyproject.toml ([tool.mypy] files, [tool.ruff]); mypy covers the
    # whole package, ruff the sources, the tests (tests/scripts too), the benches and the examples.
    local start=$SECONDS
    echo "bootstrap: mypy --strict (src/pykeepalived)"
    .venv/bin/python -m mypy --strict src/pykeepalived
    echo "bootstrap: ruff check src tests bench examples"
    .venv/bin/python -m ruff check src tests bench examples
    echo "bootstrap: lint passed in $((SECONDS - start)) s"
}

run_tests() {
    # tests/vm boots Debian's kernel under qemu's software emulation: some 12 CPU-bound minutes that
    # CI's hour cannot hold after the labs. So a whole run starts it as a second pytest (its output in
    # a file, shown when all is done) at the lowest CPU priority, beside the timing-sensitive suites
    # (netns, browser, packaging), which mostly wait on timers: the guest takes the CPU they leave idle.
    # Lowest means nice 19 for its processes *and* for its autogroup: setsid gives it a scheduling
    # group of its own, which would otherwise get an equal share against the labs' (that shifted their
    # adverts, checker delays and stress in an earlier try). The unit and compat tests, which judge no
    # timing, run after the labs. Any failing fails the command. Given a test path, one pytest runs
    # what was asked.
    local arg vm_log vm_pid rc_labs rc_rest rc_vm
    for arg in "$@"; do
        case "$arg" in
            -*) ;;
            *) if [ -e "${arg%%::*}" ]; then exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"; fi ;;
        esac
    done
    vm_log=$(mktemp --tmpdir pykeepalived-tests-vm.XXXXXX.log)
    setsid -w bash -c 'echo 19 > /proc/self/autogroup 2>/dev/null || true; exec nice -n 19 "$@"' vm \
        .venv/bin/python -m pytest -q -p no:cacheprovider "$@" tests/vm >"$vm_log" 2>&1 &
    vm_pid=$!
    # interrupted or killed: the guest's run (pytest and its qemu) goes too
    trap 'kill -TERM -- "-$vm_pid" 2>/dev/null || true' EXIT
    echo "bootstrap: the labs (everything but tests/vm, tests/unit, tests/compat); tests/vm beside them at nice 19 (output in $vm_log, shown at the end)"
    set +e
    .venv/bin/python -m pytest -q -p no:cacheprovider "$@" --ignore=tests/vm --ignore=tests/unit --ignore=tests/compat
    rc_labs=$?
    echo "bootstrap: tests/unit and tests/compat"
    .venv/bin/python -m pytest -q -p no:cacheprovider "$@" tests/unit tests/compat
    rc_rest=$?
    wait "$vm_pid"
    rc_vm=$?
    set -e
    trap - EXIT
    echo "bootstrap: ===== tests/vm (ran beside the others at nice 19) ====="
    cat "$vm_log"
    rm -f "$vm_log"
    # pytest's 5 is "no test selected" (say -m vm leaves the others empty): a failure only if all say it
    if [ "$rc_labs" -eq 5 ] && [ "$rc_rest" -eq 5 ] && [ "$rc_vm" -eq 5 ]; then return 5; fi
    [ "$rc_labs" -eq 5 ] && rc_labs=0
    [ "$rc_rest" -eq 5 ] && rc_rest=0
    [ "$rc_vm" -eq 5 ] && rc_vm=0
    echo "bootstrap: exit codes: labs $rc_labs, unit and compat $rc_rest, tests/vm $rc_vm"
    [ "$rc_labs" -eq 0 ] && [ "$rc_rest" -eq 0 ] && [ "$rc_vm" -eq 0 ]
}

install_debian
install_python
export PATH="$here/.venv/bin:$PATH"

case "${1:-}" in
    main)
        shift
        exec bash examples/main-job.sh "$@"
        ;;
    lint)
        lint
        ;;
    deb)
        PYTHON="$here/.venv/bin/python" exec packaging/build-deb.sh "${@:2}"
        ;;
    test)
        shift
        lint
        run_tests "$@"
        ;;
    *)
        echo "usage: $0 main|test [PYTEST ARGS...]|lint|deb [OUTDIR]" >&2
        exit 2
        ;;
esac
