"""BrevBackend with a fake ``brev`` executable on PATH that runs
``brev exec INSTANCE COMMAND`` locally (so jobs really run); the platform
contract suite runs through the same fake."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from tao_automl.errors import PlatformUnavailableError, SubmitError
from tao_automl.platforms import BrevBackend, FailureReason, JobRequest, JobState
from tao_automl.testing.platform import PlatformContract, PlatformHarness


def install_fake_brev(root: Path, monkeypatch) -> Path:
    """A ``brev`` on PATH under ``root/bin``; returns the file its calls are logged to."""
    bindir = root / "bin"
    bindir.mkdir()
    log = root / "brev-calls.log"
    script = bindir / "brev"
    script.write_text(f"""#!/bin/bash
echo "$1 $2" >> {log}
[ "$1" = exec ] || {{ echo "unknown command" >&2; exit 1; }}
[ "$2" = my-gpu ] || {{ echo "instance $2 not found" >&2; exit 1; }}
exec bash -c "$3"
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return log


@pytest.fixture
def fake_brev(tmp_path, monkeypatch):
    return install_fake_brev(tmp_path, monkeypatch)


def test_job_runs_through_brev_exec(fake_brev, tmp_path):
    b = BrevBackend(instance="my-gpu", workdir=str(tmp_path / "jobs"), gpu_count=2)
    h = b.submit(JobRequest(name="t", results_dir=str(tmp_path / "res"),
                            command="printf %s $CUDA_VISIBLE_DEVICES > cvd; echo hi; "
                                    "mkdir -p ck; echo w > ck/model.pth"))
    st = b.wait(h, 20)
    assert st.succeeded and st.exit_code == 0
    assert b.logs(h) == "hi\n" and b.logs(h, since=1) == "i\n"
    assert b.list_artifacts(h) == ["ck/model.pth", "cvd"]
    assert b.read_artifact(h, "cvd") == b"0,1"
    assert fake_brev.read_text().splitlines()[0] == "exec my-gpu"


def test_failure_timeout_and_cancel(fake_brev, tmp_path):
    b = BrevBackend(instance="my-gpu", workdir=str(tmp_path / "jobs"), grace_period_s=1)
    h = b.submit(JobRequest(name="f", results_dir=str(tmp_path),
                            command="echo 'CUDA out of memory' >&2; exit 1"))
    st = b.wait(h, 20)
    assert (st.state, st.reason, st.exit_code) == (JobState.FAILED, FailureReason.OOM, 1)
    h = b.submit(JobRequest(name="t", results_dir=str(tmp_path), command="sleep 60", timeout_s=1))
    st = b.wait(h, 20)
    assert (st.state, st.reason) == (JobState.FAILED, FailureReason.TIMEOUT)
    h = b.submit(JobRequest(name="c", results_dir=str(tmp_path), command="sleep 60"))
    time.sleep(0.3)
    assert b.status(h).state is JobState.RUNNING
    b.cancel(h)
    st = b.wait(h, 10)
    assert st.state is JobState.CANCELED
    with pytest.raises(ProcessLookupError):
        os.kill(h.data["pid"], 0)


def test_errors(fake_brev, tmp_path, monkeypatch):
    with pytest.raises(SubmitError, match="instance"):
        BrevBackend(workdir=str(tmp_path)).submit(JobRequest(name="x", command="true"))
    with pytest.raises(SubmitError, match="not found"):
        BrevBackend(instance="other", workdir=str(tmp_path)).submit(
            JobRequest(name="x", command="true"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PlatformUnavailableError, match="brev"):
        BrevBackend(instance="my-gpu").submit(JobRequest(name="x", command="true"))
    assert not Path(tmp_path / "empty").exists()


class TestBrevPlatformContract(PlatformContract):
    @pytest.fixture
    def platform_harness(self, tmp_path_factory, monkeypatch):
        install_fake_brev(tmp_path_factory.mktemp("brev-cli"), monkeypatch)
        jobs = str(tmp_path_factory.mktemp("brev-jobs"))  # the instance's control folders
        # Brev injects secrets into the instance itself: the backend sends none (the fake
        # instance inherits this environment), so a missing one is not the driver's error
        return PlatformHarness(
            name="brev (fake CLI)", make=lambda: BrevBackend(instance="my-gpu", workdir=jobs,
                                                             grace_period_s=1),
            prompt_s=5.0, start_s=3.0, backend_files=False, delivers_secrets=False)

