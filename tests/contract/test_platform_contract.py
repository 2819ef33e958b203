"""One behavioural contract for every platform backend (see conftest.backend)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tao_automl.errors import CredentialError, PlatformError
from tao_automl.platforms import (
    FailureReason,
    JobHandle,
    JobRequest,
    JobState,
    PlatformBackend,
)

SECRET = "tao-test-secret-value-7f3a9"


def _wait_running(h, backend, handle, path: Path | None = None):
    deadline = time.monotonic() + h.start_s
    while time.monotonic() < deadline:
        st = backend.status(handle)
        assert not st.terminal, st
        if st.state is JobState.RUNNING and (path is None or path.exists()):
            return
        time.sleep(0.05)
    pytest.fail(f"job did not start within {h.start_s}s")


def test_is_a_platform_backend(backend):
    assert isinstance(backend.make(), PlatformBackend)


def test_success_with_exit_code_zero_and_artifacts(backend, tmp_path):
    b = backend.make()
    h = b.submit(JobRequest(name="ok", results_dir=str(tmp_path),
                            command="mkdir -p ckpt && echo 1 > ckpt/model_epoch_001.pth && "
                                    "printf 'done\\n' > status.json && echo finished"))
    st = b.wait(h, 60)
    assert st.state is JobState.SUCCEEDED and st.exit_code == 0 and st.reason is None
    assert b.list_artifacts(h) == ["ckpt/model_epoch_001.pth", "status.json"]
    assert b.read_artifact(h, "status.json") == b"done\n"
    assert "finished" in b.logs(h)
    with pytest.raises(PlatformError, match="missing.txt"):
        b.read_artifact(h, "missing.txt")
    with pytest.raises(PlatformError, match="escapes"):
        b.read_artifact(h, "../outside")
    b.cleanup(h)
    assert (tmp_path / "status.json").exists()  # cleanup never deletes results


def test_failure_carries_exit_code_and_classified_reason(backend, tmp_path):
    b = backend.make()
    h = b.submit(JobRequest(name="bad", results_dir=str(tmp_path),
                            command="echo 'FileNotFoundError: /data/train/images' >&2; exit 3"))
    st = b.wait(h, 60)
    assert st.state is JobState.FAILED
    assert st.exit_code == 3
    assert st.reason is FailureReason.DATA
    assert "/data/train/images" in st.message


def test_command_not_found_is_image_reason(backend, tmp_path):
    b = backend.make()
    h = b.submit(JobRequest(name="nocmd", results_dir=str(tmp_path),
                            command="definitely-not-a-tao-command --train"))
    st = b.wait(h, 60)
    assert (st.state, st.exit_code, st.reason) == (JobState.FAILED, 127, FailureReason.IMAGE)


def test_argv_python_script(backend, tmp_path):
    b = backend.make()
    script = tmp_path / "train.py"
    script.write_text("import sys, pathlib\npathlib.Path('args.txt').write_text(' '.join(sys.argv[1:]))\n")
    argv = ["python3", str(script), "--epochs", "2"] if backend.kind == "slurm" \
        else ["python", str(script), "--epochs", "2"]
    h = b.submit(JobRequest(name="argv", results_dir=str(tmp_path), argv=argv))
    assert b.wait(h, 60).state is JobState.SUCCEEDED
    assert b.read_artifact(h, "args.txt") == b"--epochs 2"


def test_logs_with_since_offsets(backend, tmp_path):
    b = backend.make()
    h = b.submit(JobRequest(name="logs", results_dir=str(tmp_path),
                            command="for i in 1 2 3; do echo line$i; done; echo err >&2"))
    assert b.wait(h, 60).succeeded
    full = b.logs(h)
    assert "line1\nline2\nline3\n" in full and "err" in full
    offset = full.index("line2")
    assert b.logs(h, since=offset) == full[offset:]
    assert b.logs(h, since=len(full)) == ""


def test_cancel_kills_the_job_and_is_idempotent(backend, tmp_path):
    b = backend.make()
    marker = tmp_path / "started"
    h = b.submit(JobRequest(name="cancel", results_dir=str(tmp_path),
                            command="(sleep 300) & touch started; sleep 300; wait"))
    _wait_running(backend, b, h, marker)
    b.cancel(h)
    st = b.wait(h, 30)
    assert st.state is JobState.CANCELED and st.reason is FailureReason.CANCELED
    deadline = time.monotonic() + 15
    while not backend.job_gone(h) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend.job_gone(h)
    b.cancel(h)  # idempotent
    assert b.status(h).state is JobState.CANCELED


def test_timeout_fails_with_timeout_reason(backend, tmp_path):
    b = backend.make()
    t0 = time.monotonic()
    h = b.submit(JobRequest(name="slow", results_dir=str(tmp_path), command="sleep 120",
                            timeout_s=2))
    st = b.wait(h, 60)
    assert st.state is JobState.FAILED and st.reason is FailureReason.TIMEOUT
    assert time.monotonic() - t0 < 2 + 2 + backend.start_s  # limit + grace + start


def test_handle_roundtrip_and_reattach_from_fresh_backend(backend, tmp_path):
    b = backend.make()
    h = b.submit(JobRequest(name="reattach", results_dir=str(tmp_path),
                            command="touch started; sleep 2; echo done > out.txt"))
    _wait_running(backend, b, h, tmp_path / "started")
    h2 = JobHandle.from_dict(json.loads(json.dumps(h.to_dict())))
    assert h2 == h
    fresh = backend.make()
    assert fresh.status(h2).state is JobState.RUNNING
    st = fresh.wait(h2, 60)
    assert st.state is JobState.SUCCEEDED
    assert fresh.read_artifact(h2, "out.txt") == b"done\n"


def test_secret_reaches_job_but_no_backend_file(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("TAO_TEST_SECRET", SECRET)
    b = backend.make()
    h = b.submit(JobRequest(name="secret", results_dir=str(tmp_path), env={"PLAIN": "visible"},
                            secret_env=("TAO_TEST_SECRET",),
                            command='printf %s "$TAO_TEST_SECRET" > got.txt; '
                                    'printf %s "$PLAIN" > plain.txt; echo "token=$TAO_TEST_SECRET"'))
    assert b.wait(h, 60).succeeded
    assert b.read_artifact(h, "got.txt") == SECRET.encode()
    assert b.read_artifact(h, "plain.txt") == b"visible"
    assert SECRET not in json.dumps(h.to_dict())
    assert SECRET not in b.logs(h) and "token=***" in b.logs(h)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "got.txt"
               and p.name != "job.log"]  # job.log holds what the job itself printed
    assert any(".tao_automl" in p.parts for p in written)  # the backend's own files
    for p in written:
        assert SECRET not in p.read_text(errors="replace"), p


def test_missing_secret_is_a_credential_error(backend, tmp_path, monkeypatch):
    monkeypatch.delenv("TAO_TEST_MISSING", raising=False)
    with pytest.raises(CredentialError, match="TAO_TEST_MISSING"):
        backend.make().submit(JobRequest(name="x", results_dir=str(tmp_path), command="true",
                                         secret_env=("TAO_TEST_MISSING",)))


def test_wait_returns_promptly_after_exit(backend, tmp_path):
    b = backend.make()
    h = b.submit(JobRequest(name="quick", results_dir=str(tmp_path), command="sleep 0.5"))
    _wait_running(backend, b, h)
    t0 = time.monotonic()
    st = b.wait(h, 30)
    assert st.succeeded
    assert time.monotonic() - t0 < 0.5 + backend.prompt_s


def test_wait_honours_its_timeout_while_running(backend, tmp_path):
    b = backend.make()
    h = b.submit(JobRequest(name="long", results_dir=str(tmp_path), command="sleep 60"))
    t0 = time.monotonic()
    st = b.wait(h, 0.3)
    assert not st.terminal
    assert time.monotonic() - t0 < 0.3 + backend.prompt_s
    b.cancel(h)
    assert os.path.isdir(tmp_path)
