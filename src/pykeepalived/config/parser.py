"""The block-stack parser: Segments in, a filled model and diagnostics out.

keepalived's rules for structure, which we keep:
  * a keyword that opens a block needs `{` next (on the same line or the
    next one); without it, keepalived reports a missing `{` and reads the
    following lines as the block's contents anyway;
  * a stray `}` at the top level is an error ("Extra '}'");
  * an unknown keyword is an error; if a `{` follows, we skip its whole
    block so that one mistake gives one message (keepalived would also
    complain about each line inside);
  * at the end of the input every block must be closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import Diagnostic, Location, Severity, ValueProblem
from .include_check import IncludeChecks
from .lexer import Segment
from .model import KeepalivedConfig
from .context import ParseContext
from .registry import Block, Keyword, Status

__all__ = ["ParseContext", "parse_segments", "unsupported_warnings"]


class _Stream:
    """An iterator over segments that can look one ahead."""

    def __init__(self, segments: Iterable[Segment]) -> None:
        self._it: Iterator[Segment] = iter(segments)
        self._peeked: Segment | None = None
        self.last: Segment | None = None

    def next(self) -> Segment | None:
        if self._peeked is not None:
            seg, self._peeked = self._peeked, None
        else:
            seg = next(self._it, None)  # type: ignore[arg-type]
        if seg is not None:
            self.last = seg
        return seg

    def peek(self) -> Segment | None:
        if self._peeked is None:
            self._peeked = next(self._it, None)
        return self._peeked


@dataclass
class _Frame:
    block: Block
    target: Any
    keyword: Keyword | None
    opened_at: Location | None


def _suggest(word: str, block: Block) -> str:
    import difflib  # only for a misspelt keyword: half a MiB that a running daemon need not hold

    close = difflib.get_close_matches(word, list(block.keywords), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _skip_block(stream: _Stream) -> None:
    """Consume a `{ ... }` block, nested blocks included, if one comes next."""
    nxt = stream.peek()
    if nxt is None or not nxt.is_open:
        return
    stream.next()
    _skip_block_body(stream)


def _collect_list(ctx: ParseContext, stream: _Stream, head: Segment) -> list[Segment] | None:
    """The lines of a value block (`virtual_ipaddress { ... }`)."""
    nxt = stream.peek()
    if nxt is None or not nxt.is_open:
        if len(head.words) > 1:
            ctx.error(head, f"block {head.words[0]} has extra parameters {head.words[1]} ...")
        ctx.warn(head, f"'{{' missing at the beginning of block {head.words[0]}")
    else:
        stream.next()
    lines: list[Segment] = []
    while True:
        seg = stream.next()
        if seg is None:
            ctx.error(head, f"block {head.words[0]} is not closed: missing '}}'")
            return lines
        if seg.is_close:
            ctx.close_location = seg.location  # keepalived reports end-of-list checks at the brace
            return lines
        if seg.is_open:
            ctx.error(seg, f"unexpected '{{' inside {head.words[0]}")
            _skip_block_body(stream)
            continue
        lines.append(seg)


def _skip_block_body(stream: _Stream) -> None:
    depth = 1
    while depth:
        seg = stream.next()
        if seg is None:
            return
        if seg.is_open:
            depth += 1
        elif seg.is_close:
            depth -= 1


def parse_segments(root: Block, segments: Iterable[Segment], config: KeepalivedConfig,
                   include_checks: IncludeChecks | None = None) -> ParseContext:
    """Run the keyword tables over the segments, filling `config` (`include_checks`: the lexer's, for include_check)."""
    ctx = ParseContext(config, include_checks=include_checks)
    stream = _Stream(segments)
    stack: list[_Frame] = [_Frame(root, config, None, None)]
    while True:
        seg = stream.next()
        if seg is None:
            break
        frame = stack[-1]
        if seg.is_close:
            if len(stack) == 1:
                ctx.error(seg, "extra '}' found", keyword="}")
                continue
            stack.pop()
            ctx.close_location = seg.location
            if frame.keyword is not None and frame.keyword.on_close is not None and frame.target is not None:
                _call(ctx, seg, frame.keyword.on_close, frame.target)
            continue
        if seg.is_open:
            ctx.error(seg, "unexpected '{' - ignoring its block", keyword="{")
            _skip_block_body(stream)
            continue
        name = seg.words[0]
        keyword = frame.block.keywords.get(name)
        if keyword is None and frame.block.fallback is not None:
            _call(ctx, seg, frame.block.fallback, frame.target, seg)
            continue
        if keyword is None:
            where = f" in {frame.block.name}" if len(stack) > 1 else ""
            ctx.error(seg, f"unknown keyword '{name}'{where}{_suggest(name, frame.block)}")
            _skip_block(stream)
            continue
        _note_use(ctx, frame.block, keyword, seg)
        _note_location(frame.target, seg)
        if keyword.block is not None:
            child = _call(ctx, seg, keyword.on_open, frame.target, seg) if keyword.on_open else None
            nxt = stream.peek()
            if nxt is not None and nxt.is_open:
                stream.next()
            else:  # keepalived notices it on the line after the keyword
                ctx.error(nxt or seg, f"missing '{{' at the beginning of the {name} block", name)
            if child is None:
                _skip_block_body(stream)
                continue
            stack.append(_Frame(keyword.block, child, keyword, seg.location))
        elif keyword.on_list is not None:
            lines = _collect_list(ctx, stream, seg)
            if lines is not None:
                _call(ctx, seg, keyword.on_list, frame.target, seg, lines)
        elif keyword.on_line is not None:
            _call(ctx, seg, keyword.on_line, frame.target, seg)
    for frame in reversed(stack[1:]):
        kw = frame.keyword.name if frame.keyword else "block"
        ctx.error(frame.opened_at, f"{kw} block is not closed: missing '}}' at the end of the file", kw)
        if frame.keyword is not None and frame.keyword.on_close is not None and frame.target is not None:
            _call(ctx, None, frame.keyword.on_close, frame.target)
    return ctx


def _call(ctx: ParseContext, seg: Segment | None, fn: Any, *args: Any) -> Any:
    """Run a handler; a ValueProblem it raises becomes an error at the segment."""
    try:
        return fn(ctx, *args)
    except ValueProblem as problem:
        name = seg.words[0] if seg is not None else None
        prefix = f"{name}: " if name else ""
        ctx.error(seg.location if seg else None, f"{prefix}{problem}", name)
        return None


def _note_use(ctx: ParseContext, block: Block, keyword: Keyword, seg: Segment) -> None:
    key = (block.name, keyword.name)
    if keyword.deprecated:
        ctx.warn(seg, f"'{keyword.name}' is deprecated; use {keyword.deprecated}")
    if keyword.status not in (Status.ACTED, Status.REFUSED) and key not in ctx.not_acted:
        what = "accepted but not supported yet" if keyword.status is Status.NOT_YET else "parsed but not acted on yet"
        ctx.not_acted[key] = (what, seg.location)


def _note_location(target: Any, seg: Segment) -> None:
    """Remember where each keyword of an object was set, for later checks that point at it."""
    locations = getattr(target, "keyword_locations", None)
    if isinstance(locations, dict):
        locations[seg.words[0]] = seg.location


def unsupported_warnings(ctx: ParseContext) -> list[Diagnostic]:
    """One warning per keyword used that pykeepalived parses but does not act on yet."""
    out: list[Diagnostic] = []
    for (block, name), (what, loc) in ctx.not_acted.items():
        out.append(Diagnostic(Severity.WARNING, f"'{name}' ({block}) is {what}", loc, name))
    return out
