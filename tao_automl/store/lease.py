"""One live driver per experiment: a lease with a heartbeat and an expiry.

``<experiment>/driver.lease`` (JSON) names the driver that owns the
experiment: ``owner`` (a random id), ``host``, ``pid`` (and the process start
time, so a recycled pid is not mistaken for the owner), ``refreshed`` (a
timestamp the owner's heartbeat thread rewrites every ``ttl_s / 6`` seconds)
and ``ttl_s``.  ``run(...)`` takes the lease before it writes anything and
releases it (``released: true``) however the run ends.

A second driver is refused (:class:`~tao_automl.errors.WorkspaceError`,
naming the holder) unless the lease is *breakable*: released, expired
(``refreshed`` older than ``ttl_s``; clocks of different hosts must agree to
well within ``ttl_s``), unreadable, or held by a dead process on this same
host.  Every change of the lease file is a compare-and-swap, so of two
drivers breaking the same stale lease exactly one wins:

* local folders: read-compare-write under ``fcntl.flock`` of a sibling guard
  file ``.driver.lease.lock`` (the lease itself is replaced atomically);
* ``s3://``: conditional PUTs -- ``If-None-Match: *`` to create,
  ``If-Match: <ETag>`` to refresh, break or release (AWS S3 since 2024; the
  moto server the tests use implements both);
* other fsspec stores: write, then read back after a short pause; two
  drivers starting within that pause (0.5 s) can both believe they won.

``tao-automl status`` / ``report`` / ``cancel`` only read (or drop a cancel
request), so they work while the lease is held.  The lease timing can be
changed with ``TAO_AUTOML_LEASE_TTL_S`` (default 30 s).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from tao_automl.errors import WorkspaceError
from tao_automl.store.workspace import Workspace

__all__ = ["DriverLease", "LEASE_FILE", "lease_ttl_s"]

log = logging.getLogger("tao_automl")

LEASE_FILE = "driver.lease"
DEFAULT_TTL_S = 30.0


def lease_ttl_s() -> float:
    raw = os.environ.get("TAO_AUTOML_LEASE_TTL_S")
    if raw is None:
        return DEFAULT_TTL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise WorkspaceError("bad lease time", key="TAO_AUTOML_LEASE_TTL_S", value=raw,
                             expected="a number of seconds > 0")
    return value


def _start_time(pid: int) -> str | None:
    """The process start time (clock ticks since boot) from /proc, if any."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else fields[19]  # field 22 of stat; zombies count as dead
    except (OSError, IndexError):
        return None


