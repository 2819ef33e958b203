"""Start Ray quietly and locally (or join a cluster), and shut down only what
we started.

Trials that merely watch an external job ask for a sliver of a CPU plus one
``tao_automl_slot``; a local cluster is started with exactly
``max_concurrent`` slots, so concurrency is bounded by resources -- which,
unlike ``max_concurrent_trials``, keeps Hyperband's pause/resume correct.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["RaySession", "SLOT", "quiet_ray_env"]

SLOT = "tao_automl_slot"
TRIAL_CPU = 0.01

_QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage-stats post to the internet
    "RAY_AUTH_MODE": "disabled",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # the runner handles SIGINT/SIGTERM itself
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100000",
    # Save Tune's experiment state every second (default: every >= 10 s), so a
    # driver killed right after launching trials leaves them known on resume.
    "TUNE_GLOBAL_CHECKPOINT_S": "1",
    # Platform jobs outlive a crashed driver (and its Ray workers) so a resume
    # reattaches to them; the runner cancels jobs itself (trial stop, _reap).
    "RAY_kill_child_processes_on_worker_exit": "0",
    "RAY_DEDUP_LOGS": "0",
    # No TensorBoard logger (~27 ms of driver time per report); the JSON and
    # CSV loggers that restore/ResultGrid need are added explicitly.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore::DeprecationWarning"),
}


def ray_temp_dir() -> str:
    """Ray's session folder for a local cluster: short (Ray's AF_UNIX socket
    paths must stay under 107 bytes, so a long $TMPDIR such as macOS's
    /var/folders/... breaks it) and per user (a shared fixed name is owned by
    whoever created it first)."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    for base in ("/tmp", tempfile.gettempdir()):
        if os.path.isdir(base) and os.access(base, os.W_OK):
            path = os.path.join(base, f"tao-ray-{uid}")
            try:
                os.makedirs(path, mode=0o700, exist_ok=True)
            except OSError:
                continue
            if os.access(path, os.W_OK):
                return path
    return tempfile.mkdtemp(prefix="tao-ray-")


def quiet_ray_env() -> None:
    """Set the env vars that keep Ray local, quiet and offline (before init)."""
    for k, v in _QUIET_ENV.items():
        os.environ.setdefault(k, v)


@contextlib.contextmanager
def _keep_signal_handlers() -> Iterator[None]:
    """ray.init installs its own SIGTERM handler (it dumps a stack and exits);
    put back the runner's, which cancel every job and leave a resumable run."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


class RaySession:
    """Context manager: ``with RaySession(address, slots) as s: ...``."""

    def __init__(self, address: str | None, slots: int, *, quiet: bool = True) -> None:
        self.address = address
        self.slots = slots
        self.quiet = quiet
        self.started = False
        self.has_slots = False
        self.per_trial = 1.0
        self.session_dir: str | None = None  # Ray's session folder of a cluster we started

    def __enter__(self) -> RaySession:
        quiet_ray_env()
        import ray

        level = logging.ERROR if self.quiet else logging.INFO
        with _keep_signal_handlers():
            return self._start(ray, level)

    def _start(self, ray: Any, level: int) -> RaySession:
        if ray.is_initialized():
            self._read_slots(ray)
            return self
        if self.address:
            ray.init(address=self.address, logging_level=level, log_to_driver=not self.quiet)
            self._read_slots(ray)
        else:
            ray.init(
                num_cpus=max(2, os.cpu_count() or 2),
                resources={SLOT: float(self.slots)},
                include_dashboard=False,
                log_to_driver=not self.quiet,
                configure_logging=True,
                logging_level=level,
                _temp_dir=ray_temp_dir(),
            )
            self.has_slots = True
            self.per_trial = 1.0
            self.session_dir = _session_dir(ray)
        self.started = True
        return self

    def _read_slots(self, ray: Any) -> None:
        """On a cluster we did not start, split its slots so that exactly
        ``slots`` trials fit at once."""
        total = ray.cluster_resources().get(SLOT, 0.0)
        self.has_slots = total > 0
        if self.has_slots:
            self.per_trial = total / self.slots

    def trial_resources(self) -> dict[str, Any]:
        res: dict[str, Any] = {"cpu": TRIAL_CPU}
        if self.has_slots:
            res[SLOT] = self.per_trial
        return res

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            import ray

            ray.shutdown()
            if self.session_dir:
                remove_session_dir(self.session_dir)


def _session_dir(ray: Any) -> str | None:
    try:
        return str(ray._private.worker._global_node.get_session_dir_path())
    except Exception:  # a Ray without this private API: leave its folder alone
        return None


def remove_session_dir(session_dir: str) -> None:
    """Remove the session folder of a local Ray cluster we started and shut
    down (logs, sockets, spilled objects: megabytes per run), and its
    ``session_latest`` link; other sessions in the same temp folder (other
    runs, other users of ``/tmp/tao-ray-<uid>``) are left alone."""
    for _ in range(10):  # Ray's log monitor may still be closing files
        shutil.rmtree(session_dir, ignore_errors=True)
        if not os.path.exists(session_dir):
            break
        time.sleep(0.2)
    latest = os.path.join(os.path.dirname(session_dir), "session_latest")
    with contextlib.suppress(OSError):
        if os.path.islink(latest) and os.path.realpath(latest) == os.path.realpath(session_dir):
            os.unlink(latest)
