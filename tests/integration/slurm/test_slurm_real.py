"""SlurmBackend against the real one-node cluster of .ci/slurm-up.sh."""

from __future__ import annotations

import subprocess

import pytest

from tao_automl.errors import SubmitError
from tao_automl.platforms import JobRequest, JobState, SlurmBackend

pytestmark = pytest.mark.slurm


def test_invalid_partition_is_a_submit_error_naming_it(slurm_up, tmp_path):
    b = SlurmBackend(partition="no-such-partition")
    with pytest.raises(SubmitError, match="no-such-partition") as err:
        b.submit(JobRequest(name="p", results_dir=str(tmp_path), command="true"))
    assert err.value.key == "partition"


def test_job_runs_inside_slurm_and_status_source_is_reported(slurm_up, tmp_path):
    b = SlurmBackend(poll_interval_s=0.2)
    h = b.submit(JobRequest(name="env", results_dir=str(tmp_path),
                            command='echo "$SLURM_JOB_ID" > jobid.txt; exit 4'))
    st = b.wait(h, 60)
    assert st.state is JobState.FAILED and st.exit_code == 4
    assert (tmp_path / "jobid.txt").read_text().strip() == h.job_id
    accounting = subprocess.run(["sacct", "-j", h.job_id, "-n"], capture_output=True, text=True)
    expected = "sacct" if accounting.returncode == 0 else "scontrol"
    assert f"({expected})" in st.message


def test_scancel_from_outside_is_read_from_slurm(slurm_up, tmp_path):
    """A job killed by a plain scancel shows up as CANCELLED in SLURM, and the
    backend reports CANCELED even for a fresh backend instance."""
    b = SlurmBackend(poll_interval_s=0.2, grace_period_s=1)
    h = b.submit(JobRequest(name="c", results_dir=str(tmp_path), command="sleep 60"))
    b.wait(h, 2)
    subprocess.run(["scancel", h.job_id], check=True)
    st = SlurmBackend(poll_interval_s=0.2).wait(h, 30)
    assert st.state is JobState.CANCELED


def test_find_by_name_recovers_a_job_the_ledger_never_recorded(slurm_up, tmp_path):
    """What a driver killed between sbatch and the ledger's 'submitted' event
    needs: the job, looked up by name through squeue, with a usable handle."""
    from tao_automl.store.intents import recover_unconfirmed
    from tao_automl.store.ledger import JobLedger
    from tao_automl.store.workspace import Workspace

    b = SlurmBackend(poll_interval_s=0.2, grace_period_s=1)
    name = f"exp-find-{tmp_path.name}-1"[:60]
    ledger = JobLedger(Workspace(tmp_path / "ws"))
    ledger.record("t1", "submitting", attempt=1, name=name, results_dir=str(tmp_path / "r"))
    h = b.submit(JobRequest(name=name, results_dir=str(tmp_path / "r"), command="echo hi; sleep 60"))
    assert [x.job_id for x in b.find(name)] == [h.job_id]
    assert b.find(name + "-other") == []

    assert recover_unconfirmed(ledger, SlurmBackend(poll_interval_s=0.2))[0]["found"] == [h.job_id]
    (_, att), = ledger.open_attempts()
    assert att.handle.data["control_dir"] == h.data["control_dir"]
    fresh = SlurmBackend(poll_interval_s=0.2, grace_period_s=1)
    fresh.cancel(att.handle)
    assert fresh.wait(att.handle, 30).state is JobState.CANCELED
