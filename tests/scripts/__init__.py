"""Programs the tests run in other processes (often inside a namespace), kept as real files so ruff lints them.

Each is run as `python FILE ARGS...` with the repository's PYTHONPATH; its
arguments and output are documented at its top.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def script(name: str) -> str:
    """The path of tests/scripts/NAME, as a string for an argv."""
    path = HERE / name
    if not path.is_file():
        raise FileNotFoundError(f"no test script {path}")
    return str(path)
