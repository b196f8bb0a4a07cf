"""One pykeepalived process run by a test: in a namespace, its output in a log file, always stopped.

The netns suites that start the daemon by hand (file safety, script security,
config special files) share this instead of each keeping a copy.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

PYKEEPALIVED = [sys.executable, "-m", "pykeepalived"]


class DaemonProcess:
    """`python -m pykeepalived ARGV` in namespace `netns`; stdout and stderr appended to `log_path`."""

    def __init__(self, netns: str, argv: list[str], log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(["ip", "netns", "exec", netns, *PYKEEPALIVED, *argv],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text: str, timeout_s: float) -> None:
        """Until `text` is in the log; AssertionError with the log if the daemon exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while text not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) before logging {text!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout_s} s:\n{self.log()}")
            time.sleep(0.05)

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit status, or None if it still runs after `timeout_s`."""
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (a clean stop), SIGKILL if it has not stopped within `timeout_s`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
