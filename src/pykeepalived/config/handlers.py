"""Small factories that turn "this keyword sets that field with this converter" into handlers.

Most keywords are one word of one type stored in one field; writing a handler
for each would hide the few that really need code. These factories keep the
schema modules declarative.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import ValueProblem
from .lexer import Segment, split_shell_words
from .model import Script, TrackRef
from .context import ParseContext
from .registry import FieldHandler, LineHandler, ListHandler, check_field
from .values import to_bool, to_decimal, to_int, to_ip, to_timer


def store(obj: Any, attr: str, value: Any) -> None:
    """Set a model field, or a `settings` entry when the name is prefixed with `settings.`.

    A name the object's class does not have raises ModelFieldError rather than
    creating a stray attribute that nothing reads.
    """
    check_field(type(obj), attr)
    if attr.startswith("settings."):
        obj.settings[attr.split(".", 1)[1]] = value
    else:
        setattr(obj, attr, value)


def field_value(obj: Any, attr: str) -> Any:
    """A model field's current value (a list to append to), refusing a name the class does not have."""
    check_field(type(obj), attr)
    return getattr(obj, attr)


def value(attr: str, conv: Callable[[str], Any]) -> LineHandler:
    """The keyword takes one word, converted by `conv`."""

    def handler(ctx: ParseContext, obj: Any, seg: Segment) -> None:
        word = ctx.arg(seg)
        if word is not None:
            store(obj, attr, conv(word))

    return FieldHandler(attr, handler)


def integer(attr: str, lo: int, hi: int) -> LineHandler:
    return value(attr, lambda w: to_int(w, lo, hi))


def timer(attr: str, lo: float = 0.0, hi: float = 2147.0e6) -> LineHandler:
    return value(attr, lambda w: to_timer(w, lo, hi))


def decimal(attr: str, lo: float, hi: float, places: int) -> LineHandler:
    return value(attr, lambda w: to_decimal(w, lo, hi, places))


def text(attr: str) -> LineHandler:
    return value(attr, str)


def ip(attr: str) -> LineHandler:
    return value(attr, to_ip)


def ipv4(attr: str, why: str = "") -> LineHandler:
    """One IPv4 address; another family is refused with `why` appended (what needs IPv4)."""

    def handler(ctx: ParseContext, obj: Any, seg: Segment) -> None:
        word = ctx.arg(seg)
        if word is None:
            return
        address = to_ip(word)
        if address.version != 4:
            raise ValueProblem(f"'{word}' is not an IPv4 address{why}")
        store(obj, attr, address)

    return FieldHandler(attr, handler)


def flag(attr: str, when_set: Any = True) -> LineHandler:
    """A switch: present means on; an optional on/off word may follow."""

    def handler(ctx: ParseContext, obj: Any, seg: Segment) -> None:
        if len(seg.words) > 1:
            on = to_bool(seg.words[1])
            store(obj, attr, when_set if on else (not when_set if isinstance(when_set, bool) else None))
        else:
            store(obj, attr, when_set)

    return FieldHandler(attr, handler)


def first_word(attr: str) -> LineHandler:
    """An optional word: the first after the keyword, None when there is none (the rest are ignored)."""

    def handler(ctx: ParseContext, obj: Any, seg: Segment) -> None:
        store(obj, attr, seg.words[1] if len(seg.words) > 1 else None)

    return FieldHandler(attr, handler)


def words(attr: str, minimum: int = 1) -> LineHandler:
    """All words after the keyword, kept as a list."""

    def handler(ctx: ParseContext, obj: Any, seg: Segment) -> None:
        if len(seg.words) - 1 < minimum:
            ctx.arg(seg, minimum)
            return
        store(obj, attr, list(seg.words[1:]))

    return FieldHandler(attr, handler)


def accepted() -> LineHandler:
    """A keyword we accept and do not keep (status NOT_YET)."""

    def handler(ctx: ParseContext, obj: Any, seg: Segment) -> None:
        return None

    return handler


def accepted_list() -> ListHandler:
    def handler(ctx: ParseContext, obj: Any, seg: Segment, lines: list[Segment]) -> None:
        return None

    return handler


def parse_script(ctx: ParseContext, seg: Segment) -> Script | None:
    """A script keyword's value: the command (split as a shell would) and an optional user."""
    parts = split_shell_words(seg.text)
    if parts is None:
        ctx.error(seg, f"{seg.words[0]}: unterminated quote or trailing backslash in the command")
        return None
    if len(parts) < 2 or not parts[1].strip():
        ctx.arg(seg)
        return None
    argv = split_shell_words(parts[1])
    if not argv:
        ctx.error(seg, f"{seg.words[0]}: cannot split the command '{parts[1]}'")
        return None
    user = group = None
    if len(parts) > 2:
        user = parts[2]
        if len(parts) > 3:
            group = parts[3]
    return Script(argv=argv, user=user, group=group, location=seg.location)


def script(attr: str, once: bool = False) -> LineHandler:
    """A script keyword; with `once` (VRRP notify scripts), keepalived keeps the first and calls a second an error."""
    def handler(ctx: ParseContext, obj: Any, seg: Segment) -> None:
        parsed = parse_script(ctx, seg)
        if parsed is None:
            return
        if once and field_value(obj, attr) is not None:
            ctx.error(seg, f"{seg.words[0]} script already specified - ignoring {parsed.argv[0]}")
            return
        store(obj, attr, parsed)

    return FieldHandler(attr, handler)


def weight_words(ctx: ParseContext, seg: Segment, start: int, lo: int, hi: int) -> tuple[int | None, bool]:
    """`weight N [reverse|noreverse]` starting at word `start`."""
    w = seg.words
    if len(w) <= start:
        return None, False
    if w[start] != "weight":
        raise ValueProblem(f"unexpected '{w[start]}' (expected 'weight')")
    if len(w) <= start + 1:
        raise ValueProblem("'weight' needs a value")
    weight = to_int(w[start + 1], lo, hi)
    reverse = False
    if len(w) > start + 2:
        if w[start + 2] == "reverse":
            reverse = True
        elif w[start + 2] != "noreverse":
            raise ValueProblem(f"unexpected '{w[start + 2]}' after the weight")
        if len(w) > start + 3:
            raise ValueProblem(f"unexpected '{w[start + 3]}' after the weight")
    return weight, reverse


def track_list(attr: str, lo: int, hi: int) -> ListHandler:
    """A `{ NAME [weight N [reverse]] ... }` list of tracked objects."""

    def handler(ctx: ParseContext, obj: Any, seg: Segment, lines: list[Segment]) -> None:
        refs: list[TrackRef] = field_value(obj, attr)
        for line in lines:
            try:
                weight, reverse = weight_words(ctx, line, 1, lo, hi)
            except ValueProblem as problem:
                ctx.error(line, f"{seg.words[0]} {line.words[0]}: {problem}", seg.words[0])
                continue
            refs.append(TrackRef(line.words[0], weight, reverse, line.location))

    return FieldHandler(attr, handler)


def bool_value(attr: str) -> LineHandler:
    return value(attr, to_bool)


def one_of(attr: str, choices: Mapping[str, object], what: str) -> LineHandler:
    from .values import to_choice

    return value(attr, lambda w: to_choice(w, choices, what))
