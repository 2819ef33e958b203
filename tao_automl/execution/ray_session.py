"""Start Ray quietly and locally (or join a cluster), and shut down only what
we started.

A cluster the runner starts is started in the background
(:func:`start_ray`) while the run's preflight, plan and baseline go on, its
idle workers preload Tune and the trial module, and it stays up after the run
for the next run in the same process (Ray stops it when the interpreter exits;
:func:`shutdown_ray` stops it now).

Trials that merely watch an external job ask for a sliver of a CPU plus one
``tao_automl_slot``; a local cluster is started with exactly
``max_concurrent`` slots, so concurrency is bounded by resources -- which,
unlike ``max_concurrent_trials``, keeps Hyperband's pause/resume correct.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from tao_automl.config.backoff import wait_until

__all__ = ["RaySession", "SLOT", "quiet_ray_env", "start_ray", "shutdown_ray", "RayStarter"]

SLOT = "tao_automl_slot"
TRIAL_CPU = 0.01
# Imported by every idle Ray worker when it starts (Ray's
# ``preload_python_modules``), so a trial actor leased from the prestarted
# pool does not import Tune and the trial module on the critical path.
WORKER_PRELOAD = ["ray.tune.trainable.function_trainable", "tao_automl.execution.trial"]
# The local cluster this process started (kept for the next run; see shutdown_ray).
_OWNED: dict[str, Any] = {}
_ATEXIT: list[bool] = []

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


def skip_usage_tagging() -> None:
    """Tune's usage tagging imports every logger integration it counts
    (wandb, mlflow, comet: ~1 s of driver CPU before the first trial) to tag
    a record that is never sent with ``RAY_USAGE_STATS_ENABLED=0``: skip it then."""
    if os.environ.get("RAY_USAGE_STATS_ENABLED") != "0":
        return
    try:
        from ray.air._internal import usage

        usage.tag_callbacks = lambda callbacks: False
    except Exception:  # noqa: BLE001 - a Ray without it: nothing to skip
        pass


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


def _reinstall_signal_handlers() -> None:
    """``ray.init`` in the background thread cannot be wrapped by
    :func:`_keep_signal_handlers` (only the main thread sets Python handlers),
    and Ray's core worker installs its own native SIGTERM handler (it dumps a
    stack and aborts): set the runner's handlers again, from the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None:
            signal.signal(sig, handler)


class RayStarter:
    """``ray.init`` for a run, begun in a background thread so that Ray's
    processes start while the driver validates, plans and runs its baseline.

    :meth:`result` waits for it and re-raises what it raised.  Ray starts its
    GCS and raylet with ``PR_SET_PDEATHSIG``, which Linux fires when the
    *thread* that spawned them ends: the thread therefore stays parked (a
    daemon, blocking nothing) until :func:`shutdown_ray` or the process's exit.
    """

    def __init__(self, address: str | None, slots: int, *, quiet: bool = True) -> None:
        self.session = RaySession(address, slots, quiet=quiet)
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tao-automl-ray", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.session._enter()
        except BaseException as exc:  # noqa: BLE001 - handed to result()
            self.error = exc
        finally:
            self._done.set()
        park = _OWNED.get("park") if self.session.started else None
        if park is not None:
            park.wait()  # keep the spawning thread alive while the cluster runs

    def result(self) -> RaySession:
        self._done.wait()
        if self.error is not None:
            raise self.error
        return self.session

    def wait(self) -> None:
        """Wait for the start to end, raising nothing (error paths)."""
        self._done.wait()


def start_ray(address: str | None, slots: int, *, quiet: bool = True) -> RayStarter:
    """Start (or join) Ray in the background; ``RaySession(..., starter=)`` waits for it."""
    return RayStarter(address, slots, quiet=quiet)


def shutdown_ray() -> bool:
    """Stop the local Ray cluster an earlier run left up for reuse (True if one was),
    and remove its session folder.  Registered with :mod:`atexit` when the
    cluster starts, so nothing is left behind when the interpreter exits."""
    if not _OWNED:
        return False
    park = _OWNED.get("park")
    session_dir = _OWNED.get("session_dir")
    _OWNED.clear()
    import ray

    ray.shutdown()
    if park is not None:
        park.set()
    if session_dir:
        remove_session_dir(session_dir)
    return True


class RaySession:
    """Context manager: ``with RaySession(address, slots) as s: ...``.

    A local cluster it starts is left running on exit for the next run in
    this process (``shutdown_ray()`` or the interpreter's exit stops it):
    shutting down costs the run 1-2 s and the next run a cold start.
    ``starter`` is a :func:`start_ray` begun earlier for the same settings.
    """

    def __init__(self, address: str | None, slots: int, *, quiet: bool = True,
                 starter: RayStarter | None = None) -> None:
        self.address = address
        self.slots = slots
        self.quiet = quiet
        self.starter = starter
        self.started = False
        self.has_slots = False
        self.per_trial = 1.0
        self.session_dir: str | None = None  # Ray's session folder of a cluster we started

    def __enter__(self) -> RaySession:
        if self.starter is None:
            return self._enter()
        # Tune is imported here, in the driver, while Ray's processes start.
        quiet_ray_env()
        from ray import tune  # noqa: F401

        skip_usage_tagging()
        done = self.starter.result()
        _reinstall_signal_handlers()
        self.started, self.has_slots, self.per_trial = done.started, done.has_slots, done.per_trial
        return self

    def _enter(self) -> RaySession:
        quiet_ray_env()
        import ray

        skip_usage_tagging()
        level = logging.ERROR if self.quiet else logging.INFO
        with _keep_signal_handlers():
            return self._start(ray, level)

    def _start(self, ray: Any, level: int) -> RaySession:
        if not ray.is_initialized():
            if _OWNED.get("park") is not None:
                _OWNED["park"].set()
            _OWNED.clear()  # stopped by someone else since
        elif self.address and _OWNED:
            shutdown_ray()  # our own leftover local cluster; this run joins another one
        else:
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
                _system_config={"preload_python_modules": WORKER_PRELOAD},
            )
            self.session_dir = _session_dir(ray)
            if not _ATEXIT:
                atexit.register(shutdown_ray)  # runs before Ray's own (registered earlier)
                _ATEXIT.append(True)
            _OWNED.update(slots=self.slots, park=threading.Event(), session_dir=self.session_dir)
            self.has_slots = True
            self.per_trial = 1.0
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
        if self.started and not _OWNED:
            import ray

            ray.shutdown()  # a cluster we joined: disconnect (it keeps running)


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
    def removed() -> bool:  # Ray's log monitor may still be closing files: try for ~2 s
        shutil.rmtree(session_dir, ignore_errors=True)
        return not os.path.exists(session_dir)

    wait_until(removed, 2.0, first=0.2, cap=0.2)
    latest = os.path.join(os.path.dirname(session_dir), "session_latest")
    with contextlib.suppress(OSError):
        if os.path.islink(latest) and os.path.realpath(latest) == os.path.realpath(session_dir):
            os.unlink(latest)
