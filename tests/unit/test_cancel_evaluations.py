"""`tao-automl cancel` also stops a baseline/final evaluation job in progress."""

from __future__ import annotations

import time
from pathlib import Path

from tao_automl.execution.cancel import cancel_experiment
from tao_automl.platforms import JobRequest, JobState, LocalBackend
from tao_automl.platforms.local import process_group_alive
from tao_automl.store.workspace import Workspace


def _eval_job(ws: Workspace, tmp_path: Path, kind: str):
    b = LocalBackend(grace_period_s=1)
    out = tmp_path / f"{kind}-eval"
    h = b.submit(JobRequest(name=f"{kind}-eval", results_dir=str(out), command="touch started; sleep 60"))
    ws.write_json(f"evaluations/{kind}-handle.json", h.to_dict())
    deadline = time.monotonic() + 20
    while not (out / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return b, h


def test_running_baseline_evaluation_is_canceled(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.write_json("settings.json", {"platform": "local"})
    b, h = _eval_job(ws, tmp_path, "baseline")
    out = cancel_experiment(ws)
    assert out == [{"trial_id": "baseline-eval", "job_id": h.job_id, "action": "canceled"}]
    assert b.status(h).state is JobState.CANCELED
    assert not process_group_alive(h.data["pgid"])
    assert ws.exists("cancel.json")


def test_finished_evaluation_is_left_alone(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.write_json("settings.json", {"platform": "local"})
    b, h = _eval_job(ws, tmp_path, "final")
    ws.write_json("evaluations/final.json", {"kind": "final", "status": "succeeded"})
    assert cancel_experiment(ws) == []
    assert b.status(h).state is JobState.RUNNING
    b.cancel(h)
