"""keepalived 2.2.7's script vetting rules on made-up stat results (no file system)."""

from __future__ import annotations

import stat

import pytest

from pykeepalived.config.model import GlobalDefs
from pykeepalived.config import script_rules as sec
from pykeepalived.config.script_rules import FileStat, Status

DIR, FILE, LINK = stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK
ROOT_DIR = FileStat(DIR | 0o755, 0, 0)
SCRIPT = FileStat(FILE | 0o755, 0, 0)


def chain(*elements: FileStat) -> list[tuple[str, FileStat]]:
    return [(f"/e{i}", st) for i, st in enumerate(elements)]


@pytest.mark.parametrize("last, unsafe", [
    (FileStat(FILE | 0o755, 0, 0), False),
    (FileStat(FILE | 0o777, 0, 0), True),            # world-writable
    (FileStat(FILE | 0o775, 0, 0), False),           # group-writable, but the group is root
    (FileStat(FILE | 0o775, 0, 1000), True),         # group-writable by a non-root group
    (FileStat(FILE | 0o755, 1000, 0), True),         # owned by a user
    (FileStat(FILE | 0o700, 1000, 1000), True),
    (FileStat(LINK | 0o777, 0, 0), False),           # a root symlink: only its owner counts
    (FileStat(LINK | 0o777, 1000, 0), True),
])
def test_the_file_itself(last: FileStat, unsafe: bool) -> None:
    problem = sec.unsafe_path(chain(ROOT_DIR, ROOT_DIR, last))
    assert (problem is not None) == unsafe
    if problem is not None:
        assert problem.path == "/e2" and not problem.wrong_type


@pytest.mark.parametrize("directory, unsafe", [
    (FileStat(DIR | 0o777, 0, 0), True),             # world-writable directory
    (FileStat(DIR | 0o1777, 0, 0), False),           # sticky and root's, like /tmp
    (FileStat(DIR | 0o1777, 1000, 0), True),         # sticky but a user's
    (FileStat(DIR | 0o775, 0, 50), True),
    (FileStat(DIR | 0o1775, 0, 50), False),
    (FileStat(DIR | 0o755, 1000, 1000), True),
])
def test_every_directory_above(directory: FileStat, unsafe: bool) -> None:
    assert (sec.unsafe_path(chain(ROOT_DIR, directory, SCRIPT)) is not None) == unsafe
    assert (sec.unsafe_path(chain(directory, ROOT_DIR, SCRIPT)) is not None) == unsafe


def test_wrong_types_disable_whatever_the_owner() -> None:
    fifo = FileStat(stat.S_IFIFO | 0o755, 0, 0)
    assert sec.unsafe_path(chain(ROOT_DIR, fifo)).wrong_type  # type: ignore[union-attr]
    assert sec.unsafe_path(chain(SCRIPT, SCRIPT)).wrong_type  # type: ignore[union-attr]


def test_prefixes_start_at_the_root() -> None:
    assert sec.path_prefixes("/usr/local/bin/x") == ["/", "/usr", "/usr/local", "/usr/local/bin", "/usr/local/bin/x"]


def test_executable_and_protection_need() -> None:
    user_only = FileStat(FILE | 0o700, 1000, 1000)
    assert sec.is_executable(user_only, 0, 0)         # root needs any x bit
    assert sec.is_executable(user_only, 1000, 5)
    assert not sec.is_executable(user_only, 2000, 1000)
    assert not sec.is_executable(FileStat(FILE | 0o644, 0, 0), 0, 0)
    assert sec.needs_protection(SCRIPT, 0, 0)
    assert sec.needs_protection(SCRIPT, 65534, 0)     # gid 0 is root's power too
    assert not sec.needs_protection(SCRIPT, 65534, 65534)
    assert sec.needs_protection(FileStat(FILE | 0o4755, 0, 0), 65534, 65534)  # set-uid root


