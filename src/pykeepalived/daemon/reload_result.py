"""The outcome of the last reload, in a file next to the parent's pid file, for `pykeepalived reload`.

SIGHUP carries no answer back, so the parent writes each reload's outcome to
`<pid file without .pid>.reload.json` (keepalived.pid -> keepalived.reload.json),
mode 0644 like the pid file (nothing secret: the problems are config lines
and what the log says anyway), written to a new file renamed into place
(host/private_files.py), so that a reader sees the old outcome or the new one,
never half a file. `started` is the wall-clock time the reload began: the
reload command sends SIGHUP at time T and waits for an outcome that started at
T or later, which cannot be the answer to an earlier HUP.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from ..host.private_files import UnsafeFileError, read_own_small, write_private

RESULT_MODE = 0o644
MAX_RESULT_BYTES = 1024 * 1024


@dataclass
class ReloadResult:
    generation: int  # reloads attempted since the daemon started (1 for the first)
    pid: int  # the parent's
    started: float  # time.time() when the reload began reading the configuration
    finished: float
    ok: bool
    digest: str  # the snapshot the daemon runs now (the new one, or the old one when refused)
    problems: list[str] = field(default_factory=list)  # why it failed, one line each (FILE:LINE: ... first)
    warnings: list[str] = field(default_factory=list)  # applied, but: global_defs that need a restart, ...
    children: dict[str, str] = field(default_factory=dict)  # name -> reloaded, refused, started, stopped, ...
    offered: str = ""  # the new snapshot handed to the children ("" when the parent refused the config)
    child_digests: dict[str, str] = field(default_factory=dict)  # the snapshot each child says it read

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ReloadResult:
        """ValueError if `text` is not a result."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        try:
            return cls(generation=int(data["generation"]), pid=int(data["pid"]), started=float(data["started"]),
                       finished=float(data["finished"]), ok=bool(data["ok"]), digest=str(data["digest"]),
                       problems=[str(p) for p in data.get("problems", [])],
                       warnings=[str(w) for w in data.get("warnings", [])],
                       children={str(k): str(v) for k, v in dict(data.get("children", {})).items()},
                       offered=str(data.get("offered", "")),
                       child_digests={str(k): str(v) for k, v in dict(data.get("child_digests", {})).items()})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or wrong field: {exc}") from None


def result_path(pid_file: str) -> str:
    """Where the parent whose pid file is `pid_file` writes its reload outcomes."""
    directory, name = os.path.split(os.path.abspath(pid_file))
    stem = name[:-4] if name.endswith(".pid") else name
    return os.path.join(directory, f"{stem}.reload.json")


def write_result(path: str, result: ReloadResult) -> None:
    """Raises UnsafeFileError if the file cannot be written."""
    write_private(path, result.to_json(), RESULT_MODE)


def read_result(path: str) -> ReloadResult | None:
    """The last outcome written there; None if there is none or it is unreadable (a half-started daemon)."""
    try:
        text = read_own_small(path, MAX_RESULT_BYTES)
    except (OSError, UnsafeFileError):
        return None
    if not text:
        return None
    try:
        return ReloadResult.from_json(text)
    except ValueError:
        return None


def remove_result(path: str, pid: int) -> None:
    """At stop: remove the file if it is ours (another daemon may have taken the name since)."""
    result = read_result(path)
    if result is not None and result.pid == pid:
        try:
            os.unlink(path)
        except OSError:
            pass
