"""`pykeepalived -t` on many files in one process: the compat corpus's fast path.

Starting Python and importing the package cost more than reading a small
config, and the corpus has hundreds of them. Run inside the namespace the
checks need (`ip netns exec NS python verdict_batch.py CONFIG_ID FILE...`); it
prints one JSON line per file with the exit status and everything `-t` wrote,
exactly what a separate `pykeepalived -t -i CONFIG_ID -f FILE` gives
(tests/compat/test_keepalived_verdict.py checks a sample of files both ways).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

from pykeepalived.cli import main


def verdict(config_id: str, path: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            status = main(["-t", "-i", config_id, "-f", path])
        except SystemExit as exc:  # argparse's exits, as the command would end
            status = exc.code if isinstance(exc.code, int) else 1
    return status, out.getvalue()


def run(argv: list[str]) -> int:
    config_id, paths = argv[0], argv[1:]
    for path in paths:
        status, output = verdict(config_id, path)
        print(json.dumps({"path": path, "status": status, "output": output}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