class Files:
    """A made-up file system: paths -> stat, symlinks -> targets."""

    def __init__(self, entries: dict[str, FileStat], links: dict[str, str] | None = None,
                 users: dict[str, tuple[int, int]] | None = None) -> None:
        self.entries = {"/": ROOT_DIR, **entries}
        self.links = links or {}
        self.users = {"root": (0, 0), "nobody": (65534, 65534), **(users or {})}

    def lstat(self, path: str) -> FileStat | None:
        return self.entries.get(path)

    def stat(self, path: str) -> FileStat | None:
        real = self.realpath(path)
        return self.entries.get(real) if real else None

    def realpath(self, path: str) -> str | None:
        seen = 0
        while path in self.links and seen < 10:
            path, seen = self.links[path], seen + 1
        return path if path in self.entries else None

    def search_path(self) -> list[str]:
        return ["/usr/sbin", "/usr/bin"]

    def user_ids(self, name: str) -> tuple[int, int] | None:
        return self.users.get(name)

    def group_id(self, name: str) -> int | None:
        return {"root": 0, "nogroup": 65534}.get(name)

    def our_ids(self) -> tuple[int, int]:
        return 0, 0


def tree(**files: FileStat) -> dict[str, FileStat]:
    out = {"/usr": ROOT_DIR, "/usr/bin": ROOT_DIR, "/usr/sbin": ROOT_DIR, "/etc": ROOT_DIR, "/etc/ka": ROOT_DIR,
           "/srv": FileStat(DIR | 0o777, 0, 0)}
    out.update({k.replace("__", "/").replace("_", "."): v for k, v in files.items()})
    return out


def test_vet_script_outcomes() -> None:
    files = Files({**tree(), "/etc/ka/ok.sh": SCRIPT, "/etc/ka/ww.sh": FileStat(FILE | 0o777, 0, 0),
                   "/srv/s.sh": SCRIPT, "/usr/bin/check": SCRIPT, "/etc/ka/noexec": FileStat(FILE | 0o644, 0, 0),
                   "/etc/ka/link.sh": FileStat(LINK | 0o777, 0, 0)},
                  links={"/etc/ka/link.sh": "/srv/s.sh"})
    ok = sec.vet_script("/etc/ka/ok.sh", 0, 0, True, files)
    assert ok.status is Status.OK and ok.exec_path == "/etc/ka/ok.sh"
    ww = sec.vet_script("/etc/ka/ww.sh", 0, 0, True, files)
    assert ww.status is Status.UNSAFE and not ww.runnable and "writable by everyone" in ww.reason
    # without script security it runs, marked insecure
    lax = sec.vet_script("/etc/ka/ww.sh", 0, 0, False, files)
    assert lax.runnable and lax.insecure
    # run as nobody it is not checked at all
    assert sec.vet_script("/etc/ka/ww.sh", 65534, 65534, True, files).status is Status.OK
    # the directory above is world-writable (not sticky)
    assert sec.vet_script("/srv/s.sh", 0, 0, True, files).reason == "/srv is writable by everyone"
    # a safe symlink to an unsafe place is judged by where it points, and runs from there
    link = sec.vet_script("/etc/ka/link.sh", 0, 0, True, files)
    assert link.status is Status.UNSAFE and link.exec_path == "/srv/s.sh"
    # a bare name is searched on PATH and runs from the full path
    found = sec.vet_script("check", 0, 0, True, files)
    assert found.runnable and found.searched and found.exec_path == "/usr/bin/check"
    assert sec.vet_script("nosuch", 0, 0, True, files).status is Status.NOT_FOUND
    assert sec.vet_script("/etc/ka/noexec", 0, 0, True, files).status is Status.NOT_EXECUTABLE
    assert sec.vet_script("</dev/tcp/127.0.0.1/80", 0, 0, True, files).status is Status.FILE_TEST


def test_default_user_keepalived_script_and_none_with_security() -> None:
    g = GlobalDefs(enable_script_security=True)
    assert sec.run_as(None, None, g, default_user_exists=True) == sec.RunAs("keepalived_script")
    assert sec.run_as(None, None, g, default_user_exists=False) is None     # disabled, no root fallback
    assert sec.run_as(None, None, GlobalDefs(), default_user_exists=False) == sec.RunAs(None)
    assert sec.run_as("nobody", "nogroup", g, default_user_exists=False) == sec.RunAs("nobody", "nogroup")
    assert sec.run_as(None, None, GlobalDefs(script_user="root"), True) == sec.RunAs("root")


