"""Local backend: each job is a subprocess in its own session/process group.

The job runs under a tiny wrapper (``_local_wrapper.py``) that enforces the
time limit and writes the exit code atomically to ``<control>/exitcode``, so
the job survives the driver's death and a restarted driver can reattach by
pid (checked against the process start time to rule out pid reuse) and still
learn the outcome.  stdout+stderr go to ``<control>/job.log``, with the values
of ``secret_env`` masked by the wrapper as it writes (they never touch disk).  The control
directory is ``<results_dir>/.tao_automl/<name>-<id>/`` (or under ``log_dir``,
or the temp dir when results_dir is remote or unset).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tao_automl.config.backoff import wait_until
from tao_automl.errors import JobNotFoundError, SubmitError
from tao_automl.platforms import _util
from tao_automl.platforms.base import (
    FailureReason,
    JobHandle,
    JobRequest,
    JobState,
    JobStatus,
    PathCheck,
)
from tao_automl.platforms.classify import classify_failure
from tao_automl.platforms.paths import check_local_paths

__all__ = ["LocalBackend", "process_group_alive"]

_WRAPPER = str(Path(__file__).with_name("_local_wrapper.py"))
_MASK_ENV = "TAO_AUTOML_MASK_ENV"  # _local_wrapper.MASK_ENV (the wrapper imports nothing of ours)
_PYTHON_NAMES = {"python", "python3", "{python}"}
# Children started by any LocalBackend in this process, so that a fresh backend
# instance (reattach in the same process) can still wait on and reap them.
_CHILDREN: dict[int, subprocess.Popen] = {}
_LOCK = threading.Lock()


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of ``pid`` (``/proc/<pid>/stat`` field 22), or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if fields[0] != "Z" else None


def _pidfd_wait(pid: int, timeout: float, still_ours: Any = None) -> bool:
    """Block on a pidfd until ``pid`` exits or ``timeout`` passes; False when
    no pidfd can be had (old kernel, or the pid is already gone/reaped).
    ``still_ours`` re-checks, with the pidfd open, that the pid was not reused."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return False
    try:
        if still_ours is None or still_ours():
            select.select([fd], [], [], max(0.0, timeout))
    finally:
        os.close(fd)
    return True


def _wait_child(proc: subprocess.Popen, timeout: float) -> None:
    """Block until our child ``proc`` ends or ``timeout`` passes.

    ``Popen.wait(timeout=...)`` polls with sleeps of up to 50 ms, which added
    ~40 ms to every trial; a pidfd wakes at once.  The child is not reaped
    before the pidfd is open (only ``proc.poll`` reaps it), so its pid cannot
    be reused meanwhile.
    """
    if not _pidfd_wait(proc.pid, timeout):
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    proc.poll()


def process_group_alive(pgid: int) -> bool:
    """True while any non-zombie process is in group ``pgid``.

    Zombies are ignored: an orphan's zombie may linger when pid 1 is slow to
    reap, but it runs nothing.  Falls back to ``killpg(pgid, 0)`` without /proc.
    """
    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


_group_exists = process_group_alive


