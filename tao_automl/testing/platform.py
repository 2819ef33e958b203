"""The platform contract: behaviour every :class:`~tao_automl.platforms.base.PlatformBackend` must show.

The runner relies on these answers from any backend: exit codes and
classified failure reasons, artifacts read back from ``results_dir``, log
offsets, prompt ``wait``, cancel that kills the job (idempotently), time
limits, handles that survive a JSON round trip and a new driver, and secrets
that reach the job but never a log, a handle or a backend file.

Run it against your own backend by subclassing :class:`PlatformContract` in a
test module and overriding the ``platform_harness`` fixture (needs pytest:
``pip install 'tao-automl[test]'``)::

    import pytest
    from tao_automl.testing.platform import PlatformContract, PlatformHarness

    class TestMyBackend(PlatformContract):
        @pytest.fixture
        def platform_harness(self, tmp_path):
            return PlatformHarness(
                make=lambda: MyBackend(grace_period_s=2.0),   # a fresh instance each call
                job_gone=lambda handle: not my_job_exists(handle),
                prompt_s=1.0, start_s=5.0)

Every ``test_*`` method is inherited; parametrize the fixture to run the suite
over several configurations.  The jobs are small shell commands (``bash -c``),
run with ``results_dir`` as their working directory; they need ``bash``,
coreutils and a ``python`` on the job's PATH (``PlatformHarness.python``).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from tao_automl.errors import CredentialError, PlatformError, TransientSubmitError
from tao_automl.platforms.base import (
    FailureReason,
    JobHandle,
    JobRequest,
    JobState,
    PlatformBackend,
)
from tao_automl.platforms.local import LocalBackend, process_group_alive

__all__ = ["SECRET", "FlakySubmit", "PlatformContract", "PlatformHarness", "pid_gone"]

#: The secret value the secret tests put in the driver's environment.
SECRET = "tao-test-secret-value-7f3a9"


def pid_gone(handle: JobHandle) -> bool:
    """Default :attr:`PlatformHarness.job_gone`: the process group named by
    ``handle.data["pgid"]`` (or ``"pid"``) on this machine has no live process."""

    for key in ("pgid", "pid"):
        if str(handle.data.get(key, "")).isdigit():
            return not process_group_alive(int(handle.data[key]))
    raise NotImplementedError(
        f"cannot tell whether job {handle.job_id} is gone: its handle has no pgid/pid; "
        "give PlatformHarness(job_gone=...)")


class FlakySubmit(LocalBackend):
    """The real :class:`~tao_automl.platforms.local.LocalBackend` whose first
    ``failures`` submissions raise :class:`~tao_automl.errors.TransientSubmitError`
    (an API that is busy for a while); ``submits`` counts every call."""

    def __init__(self, failures: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.failures, self.submits = failures, 0

    def submit(self, request: JobRequest) -> JobHandle:
        self.submits += 1
        if self.submits <= self.failures:
            raise TransientSubmitError(f"platform busy (submit {self.submits} of {self.failures} refused)")
        return super().submit(request)


@attrs.define(kw_only=True)
class PlatformHarness:
    """How the contract drives one backend configuration.

    Attributes:
        make: builds a *fresh* backend instance (called several times: the
            reattach test uses a second instance, as a restarted driver does).
        job_gone: ``handle -> bool``, true once nothing of the job runs any
            more (default :func:`pid_gone`).
        prepare: adjusts each request before submit (add an ``image``, a
            ``cwd``, ...); the default leaves it as the contract built it.
        prompt_s: how soon ``wait`` must return after the job's process exits.
        start_s: how long a job may take to start running.
        python: the Python interpreter command on the job's PATH.
        backend_files: the backend keeps its own files under
            ``<results_dir>/.tao_automl`` (checked for secret values).
        delivers_secrets: the backend copies ``secret_env`` values from the
            driver's environment (a missing one is a ``CredentialError``).
            False for a platform that injects secrets itself (Brev).
        name: shown in failure messages.
    """

    make: Callable[[], PlatformBackend]
    job_gone: Callable[[JobHandle], bool] = pid_gone
    prepare: Callable[[JobRequest], JobRequest] = lambda request: request
    prompt_s: float = 0.5
    start_s: float = 2.0
    python: str = "python"
    backend_files: bool = True
    delivers_secrets: bool = True
    name: str = "backend"

    def request(self, **kwargs) -> JobRequest:
        return self.prepare(JobRequest(**kwargs))

    def wait_running(self, backend, handle: JobHandle, path: Path | None = None) -> None:
        """Until ``status`` says RUNNING (and ``path`` exists); fails after ``start_s``."""
        deadline = time.monotonic() + self.start_s
        while time.monotonic() < deadline:
            st = backend.status(handle)
            assert not st.terminal, st
            if st.state is JobState.RUNNING and (path is None or path.exists()):
                return
            time.sleep(0.05)
        pytest.fail(f"{self.name}: job did not start within {self.start_s}s")


class PlatformContract:
    """Inherit and override the ``platform_harness`` fixture (see the module doc)."""

    @pytest.fixture
    def platform_harness(self) -> PlatformHarness:
        raise NotImplementedError(
            "override the platform_harness fixture in your PlatformContract subclass: "
            "return PlatformHarness(make=lambda: YourBackend(...))")

    def test_is_a_platform_backend(self, platform_harness):
        assert isinstance(platform_harness.make(), PlatformBackend)

    def test_success_with_exit_code_zero_and_artifacts(self, platform_harness, tmp_path):
        h = platform_harness
        b = h.make()
        job = b.submit(h.request(name="ok", results_dir=str(tmp_path),
                                 command="mkdir -p ckpt && echo 1 > ckpt/model_epoch_001.pth && "
                                         "printf 'done\\n' > status.json && echo finished"))
        st = b.wait(job, 60)
        assert st.state is JobState.SUCCEEDED and st.exit_code == 0 and st.reason is None, st
        assert b.list_artifacts(job) == ["ckpt/model_epoch_001.pth", "status.json"]
        assert b.read_artifact(job, "status.json") == b"done\n"
        assert "finished" in b.logs(job)
        with pytest.raises(PlatformError, match="missing.txt"):
            b.read_artifact(job, "missing.txt")
        with pytest.raises(PlatformError, match="escapes"):
            b.read_artifact(job, "../outside")
        b.cleanup(job)
        assert (tmp_path / "status.json").exists()  # cleanup never deletes results

    def test_failure_carries_exit_code_and_classified_reason(self, platform_harness, tmp_path):
        h = platform_harness
        b = h.make()
        job = b.submit(h.request(name="bad", results_dir=str(tmp_path),
                                 command="echo 'FileNotFoundError: /data/train/images' >&2; exit 3"))
        st = b.wait(job, 60)
        assert st.state is JobState.FAILED, st
        assert st.exit_code == 3
        assert st.reason is FailureReason.DATA
        assert "/data/train/images" in st.message

    def test_command_not_found_is_image_reason(self, platform_harness, tmp_path):
        h = platform_harness
        b = h.make()
        job = b.submit(h.request(name="nocmd", results_dir=str(tmp_path),
                                 command="definitely-not-a-tao-command --train"))
        st = b.wait(job, 60)
        assert (st.state, st.exit_code, st.reason) == (JobState.FAILED, 127, FailureReason.IMAGE), st

    def test_argv_python_script(self, platform_harness, tmp_path):
        h = platform_harness
        b = h.make()
        script = tmp_path / "train.py"
        script.write_text("import sys, pathlib\n"
                          "pathlib.Path('args.txt').write_text(' '.join(sys.argv[1:]))\n")
        job = b.submit(h.request(name="argv", results_dir=str(tmp_path),
                                 argv=[h.python, str(script), "--epochs", "2"]))
        st = b.wait(job, 60)
        assert st.state is JobState.SUCCEEDED, (st, b.logs(job))
        assert b.read_artifact(job, "args.txt") == b"--epochs 2"

    def test_logs_with_since_offsets(self, platform_harness, tmp_path):
        h = platform_harness
        b = h.make()
        job = b.submit(h.request(name="logs", results_dir=str(tmp_path),
                                 command="for i in 1 2 3; do echo line$i; done; echo err >&2"))
        assert b.wait(job, 60).succeeded
        full = b.logs(job)
        assert "line1\nline2\nline3\n" in full and "err" in full
        offset = full.index("line2")
        assert b.logs(job, since=offset) == full[offset:]
        assert b.logs(job, since=len(full)) == ""

    def test_cancel_kills_the_job_and_is_idempotent(self, platform_harness, tmp_path):
        h = platform_harness
        b = h.make()
        marker = tmp_path / "started"
        job = b.submit(h.request(name="cancel", results_dir=str(tmp_path),
                                 command="(sleep 300) & touch started; sleep 300; wait"))
        h.wait_running(b, job, marker)
        b.cancel(job)
        st = b.wait(job, 30)
        assert st.state is JobState.CANCELED and st.reason is FailureReason.CANCELED, st
        deadline = time.monotonic() + 15
        while not h.job_gone(job) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert h.job_gone(job), f"{h.name}: job {job.job_id} still runs after cancel"
        b.cancel(job)  # idempotent
        assert b.status(job).state is JobState.CANCELED

    def test_timeout_fails_with_timeout_reason(self, platform_harness, tmp_path):
        h = platform_harness
        b = h.make()
        t0 = time.monotonic()
        job = b.submit(h.request(name="slow", results_dir=str(tmp_path), command="sleep 120",
                                 timeout_s=2))
        st = b.wait(job, 60)
        assert st.state is JobState.FAILED and st.reason is FailureReason.TIMEOUT, st
        assert time.monotonic() - t0 < 2 + 2 + h.start_s  # limit + grace + start
        deadline = time.monotonic() + 15
        while not h.job_gone(job) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert h.job_gone(job), f"{h.name}: job {job.job_id} still runs after its time limit"

    def test_handle_roundtrip_and_reattach_from_fresh_backend(self, platform_harness, tmp_path):
        h = platform_harness
        b = h.make()
        job = b.submit(h.request(name="reattach", results_dir=str(tmp_path),
                                 command="touch started; sleep 2; echo done > out.txt"))
        h.wait_running(b, job, tmp_path / "started")
        again = JobHandle.from_dict(json.loads(json.dumps(job.to_dict())))
        assert again == job
        fresh = h.make()
        assert fresh.status(again).state is JobState.RUNNING
        st = fresh.wait(again, 60)
        assert st.state is JobState.SUCCEEDED, st
        assert fresh.read_artifact(again, "out.txt") == b"done\n"

    def test_find_by_name_from_a_fresh_backend(self, platform_harness, tmp_path, monkeypatch):
        """Optional ``find(name, results_dir)``: a restarted driver finds a job
        whose handle never reached the ledger by the name it was submitted
        under; the handle found works (status, masked logs, cancel)."""
        h = platform_harness
        if getattr(h.make(), "find", None) is None:
            pytest.skip(f"{h.name} has no find: a job whose submit a crash cut short is logged, not settled")
        monkeypatch.setenv("TAO_TEST_SECRET", SECRET)
        b = h.make()
        name = f"findme-{uuid.uuid4().hex[:6]}"
        job = b.submit(h.request(name=name, results_dir=str(tmp_path), secret_env=("TAO_TEST_SECRET",),
                                 command='echo "token=$TAO_TEST_SECRET"; touch started; sleep 300'))
        h.wait_running(b, job, tmp_path / "started")
        fresh = h.make()
        found = fresh.find(name, str(tmp_path))
        assert [f.job_id for f in found] == [job.job_id], found
        assert fresh.find(name + "-other", str(tmp_path)) == []
        got = found[0]
        assert fresh.status(got).state is JobState.RUNNING
        deadline = time.monotonic() + 10
        while "token=" not in fresh.logs(got) and time.monotonic() < deadline:
            time.sleep(0.1)
        logs = fresh.logs(got)
        assert SECRET not in logs and "token=***" in logs, logs
        assert SECRET not in json.dumps(got.to_dict())
        fresh.cancel(got)
        st = fresh.wait(got, 30)
        assert st.state is JobState.CANCELED, st
        deadline = time.monotonic() + 15
        while not h.job_gone(job) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert h.job_gone(job), f"{h.name}: found job {job.job_id} still runs after cancel"

    def test_secret_reaches_job_but_no_backend_file(self, platform_harness, tmp_path, monkeypatch):
        h = platform_harness
        monkeypatch.setenv("TAO_TEST_SECRET", SECRET)
        b = h.make()
        job = b.submit(h.request(
            name="secret", results_dir=str(tmp_path), env={"PLAIN": "visible"},
            secret_env=("TAO_TEST_SECRET",),
            command='printf %s "$TAO_TEST_SECRET" > got.txt; '
                    'printf %s "$PLAIN" > plain.txt; echo "token=$TAO_TEST_SECRET"'))
        assert b.wait(job, 60).succeeded
        assert b.read_artifact(job, "got.txt") == SECRET.encode()
        assert b.read_artifact(job, "plain.txt") == b"visible"
        assert SECRET not in json.dumps(job.to_dict())
        logs = b.logs(job)
        assert SECRET not in logs and "token=***" in logs, logs
        written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "got.txt"
                   and p.name != "job.log"]  # job.log holds what the job itself printed
        if h.backend_files:
            assert any(".tao_automl" in p.parts for p in written)  # the backend's own files
        for p in written:
            assert SECRET not in p.read_text(errors="replace"), p

    def test_missing_secret_is_a_credential_error(self, platform_harness, tmp_path, monkeypatch):
        h = platform_harness
        if not h.delivers_secrets:
            pytest.skip(f"{h.name} does not send secret values (the platform injects them)")
        monkeypatch.delenv("TAO_TEST_MISSING", raising=False)
        with pytest.raises(CredentialError, match="TAO_TEST_MISSING"):
            h.make().submit(h.request(name="x", results_dir=str(tmp_path), command="true",
                                      secret_env=("TAO_TEST_MISSING",)))

    def test_wait_returns_promptly_after_exit(self, platform_harness, tmp_path):
        h = platform_harness
        b = h.make()
        job = b.submit(h.request(name="quick", results_dir=str(tmp_path), command="sleep 0.5"))
        h.wait_running(b, job)
        t0 = time.monotonic()
        st = b.wait(job, 30)
        assert st.succeeded, st
        assert time.monotonic() - t0 < 0.5 + h.prompt_s

    def test_wait_honours_its_timeout_while_running(self, platform_harness, tmp_path):
        h = platform_harness
        b = h.make()
        job = b.submit(h.request(name="long", results_dir=str(tmp_path), command="sleep 60"))
        t0 = time.monotonic()
        st = b.wait(job, 0.3)
        assert not st.terminal, st
        assert time.monotonic() - t0 < 0.3 + h.prompt_s
        b.cancel(job)
        assert os.path.isdir(tmp_path)