def test_vet_config_finds_every_script_and_warns_per_subsystem() -> None:
    from pykeepalived.config import read_config_text

    text = """global_defs {
  router_id t
  startup_script /etc/ka/ok.sh
}
vrrp_script chk {
  script /etc/ka/ww.sh
  user nobody
}
vrrp_instance VI {
  interface eth0
  virtual_router_id 1
  virtual_ipaddress { 10.0.0.1 }
  track_script { chk }
  notify_master "/etc/ka/ww.sh master"
}
virtual_server 10.0.0.1 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  real_server 10.0.0.2 80 {
    MISC_CHECK {
      misc_path "/etc/ka/ok.sh arg"
      user root
    }
  }
}
"""
    cfg = read_config_text(text).config
    files = Files({**tree(), "/etc/ka/ok.sh": SCRIPT, "/etc/ka/ww.sh": FileStat(FILE | 0o777, 0, 0)})
    vetting = sec.vet_config(cfg, files)
    got = {(u.kind, u.subsystem, u.user): v.status for u, v in vetting.uses}
    assert got == {
        ("startup_script", "main", None): Status.OK,
        ("vrrp_script chk", "vrrp", "nobody"): Status.OK,           # as nobody: not vetted
        ("notify_master of vrrp_instance VI", "vrrp", None): Status.OK,  # as root, insecure, security off
        ("MISC_CHECK of real server 10.0.0.2", "check", "root"): Status.OK,
    }
    assert list(vetting.violations()) == [("main", False), ("vrrp", True), ("check", False)]
    cfg.global_defs.enable_script_security = True
    cfg.global_defs.script_user = "root"
    secured = sec.vet_config(cfg, files)
    assert [v.status for _, v in secured.uses] == [Status.OK, Status.OK, Status.UNSAFE, Status.OK]
    assert list(secured.violations()) == []
    # no script_user, no keepalived_script: scripts without their own user are disabled
    cfg.global_defs.script_user = None
    assert [v.status for _, v in sec.vet_config(cfg, files).uses] == [Status.NO_USER, Status.OK, Status.NO_USER,
                                                                       Status.OK]


def test_the_rule_module_does_no_io() -> None:
    import ast
    from pathlib import Path

    tree_ = ast.parse(Path(sec.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree_) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree_)
                 if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    assert not imported & {"os", "subprocess", "socket", "asyncio", "glob", "pathlib", "shutil", "pwd", "grp"}


class Host(Files):
    def interface_exists(self, name: str) -> bool:
        return True

    def user_exists(self, name: str) -> bool:
        return name in self.users


def test_config_check_reports_like_keepalived_and_drops_a_non_executable_track_script() -> None:
    from pykeepalived.config import read_config_text

    def check(global_extra: str, script: str, notify: str = "/etc/ka/ok.sh") -> tuple[list[str], list[str], object]:
        text = (f"global_defs {{\n{global_extra}}}\nvrrp_script chk {{\n  script {script}\n}}\n"
                "vrrp_instance VI {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress { 10.0.0.1 }\n"
                f"  track_script {{\n    chk\n  }}\n  notify_master {notify}\n}}\n")
        files = Host({**tree(), "/etc/ka/ok.sh": SCRIPT, "/etc/ka/ww.sh": FileStat(FILE | 0o777, 0, 0),
                      "/etc/ka/noexec": FileStat(FILE | 0o644, 0, 0)})
        result = read_config_text(text, host=files)
        return ([d.message for d in result.errors], [d.message for d in result.warnings],
                result.config.vrrp_instances["VI"].track_scripts)

    secure = "  enable_script_security\n  script_user root\n"
    errors, _, _ = check(secure, "/etc/ka/ok.sh")
    assert errors == []
    errors, _, _ = check(secure, "/etc/ka/ww.sh")                 # keepalived -t: "Disabling track script"
    assert len(errors) == 1 and "Unsafe permissions" in errors[0] and "disabling it" in errors[0]
    errors, warnings, tracks = check(secure, "/etc/ka/noexec")    # keepalived -t accepts, drops the script
    assert errors == [] and any("not executable" in w for w in warnings) and tracks == []
    errors, warnings, _ = check(secure, "/etc/ka/ok.sh", notify="/etc/ka/ww.sh")  # a notify script: log only
    assert errors == [] and any("Unsafe permissions" in w for w in warnings)
    errors, _, _ = check("", "/etc/ka/ok.sh")                     # no script security: SECURITY VIOLATION
    assert errors == ["SECURITY VIOLATION - scripts are being executed but enable_script_security is not set."]
    errors, _, _ = check("  enable_script_security\n", "/etc/ka/ok.sh")  # no keepalived_script, no script_user
    assert errors and all("unable to set default user keepalived_script" in e for e in errors)
