"""The keyword registry: which keywords exist, in which block, and what they do.

keepalived's parser is a tree of keyword tables; ours is too. A `Block` maps
keyword names to `Keyword`s; a keyword either takes a line of words, takes a
`{ ... }` list of lines (virtual_ipaddress, track_interface, ...), or opens a
nested block of keywords (vrrp_instance, real_server, HTTP_GET, url, ...).

The registry is also the source of truth for docs/configuration.md: every
keyword carries its support status, and a test checks that the document and
the registry agree.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lexer import Segment
    from .context import ParseContext


class Status(enum.Enum):
    """How far pykeepalived supports a keyword."""

    ACTED = "acted on"  # parsed into the model and used by the running daemon
    PARSED = "parsed"  # parsed into the model; nothing acts on it yet (warns)
    NOT_YET = "not yet"  # recognised and accepted, value not kept (warns)


LineHandler = Callable[["ParseContext", Any, "Segment"], None]
ListHandler = Callable[["ParseContext", Any, "Segment", "list[Segment]"], None]
OpenHandler = Callable[["ParseContext", Any, "Segment"], Any]
CloseHandler = Callable[["ParseContext", Any], None]


@dataclass
class Keyword:
    """One keyword in one block."""

    name: str
    summary: str
    on_line: LineHandler | None = None
    on_list: ListHandler | None = None
    block: Block | None = None
    on_open: OpenHandler | None = None
    on_close: CloseHandler | None = None
    status: Status = Status.PARSED
    deprecated: str | None = None  # what to use instead; set for old spellings
    since: str = "2.2"  # keepalived version that introduced it ("2.4" = newer than 2.2.7)

    @property
    def kind(self) -> str:
        if self.block is not None:
            return "block"
        if self.on_list is not None:
            return "list"
        return "value"


@dataclass
class Block:
    """A table of keywords that may appear inside one kind of `{ }` block."""

    name: str
    keywords: dict[str, Keyword] = field(default_factory=dict)
    # Blocks whose lines are data rather than keywords (virtual_server_group)
    fallback: LineHandler | None = None
    fallback_summary: str = ""

    def add(self, keyword: Keyword) -> Keyword:
        if keyword.name in self.keywords:
            raise ValueError(f"keyword {keyword.name} registered twice in {self.name}")
        self.keywords[keyword.name] = keyword
        return keyword

    def line(
        self,
        name: str,
        handler: LineHandler,
        summary: str,
        *,
        status: Status = Status.PARSED,
        deprecated: str | None = None,
        since: str = "2.2",
    ) -> Keyword:
        return self.add(
            Keyword(name, summary, on_line=handler, status=status, deprecated=deprecated, since=since)
        )

    def list(
        self,
        name: str,
        handler: ListHandler,
        summary: str,
        *,
        status: Status = Status.PARSED,
        deprecated: str | None = None,
        since: str = "2.2",
    ) -> Keyword:
        return self.add(
            Keyword(name, summary, on_list=handler, status=status, deprecated=deprecated, since=since)
        )

    def nested(
        self,
        name: str,
        block: Block,
        on_open: OpenHandler,
        summary: str,
        *,
        on_close: CloseHandler | None = None,
        status: Status = Status.PARSED,
        deprecated: str | None = None,
        since: str = "2.2",
    ) -> Keyword:
        return self.add(
            Keyword(
                name,
                summary,
                block=block,
                on_open=on_open,
                on_close=on_close,
                status=status,
                deprecated=deprecated,
                since=since,
            )
        )


def walk(root: Block) -> Iterator[tuple[str, Keyword]]:
    """Every (block path, keyword) pair reachable from `root`, each block once."""
    seen: set[int] = set()

    def visit(block: Block, path: str) -> Iterator[tuple[str, Keyword]]:
        if id(block) in seen:
            return
        seen.add(id(block))
        for keyword in block.keywords.values():
            yield path, keyword
            if keyword.block is not None:
                yield from visit(keyword.block, f"{path} > {keyword.name}" if path else keyword.name)

    yield from visit(root, "")
