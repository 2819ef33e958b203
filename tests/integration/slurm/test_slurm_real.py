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
