"""LocalBackend specifics: survive a driver restart, pid-reuse guard, GPUs,
kwargs, classifier and get_backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tao_automl.errors import JobNotFoundError, SettingsError
from tao_automl.platforms import (
    BACKENDS,
    FailureReason,
    JobHandle,
    JobRequest,
    JobState,
    LocalBackend,
    get_backend,
)
from tao_automl.platforms.classify import classify_failure
from tao_automl.platforms.local import process_group_alive

DRIVER = """
import json, sys
from tao_automl.platforms import LocalBackend, JobRequest
b = LocalBackend(grace_period_s=1)
h = b.submit(JobRequest(name="survivor", results_dir=sys.argv[1],
                        command="sleep 1.5; echo out > out.txt; exit 5"))
print(json.dumps(h.to_dict()))
"""


def test_job_survives_driver_death_and_exit_code_is_recovered(tmp_path):
    res = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path)], capture_output=True,
                         text=True, check=True, timeout=30)
    handle = JobHandle.from_dict(json.loads(res.stdout))
    b = LocalBackend()
    assert b.status(handle).state is JobState.RUNNING  # driver gone, job alive
    t0 = time.monotonic()
    st = b.wait(handle, 20)  # not our child: pidfd / polling path
    assert time.monotonic() - t0 < 3
    assert (st.state, st.exit_code, st.reason) == (JobState.FAILED, 5, FailureReason.PROGRAM)
    assert (tmp_path / "out.txt").read_text() == "out\n"


def test_pid_reuse_is_not_mistaken_for_the_job(tmp_path):
    b = LocalBackend()
    h = b.submit(JobRequest(name="short", results_dir=str(tmp_path), command="true"))
    assert b.wait(h, 10).succeeded
    # same pid, other start time: the job is not "running"; status comes from the exit file
    forged = JobHandle.from_dict({**h.to_dict(), "data": {**h.data, "pid": os.getpid(),
                                                         "start_time": "1"}})
    assert b.status(forged).succeeded


def test_vanished_job_without_exit_record_is_infrastructure(tmp_path):
    b = LocalBackend()
    h = b.submit(JobRequest(name="x", results_dir=str(tmp_path), command="true"))
    b.wait(h, 10)
    (tmp_path / ".tao_automl" / os.path.basename(h.data["control_dir"]) / "exitcode").unlink()
    st = b.status(h)
    assert (st.state, st.reason) == (JobState.FAILED, FailureReason.INFRASTRUCTURE)


def test_unknown_handle_raises_job_not_found(tmp_path):
    b = LocalBackend()
    with pytest.raises(JobNotFoundError):
        b.status(JobHandle(backend="local", job_id="1", data={}))
    with pytest.raises(JobNotFoundError):
        b.status(JobHandle(backend="local", job_id="1", data={"control_dir": str(tmp_path / "no")}))


def test_cuda_visible_devices_and_python_kwarg(tmp_path):
    b = LocalBackend(gpu_ids=[3, 5, 7], python=sys.executable)
    h = b.submit(JobRequest(name="g", results_dir=str(tmp_path), gpu_count=2,
                            argv=["{python}", "-c", "import os; open('cvd','w').write("
                                  "os.environ['CUDA_VISIBLE_DEVICES'])"]))
    assert b.wait(h, 10).succeeded
    assert (tmp_path / "cvd").read_text() == "3,5"
    h = b.submit(JobRequest(name="g2", results_dir=str(tmp_path), gpu_ids=(1,),
                            command="printf %s $CUDA_VISIBLE_DEVICES > cvd2"))
    assert b.wait(h, 10).succeeded and (tmp_path / "cvd2").read_text() == "1"


def test_sigterm_ignoring_job_is_killed_after_grace(tmp_path):
    b = LocalBackend(grace_period_s=0.5)
    h = b.submit(JobRequest(name="stubborn", results_dir=str(tmp_path),
                            command="trap '' TERM; touch started; while :; do sleep 0.1; done"))
    while not (tmp_path / "started").exists():
        time.sleep(0.02)
    t0 = time.monotonic()
    b.cancel(h)
    assert time.monotonic() - t0 < 3
    assert b.status(h).state is JobState.CANCELED
    assert not process_group_alive(h.data["pgid"])


def test_job_gets_default_sigterm_and_its_own_argv(tmp_path):
    # The wrapper ignores SIGTERM itself (to record the exit code); the job must
    # not inherit that, or a cancel would always wait out the grace period.
    b = LocalBackend()
    code = "import signal, sys; print(signal.getsignal(signal.SIGTERM).name, sys.argv[1:])"
    h = b.submit(JobRequest(name="sig", results_dir=str(tmp_path), argv=["python", "-c", code, "a b", "--x"]))
    assert b.wait(h, 20).succeeded
    assert b.logs(h).strip() == "SIG_DFL ['a b', '--x']"


def test_wait_returns_running_on_timeout_then_the_result(tmp_path):
    b = LocalBackend()
    h = b.submit(JobRequest(name="w", results_dir=str(tmp_path), command="sleep 0.6; exit 3"))
    assert b.wait(h, 0.05).state is JobState.RUNNING
    st = b.wait(h, 20)
    assert (st.state, st.exit_code) == (JobState.FAILED, 3)


def test_log_dir_and_remote_results_dir(tmp_path):
    b = LocalBackend(log_dir=str(tmp_path / "logs"))
    h = b.submit(JobRequest(name="ld", results_dir=str(tmp_path / "res"), command="echo hi"))
    assert b.wait(h, 10).succeeded
    assert h.data["log_path"].startswith(str(tmp_path / "logs"))
    assert b.list_artifacts(h) == []


def test_unknown_kwarg_is_settings_error_listing_accepted():
    with pytest.raises(SettingsError) as err:
        get_backend("local", gpu=2)
    assert "gpu" in str(err.value) and "grace_period_s" in str(err.value)
    for name in ("slurm", "docker", "kubernetes", "brev"):
        with pytest.raises(SettingsError, match="bogus"):
            get_backend(name, bogus=1)


def test_get_backend_names_objects_and_gpu_count():
    assert isinstance(get_backend(None), LocalBackend)
    assert set(BACKENDS) >= {"local", "slurm", "docker", "kubernetes", "k8s", "brev"}
    for name in BACKENDS:
        assert get_backend(name, gpu_count=2) is not None
    b = LocalBackend()
    assert get_backend(b, grace_period_s=3) is b and b.grace_period_s == 3

    class Minimal:
        name = "mine"

        def submit(self, r): ...
        def status(self, h): ...
        def wait(self, h, timeout): ...
        def logs(self, h, since=0): ...
        def cancel(self, h): ...
        def list_artifacts(self, h): ...
        def read_artifact(self, h, p): ...
        def cleanup(self, h): ...

    m = Minimal()
    assert get_backend(m) is m
    with pytest.raises(SettingsError, match="configure"):
        get_backend(m, gpu_count=1)
    with pytest.raises(SettingsError, match="unknown platform"):
        get_backend("lsf")
    with pytest.raises(SettingsError):
        get_backend(42)


def test_import_does_not_pull_sdks():
    code = ("import sys, tao_automl.platforms; "
            "print([m for m in ('docker','kubernetes','ray','wandb') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("code", "log", "kw", "reason"),
    [
        (1, "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", {}, FailureReason.OOM),
        (137, "Killed process 1234 (python) total-vm", {}, FailureReason.OOM),
        (137, "", {}, FailureReason.PROGRAM),
        (0, "", {"oom_killed": True}, FailureReason.OOM),
        (1, "MemoryError", {}, FailureReason.OOM),
        (1, "ModuleNotFoundError: No module named 'nvidia_tao_pytorch'", {}, FailureReason.IMAGE),
        (127, "bash: tao: command not found", {}, FailureReason.IMAGE),
        (127, "", {}, FailureReason.IMAGE),
        (1, "FileNotFoundError: [Errno 2] No such file or directory: '/data/x'", {}, FailureReason.DATA),
        (1, "botocore.exceptions.NoCredentialsError: Unable to locate credentials", {},
         FailureReason.CREDENTIAL),
        (1, "PermissionError: [Errno 13] Permission denied: '/results'", {}, FailureReason.CREDENTIAL),
        (1, "omegaconf.errors.ConfigKeyError: Key 'lr' not in 'TrainConfig'", {}, FailureReason.SPEC),
        (1, "yaml.scanner.ScannerError: mapping values are not allowed here", {}, FailureReason.SPEC),
        (1, "NCCL error in: ... unhandled system error", {}, FailureReason.INFRASTRUCTURE),
        (1, "ValueError: bad shape", {}, FailureReason.PROGRAM),
        (143, "", {"timed_out": True}, FailureReason.TIMEOUT),
        (1, "", {"platform_reason": FailureReason.PREEMPTED}, FailureReason.PREEMPTED),
    ],
)
def test_classifier(code, log, kw, reason):
    got, msg = classify_failure(code, log, **kw)
    assert got is reason, msg
    assert msg
