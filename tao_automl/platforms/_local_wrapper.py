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

Secrets: when ``TAO_AUTOML_MASK_ENV`` names environment variables (comma
separated; the *names* only, the values are already in this process's
environment, never in argv), the job's stdout+stderr go through a pipe and
every value (longer than 3 bytes) is replaced by ``***`` before it reaches
``job.log``, so a job printing its resolved config never puts a secret on
disk.  Output is masked line by line; a line longer than 8 KiB, or a partial
line left idle for 0.2 s, is written except for its last ``longest secret - 1``
bytes, so a secret split across writes is still caught.
"""

import os
import select
import sys

try:
    import _signal as _sig  # the C module: no enum import
except ImportError:  # pragma: no cover - other interpreters
    import signal as _sig

SIGTERM, SIGKILL = 15, 9
MASK_ENV = "TAO_AUTOML_MASK_ENV"
MASK = b"***"
_LONG_LINE = 8192
_IDLE_S = 0.2


class _Masker:
    """Streaming ``value -> ***`` replacement from a pipe to an fd."""

    def __init__(self, values, out_fd):
        self.values = sorted({v for v in values if len(v) > 3}, key=len, reverse=True)
        self.keep = max(len(v) for v in self.values) - 1
        self.out = out_fd
        self.buf = b""
        self.rfd = None

    def mask(self, data):
        for v in self.values:
            data = data.replace(v, MASK)
        return data

    def _emit(self, data):
        data = self.mask(data)
        while data:
            n = os.write(self.out, data)
            data = data[n:]

    def feed(self, data):
        self.buf += data
        cut = self.buf.rfind(b"\n") + 1
        if cut:
            self._emit(self.buf[:cut])
            self.buf = self.buf[cut:]
        if len(self.buf) > _LONG_LINE:
            self.partial()

    def partial(self):
        """Write a partial line except a tail that may hold the start of a secret."""
        cut = len(self.buf) - self.keep
        if cut <= 0:
            return
        moved = True
        while moved:  # never cut through a complete occurrence
            moved = False
            for v in self.values:
                start = self.buf.find(v, max(0, cut - len(v) + 1))
                if 0 <= start < cut < start + len(v):
                    cut, moved = start + len(v), True
        self._emit(self.buf[:cut])
        self.buf = self.buf[cut:]

    def close(self):
        self._emit(self.buf)
        self.buf = b""


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


def _pump_until(masker, pid, timeout):
    """Copy the job's output (``masker.rfd``) through ``masker`` until ``pid``
    exits (its exit code) or ``timeout`` seconds pass (None: never; then None)."""
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None  # old kernel: poll the pid at the idle interval
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                _drain(masker)
                return os.waitstatus_to_exitcode(status)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            wait = _IDLE_S if left is None else min(_IDLE_S, left)
            fds = [fd for fd in (masker.rfd, pidfd) if fd is not None]
            if not fds:
                time.sleep(min(wait, 0.01))
                continue
            ready = select.select(fds, [], [], wait if pidfd is not None else min(wait, 0.01))[0]
            if masker.rfd is not None and masker.rfd in ready:
                data = os.read(masker.rfd, 65536)
                if data:
                    masker.feed(data)
                else:  # every writer closed its end
                    os.close(masker.rfd)
                    masker.rfd = None
            elif not ready and masker.buf:
                masker.partial()
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _drain(masker):
    """What the job wrote before it exited (a background child holding the
    pipe open must not keep the wrapper from recording the exit code)."""
    if masker.rfd is not None:
        os.set_blocking(masker.rfd, False)
        try:
            while True:
                data = os.read(masker.rfd, 65536)
                if not data:
                    break
                masker.feed(data)
        except BlockingIOError:
            pass
    masker.close()


def main(args):
    ctl, timeout_s, grace_s = args[0], float(args[1]), float(args[2])
    argv = args[args.index("--") + 1:]
    _sig.signal(SIGTERM, _sig.SIG_IGN)  # record the exit code first
    # For LocalBackend.find: a driver killed before it wrote handle.json can
    # still learn which process group is this job.
    _write(os.path.join(ctl, "wrapper.pid"), f"{os.getpid()}\n")
    env = dict(os.environ)
    names = [n for n in env.pop(MASK_ENV, "").split(",") if n]
    values = [os.environb.get(n.encode(), b"") for n in names]
    masker = _Masker(values, 1) if any(len(v) > 3 for v in values) else None
    actions = []
    if masker is not None:
        masker.rfd, wfd = os.pipe()
        actions = [(os.POSIX_SPAWN_DUP2, wfd, 1), (os.POSIX_SPAWN_DUP2, wfd, 2)]
    try:
        pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions, setsigdef=(SIGTERM,))
    except OSError as exc:
        print(f"tao_automl: cannot start {argv[0]!r}: {exc}", file=sys.stderr, flush=True)
        _write(os.path.join(ctl, "exitcode"), "127\n")
        return 127
    finally:
        if masker is not None:
            os.close(wfd)

    def wait(timeout):
        if masker is None:
            return _wait(pid, timeout)
        return _pump_until(masker, pid, timeout)

    rc = wait(timeout_s if timeout_s > 0 else None)
    if rc is None:
        _write(os.path.join(ctl, "timed_out"), f"{timeout_s}\n")
        print(f"tao_automl: time limit of {timeout_s:g} s exceeded; stopping the job",
              file=sys.stderr, flush=True)
        os.killpg(0, SIGTERM)
        rc = wait(grace_s)
        if rc is None:
            os.kill(pid, SIGKILL)
            rc = wait(None)
        code = 128 - rc if rc < 0 else rc
        _write(os.path.join(ctl, "exitcode"), f"{code}\n")
        os.killpg(0, SIGKILL)  # leave no straggler of a timed-out job
    code = 128 - rc if rc < 0 else rc
    _write(os.path.join(ctl, "exitcode"), f"{code}\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
