"""The run workspace: one folder (local path or any fsspec URI) holding
everything a run writes.

Layout of one experiment ``<workspace_dir>/<session_id>/``::

    settings.json        the structured AutoMLSettings and run arguments
    search_space.json    the SearchSpace (to_dict)
    review.json          the pre-launch review
    ledger/<trial>/      append-only job ledger: one immutable event file each
    trials/<trial>/<n>/  spec file and job results of attempt n of a trial
    evaluations/         baseline and final evaluation records
    ray/                 Ray Tune's experiment state
    result.json, history.csv

Writes are atomic: local files are written to a temporary sibling and
``os.replace``-d; object stores (``s3://``) make single PUTs atomic already.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tao_automl.config.secrets import mask_bytes, open_filesystem
from tao_automl.config.session_id import SESSION_ID_RULE, check_session_id
from tao_automl.errors import WorkspaceError

__all__ = ["Workspace", "is_uri", "new_session_id", "check_session_id", "SESSION_ID_RULE"]

_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_uri(path: str | os.PathLike[str]) -> bool:
    """True for ``s3://...``-style URIs (but not for ``file://``)."""
    s = str(path)
    return bool(_URI.match(s)) and not s.startswith("file://")


def new_session_id(prefix: str = "automl") -> str:
    """A sortable, unique experiment name: ``automl-20261123-004512-ab12``."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return str(obj)


def json_ready(obj: Any, _depth: int = 0) -> Any:
    """``obj`` as plain JSON data: non-finite floats (a failed trial's NaN
    metric, an infinite estimate) become ``None``; other objects go through
    the workspace's usual conversions (``to_dict``, sets, paths, numpy)."""
    if _depth > 200:
        raise ValueError("value nested deeper than 200 levels cannot be written as JSON")
    if isinstance(obj, str):
        return obj if type(obj) is str else str(obj)  # a StrEnum (a status word): its plain string
    if obj is None or isinstance(obj, bool | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k if isinstance(k, str | int | float | bool) or k is None else str(k): json_ready(v, _depth + 1)
                for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [json_ready(v, _depth + 1) for v in obj]
    return json_ready(_json_default(obj), _depth + 1)


def dumps_strict(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text (never ``NaN``/``Infinity``); see :func:`json_ready`."""
    return json.dumps(json_ready(obj), allow_nan=False, **kwargs)


class Workspace:
    """Read and write one experiment folder through fsspec (or the local FS)."""

    def __init__(self, root: str | os.PathLike[str], storage_options: dict | None = None) -> None:
        root_s = str(root)
        if root_s.startswith("file://"):
            root_s = root_s[len("file://") :]
        self.uri = is_uri(root_s)
        self.root = root_s.rstrip("/") if self.uri else str(Path(root_s).expanduser().resolve())
        self._storage_options = storage_options or {}
        self._fs = None
        if self.uri:
            try:  # secret("ENV") options are resolved in memory and never pickled as values
                self._fs, _ = open_filesystem(self.root, self._storage_options)
            except (ImportError, ValueError) as exc:
                raise WorkspaceError("cannot open workspace", value=self.root,
                                     expected="a reachable fsspec URI") from exc

    # -- paths -------------------------------------------------------------
    def path(self, *parts: str) -> str:
        rel = "/".join(p.strip("/") for p in parts if p)
        if not rel:
            return self.root
        return f"{self.root}/{rel}" if self.uri else str(Path(self.root, rel))

    def local_path(self, *parts: str) -> Path:
        if self.uri:
            raise WorkspaceError("workspace is remote; no local path", value=self.root,
                                 expected="a local workspace")
        return Path(self.path(*parts))

    # -- primitive I/O ------------------------------------------------------
    def makedirs(self, *parts: str) -> str:
        p = self.path(*parts)
        try:
            if self.uri:
                self._fs.makedirs(p, exist_ok=True)
            else:
                Path(p).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError("cannot create folder", file=p, value=str(exc)) from exc
        return p

    def write_bytes(self, rel: str, data: bytes, *, durable: bool = True) -> str:
        """Atomic write; ``durable`` also fsyncs (skipped for facts that can be
        re-derived, such as per-epoch metric events)."""
        data = mask_bytes(data)  # registered secret values never reach a workspace file
        p = self.path(rel)
        try:
            if self.uri:
                with self._fs.open(p, "wb") as fh:
                    fh.write(data)
            else:
                target = Path(p)
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    if durable:
                        fh.flush()
                        os.fsync(fh.fileno())
                os.replace(tmp, target)
        except OSError as exc:
            raise WorkspaceError("cannot write workspace file", file=p, value=str(exc)) from exc
        return p

    def write_text(self, rel: str, text: str, *, durable: bool = True) -> str:
        return self.write_bytes(rel, text.encode("utf-8"), durable=durable)

    def write_json(self, rel: str, obj: Any, *, durable: bool = True) -> str:
        text = dumps_strict(obj, indent=2, sort_keys=True) + "\n"
        return self.write_text(rel, text, durable=durable)

    def read_bytes(self, rel: str) -> bytes:
        p = self.path(rel)
        try:
            if self.uri:
                with self._fs.open(p, "rb") as fh:
                    return fh.read()
            return Path(p).read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise WorkspaceError("cannot read workspace file", file=p, value=str(exc)) from exc

    def read_json(self, rel: str, default: Any = ...) -> Any:
        try:
            raw = self.read_bytes(rel)
        except FileNotFoundError:
            if default is ...:
                raise WorkspaceError("workspace file is missing", file=self.path(rel)) from None
            return default
        try:
            return json.loads(raw)
        except ValueError as exc:
            if default is ...:
                raise WorkspaceError("workspace file is not valid JSON", file=self.path(rel), value=str(exc)) from exc
            return default

    def exists(self, rel: str = "") -> bool:
        p = self.path(rel)
        return bool(self._fs.exists(p)) if self.uri else Path(p).exists()

    def listdir(self, rel: str = "") -> list[str]:
        """Names (not paths) directly under ``rel``; empty if it does not exist."""
        p = self.path(rel)
        try:
            if self.uri:
                if not self._fs.exists(p):
                    return []
                self._fs.invalidate_cache(p)
                return sorted(x.rstrip("/").rsplit("/", 1)[-1] for x in self._fs.ls(p, detail=False))
            return sorted(os.listdir(p)) if os.path.isdir(p) else []
        except FileNotFoundError:
            return []

    def child(self, name: str) -> Workspace:
        return Workspace(self.path(name), self._storage_options)

    # -- append-only events (the ledger) -------------------------------------
    def append_event(self, stream: str, kind: str, payload: dict[str, Any]) -> str:
        """Write one immutable event file ``<stream>/<ns-time>-<kind>-<rand>.json``."""
        name = f"{time.time_ns():020d}-{kind}-{uuid.uuid4().hex[:6]}.json"
        return self.write_json(f"{stream}/{name}", {"kind": kind, "t": time.time(), **payload},
                               durable=kind != "epoch")

    def events(self, stream: str) -> Iterator[dict[str, Any]]:
        """Events of a stream in write order; a torn/corrupt file is skipped."""
        for name in self.listdir(stream):
            if not name.endswith(".json") or name.startswith("."):
                continue
            ev = self.read_json(f"{stream}/{name}", default=None)
            if isinstance(ev, dict):
                yield ev

    def filesystem(self):
        """(fsspec filesystem or None, root path) for Ray's storage."""
        return self._fs, self.root
