"""Dataset path checks *where the jobs run*.

A dataset path that exists on the driver's machine may be missing on a SLURM
node, and one that only exists on the cluster is fine there.  Each backend
answers ``check_paths(paths) -> {path: PathCheck}`` from its own point of
view (see :class:`~tao_automl.platforms.base.PlatformBackend`);
:func:`check_paths` calls it for preflight, turning a missing method, a
failing check or a missing answer into ``unverified`` with the reason.

Helpers for backends: :func:`check_local_paths` (this machine's file
system), :data:`SHELL_CHECK` + :func:`parse_shell_check` (the same test run by
``bash`` elsewhere: over SSH, in a short SLURM job).
"""

from __future__ import annotations

import os
import posixpath
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tao_automl.platforms.base import PathCheck, PathState

__all__ = ["check_paths", "check_local_paths", "unverified", "under_dir", "SHELL_CHECK", "parse_shell_check", "MARKER"]

#: Prefix of the lines :data:`SHELL_CHECK` prints.
MARKER = "tao-automl-path"

#: ``bash -c SHELL_CHECK NAME PATH...`` prints the host name, then one line
#: ``tao-automl-path <index> readable|missing|unreadable`` per path.
SHELL_CHECK = (
    f'echo "{MARKER}-host $(hostname 2>/dev/null || echo unknown)"; i=0; '
    'for p in "$@"; do '
    'if [ ! -e "$p" ]; then s=missing; '
    'elif [ ! -r "$p" ] || { [ -d "$p" ] && [ ! -x "$p" ]; }; then s=unreadable; '
    'else s=readable; fi; '
    f'echo "{MARKER} $i $s"; i=$((i+1)); done'
)


def unverified(paths: Iterable[str], reason: str, where: str = "") -> dict[str, PathCheck]:
    """The same ``unverified`` answer for every path."""
    return {p: PathCheck(state=PathState.UNVERIFIED, reason=reason, where=where) for p in paths}


def check_local_paths(paths: Iterable[str], *, where: str = "this machine") -> dict[str, PathCheck]:
    """Readability on this machine's file system (``~`` expanded; a folder also
    needs search permission)."""
    out: dict[str, PathCheck] = {}
    for raw in paths:
        p = Path(raw).expanduser()
        try:
            exists = p.exists()
            is_dir = p.is_dir()
        except OSError as exc:  # e.g. a parent folder without search permission
            out[raw] = PathCheck(state=PathState.UNREADABLE, where=where,
                                 reason=f"cannot be reached on {where} ({exc.strerror or exc})")
            continue
        if not exists:
            out[raw] = PathCheck(state=PathState.UNREADABLE, where=where, reason=f"does not exist on {where}")
        elif not os.access(p, os.R_OK) or (is_dir and not os.access(p, os.X_OK)):
            out[raw] = PathCheck(state=PathState.UNREADABLE, where=where,
                                 reason=f"exists but is not readable by this user on {where}")
        else:
            out[raw] = PathCheck(state=PathState.READABLE, where=where)
    return out


def parse_shell_check(paths: list[str], stdout: str, *, where: str) -> dict[str, PathCheck]:
    """Answers from :data:`SHELL_CHECK` output (``where`` may hold ``{host}``);
    paths without an answer line are left out."""
    host = "unknown"
    states: dict[int, str] = {}
    for line in stdout.splitlines():
        parts = line.strip().split()
        if len(parts) >= 2 and parts[0] == f"{MARKER}-host":
            host = parts[1]
        elif len(parts) == 3 and parts[0] == MARKER and parts[1].isdigit():
            states[int(parts[1])] = parts[2]
    place = where.format(host=host)
    out: dict[str, PathCheck] = {}
    for i, path in enumerate(paths):
        state = states.get(i)
        if state == "readable":
            out[path] = PathCheck(state=PathState.READABLE, where=place)
        elif state == "missing":
            out[path] = PathCheck(state=PathState.UNREADABLE, where=place, reason=f"does not exist on {place}")
        elif state == "unreadable":
            out[path] = PathCheck(state=PathState.UNREADABLE, where=place,
                                  reason=f"exists but is not readable by the job's user on {place}")
    return out


def this_host() -> str:
    return socket.gethostname() or "this machine"


def under_dir(path: str, root: str) -> bool:
    """``path`` is ``root`` or inside it (POSIX paths, compared as text after
    normalisation; no file system access)."""
    p, r = posixpath.normpath(path), posixpath.normpath(root)
    return p == r or p.startswith(r.rstrip("/") + "/")


def check_paths(backend: Any, paths: Iterable[str]) -> dict[str, PathCheck]:
    """Ask ``backend`` where its jobs run; never raises for the backend's sake.

    No ``check_paths`` method, a check that raises, or a path left without an
    answer -> ``unverified`` with the reason (not a failure: review shows it).
    """
    paths = list(dict.fromkeys(paths))
    if not paths:
        return {}
    name = getattr(backend, "name", type(backend).__name__)
    method = getattr(backend, "check_paths", None)
    if not callable(method):
        return unverified(paths, f"the {name} backend cannot check paths (it has no check_paths method)")
    try:
        answers = dict(method(paths) or {})
    except Exception as exc:  # noqa: BLE001 -- a check that breaks must not hide the rest of the review
        return unverified(paths, f"the {name} backend's path check failed ({type(exc).__name__}: {exc})")
    out: dict[str, PathCheck] = {}
    for p in paths:
        ans = answers.get(p)
        out[p] = ans if isinstance(ans, PathCheck) else PathCheck(
            state=PathState.UNVERIFIED, reason=f"the {name} backend gave no answer for this path")
    return out
