"""SlurmBackend at the CLI boundary: fake sbatch/sacct/squeue/scontrol/scancel
executables on PATH, plus the SLURM state and ExitCode parsers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tao_automl.errors import PlatformUnavailableError, SubmitError, TransientSubmitError
from tao_automl.platforms import FailureReason, JobRequest, JobState, SlurmBackend
from tao_automl.platforms._slurm_state import map_state, parse_exit_code, parse_scontrol


def _tool(bindir: Path, name: str, body: str) -> None:
    p = bindir / name
    p.write_text("#!/bin/bash\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fakebin(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.log"))
    _tool(bindir, "sbatch", 'echo "sbatch $*" >> "$FAKE_LOG"; env > "$FAKE_LOG.env"; echo "4242;cluster"')
    _tool(bindir, "squeue", "exit 0")
    _tool(bindir, "scontrol", "exit 1")
    _tool(bindir, "scancel", 'echo "scancel $*" >> "$FAKE_LOG"')
    return bindir


@pytest.mark.parametrize(
    ("raw", "state", "reason"),
    [
        ("PENDING", JobState.PENDING, None), ("CONFIGURING", JobState.RUNNING, None),
        ("RUNNING", JobState.RUNNING, None), ("COMPLETING", JobState.RUNNING, None),
        ("COMPLETED", JobState.SUCCEEDED, None), ("FAILED", JobState.FAILED, None),
        ("CANCELLED by 0", JobState.CANCELED, FailureReason.CANCELED),
        ("TIMEOUT", JobState.FAILED, FailureReason.TIMEOUT),
        ("PREEMPTED", JobState.FAILED, FailureReason.PREEMPTED),
        ("NODE_FAIL", JobState.FAILED, FailureReason.INFRASTRUCTURE),
        ("OUT_OF_MEMORY", JobState.FAILED, FailureReason.OOM),
        ("BOOT_FAIL", JobState.FAILED, FailureReason.INFRASTRUCTURE),
        ("DEADLINE", JobState.FAILED, FailureReason.TIMEOUT),
        ("REQUEUED", JobState.PENDING, None), ("RESIZING", JobState.RUNNING, None),
        ("REVOKED", JobState.FAILED, FailureReason.INFRASTRUCTURE),
        ("SUSPENDED", JobState.RUNNING, None), ("STOPPED", JobState.RUNNING, None),
        ("SPECIAL_EXIT", JobState.FAILED, None), ("RUNNING+", JobState.RUNNING, None),
        ("WEIRD", JobState.UNKNOWN, None),
    ],
)
def test_state_vocabulary(raw, state, reason):
    assert map_state(raw) == (state, reason)


def test_exit_code_and_scontrol_parsing():
    assert parse_exit_code("0:0") == 0
    assert parse_exit_code("3:0") == 3
    assert parse_exit_code("0:9") == 137
    assert parse_exit_code("") is None and parse_exit_code("x") is None
    f = parse_scontrol("JobId=7 JobName=a b JobState=FAILED Reason=NonZeroExitCode ExitCode=2:0\n")
    assert (f["JobId"], f["JobState"], f["ExitCode"]) == ("7", "FAILED", "2:0")


def test_submit_writes_script_and_passes_secret_by_env_only(fakebin, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "tok-123456")
    b = SlurmBackend(partition="gpu", account="proj", qos="high", gpu_count=2, nodes=1,
                     extra_sbatch_args=["--exclusive"])
    h = b.submit(JobRequest(name="trial 1", results_dir=str(tmp_path / "r"), command="train.sh",
                            env={"A": "b c"}, secret_env=("MY_TOKEN",), timeout_s=90))
    assert h.job_id == "4242"
    script = Path(h.data["script"]).read_text()
    for needle in ("#SBATCH --partition=gpu", "#SBATCH --account=proj", "#SBATCH --qos=high",
                   "#SBATCH --gpus-per-node=2", "#SBATCH --time=3", "export A='b c'",
                   "timeout --kill-after=10 90 bash -c train.sh", f"--output={h.data['control_dir']}"):
        assert needle in script, needle
    assert "tok-123456" not in script
    calls = Path(os.environ["FAKE_LOG"]).read_text()
    assert "sbatch --parsable --exclusive" in calls and "tok-123456" not in calls
    assert "MY_TOKEN=tok-123456" in Path(os.environ["FAKE_LOG"] + ".env").read_text()


def test_status_uses_sacct_when_accounting_works(fakebin, tmp_path):
    _tool(fakebin, "sacct", 'echo "4242|OUT_OF_MEMORY|0:125|None"')
    b = SlurmBackend()
    h = b.submit(JobRequest(name="oom", results_dir=str(tmp_path), command="x"))
    st = b.status(h)
    assert (st.state, st.reason) == (JobState.FAILED, FailureReason.OOM)
    assert "sacct" in st.message


def test_status_falls_back_to_squeue_then_scontrol_then_exit_file(fakebin, tmp_path):
    _tool(fakebin, "sacct", 'echo "Slurm accounting storage is disabled" >&2; exit 1')
    _tool(fakebin, "squeue", 'echo "4242|PENDING|Priority"')
    b = SlurmBackend()
    h = b.submit(JobRequest(name="p", results_dir=str(tmp_path), command="x"))
    st = b.status(h)
    assert st.state is JobState.PENDING and "Priority" in st.message
    _tool(fakebin, "squeue", "exit 0")
    _tool(fakebin, "scontrol", 'echo "JobId=4242 JobState=PREEMPTED Reason=None ExitCode=0:15"')
    st = b.status(h)
    assert (st.state, st.reason, st.exit_code) == (JobState.FAILED, FailureReason.PREEMPTED, 143)
    _tool(fakebin, "scontrol", 'echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1')
    assert b.status(h).state is JobState.UNKNOWN
    Path(h.data["control_dir"], "exitcode").write_text("0\n")
    assert b.status(h).state is JobState.SUCCEEDED


@pytest.mark.parametrize(
    ("stderr", "rc", "exc", "needle"),
    [
        ("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
         1, TransientSubmitError, "Socket timed out"),
        ("sbatch: error: Unable to contact slurm controller (connect failure)", 1,
         TransientSubmitError, "controller"),
        ("sbatch: error: Batch job submission failed: Invalid partition name specified", 1,
         SubmitError, "'nope'"),
        ("sbatch: error: Batch job submission failed: Invalid account or account/partition "
         "combination specified", 1, SubmitError, "account"),
    ],
)
def test_sbatch_errors_are_mapped(fakebin, tmp_path, stderr, rc, exc, needle):
    _tool(fakebin, "sbatch", f"echo '{stderr}' >&2; exit {rc}")
    b = SlurmBackend(partition="nope")
    with pytest.raises(exc, match=needle) as err:
        b.submit(JobRequest(name="e", results_dir=str(tmp_path), command="x"))
    if exc is SubmitError:
        assert not isinstance(err.value, TransientSubmitError)


def test_missing_cli_is_platform_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    b = SlurmBackend()
    assert b.is_available() is False
    with pytest.raises(PlatformUnavailableError, match="sbatch"):
        b.submit(JobRequest(name="e", results_dir=str(tmp_path), command="x"))


def test_ssh_host_prefixes_commands_and_feeds_secrets_on_stdin(fakebin, tmp_path, monkeypatch):
    # a fake `ssh` that runs the remote command locally and records its argv + stdin
    _tool(fakebin, "ssh", 'echo "ssh $*" >> "$FAKE_LOG"; shift 3; '
                          'if [ "$1" = "bash -s" ]; then tee -a "$FAKE_LOG.stdin" | bash -s; '
                          'else eval "$1"; fi')
    monkeypatch.setenv("MY_TOKEN", "tok-ssh-98765")
    b = SlurmBackend(ssh_host="login1", status_source="scontrol")
    h = b.submit(JobRequest(name="remote", results_dir=str(tmp_path / "r"), command="true",
                            secret_env=("MY_TOKEN",)))
    calls = Path(os.environ["FAKE_LOG"]).read_text()
    assert "ssh -o BatchMode=yes login1" in calls and "tok-ssh-98765" not in calls
    assert "tok-ssh-98765" in Path(os.environ["FAKE_LOG"] + ".env").read_text()  # reached sbatch
    assert Path(h.data["script"]).exists()
    Path(h.data["control_dir"], "exitcode").write_text("2\n")
    Path(h.data["log_path"]).write_text("Traceback\nKeyError: 'train.lr'\n")
    st = b.status(h)
    assert (st.state, st.exit_code, st.reason) == (JobState.FAILED, 2, FailureReason.SPEC)
    b.cancel(h)  # terminal already: no scancel
    assert "scancel" not in Path(os.environ["FAKE_LOG"]).read_text()
