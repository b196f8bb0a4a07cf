"""The names keepalived 2.2.7 gives its files and syslog ident under net_namespace, instance and use_pid_dir.

Several keepalived daemons on one host (one per network namespace, or
several `instance`s) must not share pid files, and operators' tools find each
by keepalived's names, so pykeepalived uses the same ones (read from
keepalived 2.2.7's main.c, pidfile.c, namespaces.c and global_data.c, and
checked by running it):

- pid files: /run/keepalived.pid, /run/keepalived_vrrp.pid,
  /run/keepalived_checkers.pid by default; with `use_pid_dir`, `instance` or
  `net_namespace` they move to /run/keepalived/ as keepalived.pid, vrrp.pid,
  checkers.pid; `instance NAME` makes them keepalived_NAME.pid, vrrp_NAME.pid,
  checkers_NAME.pid. keepalived in a namespace bind-mounts
  /run/keepalived/NAMESPACE over /run/keepalived in a mount namespace of its
  own, so from the host the files are /run/keepalived/NAMESPACE/...: that
  path is what we write directly (no mount namespace). -p/-r/-c win.
- syslog ident: Keepalived, Keepalived_vrrp, Keepalived_healthcheckers, each
  followed by `_NAMESPACE` and `_INSTANCE` when set (not with -t).
- data dumps with `data_use_instance`: /tmp/keepalived.data becomes
  /tmp/keepalived.NAMESPACE.data, keepalived.INSTANCE.data or
  keepalived.NAMESPACE_INSTANCE.data (a dot, then the two joined by `_`).

Pure: names only; nothing here touches a file.
"""

from __future__ import annotations

from dataclasses import dataclass

RUN_DIR = "/run"
PID_DIR = "/run/keepalived"
STATUS_DIR = "/run/pykeepalived"


@dataclass(frozen=True)
class Naming:
    """What the names depend on: the namespace the daemon runs in (after `-s`), the instance, use_pid_dir."""

    namespace: str | None = None
    instance: str | None = None
    use_pid_dir: bool = False

    @property
    def in_pid_dir(self) -> bool:
        return self.use_pid_dir or self.namespace is not None or self.instance is not None


@dataclass(frozen=True)
class PidFileNames:
    main: str
    vrrp: str
    checkers: str
    bfd: str


def _suffix(*parts: str | None) -> str:
    return "".join(f"_{p}" for p in parts if p)


def pid_files(naming: Naming) -> PidFileNames:
    """keepalived's default pid files for this naming, as seen from the host's mount namespace."""
    if not naming.in_pid_dir:
        return PidFileNames(f"{RUN_DIR}/keepalived.pid", f"{RUN_DIR}/keepalived_vrrp.pid",
                            f"{RUN_DIR}/keepalived_checkers.pid", f"{RUN_DIR}/keepalived_bfd.pid")
    folder = f"{PID_DIR}/{naming.namespace}" if naming.namespace else PID_DIR
    inst = _suffix(naming.instance)
    return PidFileNames(f"{folder}/keepalived{inst}.pid", f"{folder}/vrrp{inst}.pid",
                        f"{folder}/checkers{inst}.pid", f"{folder}/bfd{inst}.pid")


def pid_dirs(naming: Naming) -> tuple[str, ...]:
    """The directories keepalived makes for the pid files (0755), outermost first; removed when empty at exit."""
    if not naming.in_pid_dir:
        return ()
    return (PID_DIR, f"{PID_DIR}/{naming.namespace}") if naming.namespace else (PID_DIR,)


def syslog_ident(program: str, naming: Naming) -> str:
    """`Keepalived_vrrp` -> `Keepalived_vrrp_NAMESPACE_INSTANCE` (make_syslog_ident)."""
    return program + _suffix(naming.namespace, naming.instance)


def data_dump_path(file_name: str, tmp_dir: str, naming: Naming, data_use_instance: bool) -> str:
    """Where a data dump (`keepalived.data`, `keepalived_check.data`, ...) goes (open_dump_file)."""
    if not data_use_instance or not (naming.namespace or naming.instance):
        return f"{tmp_dir}/{file_name}"
    stem, dot, ext = file_name.rpartition(".")
    if not dot:
        stem, ext = file_name, ""
    tag = "_".join(p for p in (naming.namespace, naming.instance) if p)
    return f"{tmp_dir}/{stem}.{tag}" + (f".{ext}" if dot else "")


def naming_from_config(net_namespace: str | None, instance: str | None, use_pid_dir: bool = False) -> Naming:
    """The names a configuration alone gives (the daemon passes its own, where `-s` may have replaced the namespace)."""
    return Naming(namespace=net_namespace, instance=instance, use_pid_dir=use_pid_dir)


def status_file(naming: Naming) -> str:
    """pykeepalived's own checker status file, kept apart per namespace and instance like the pid files."""
    if not (naming.namespace or naming.instance):
        return f"{STATUS_DIR}/checker.json"
    folder = f"{STATUS_DIR}/{naming.namespace}" if naming.namespace else STATUS_DIR
    return f"{folder}/checker{_suffix(naming.instance)}.json"
