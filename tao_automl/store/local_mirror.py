"""The local folder of a run whose workspace is a URI (``s3://...``).

Jobs write to local paths (specs, logs, checkpoints), WandB writes offline
files locally: for a URI workspace they go to one local folder per
experiment, ``$TMPDIR/tao-automl-jobs/<session>-<hash of the URI>/``
(``trials/``, ``wandb/``).  When the run ends, however it ends, the folder is
uploaded into the workspace (``<workspace>/trials/``, ``<workspace>/wandb/``)
and removed, and the result names the workspace copies.  A resumed run
downloads it back first (unless a crashed driver left it in place, with jobs
possibly still writing there), so pointer checkpoints and reattached jobs
find their files at the same local paths.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tao_automl.store.workspace import Workspace

__all__ = ["local_run_dir", "job_root", "publish", "restore", "workspace_paths"]

log = logging.getLogger("tao_automl")
SUBDIRS = ("trials", "wandb")


def local_run_dir(workspace_root: str) -> Path:
    """The local folder of the experiment at ``workspace_root`` (a URI):
    stable across resumes; the URI's hash keeps two workspaces with the same
    session id apart."""
    root = workspace_root.rstrip("/")
    sid = root.rsplit("/", 1)[-1]
    tag = hashlib.sha256(root.encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / "tao-automl-jobs" / f"{sid}-{tag}"


def job_root(ws: Workspace) -> str:
    """Where jobs write: the workspace's ``trials/``, or for a URI workspace a
    local folder published into it when the run ends (:func:`local_run_dir`)."""
    if not ws.uri:
        return ws.path("trials")
    return str(local_run_dir(ws.root) / "trials")


def restore(ws: Workspace) -> None:
    """Before a resumed run: bring back what an earlier driver published."""
    local = local_run_dir(ws.root)
    if not ws.uri or local.exists():
        return
    fs, _ = ws.filesystem()
    for sub in SUBDIRS:
        if not ws.exists(sub):
            continue
        base = ws.path(sub)
        for remote in fs.find(base):
            rel = remote.split(base.split("://", 1)[-1], 1)[-1].lstrip("/")
            dest = local / sub / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(dest))


def publish(ws: Workspace) -> None:
    """When the run ends: upload the local folder into the workspace, then
    remove it.  If the upload fails the folder is kept (and named)."""
    local = local_run_dir(ws.root)
    if not ws.uri or not local.exists():
        return
    fs, _ = ws.filesystem()
    try:
        for p in sorted(local.rglob("*")):
            if p.is_file():  # a link is uploaded as the file it names; a dangling one is skipped
                fs.put_file(str(p), ws.path(p.relative_to(local).as_posix()))
    except Exception as exc:  # noqa: BLE001 - never lose job outputs over a failed upload
        log.warning("could not upload %s into the workspace %s (%s: %s); the local folder is kept",
                    local, ws.root, type(exc).__name__, exc)
        return
    shutil.rmtree(local, ignore_errors=True)
    try:
        local.parent.rmdir()  # tao-automl-jobs, when no other experiment uses it
    except OSError:
        pass


def workspace_paths(obj: Any, ws: Workspace) -> Any:
    """``obj`` with every local-folder path replaced by its workspace URI."""
    local = str(local_run_dir(ws.root))
    if isinstance(obj, str):
        if obj == local or obj.startswith(local + "/"):
            return ws.root + obj[len(local):]
        return obj
    if isinstance(obj, dict):
        return {k: workspace_paths(v, ws) for k, v in obj.items()}
    if isinstance(obj, list):
        return [workspace_paths(v, ws) for v in obj]
    return obj