def _pid_dead(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    now = _start_time(pid)
    if os.path.exists("/proc/self/stat") and now is None:
        return True  # a zombie (killed, not yet reaped)
    return bool(start and now and now != start)  # the pid was recycled


class _LocalStore:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.path = ws.path(LEASE_FILE)
        self.guard = ws.path(f".{LEASE_FILE}.lock")

    @contextlib.contextmanager
    def _locked(self):
        import fcntl

        self.ws.makedirs()  # a WorkspaceError naming the folder if it cannot be created
        fd = os.open(self.guard, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def _read(self) -> tuple[bytes | None, str | None]:
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            raise WorkspaceError("cannot read workspace file", file=self.path, value=str(exc)) from exc
        return raw, hashlib.sha256(raw).hexdigest()

    def read(self) -> tuple[bytes | None, str | None]:
        return self._read()

    def swap(self, data: bytes, tag: str | None) -> str | None:
        """Write ``data`` if the lease still has ``tag`` (None: is absent); the new tag or None."""
        with self._locked():
            _, current = self._read()
            if current != tag:
                return None
            self.ws.write_bytes(LEASE_FILE, data)
            return hashlib.sha256(data).hexdigest()


class _S3Store:
    def __init__(self, ws: Workspace) -> None:
        self.fs, _ = ws.filesystem()
        self.path = ws.path(LEASE_FILE)

    def read(self) -> tuple[bytes | None, str | None]:
        try:
            self.fs.invalidate_cache(self.path)
            tag = self.fs.info(self.path)["ETag"]  # the tag first: a later write then fails the If-Match
            return self.fs.cat_file(self.path), tag
        except FileNotFoundError:
            return None, None

    def swap(self, data: bytes, tag: str | None) -> str | None:
        try:
            if tag is None:
                out = self.fs.pipe_file(self.path, data, mode="create")
            else:
                out = self.fs.pipe_file(self.path, data, IfMatch=tag)
        except FileExistsError:
            return None
        except OSError as exc:
            if "pre-condition" in str(exc).lower() or "precondition" in str(exc).lower():
                return None
            raise
        self.fs.invalidate_cache(self.path)
        new = (out or {}).get("ETag") if isinstance(out, dict) else None
        return new or self.fs.info(self.path)["ETag"]


class _ReadBackStore:
    """Stores without conditional writes: write, pause, read back (a race window)."""

    PAUSE_S = 0.5

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def read(self) -> tuple[bytes | None, str | None]:
        try:
            raw = self.ws.read_bytes(LEASE_FILE)
        except FileNotFoundError:
            return None, None
        return raw, hashlib.sha256(raw).hexdigest()

    def swap(self, data: bytes, tag: str | None) -> str | None:
        if self.read()[1] != tag:
            return None
        self.ws.write_bytes(LEASE_FILE, data)
        time.sleep(self.PAUSE_S)
        raw, new = self.read()
        return new if raw == data else None


def _store(ws: Workspace) -> Any:
    if not ws.uri:
        return _LocalStore(ws)
    fs, _ = ws.filesystem()
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return _S3Store(ws) if any(p in ("s3", "s3a") for p in protocols) else _ReadBackStore(ws)


class DriverLease:
    """The lease of one driver on one experiment folder (a context manager)."""

    def __init__(self, ws: Workspace, *, ttl_s: float | None = None, purpose: str = "run") -> None:
        self.ws = ws
        self.ttl_s = float(ttl_s) if ttl_s is not None else lease_ttl_s()
        self.purpose = purpose
        self.owner = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.lost: str | None = None
        self._store = _store(ws)
        self._tag: str | None = None
        self._acquired = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._io = threading.Lock()

    # -- the record ------------------------------------------------------------
    def _body(self, *, released: bool = False) -> bytes:
        rec = {"owner": self.owner, "host": self.host, "pid": self.pid, "pid_start": _start_time(self.pid),
               "purpose": self.purpose, "acquired": self._acquired, "refreshed": time.time(),
               "ttl_s": self.ttl_s, "released": released, "nonce": uuid.uuid4().hex[:8]}
        return (json.dumps(rec, sort_keys=True) + "\n").encode()

    def _breakable(self, holder: dict[str, Any] | None) -> str | None:
        """Why the lease held by ``holder`` may be taken over (None: it may not)."""
        if holder is None:
            return "unreadable lease file"
        if holder.get("released"):
            return "released"
        try:
            age = time.time() - float(holder.get("refreshed", 0))
            ttl = float(holder.get("ttl_s", DEFAULT_TTL_S))
        except (TypeError, ValueError):
            return "unreadable lease file"
        if age > ttl:
            return f"expired {age - ttl:.0f} s ago"
        if holder.get("host") == self.host:
            try:
                pid = int(holder.get("pid"))
            except (TypeError, ValueError):
                return "unreadable lease file"
            if _pid_dead(pid, holder.get("pid_start")):
                return f"its process {pid} is dead"
        return None

    # -- acquire / refresh / release ------------------------------------------
    def acquire(self) -> DriverLease:
        for _ in range(20):
            raw, tag = self._store.read()
            holder = None
            why = "free"
            if raw is not None:
                try:
                    holder = json.loads(raw)
                except ValueError:
                    holder = None
                why = self._breakable(holder if isinstance(holder, dict) else None)
                if why is None:
                    raise self._refusal(holder)
            self._acquired = time.time()
            new = self._store.swap(self._body(), tag)
            if new is not None:
                self._tag = new
                if raw is not None and why != "released":
                    log.warning("took over the driver lease of %s (host %s, pid %s): %s", self.ws.root,
                                (holder or {}).get("host"), (holder or {}).get("pid"), why)
                self._start_heartbeat()
                return self
            time.sleep(0.05)  # another driver changed the lease in between: look again
        raw, _ = self._store.read()
        raise self._refusal(json.loads(raw) if raw else {})

    def _refusal(self, holder: dict[str, Any]) -> WorkspaceError:
        age = time.time() - float(holder.get("refreshed", 0) or 0)
        return WorkspaceError("experiment is in use by another driver", file=self.ws.path(LEASE_FILE),
                              value=f"host {holder.get('host')}, pid {holder.get('pid')}, heartbeat {age:.0f} s ago",
                              expected="one live driver per experiment",
                              hint=(f"wait for that run to end, or stop it (tao-automl cancel {self.ws.root}); a driver that "
                                    f"died is taken over once its lease expires ({holder.get('ttl_s', self.ttl_s):.0f} s after its "
                                    "last heartbeat) or at once from the same host; tao-automl status/report work meanwhile"))

    def refresh(self) -> bool:
        with self._io:
            if self._tag is None or self.lost:
                return False
            try:
                new = self._store.swap(self._body(), self._tag)
            except Exception as exc:  # noqa: BLE001 - a failed heartbeat is retried next beat
                log.warning("driver lease heartbeat of %s failed: %s: %s", self.ws.root, type(exc).__name__, exc)
                return True
            if new is None:
                self.lost = "another driver took the lease over"
                log.error("lost the driver lease of %s: %s (this driver stalled longer than %.0f s)",
                          self.ws.root, self.lost, self.ttl_s)
                return False
            self._tag = new
            return True

    def _start_heartbeat(self) -> None:
        interval = max(0.2, self.ttl_s / 6)

        def beat() -> None:
            while not self._stop.wait(interval):
                if not self.refresh():
                    return

        self._thread = threading.Thread(target=beat, name="tao-automl-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._io:
            if self._tag is None or self.lost:
                return
            try:
                self._store.swap(self._body(released=True), self._tag)
            except Exception as exc:  # noqa: BLE001 - an unreleased lease expires by itself
                log.warning("could not release the driver lease of %s: %s", self.ws.root, exc)
            self._tag = None

    def __enter__(self) -> DriverLease:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
