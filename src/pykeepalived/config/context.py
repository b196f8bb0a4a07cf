"""What every keyword handler is given: the model being built and a place to report problems.

It is a module of its own so that `registry.py` (which types handlers by it)
and `parser.py` (which drives the handlers) do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Diagnostic, Location, Severity
from .include_check import IncludeChecks
from .lexer import Segment
from .model import KeepalivedConfig
from .values import IPAddress


@dataclass
class ParseContext:
    """What handlers need: the model being built and a place to report problems."""

    config: KeepalivedConfig
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # (block, keyword) -> (why it is not acted on, where it was first used): one warning each
    not_acted: dict[tuple[str, str], tuple[str, Location]] = field(default_factory=dict)
    # where the `}` that closed the current block stands (keepalived reports end-of-block checks there)
    close_location: Location | None = None
    # global_defs include_check: the lexer's checks for the includes still to come (None: no lexer, e.g. a test)
    include_checks: IncludeChecks | None = None
    # address text -> its parsed object: thousands of real servers on a few hosts share one object each
    addresses: dict[str, IPAddress] = field(default_factory=dict)

    def error(self, where: Segment | Location | None, message: str, keyword: str | None = None,
              test_only: bool = False) -> None:
        """test_only: keepalived's -t fails on it, but its daemon (and ours) runs with the adjusted setting."""
        loc = where.location if isinstance(where, Segment) else where
        if keyword is None and isinstance(where, Segment):
            keyword = where.words[0]
        self.diagnostics.append(Diagnostic(Severity.ERROR, message, loc, keyword, test_only=test_only))

    def warn(self, where: Segment | Location | None, message: str, keyword: str | None = None) -> None:
        loc = where.location if isinstance(where, Segment) else where
        if keyword is None and isinstance(where, Segment):
            keyword = where.words[0]
        self.diagnostics.append(Diagnostic(Severity.WARNING, message, loc, keyword))

    def arg(self, seg: Segment, index: int = 1) -> str | None:
        """Word `index` of the line, or an error naming the missing parameter."""
        if len(seg.words) > index:
            return seg.words[index]
        self.error(seg, f"'{seg.words[0]}' is missing a parameter at word {index + 1}")
        return None
