"""Job wrapper for the local backend (standard library only; run by path).

Usage: ``python _local_wrapper.py CONTROL_DIR TIMEOUT_S GRACE_S -- ARGV...``

Runs ARGV in this process group (the backend made the wrapper a session
leader), enforces the time limit (SIGTERM to the group, SIGKILL after the
grace period) and records the exit code atomically in ``CONTROL_DIR/exitcode``
so a driver that restarted can still learn it.  ``CONTROL_DIR/timed_out`` marks
a timeout.  The wrapper ignores SIGTERM, so it outlives a stop request long
enough to record the code.

Start-up cost matters here (it is paid by every trial): the wrapper imports
only ``os``, ``sys``, ``select`` and the C ``_signal`` module.  ``subprocess``
alone costs ~16 ms to import and the ``signal`` wrapper ~4 ms, so the job is
started with ``os.posix_spawnp`` (SIGTERM reset to its default in the job)
and waited on through a pidfd.
"""

import os
import select
import sys

try:
    import _signal as _sig  # the C module: no enum import
except ImportError:  # pragma: no cover - other interpreters
    import signal as _sig

SIGTERM, SIGKILL = 15, 9


def _write(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _wait(pid, timeout):
    """Wait up to ``timeout`` seconds (None: forever); the exit code, or None if still running."""
    if timeout is None:
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        try:
            select.select([fd], [], [], max(0.0, timeout))
        finally:
            os.close(fd)
        done, status = os.waitpid(pid, os.WNOHANG)
        return os.waitstatus_to_exitcode(status) if done else None
    # No pidfd (old kernel): poll with a short, growing sleep.
    import time

    deadline, delay = time.monotonic() + timeout, 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


def main(args):
    ctl, timeout_s, grace_s = args[0], float(args[1]), float(args[2])
    argv = args[args.index("--") + 1:]
    _sig.signal(SIGTERM, _sig.SIG_IGN)  # record the exit code first
    # For LocalBackend.find: a driver killed before it wrote handle.json can
    # still learn which process group is this job.
    _write(os.path.join(ctl, "wrapper.pid"), f"{os.getpid()}\n")
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=(SIGTERM,))
    except OSError as exc:
        print(f"tao_automl: cannot start {argv[0]!r}: {exc}", file=sys.stderr, flush=True)
        _write(os.path.join(ctl, "exitcode"), "127\n")
        return 127
    rc = _wait(pid, timeout_s if timeout_s > 0 else None)
    if rc is None:
        _write(os.path.join(ctl, "timed_out"), f"{timeout_s}\n")
        print(f"tao_automl: time limit of {timeout_s:g} s exceeded; stopping the job",
              file=sys.stderr, flush=True)
        os.killpg(0, SIGTERM)
        rc = _wait(pid, grace_s)
        if rc is None:
            os.kill(pid, SIGKILL)
            rc = _wait(pid, None)
        code = 128 - rc if rc < 0 else rc
        _write(os.path.join(ctl, "exitcode"), f"{code}\n")
        os.killpg(0, SIGKILL)  # leave no straggler of a timed-out job
    code = 128 - rc if rc < 0 else rc
    _write(os.path.join(ctl, "exitcode"), f"{code}\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
