"""A job process for the client-boundary fakes (docker, kubernetes): what a
container runtime would run, run here as a local subprocess in its own
process group, its stdout+stderr in a log file outside the job's folder."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time

from tao_automl.platforms.local import process_group_alive

#: what a minimal image's environment holds (the driver's own environment is not inherited)
BASE_ENV = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}


class FakeProcess:
    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None) -> None:
        fd, self.log_path = tempfile.mkstemp(prefix="fake-job-", suffix=".log")
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(argv, env={**BASE_ENV, **env}, cwd=cwd or None,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.started = time.time()

    @property
    def exit_code(self) -> int | None:
        """None while running; a signal death reads as 128 + signal, as a container runtime reports it."""
        rc = self.proc.poll()
        return None if rc is None else (128 - rc if rc < 0 else rc)

    def wait(self, timeout: float | None) -> int:
        self.proc.wait(timeout)
        return self.exit_code

    def log(self) -> bytes:
        with open(self.log_path, "rb") as f:
            return f.read()

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s`` (``docker stop``, pod termination)."""
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()

    def gone(self) -> bool:
        return self.proc.poll() is not None and not process_group_alive(self.proc.pid)

    def remove(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait()
        try:
            os.unlink(self.log_path)
        except FileNotFoundError:
            pass
