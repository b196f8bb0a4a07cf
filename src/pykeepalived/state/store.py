"""The parent's state store: each child's latest part, merged into one document with a version.

The VRRP and checker children each send their own part (a JSON object, the
shapes in docs/state.md) to the parent; the parent adds its own (pid, config,
reloads). Every reader (status file, HTTP API, metrics, SNMP subagent, page)
takes the same document, `text()` or `snapshot()`, so they all show the same
thing, and waits for `version` to move instead of polling. Pure: no I/O and no asyncio, so that it can be
tested with plain dicts and a clock; the shells bridge `subscribe` to asyncio.

A child's part is kept as the JSON text it came in (`set_part_text`), not as
objects: at 6,000 real servers the checker's part is 1.7 MiB of text and 6.6
MiB parsed (bench/checks.py --pk-daemon). The file, the API and the event
stream send that text as it is; a reader that needs objects (metrics, SNMP)
gets them parsed from it, which costs less than the deep copy it replaces.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

SCHEMA_VERSION = 1
MAX_EVENTS = 200

JsonObject = dict[str, Any]
Listener = Callable[[int], None]
_COMPACT = json.JSONEncoder(separators=(",", ":"))


class StateStore:
    """Holds the parts, the event timeline and a version that moves on every change."""

    def __init__(self) -> None:
        self.version = 0
        self._parts: dict[str, JsonObject | str] = {}  # a part, or its text (compact JSON of an object)
        self._events: list[JsonObject] = []
        self._listeners: list[Listener] = []

    def set_part(self, name: str, part: JsonObject) -> None:
        """Replace one part ("daemon", "vrrp", "checker", ...) whole; listeners hear the new version."""
        if self._parts.get(name) == part:
            return
        self._parts[name] = part
        self._changed()

    def set_part_text(self, name: str, text: str) -> None:
        """set_part with the part as the JSON text of an object, kept as it is (the caller has checked it)."""
        if self._parts.get(name) == text:
            return
        self._parts[name] = text
        self._changed()

    def drop_part(self, name: str) -> None:
        """A child that stopped (or a subsystem a reload removed) no longer contributes."""
        if self._parts.pop(name, None) is not None:
            self._changed()

    def add_event(self, event: JsonObject) -> None:
        """One entry of the timeline: {"at": unix time, "kind": ..., "subject": ..., "text": ...}."""
        self._events.append(event)
        del self._events[:-MAX_EVENTS]
        self._changed()

    def part(self, name: str) -> JsonObject | None:
        """A part as objects (kept as text: parsed afresh, the caller's to keep)."""
        part = self._parts.get(name)
        if isinstance(part, str):
            parsed: JsonObject = json.loads(part)
            return parsed
        return part

    def snapshot(self) -> JsonObject:
        """The whole document as objects of its own (parts kept as text parsed afresh, the rest deep-copied)."""
        doc: JsonObject = {"schema": SCHEMA_VERSION, "version": self.version}
        for name, part in self._parts.items():
            doc[name] = json.loads(part) if isinstance(part, str) else copy.deepcopy(part)
        doc["events"] = copy.deepcopy(self._events)
        return doc

    def text(self, **extra: Any) -> str:
        """The whole document as compact JSON, `extra` keys last: what `snapshot()` holds, without its copy.

        A reader that only sends or writes the document needs no copy: at
        6,000 real servers the deep copy cost four times the encoding
        (bench/checks.py --pk-daemon, py-spy).
        """
        return "".join(self.text_pieces(**extra))

    def text_pieces(self, **extra: Any) -> Iterator[str]:
        """text() in pieces, each part's kept text one of them: a file is written without joining them."""
        yield f'{{"schema":{SCHEMA_VERSION},"version":{self.version}'
        for name, part in self._parts.items():
            yield f",{_COMPACT.encode(name)}:"
            yield part if isinstance(part, str) else _COMPACT.encode(part)
        yield ',"events":'
        yield _COMPACT.encode(self._events)
        for key, value in extra.items():
            yield f",{_COMPACT.encode(key)}:{_COMPACT.encode(value)}"
        yield "}"

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(version)` after each change; returns the function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _changed(self) -> None:
        self.version += 1
        for listener in list(self._listeners):
            listener(self.version)
