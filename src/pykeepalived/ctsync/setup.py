"""The one decision both processes make the same way: does conntrackd run for this daemon, and with what spec.

The parent (keeper.py) and the VRRP process (client.py) call `decide` with
the same configuration, `--dataplane` flag and parent pid file, so they
agree without a message between them.
"""

from __future__ import annotations

import hashlib
import os

from ..config.model import KeepalivedConfig
from ..lvs.choose import ipvs_available, wanted_kind
from ..lvs.model import DataPlaneError
from .spec import CtSyncSpec, spec_for, wanted


def decide(config: KeepalivedConfig, dataplane_flag: str, pid_file: str) -> tuple[CtSyncSpec | None, str]:
    """(spec, "") when conntrackd should run; (None, why not) otherwise."""
    try:
        choice = wanted_kind(dataplane_flag, config)
    except DataPlaneError as exc:
        return None, str(exc)
    why = wanted(config, choice, ipvs_available() if choice == "auto" else False)
    if why is not None:
        return None, why
    directory = os.path.dirname(os.path.abspath(pid_file))
    digest = hashlib.sha256(directory.encode() + b"\0" + os.path.basename(pid_file).encode()).hexdigest()
    return spec_for(config, os.path.abspath(pid_file), digest), ""


def resolve_binary(binary: str) -> str | None:
    """The conntrackd to run: an absolute path as given (if executable), else found in PATH (plus /usr/sbin)."""
    import shutil

    if binary.startswith("/"):
        return binary if os.access(binary, os.X_OK) and os.path.isfile(binary) else None
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return shutil.which(binary, path=path)
