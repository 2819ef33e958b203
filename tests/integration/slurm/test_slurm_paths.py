"""Dataset paths checked on the real one-node SLURM cluster of
.ci/slurm-up.sh: a short ``srun`` step runs the check on the compute node;
a readable path is accepted, a missing one is a review blocker and run()
refuses it before any trial job is submitted."""

from __future__ import annotations

import subprocess

import pytest
from skillkit import TOY

from tao_automl.errors import PreflightError
from tao_automl.platforms import SlurmBackend
from tao_automl.platforms.base import PathState
from tao_automl.runner import AutoMLRunner

pytestmark = pytest.mark.slurm

SETTINGS = {"max_recommendations": 2, "max_concurrent": 2, "seed": 1, "baseline": False, "final_eval": False}


def jobs() -> set[str]:
    """Every job the controller knows (MinJobAge keeps finished ones), as "id name"."""
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, timeout=30)
    rows = set()
    for line in out.stdout.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "JobId" in fields:
            rows.add(f"{fields['JobId']} {fields.get('JobName', '')}")
    return rows


def test_backend_checks_on_the_node(slurm_up, tmp_path):
    (tmp_path / "train.npz").write_bytes(b"x")
    good, bad = str(tmp_path / "train.npz"), str(tmp_path / "nope" / "train.npz")
    before = jobs()
    got = SlurmBackend().check_paths([good, bad])
    assert got[good].state is PathState.READABLE and got[bad].state is PathState.UNREADABLE
    assert got[good].where.startswith("SLURM node ") and got[good].where.endswith("(srun)")
    assert "does not exist on SLURM node" in got[bad].reason
    new = jobs() - before
    assert len(new) == 1 and next(iter(new)).endswith(" tao-automl-path-check"), new  # one real job ran it


def test_review_and_run_through_slurm(slurm_up, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    r = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws", platform_sdk="slurm")
    rv = r.review(automl_settings=SETTINGS, train_dataset_uri=str(data))
    assert rv["blockers"] == [] and rv["path_checks"][0]["state"] == "readable"
    assert "(srun)" in rv["path_checks"][0]["where"]

    missing = str(tmp_path / "only-in-dreams" / "train.npz")
    rv = r.review(automl_settings=SETTINGS, train_dataset_uri=missing)
    (blocker,) = rv["blockers"]
    assert missing in blocker and "on the slurm platform" in blocker and "does not exist on SLURM node" in blocker
    assert len(rv["recommendations"]) == 2  # the rest of the review is still there

    def launched(*args, **kwargs):
        raise AssertionError("a job launch was attempted")

    for name in ("run_search", "run_evaluation"):
        monkeypatch.setattr(f"tao_automl.execution.run.{name}", launched)
    before = jobs()
    with pytest.raises(PreflightError) as ei:
        r.run(automl_settings=SETTINGS, train_dataset_uri=missing)
    assert "key 'train_datasets'" in str(ei.value) and missing in str(ei.value)
    assert "does not exist on SLURM node" in str(ei.value)
    assert all(j.endswith(" tao-automl-path-check") for j in jobs() - before)  # only the check ran
    assert not (tmp_path / "ws").exists()  # no workspace, no ledger
