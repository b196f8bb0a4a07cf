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

import dataclasses
import enum
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .errors import PyKeepalivedError

if TYPE_CHECKING:
    from .lexer import Segment
    from .context import ParseContext


class Status(enum.Enum):
    """How far pykeepalived supports a keyword."""

    ACTED = "acted on"  # parsed into the model and used by the running daemon
    PARSED = "parsed"  # parsed into the model; nothing acts on it yet (warns)
    NOT_YET = "not yet"  # recognised and accepted, value not kept (warns)
    REFUSED = "refused"  # a subsystem pykeepalived does not have: an error (or a warning where it has no effect)


LineHandler = Callable[["ParseContext", Any, "Segment"], None]
ListHandler = Callable[["ParseContext", Any, "Segment", "list[Segment]"], None]
OpenHandler = Callable[["ParseContext", Any, "Segment"], Any]
CloseHandler = Callable[["ParseContext", Any], None]


class ModelFieldError(PyKeepalivedError):
    """A schema handler names a field its model class does not have: a bug in a schema module, not in a config."""


@functools.cache
def field_names(model: type[Any]) -> frozenset[str]:
    """The dataclass fields of a model class (what a handler may set)."""
    return frozenset(f.name for f in dataclasses.fields(model))


def check_field(model: type[Any], attr: str) -> None:
    """Refuse `attr` unless it is a field of `model` (`settings.NAME` needs a `settings` field)."""
    name = "settings" if attr.startswith("settings.") else attr
    if not dataclasses.is_dataclass(model) or name not in field_names(model):
        raise ModelFieldError(f"{model.__name__} has no field '{name}' (a schema handler names '{attr}')")


class FieldHandler:
    """A line or list handler that fills one named field of its block's object.

    Keeping the name (rather than hiding it in a closure) lets
    `misnamed_fields` check every handler against the block's model class
    without parsing anything, so a typo in a schema module fails a unit test
    instead of creating a stray attribute at run time.
    """

    __slots__ = ("field", "run")

    def __init__(self, field: str, run: Callable[..., None]) -> None:
        self.field = field
        self.run = run

    def __call__(self, *args: Any) -> None:
        self.run(*args)

    def __repr__(self) -> str:
        return f"FieldHandler({self.field!r})"


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
    def kind(self) -> Literal["block", "list", "value"]:
        if self.block is not None:
            return "block"
        if self.on_list is not None:
            return "list"
        return "value"


@dataclass
class Block:
    """A table of keywords that may appear inside one kind of `{ }` block."""

    name: str
    model: type[Any] | None = None  # the class of the object its handlers fill (None: no named fields)
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


def misnamed_fields(root: Block) -> list[str]:
    """Every FieldHandler reachable from `root` whose field its block's model class lacks, as readable lines."""
    problems: list[str] = []
    seen: set[int] = set()

    def visit(block: Block) -> None:
        if id(block) in seen:
            return
        seen.add(id(block))
        for keyword in block.keywords.values():
            for handler in (keyword.on_line, keyword.on_list):
                if isinstance(handler, FieldHandler):
                    if block.model is None:
                        problems.append(f"{block.name} > {keyword.name}: sets '{handler.field}' "
                                        f"but the block names no model class")
                        continue
                    try:
                        check_field(block.model, handler.field)
                    except ModelFieldError as exc:
                        problems.append(f"{block.name} > {keyword.name}: {exc}")
            if keyword.block is not None:
                visit(keyword.block)

    visit(root)
    return problems


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
