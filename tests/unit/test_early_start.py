"""Early start records (tao_automl.execution.early): one trial adopts a job,
sweeps cancel only what no trial adopted, with real local jobs."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from tao_automl.execution import early
from tao_automl.execution.jobs import cancel_early_jobs, cancel_open_jobs, sweep_early_jobs
from tao_automl.platforms.base import JobRequest
from tao_automl.platforms.local import LocalBackend
from tao_automl.store.events import PlannedEvent, SubmittedEvent
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace


def _sleep_job(backend: LocalBackend, tmp: Path, name: str):
    out = tmp / name
    return backend.submit(JobRequest(name=name, argv=[sys.executable, "-c", "import time; time.sleep(60)"],
                                     results_dir=str(out)))


def _record(key: str, handle=None, name: str = "s-early-0-1") -> dict:
    return {"key": key, "name": name, "results_dir": "/nowhere", "spec_path": "/nowhere/spec.yaml",
            "handle": handle.to_dict() if handle is not None else None, "t": time.time()}


def test_config_key_ignores_float_noise_and_key_order_not_values():
    a = early.config_key({"lr": 0.1 + 0.2, "depth": 3}, None)
    assert a == early.config_key({"depth": 3, "lr": 0.3}, None)
    assert a != early.config_key({"depth": 3, "lr": 0.30001}, None)
    assert a != early.config_key({"depth": 3, "lr": 0.3}, 9)  # another fidelity is another job
    assert early.config_key({"x": float("nan")}, None) == early.config_key({"x": float("nan")}, None)


def test_exactly_one_of_many_concurrent_takers_adopts_a_job(tmp_path):
    folder = str(tmp_path / "early")
    early.write_record(folder, 0, {"key": "k", "handle": {"backend": "local", "job_id": "1"}})
    won: list[str] = []
    barrier = threading.Barrier(8)

    def taker(i: int) -> None:
        barrier.wait()
        if early.take(folder, "k", f"t{i}") is not None:
            won.append(f"t{i}")

    threads = [threading.Thread(target=taker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert os.listdir(folder) == [f"0.{won[0]}.taken"]
    assert early.pending(folder) == 0


def test_take_matches_the_key_and_skips_records_without_a_handle(tmp_path):
    folder = str(tmp_path / "early")
    early.write_record(folder, 0, {"key": "a", "handle": None})  # submit in flight
    early.write_record(folder, 1, {"key": "b", "handle": {"backend": "local", "job_id": "7"}})
    assert early.take(folder, "a", "t0") is None
    assert early.take(folder, "zzz", "t0") is None
    rec = early.take(folder, "b", "t0")
    assert rec is not None and rec["handle"]["job_id"] == "7"
    assert early.take(folder, "b", "t1") is None  # taken once
    assert early.pending(folder) == 1
    assert early.take(None, "b", "t0") is None and early.pending(None) == 0


def test_sweep_cancels_unadopted_jobs_and_never_an_adopted_one(tmp_path):
    backend = LocalBackend(grace_period_s=1.0)
    folder = str(tmp_path / "early")
    adopted = _sleep_job(backend, tmp_path, "adopted")
    orphan = _sleep_job(backend, tmp_path, "orphan")
    try:
        early.write_record(folder, 0, _record("a", adopted))
        early.write_record(folder, 1, _record("b", orphan))
        assert early.take(folder, "a", "trial0") is not None
        out = sweep_early_jobs(folder, backend, "test")
        assert [(e["trial_id"], e["job_id"], e["action"]) for e in out] == [("early-1", orphan.job_id, "canceled")]
        backend.wait(orphan, timeout=10)
        assert backend.status(orphan).terminal
        assert not backend.status(adopted).terminal  # the trial's job runs on
        assert sorted(os.listdir(folder)) == ["0.trial0.taken", "1.swept.taken"]
        assert sweep_early_jobs(folder, backend, "again") == []  # each job is swept once
    finally:
        backend.cancel(adopted)
        backend.cancel(orphan)


def test_cancel_open_jobs_also_cancels_a_taken_job_no_trial_recorded(tmp_path):
    """A driver killed between a trial's take and its 'submitted' event: the
    job is in no ledger, so resume and `tao-automl cancel` cancel it; a job the
    ledger has (attempt recorded) is left to the trial that owns it."""
    backend = LocalBackend(grace_period_s=1.0)
    ws = Workspace(str(tmp_path / "ws"))
    ws.makedirs()
    ledger = JobLedger(ws)
    folder = ws.path(early.EARLY_DIR)
    recorded = _sleep_job(backend, tmp_path, "recorded")
    lost = _sleep_job(backend, tmp_path, "lost")
    try:
        early.write_record(folder, 0, _record("a", recorded))
        early.write_record(folder, 1, _record("b", lost))
        assert early.take(folder, "a", "t0") and early.take(folder, "b", "t1")
        ledger.write(PlannedEvent(trial_id="t0", config={}, hyperparameters={}))
        ledger.write(SubmittedEvent(trial_id="t0", attempt=1, handle=recorded.to_dict()))
        assert [e["job_id"] for e in cancel_early_jobs(ledger, backend, "resume")] == [lost.job_id]
        backend.wait(lost, timeout=10)
        assert backend.status(lost).terminal and not backend.status(recorded).terminal
        # the one routine `tao-automl cancel` and the reaper use: the ledger's job, nothing twice
        entries = cancel_open_jobs(ledger, backend, "canceled by the user")
        assert [(e["trial_id"], e["job_id"]) for e in entries] == [("t0", recorded.job_id)]
    finally:
        backend.cancel(recorded)
        backend.cancel(lost)


def test_a_record_without_handle_is_looked_up_by_name(tmp_path):
    """Killed between the submit and the record's update: the job is found by its name."""
    backend = LocalBackend(grace_period_s=1.0)
    folder = str(tmp_path / "early")
    job = _sleep_job(backend, tmp_path, "s-early-0-1")
    try:
        early.write_record(folder, 0, {**_record("a"), "name": "s-early-0-1", "results_dir": str(tmp_path / "s-early-0-1")})
        out = sweep_early_jobs(folder, backend, "resume")
        assert out[0]["action"] == "canceled"
        backend.wait(job, timeout=10)
        assert backend.status(job).terminal
    finally:
        backend.cancel(job)


def test_an_absent_folder_has_nothing_to_sweep_or_take(tmp_path):
    folder = str(tmp_path / "early")
    assert sweep_early_jobs(folder, None, "nothing there") == []
    assert early.take(folder, "a", "t0") is None and early.pending(folder) == 0


def test_a_failed_early_submit_is_taken_as_the_trials_first_try(tmp_path):
    folder = str(tmp_path / "early")
    early.write_record(folder, 0, {"key": "a", "handle": None,
                                   "error": {"message": "scheduler API busy", "transient": True}})
    rec = early.take(folder, "a", "t0")
    assert rec is not None and rec["error"]["transient"] and rec["handle"] is None


@pytest.mark.parametrize("name", ["0.json.tmp123", "notes.txt", "x.json"])
def test_foreign_files_are_never_records(tmp_path, name):
    folder = tmp_path / "early"
    folder.mkdir()
    (folder / name).write_text("{}")
    assert early.pending(str(folder)) == 0
