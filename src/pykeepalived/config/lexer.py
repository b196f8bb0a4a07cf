"""keepalived.conf as a stream of lines: the pre-processor and the word splitter.

keepalived reads its configuration line by line and rewrites each line before
the keyword parser sees it. This module does the same rewriting, in the same
order, and hands the parser `Segment`s: a `{`, a `}` or a line of words, each
with the file and line it came from.

Per physical line, in keepalived's order:
  1. comments (`#`, `!` outside double quotes; `\\#` and `\\!` stay literal)
     and surrounding white space are removed; blank lines are skipped;
  2. a line that continues a multi-line `$NAME=` definition is added to it;
  3. `@ID rest` / `@^ID rest` keep `rest` only when the config id matches
     (or does not, for `@^`);
  4. `$NAME=value` defines a parameter (a trailing `\\` starts a multi-line one);
  5. `~SEQ(var, [start,] [step,] end) rest` and `~LST(var, v1, v2, ...) rest`
     repeat `rest` once per value;
  6. `$NAME` and `${NAME}` are replaced, recursively;
  7. `include FILE` (and includer/includem/includew/includeb/includea) reads
     the files a glob matches, relative to the including file's directory;
  8. every unquoted `{` and `}` becomes a segment of its own.

The module does no I/O itself: files come through the `FileSystem` protocol,
so that tests can feed it text and the shell decides how files are read.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .errors import Diagnostic, Location, Severity
from .include_check import IncludeChecks

MAX_INCLUDE_DEPTH = 32
MAX_SUBSTITUTION_DEPTH = 32
MAX_GENERATED_VALUES = 100_000
MAX_LINE_CHARS = 1_000_000

# keepalived reads lines with fgets() into a 1024-byte buffer: a longer line comes in pieces
_LINE_BUFFER = 1024
_DEF_LINE_END = "\n"  # separates the lines of a multi-line definition's value
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INCLUDE_RE = re.compile(r"^include([rmwba])?[ \t]+(.*)$")
_GENERATOR_RE = re.compile(r"^~(SEQx?|LST)\(")


class FileProblem(Exception):
    """A file could not be read or listed; the text says why."""


class NotRegularFile(FileProblem):
    """The path names something other than a regular, non-executable file.

    A FIFO, a socket, a device, a directory or a file with an execute bit.
    keepalived 2.2.7 never opens these ("not a regular non-executable file -
    skipping"): reading a FIFO would block start-up and `-t` forever. Like
    keepalived, the lexer skips such a file with a warning, even the main file
    named by `-f`; the include variants that insist on their files
    (includer/m/w/b/a) make it an error.
    """


class FileSystem(Protocol):
    """What the lexer needs from the outside world to read a configuration."""

    def read_text(self, path: str) -> str:
        """The file's text, read without ever blocking.

        Raises NotRegularFile for anything but a regular non-executable file
        and FileProblem when it cannot be read.
        """

    def glob(self, pattern: str) -> list[str]:
        """Sorted paths matching a shell pattern with `{a,b}` braces; [] if none.

        Directories and other non-regular files are listed too, so that
        read_text can say why they are skipped (as keepalived does).
        """


SegmentKind = Literal["open", "close", "line"]


@dataclass(frozen=True)
class Segment:
    """One unit for the parser: `{`, `}`, or a line of words."""

    kind: SegmentKind
    words: tuple[str, ...]
    text: str
    location: Location

    @property
    def is_open(self) -> bool:
        return self.kind == "open"

    @property
    def is_close(self) -> bool:
        return self.kind == "close"


@dataclass
class _Definition:
    lines: list[str]
    builtin: Callable[[list[str]], str] | None = None
    max_params: int = 0

    @property
    def multiline(self) -> bool:
        return len(self.lines) > 1


@dataclass
class LexerOptions:
    """The knobs keepalived takes from its command line."""

    config_id: str | None = None
    instance_name: str | None = None
    cwd: str = "/"
    random: Callable[[int, int], int] = field(default=lambda lo, hi: lo)


def _buffer_chunks(physical: str, number: int) -> Iterator[tuple[str, int]]:
    """A physical line as keepalived's fgets() hands it over: pieces of at most 1023 characters.

    keepalived counts a line when it reads its newline, so the pieces before
    the last one carry the previous line's number (never less than 1).
    """
    size = _LINE_BUFFER - 1
    stream = physical + "\n"
    if len(stream) <= size:
        yield physical, number
        return
    for start in range(0, len(stream), size):
        piece = stream[start : start + size]
        if piece.endswith("\n"):
            yield piece[:-1], number
        else:
            yield piece, max(number - 1, 1)


def decomment(line: str) -> tuple[str, bool]:
    """Strip comments and white space as keepalived does; return the text and whether it ends in `\\`.

    keepalived's rules, corners included: a `#` or `!` outside double quotes
    starts a comment, but the scan goes on inside it, so a backslash that ends
    the physical line still counts (`! note \\` leaves a lone `\\`); `\\#` and
    `\\!` outside quotes lose their backslash (also inside a comment); any other
    `\\X` stays as it is; a backslash at the very end is kept after the
    trailing white space is removed, so `a \\ # b` and `a # b \\` both end in
    `\\`. Quotes inside a comment do not count.
    """
    chars = list(line.lstrip(" \t"))
    in_quote = False
    cont = False
    skip: int | None = None
    i = 0
    while i < len(chars):
        ch = chars[i]
        if ch == '"':
            if skip is None:
                in_quote = not in_quote
        elif ch == "\\":
            if i + 1 >= len(chars):
                del chars[i]
                cont = True
                break
            if not in_quote and chars[i + 1] in "#!":
                del chars[i]  # the # or ! now at i is kept as text
                i += 1
            else:
                i += 2
            continue
        elif not in_quote and skip is None and ch in "#!":
            skip = i
        i += 1
    if skip is not None:
        del chars[skip:]
    text = "".join(chars).rstrip(" \t")
    if cont:
        text += "\\"
    return text, text.endswith("\\")


def split_words(text: str) -> tuple[tuple[str, ...], bool]:
    """Split on white space; `"..."` is one word without its quotes.

    Returns the words and whether a quote was left open (keepalived's
    "Unmatched quote" error).
    """
    words: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n\v\f":
            i += 1
        if i >= n:
            break
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                words.append(text[i + 1 :])
                return tuple(words), True
            words.append(text[i + 1 : end])
            i = end + 1
            continue
        start = i
        while i < n and text[i] not in ' \t\r\n\v\f"':
            i += 1
        words.append(text[start:i])
    return tuple(words), False


def split_braces(text: str) -> list[str]:
    """Cut a line at every `{` and `}` outside double quotes, keeping the braces."""
    parts: list[str] = []
    current: list[str] = []
    in_quote = False
    for ch in text:
        if ch == '"':
            in_quote = not in_quote
            current.append(ch)
        elif not in_quote and ch in "{}":
            piece = "".join(current).strip(" \t")
            if piece:
                parts.append(piece)
            parts.append(ch)
            current = []
        else:
            current.append(ch)
    piece = "".join(current).strip(" \t")
    if piece:
        parts.append(piece)
    return parts


class Lexer:
    """Reads a configuration file and everything it includes into Segments."""

    def __init__(self, fs: FileSystem, options: LexerOptions | None = None) -> None:
        self._fs = fs
        self._options = options or LexerOptions()
        self.diagnostics: list[Diagnostic] = []
        self.files_read: list[str] = []
        self._defs: dict[str, _Definition] = {}
        self._include_stack: list[str] = []
        self.include_checks = IncludeChecks()  # global_defs include_check, set by the parser as it goes
        # a multi-line `$NAME=` definition being read: its name and its pieces so far
        self._pending_def: tuple[str, list[str]] | None = None
        self._install_builtins()

    # -- diagnostics -------------------------------------------------------
    def _error(self, message: str, loc: Location | None, keyword: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(Severity.ERROR, message, loc, keyword))

    def _warn(self, message: str, loc: Location | None, keyword: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(Severity.WARNING, message, loc, keyword))

    # -- built-in parameters -----------------------------------------------
    def _install_builtins(self) -> None:
        opts = self._options

        def pwd(_params: list[str]) -> str:
            current = self._include_stack[-1] if self._include_stack else None
            return posixpath.dirname(current) if current and "/" in current else opts.cwd

        def instance(_params: list[str]) -> str:
            return opts.instance_name or ""

        def rand(params: list[str]) -> str:
            lo, hi = 0, 32767
            if len(params) >= 1:
                hi = int(params[0]) if len(params) == 1 else hi
                lo = int(params[0]) if len(params) == 2 else lo
            if len(params) >= 2:
                hi = int(params[1])
            return str(opts.random(lo, max(lo, hi)))

        self._defs["_PWD"] = _Definition([""], pwd)
        self._defs["_INSTANCE"] = _Definition([""], instance)
        self._defs["_RANDOM"] = _Definition([""], rand, max_params=2)
        self._defs["_HASH"] = _Definition(["#"])
        self._defs["_BANG"] = _Definition(["!"])

    # -- entry point ---------------------------------------------------------
    def segments(self, path: str) -> Iterator[Segment]:
        """All segments of the file at `path` and the files it includes."""
        try:
            text = self._fs.read_text(path)
        except NotRegularFile as exc:
            self._warn(f"configuration file {path} is {exc} - skipping", None)
            return
        except FileProblem as exc:
            self._error(f"cannot read configuration file {path}: {exc}", None)
            return
        yield from self._read_file(path, text)

    def segments_from_text(self, path: str, text: str) -> Iterator[Segment]:
        """Segments of text that stands for the file `path` (for tests and stdin)."""
        yield from self._read_file(path, text)

    def _read_file(self, path: str, text: str) -> Iterator[Segment]:
        self._include_stack.append(path)
        self.files_read.append(path)
        try:
            yield from self._read_lines(path, text)
        finally:
            self._include_stack.pop()

    def _read_lines(self, path: str, text: str) -> Iterator[Segment]:
        for index, physical in enumerate(text.split("\n")):
            if len(physical) > MAX_LINE_CHARS:
                self._error("line too long", Location(path, index + 1))
                continue
            for raw, number in _buffer_chunks(physical, index + 1):
                yield from self._read_line(raw.rstrip("\r"), Location(path, number))
        if self._pending_def is not None:
            self._finish_definition()

    def _read_line(self, raw: str, loc: Location) -> Iterator[Segment]:
        """One line as keepalived's checking processes read it.

        keepalived's parent reads the file and writes a copy for its children
        with each line decommented (a line that was only blanks or a comment
        becomes an empty line); the children, whose errors decide `-t`, read
        that copy and decomment each line once more. So `\\#` survives the
        first pass only (the second one sees a comment), any line that
        decomments to nothing ends a multi-line definition (an empty line does),
        while `# note \\` leaves a lone `\\`, which keeps the definition
        open and adds nothing to it. A line that goes on a definition and ends
        in `\\` continues it.
        """
        copied, _ = decomment(raw)
        if not copied:
            if self._pending_def is not None:
                self._finish_definition()
            return
        line, continued = decomment(copied)
        if not line:
            return
        if self._pending_def is not None:
            piece = line[:-1].rstrip(" \t") + _DEF_LINE_END if continued else line
            if len(piece) >= 2 or (piece and not continued):
                self._pending_def[1].append(piece)
            if not continued:
                self._finish_definition()
            return
        yield from self._process(line, loc, 0)

    # -- definitions -----------------------------------------------------------
    def _parse_definition(self, line: str) -> tuple[str, str] | None:
        if not line.startswith("$"):
            return None
        match = _NAME_RE.match(line, 1)
        if not match or match.end() >= len(line) or line[match.end()] != "=":
            return None
        return match.group(0), line[match.end() + 1 :].lstrip(" \t")

    def _define(self, name: str, value: str) -> None:
        """`$NAME=value`: a value ending in `\\` starts a multi-line definition that later lines go on."""
        if value.endswith("\\"):
            first = value[:-1].rstrip(" \t")
            self._pending_def = (name, [first + _DEF_LINE_END] if first else [])
            self._defs[name] = _Definition([first])
            return
        self._defs[name] = _Definition([value])

    def _finish_definition(self) -> None:
        assert self._pending_def is not None
        name, pieces = self._pending_def
        self._pending_def = None
        self._defs[name] = _Definition("".join(pieces).split(_DEF_LINE_END))

    # -- per-line processing -----------------------------------------------------
    def _process(self, line: str, loc: Location, depth: int) -> Iterator[Segment]:
        if depth > MAX_SUBSTITUTION_DEPTH:
            self._error("parameter substitution or ~SEQ nesting too deep", loc)
            return
        while True:
            if line.startswith("@"):
                kept = self._conditional(line)
                if kept is None:
                    return
                line = kept
                if not line:
                    return
            definition = self._parse_definition(line)
            if definition is not None:
                self._define(*definition)
                return
            if _GENERATOR_RE.match(line):
                yield from self._generator(line, loc, depth)
                return
            if line.startswith("~"):
                break
            if "$" in line:
                replaced = self._substitute(line, loc)
                if replaced is None:
                    break
                if len(replaced) > 1:
                    for extra in replaced:
                        text, _ = decomment(extra)
                        if text:
                            yield from self._process(text, loc, depth + 1)
                    return
                new_line, _ = decomment(replaced[0])
                if new_line == line:
                    break
                line = new_line
                if not line:
                    return
                depth += 1
                if depth > MAX_SUBSTITUTION_DEPTH:
                    self._error("parameter substitution nested too deep", loc)
                    return
                continue
            break
        include = _INCLUDE_RE.match(line)
        if include:
            yield from self._include(include.group(1) or "", include.group(2).strip(), loc)
            return
        for piece in split_braces(line):
            if piece == "{":
                yield Segment("open", ("{",), piece, loc)
            elif piece == "}":
                yield Segment("close", ("}",), piece, loc)
            else:
                words, unmatched = split_words(piece)
                if unmatched:
                    self._error(f"unmatched quote in '{piece}'", loc)
                if words:
                    yield Segment("line", words, piece, loc)

    def _conditional(self, line: str) -> str | None:
        negate = line.startswith("@^")
        body = line[2:] if negate else line[1:]
        cut = re.search(r"[ \t]", body)
        if cut is None:
            return None
        ident = body[: cut.start()]
        matches = self._options.config_id is not None and ident == self._options.config_id
        if matches == negate:
            return None
        return body[cut.start() :].strip(" \t")

    def _lookup(self, text: str, pos: int) -> tuple[_Definition, int, list[str]] | None:
        """Find a parameter reference starting after the `$` at `pos`."""
        braces = pos + 1 < len(text) and text[pos + 1] == "{"
        start = pos + 2 if braces else pos + 1
        match = _NAME_RE.match(text, start)
        if not match:
            return None
        name = match.group(0)
        end = match.end()
        params: list[str] = []
        if braces:
            rest = text[end:]
            param_match = re.match(r"((?: +-?[0-9]+)*)\}", rest)
            if not param_match:
                return None
            params = param_match.group(1).split()
            end += param_match.end()
        elif end < len(text) and text[end] not in " \t,)":
            return None
        definition = self._defs.get(name)
        if definition is None:
            return None
        if params and not definition.max_params:
            return None
        return definition, end, params

    def _substitute(self, line: str, loc: Location) -> list[str] | None:
        """Replace parameter references; None if nothing was replaced.

        A multi-line parameter turns one line into several: the text before
        it joins its first line and the text after it joins its last line.
        """
        out = ""
        pos = 0
        changed = False
        tail_lines: list[str] = []
        while True:
            found = line.find("$", pos)
            if found < 0 or found + 1 >= len(line):
                out += line[pos:]
                break
            hit = self._lookup(line, found)
            if hit is None:
                out += line[pos : found + 1]
                pos = found + 1
                continue
            definition, end, params = hit
            changed = True
            out += line[pos:found]
            if definition.builtin is not None:
                try:
                    value_lines = [definition.builtin(params)]
                except ValueError:
                    self._error("bad parameters for built-in definition", loc)
                    value_lines = [""]
            else:
                value_lines = definition.lines
            if len(value_lines) > 1:
                out += value_lines[0]
                tail_lines = list(value_lines[1:])
                tail_lines[-1] += line[end:]
                break
            out += value_lines[0]
            pos = end
            if len(out) > MAX_LINE_CHARS:
                self._error("parameter substitution makes the line too long", loc)
                return [""]
        if not changed:
            return None
        return [out, *tail_lines]

    # -- ~SEQ and ~LST ---------------------------------------------------------
    def _generator(self, line: str, loc: Location, depth: int) -> Iterator[Segment]:
        close = line.find(")")
        if close < 0:
            self._error(f"invalid generator specification '{line}'", loc)
            return
        kind = line[1:4] if not line.startswith("~SEQx") else "SEQx"
        inner = line[line.index("(") + 1 : close]
        rest = line[close + 1 :].strip(" \t")
        if kind == "LST":
            yield from self._lst(line, inner, rest, loc, depth)
            return
        args = [a.strip() for a in inner.split(",")]
        if len(args) < 2 or len(args) > 4 or not _NAME_RE.fullmatch(args[0]):
            self._error(f"invalid ~SEQ specification '{line}'", loc)
            return
        var = args[0]
        try:
            numbers = [int(self._expand_value(a, loc)) for a in args[1:]]
        except ValueError:
            self._error(f"invalid ~SEQ values '{line}'", loc)
            return
        start, step = 1, 1
        if len(numbers) == 1:
            (end,) = numbers
        elif len(numbers) == 2:
            start, end = numbers
            step = 1 if end >= start else -1
        else:
            start, step, end = numbers
        if step == 0 or (step > 0 and start > end) or (step < 0 and start < end):
            self._error(f"invalid ~SEQ values '{line}'", loc)
            return
        if kind == "SEQx" and (start < 0 or end < 0):
            self._error(f"~SEQx is only valid for positive numbers '{line}'", loc)
            return
        count = (end - start) // step + 1
        if count > MAX_GENERATED_VALUES:
            self._error(f"~SEQ would make {count} lines (at most {MAX_GENERATED_VALUES})", loc)
            return
        for value in range(start, end + (1 if step > 0 else -1), step):
            self._defs[var] = _Definition([format(value, "x") if kind == "SEQx" else str(value)])
            yield from self._process(rest, loc, depth + 1)

    def _expand_value(self, text: str, loc: Location) -> str:
        replaced = self._substitute(text, loc) if "$" in text else None
        return replaced[0] if replaced else text

    def _lst(
        self, line: str, inner: str, rest: str, loc: Location, depth: int
    ) -> Iterator[Segment]:
        inner = inner.strip()
        groups = re.findall(r"\{([^}]*)\}", inner)
        if inner.startswith("{"):
            if len(groups) < 2:
                self._error(f"invalid ~LST specification '{line}'", loc)
                return
            names = [n.strip() for n in groups[0].split(",")]
            rows = [[v.strip() for v in g.split(",")] for g in groups[1:]]
        else:
            parts = [p.strip() for p in inner.split(",")]
            names = [parts[0]]
            rows = [[v] for v in parts[1:]]
        if (
            not rows
            or not all(_NAME_RE.fullmatch(n) for n in names)
            or any(len(r) != len(names) for r in rows)
        ):
            self._error(f"invalid ~LST specification '{line}'", loc)
            return
        for row in rows:
            for name, value in zip(names, row):
                self._defs[name] = _Definition([value])
            yield from self._process(rest, loc, depth + 1)

    # -- include -------------------------------------------------------------------
    def _no_match(self, variant: str, pattern: str, loc: Location, keyword: str) -> None:
        """A pattern that matches nothing: an error only where the variant insists, as in keepalived 2.2.7.

        A name without wildcards (or a wildcard under a directory that is not
        there) is missing: an error for includem/w/a (includeb/a with braces);
        a wildcard that matches nothing in an existing directory is an error
        for includew/a only. Plain include and includer only warn.
        """
        insists = _INSISTS.get(variant, "") + self.include_checks.value
        wildcard = _has_wildcard(pattern)
        directory = posixpath.dirname(pattern)
        missing = not wildcard or (not _has_wildcard(directory) and not self._exists(directory))
        if missing:
            failed = ("B" if "{" in pattern else "M") in insists
            message = f"configuration files missing '{pattern}'"
        else:
            failed = "W" in insists
            message = f"no configuration files matched '{pattern}'"
        if failed:
            self._error(message, loc, keyword)
        else:
            self._warn(message, loc, keyword)

    def _exists(self, path: str) -> bool:
        """Whether a file or directory is there (a directory also counts when something is in it)."""
        try:
            return bool(self._fs.glob(path) or self._fs.glob(posixpath.join(path, "*")))
        except FileProblem:
            return False

    def _include(self, variant: str, pattern: str, loc: Location) -> Iterator[Segment]:
        keyword = "include" + variant
        if not pattern:
            self._error(f"'{keyword}' needs a file name", loc, keyword)
            return
        # keepalived globs the rest of the line as it is: quotes are part of the name
        if not pattern.startswith("/"):
            current = self._include_stack[-1] if self._include_stack else ""
            base = posixpath.dirname(current) if "/" in current else self._options.cwd
            pattern = posixpath.join(base, pattern)
        if len(self._include_stack) >= MAX_INCLUDE_DEPTH:
            self._error(f"includes nested deeper than {MAX_INCLUDE_DEPTH}", loc, keyword)
            return
        try:
            matches = self._fs.glob(pattern)
        except FileProblem as exc:
            self._error(f"cannot list {pattern}: {exc}", loc, keyword)
            return
        if not matches:
            self._no_match(variant, pattern, loc, keyword)
            return
        checks = _INSISTS.get(variant, "") + self.include_checks.value
        alternatives = brace_alternatives(pattern) if "{" in pattern else []
        if any(not _has_wildcard(alt) and not self._exists(alt) for alt in alternatives):
            message = f'some config files missing: "{pattern}"'
            if "B" in checks:
                self._error(message, loc, keyword)
                return
            self._warn(message, loc, keyword)
        saved = self.include_checks.value  # an include_check inside the included files ends with this include
        try:
            yield from self._include_matches(matches, variant, checks, loc, keyword)
        finally:
            self.include_checks.value = saved

    def _include_matches(self, matches: list[str], variant: str, checks: str, loc: Location,
                         keyword: str) -> Iterator[Segment]:
        for path in matches:
            norm = posixpath.normpath(path)
            if norm in (posixpath.normpath(p) for p in self._include_stack):
                self._error(
                    f"include loop: {path} is already being read "
                    f"(via {' -> '.join(self._include_stack)})",
                    loc,
                    keyword,
                )
                continue
            try:
                text = self._fs.read_text(path)
            except FileProblem as exc:
                why = f"{path} is {exc} - skipping" if isinstance(exc, NotRegularFile) else f"cannot read {path}: {exc}"
                if variant or "R" in checks:
                    self._error(why, loc, keyword)
                else:
                    self._warn(why, loc, keyword)
                continue
            yield from self._read_file(path, text)


# what each include variant insists on (keepalived's INCLUDE_R/M/W/B): M a named file or directory that is
# missing, W a wildcard that matches nothing, B a missing alternative of a {a,b} pattern
_INSISTS = {"": "", "r": "", "m": "M", "w": "MW", "b": "B", "a": "MWB"}


def brace_alternatives(pattern: str) -> list[str]:
    """`a{b,c}d{e,f}` -> abde, abdf, acde, acdf (shell brace expansion, nested braces included)."""
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth = 0
    parts: list[str] = []
    last = start + 1
    for i in range(start, len(pattern)):
        ch = pattern[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                parts.append(pattern[last:i])
                head, tail = pattern[:start], pattern[i + 1 :]
                return [alt for part in parts for alt in brace_alternatives(head + part + tail)]
        elif ch == "," and depth == 1:
            parts.append(pattern[last:i])
            last = i + 1
    return [pattern]  # an unclosed brace is taken literally


def _has_wildcard(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def split_shell_words(text: str) -> list[str] | None:
    """Split a script line as keepalived does for commands.

    Single and double quotes group words and may sit inside a word
    (`'abcd" efg h jkl "mnop'` is one word); backslash escapes `\\n`, `\\t`,
    `\\xHH`, `\\NNN` (octal) and `\\cX` (control). Returns None when a quote is
    left open or the line ends in a lone backslash.
    """
    words: list[str] = []
    i = 0
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n\v\f":
            i += 1
        if i >= n:
            return words
        out: list[str] = []
        quote = ""
        while i < n:
            ch = text[i]
            if ch == "\\":
                i += 1
                if i >= n:
                    return None
                esc = text[i]
                if esc == "x" and i + 1 < n and text[i + 1] in "0123456789abcdefABCDEF":
                    j = i + 1
                    while j < n and text[j] in "0123456789abcdefABCDEF":
                        j += 1
                    out.append(chr(int(text[i + 1 : j], 16) & 0xFF))
                    i = j
                elif esc == "c" and i + 1 < n:
                    out.append(chr(ord(text[i + 1]) & 0x1F))
                    i += 2
                elif esc in "01234567":
                    j = i
                    while j < n and j < i + 3 and text[j] in "01234567":
                        j += 1
                    out.append(chr(int(text[i:j], 8) & 0xFF))
                    i = j
                else:
                    out.append(_ESCAPES.get(esc, esc))
                    i += 1
                continue
            if quote:
                if ch == quote:
                    quote = ""
                else:
                    out.append(ch)
                i += 1
                continue
            if ch in "'\"":
                quote = ch
                i += 1
                continue
            if ch in " \t\r\n\v\f":
                break
            out.append(ch)
            i += 1
        if quote:
            return None
        words.append("".join(out))
