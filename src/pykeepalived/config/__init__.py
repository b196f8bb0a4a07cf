"""keepalived.conf: read it, check it, and turn it into a typed model.

`read_config()` is the one entry point: it runs the lexer (includes,
parameters, conditionals), the keyword parser and the completion checks, and
returns the model with every diagnostic. It raises nothing for a bad file:
the caller looks at `LoadResult.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .complete import HostFacts, complete
from .errors import ConfigError, Diagnostic, Location, Severity
from .lexer import FileSystem, Lexer, LexerOptions
from .model import KeepalivedConfig
from .parser import parse_segments, unsupported_warnings
from .schema import ROOT

__all__ = [
    "ConfigError",
    "Diagnostic",
    "HostFacts",
    "KeepalivedConfig",
    "LexerOptions",
    "LoadResult",
    "Location",
    "Severity",
    "read_config",
    "read_config_text",
]


@dataclass
class LoadResult:
    config: KeepalivedConfig
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def start_errors(self) -> list[Diagnostic]:
        """The errors that stop the daemon: all but those keepalived's daemon runs with (`Diagnostic.test_only`)."""
        return [d for d in self.errors if not d.test_only]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    def raise_for_errors(self) -> KeepalivedConfig:
        if self.errors:
            raise ConfigError(self.diagnostics)
        return self.config


def _run(lexer: Lexer, segments: object, host: HostFacts | None) -> LoadResult:
    config = KeepalivedConfig()
    ctx = parse_segments(ROOT, segments, config, lexer.include_checks)  # type: ignore[arg-type]
    config.files = list(dict.fromkeys(lexer.files_read))
    complete(ctx, host)
    diagnostics = [*lexer.diagnostics, *ctx.diagnostics, *unsupported_warnings(ctx)]
    return LoadResult(config, diagnostics)


def read_config(
    path: str,
    fs: FileSystem,
    host: HostFacts | None = None,
    options: LexerOptions | None = None,
) -> LoadResult:
    """Read the file at `path` (and its includes) into a model."""
    lexer = Lexer(fs, options)
    return _run(lexer, lexer.segments(path), host)


def read_config_text(
    text: str,
    fs: FileSystem | None = None,
    host: HostFacts | None = None,
    options: LexerOptions | None = None,
    path: str = "keepalived.conf",
) -> LoadResult:
    """Read configuration text that stands for the file `path`."""
    from .memfs import MemoryFileSystem

    lexer = Lexer(fs or MemoryFileSystem({}), options)
    return _run(lexer, lexer.segments_from_text(path, text), host)