class LocalBackend:
    """Run jobs as local subprocesses.

    Keyword options:
        python: interpreter for ``python_script`` argv (argv[0] ``python``/
            ``python3``/``{python}`` is replaced, a leading ``*.py`` gets it
            prepended); default the running interpreter.
        grace_period_s: seconds between SIGTERM and SIGKILL on cancel/timeout (10).
        log_dir: directory for control files and logs (default: under results_dir).
        gpu_ids: GPU ids this backend may hand out (CUDA_VISIBLE_DEVICES).
        gpu_count: default GPUs per job when the request sets none.
    """

    name = "local"
    OPTIONS = {"python": None, "grace_period_s": 10.0, "log_dir": None, "gpu_ids": None,
               "gpu_count": 0}

    def __init__(self, **kwargs) -> None:
        opts = _util.take_options(self.name, kwargs, self.OPTIONS)
        self.python = str(opts["python"] or sys.executable)
        self.grace_period_s = float(opts["grace_period_s"])
        self.log_dir = opts["log_dir"]
        self.gpu_ids = tuple(int(g) for g in opts["gpu_ids"] or ())
        self.gpu_count = int(opts["gpu_count"] or 0)

    def configure(self, **kwargs) -> None:
        """Update options after construction (same names as the constructor)."""
        self.__init__(**{**self._current(), **kwargs})

    def _current(self) -> dict:
        return {"python": self.python, "grace_period_s": self.grace_period_s,
                "log_dir": self.log_dir, "gpu_ids": self.gpu_ids, "gpu_count": self.gpu_count}

    # -- submit -----------------------------------------------------------------
    def _control_dir(self, request: JobRequest) -> Path:
        if self.log_dir:
            base = Path(self.log_dir)
        elif request.results_dir and not _util.is_uri(request.results_dir):
            base = Path(_util.local_path(request.results_dir)) / _util.CONTROL_DIR
        else:
            base = Path(tempfile.gettempdir()) / "tao_automl-jobs"
        ctl = base / _util.unique_name(request.name)
        ctl.mkdir(parents=True, exist_ok=False)
        return ctl

    def _argv(self, request: JobRequest) -> list[str]:
        if request.command is not None:
            return ["bash", "-c", request.command]
        argv = list(request.argv or ())
        if argv and argv[0] in _PYTHON_NAMES:
            argv[0] = self.python
        elif argv and argv[0].endswith(".py"):
            argv.insert(0, self.python)
        return argv

    def _gpus(self, request: JobRequest) -> tuple[int, ...] | None:
        if request.gpu_ids:
            return tuple(request.gpu_ids)
        count = request.gpu_count or self.gpu_count
        if self.gpu_ids:
            return self.gpu_ids[:count] if count else self.gpu_ids
        return tuple(range(count)) if count else None

    def submit(self, request: JobRequest) -> JobHandle:
        """Start the job and return at once."""
        _util.check_request(request, self.name)  # names reach scripts/specs: refuse before creating anything
        secrets = _util.secret_values(request)
        results = request.results_dir
        if results and not _util.is_uri(results):
            Path(_util.local_path(results)).mkdir(parents=True, exist_ok=True)
        ctl = self._control_dir(request)
        env = {**os.environ, **request.env, **secrets}
        # The wrapper masks these values in job.log as it writes it: names
        # only here (values are already in the environment, never in argv).
        env.pop(_MASK_ENV, None)
        if secrets:
            env[_MASK_ENV] = ",".join(secrets)
        gpus = self._gpus(request)
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
        cwd = request.cwd or (_util.local_path(results) if results and not _util.is_uri(results)
                              else str(ctl))
        argv = self._argv(request)
        # -I -S: the wrapper is stdlib-only; skipping site and user paths
        # quarters the interpreter start-up (41 ms -> 10 ms here).
        cmd = [sys.executable, "-I", "-S", _WRAPPER, str(ctl), str(request.timeout_s or 0),
               str(self.grace_period_s), "--", *argv]
        log_path = ctl / "job.log"
        try:
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                                        start_new_session=True)
        except OSError as exc:
            raise SubmitError(f"cannot start local job ({exc})", key=request.name, value=cwd,
                              expected="an existing working directory") from exc
        with _LOCK:
            _CHILDREN[proc.pid] = proc
        data = {
            "pid": proc.pid, "pgid": proc.pid, "start_time": _proc_start_time(proc.pid),
            "control_dir": str(ctl), "log_path": str(log_path), "cwd": cwd,
            "secret_env": list(request.secret_env), "timeout_s": request.timeout_s,
            "gpu_ids": list(gpus) if gpus is not None else None, "argv": argv,
        }
        handle = JobHandle(backend=self.name, job_id=str(proc.pid), name=request.name,
                           results_dir=results, data=data)
        import json

        _util.write_atomic(ctl / "handle.json", json.dumps(handle.to_dict(), indent=1))
        return handle

    def find(self, name: str, results_dir: str | None = None) -> list[JobHandle]:
        """Jobs submitted under ``name`` (oldest first), from their control folders.

        For a driver killed after ``submit`` started the job but before the
        handle reached the ledger (:mod:`tao_automl.store.intents`).
        """
        bases = []
        if self.log_dir:
            bases.append(Path(self.log_dir))
        if results_dir and not _util.is_uri(results_dir):
            bases.append(Path(_util.local_path(results_dir)) / _util.CONTROL_DIR)
        bases.append(Path(tempfile.gettempdir()) / "tao_automl-jobs")
        prefix = _util.safe_name(name) + "-"
        found: list[tuple[float, JobHandle]] = []
        for base in bases:
            try:
                entries = list(base.iterdir())
            except OSError:
                continue
            for ctl in entries:
                suffix = ctl.name[len(prefix):]
                if not ctl.name.startswith(prefix) or len(suffix) != 8 or not suffix.isalnum():
                    continue
                handle = self._handle_in(ctl, name, results_dir)
                if handle is not None:
                    found.append((ctl.stat().st_mtime, handle))
        return [h for _, h in sorted(found, key=lambda x: x[0])]

    def check_paths(self, paths: list[str]) -> dict[str, PathCheck]:
        """Jobs run on this machine: readability on its file system."""
        return check_local_paths(paths, where="this machine (local platform)")

    def _handle_in(self, ctl: Path, name: str, results_dir: str | None) -> JobHandle | None:
        import json

        try:
            return JobHandle.from_dict(json.loads((ctl / "handle.json").read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:  # the driver died before writing handle.json: the wrapper's own record
            pid = int((ctl / "wrapper.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        data = {"pid": pid, "pgid": pid, "start_time": _proc_start_time(pid), "control_dir": str(ctl),
                "log_path": str(ctl / "job.log"), "cwd": None, "secret_env": [], "timeout_s": None,
                "gpu_ids": None, "argv": None, "recovered": True}
        return JobHandle(backend=self.name, job_id=str(pid), name=name, results_dir=results_dir, data=data)

    # -- state ------------------------------------------------------------------
    @staticmethod
    def _ctl(handle: JobHandle) -> Path:
        try:
            return Path(handle.data["control_dir"])
        except KeyError:
            raise JobNotFoundError("not a local job handle", key=handle.job_id, value=handle.data,
                                   expected="data.control_dir") from None

    def _alive(self, handle: JobHandle) -> bool:
        pid = int(handle.data.get("pid", handle.job_id))
        proc = _CHILDREN.get(pid)
        if proc is not None:
            return proc.poll() is None
        started = _proc_start_time(pid)
        want = handle.data.get("start_time")
        return started is not None and (want is None or started == want)

    @staticmethod
    def _exit_code(ctl: Path) -> int | None:
        try:
            return int((ctl / "exitcode").read_text().strip())
        except (OSError, ValueError):
            return None

    def status(self, handle: JobHandle) -> JobStatus:
        """Running while the wrapper lives; then from the exit-code file."""
        ctl = self._ctl(handle)
        if not ctl.is_dir():
            raise JobNotFoundError("job control directory is gone", file=ctl, key=handle.job_id,
                                   expected="an existing directory")
        code = self._exit_code(ctl)
        if code is None and self._alive(handle):
            return JobStatus(state=JobState.RUNNING)
        code = self._exit_code(ctl) if code is None else code
        canceled = (ctl / "canceled").exists()
        timed_out = (ctl / "timed_out").exists()
        if code == 0:
            return JobStatus(state=JobState.SUCCEEDED, exit_code=0)
        if canceled:
            return JobStatus(state=JobState.CANCELED, reason=FailureReason.CANCELED,
                             exit_code=code, message="canceled on request")
        if code is None and not timed_out:
            return JobStatus(state=JobState.FAILED, reason=FailureReason.INFRASTRUCTURE,
                             message="job process ended without recording an exit code "
                                     "(killed from outside or machine restarted)")
        reason, msg = classify_failure(code, self.logs(handle), timed_out=timed_out)
        return JobStatus(state=JobState.FAILED, reason=reason, exit_code=code, message=msg)

    def wait(self, handle: JobHandle, timeout: float) -> JobStatus:
        """Return as soon as the job ends (Popen.wait or a pidfd), or after ``timeout``."""
        pid = int(handle.data.get("pid", handle.job_id))
        proc = _CHILDREN.get(pid)
        if proc is not None:
            if proc.poll() is None:
                _wait_child(proc, max(0.0, timeout))
            return self.status(handle)
        if self._alive(handle):
            self._wait_foreign(pid, handle, time.monotonic() + max(0.0, timeout))
        return self.status(handle)

    def _wait_foreign(self, pid: int, handle: JobHandle, deadline: float) -> None:
        if _pidfd_wait(pid, deadline - time.monotonic(), lambda: self._alive(handle)):
            return
        wait_until(lambda: not self._alive(handle), deadline - time.monotonic(), first=0.005, cap=0.2)

    def logs(self, handle: JobHandle, since: int = 0) -> str:
        """Merged stdout/stderr from character offset ``since``; secret values masked."""
        text = _util.read_text_from(handle.data.get("log_path") or self._ctl(handle) / "job.log",
                                    since)
        values = [os.environ.get(n, "") for n in handle.data.get("secret_env", ())]
        return _util.redact(text, values)

    def cancel(self, handle: JobHandle) -> None:
        """SIGTERM to the process group, SIGKILL after the grace period. Idempotent."""
        ctl = self._ctl(handle)
        if self._exit_code(ctl) is not None or not self._alive(handle):
            return
        _util.write_atomic(ctl / "canceled", f"{time.time()}\n")
        pgid = int(handle.data.get("pgid", handle.job_id))
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + self.grace_period_s
        self.wait(handle, self.grace_period_s)
        wait_until(lambda: not _group_exists(pgid), deadline - time.monotonic(), first=0.005, cap=0.1)
        if _group_exists(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait(handle, 5.0)
            # SIGKILLed processes finish dying asynchronously: return only once
            # none is left, so "canceled" means no process of the job runs.
            wait_until(lambda: not _group_exists(pgid), 5.0, first=0.001, cap=0.05)

    def list_artifacts(self, handle: JobHandle) -> list[str]:
        return _util.list_artifacts(handle)

    def read_artifact(self, handle: JobHandle, path: str) -> bytes:
        return _util.read_artifact(handle, path)

    def cleanup(self, handle: JobHandle) -> None:
        """Forget (and reap) a finished child; logs and results stay."""
        pid = int(handle.data.get("pid", handle.job_id))
        with _LOCK:
            proc = _CHILDREN.get(pid)
            if proc is not None and proc.poll() is not None:
                del _CHILDREN[pid]
