"""The configuration as the daemon read it: every file text and glob result, replayable in memory.

keepalived's parent reads its configuration once into a memfd and every child
parses that same text, so that a child respawned after the file was edited
(or broken) still runs the configuration the daemon runs. We do the same: the
parent reads through `host/recording.py`'s RecordingFileSystem, which keeps
whatever it served; `Snapshot.encode()` is the memfd's content; a child
decodes it and parses with `SnapshotFileSystem`, which answers the lexer's
questions (file texts, glob matches, and the errors the parent saw) exactly as
the disk answered the parent, under the same paths, so file:line messages are
the same as the parent's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .lexer import FileProblem, NotRegularFile
from .memfs import MemoryFileSystem

FORMAT = "pykeepalived-config-snapshot/1"


class SnapshotError(Exception):
    """The snapshot text is not one of ours (or is damaged)."""


@dataclass
class Snapshot:
    """What the lexer read: `main` (the -f path as given), its working directory and config id, and the answers."""

    main: str
    cwd: str
    config_id: str | None
    files: dict[str, str] = field(default_factory=dict)
    globs: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # "read:PATH" / "glob:PATTERN" -> the error text
    skipped: dict[str, str] = field(default_factory=dict)  # PATH -> why it is no regular file (a warning, not an error)

    def encode(self) -> bytes:
        return json.dumps({"format": FORMAT, "main": self.main, "cwd": self.cwd, "config_id": self.config_id,
                           "files": self.files, "globs": self.globs, "problems": self.problems,
                          "skipped": self.skipped},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Snapshot:
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict) or raw.get("format") != FORMAT:
                raise SnapshotError("not a pykeepalived configuration snapshot")
            config_id = raw["config_id"]
            return cls(
                main=str(raw["main"]), cwd=str(raw["cwd"]),
                config_id=None if config_id is None else str(config_id),
                files={str(k): str(v) for k, v in raw["files"].items()},
                globs={str(k): [str(p) for p in v] for k, v in raw["globs"].items()},
                problems={str(k): str(v) for k, v in raw["problems"].items()},
                skipped={str(k): str(v) for k, v in raw.get("skipped", {}).items()},
            )
        except SnapshotError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SnapshotError(f"damaged configuration snapshot: {type(exc).__name__}: {exc}") from None


class SnapshotFileSystem(MemoryFileSystem):
    """Replays a Snapshot: the parent's texts, glob results and errors, nothing from the disk."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__(snapshot.files)
        self.snapshot = snapshot

    def read_text(self, path: str) -> str:
        if path in self.snapshot.skipped:
            raise NotRegularFile(self.snapshot.skipped[path])
        problem = self.snapshot.problems.get(f"read:{path}")
        if problem is not None:
            raise FileProblem(problem)
        if path not in self.files:
            raise FileProblem("not in the configuration the daemon read at start")
        return self.files[path]

    def glob(self, pattern: str) -> list[str]:
        problem = self.snapshot.problems.get(f"glob:{pattern}")
        if problem is not None:
            raise FileProblem(problem)
        found = self.snapshot.globs.get(pattern)
        return list(found) if found is not None else super().glob(pattern)
