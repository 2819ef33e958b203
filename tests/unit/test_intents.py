"""A job the platform accepted just before the driver died is found and settled
(the 'submitting' intent; tao_automl.store.intents)."""

from __future__ import annotations

import time
from pathlib import Path

from tao_automl.execution.cancel import cancel_experiment
from tao_automl.platforms import JobRequest, JobState, LocalBackend
from tao_automl.platforms.local import process_group_alive
from tao_automl.store.intents import recover_unconfirmed
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace


def _crashed_submit(ws: Workspace, backend: LocalBackend, trial: str, results: Path, *, drop_handle: bool = False):
    """What a driver killed inside Trial._submit leaves: the intent, a running
    job, and no 'submitted' event (optionally not even the backend's handle.json)."""
    ledger = JobLedger(ws)
    name = f"exp-{trial}-1"
    ledger.record(trial, "planned", config={"x": 1}, hyperparameters={"x": 1})
    ledger.record(trial, "submitting", attempt=1, name=name, results_dir=str(results),
                  spec_path=str(results / "spec.yaml"), resume_from=None, start_epoch=0, purpose="train")
    h = backend.submit(JobRequest(name=name, results_dir=str(results), command="touch started; sleep 60"))
    deadline = time.monotonic() + 20
    while not (results / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    if drop_handle:
        (Path(h.data["control_dir"]) / "handle.json").unlink()
    return ledger, h


def test_fold_tracks_open_intents() -> None:
    rec = JobLedger._fold("t", [
        {"kind": "submitting", "attempt": 1, "name": "a"},
        {"kind": "submitting", "attempt": 2, "name": "b"},
        {"kind": "submitted", "attempt": 1, "handle": {"backend": "local", "job_id": "1", "name": "a"}},
        {"kind": "submitting", "attempt": 3, "name": "c"},
        {"kind": "unconfirmed", "attempt": 3},
    ])
    assert [ev["name"] for ev in rec.unconfirmed] == ["b"]
    assert [a.number for a in rec.attempts] == [1]


def test_job_started_before_the_ledger_knew_it_is_recovered_and_canceled(tmp_path: Path) -> None:
    ws, backend = Workspace(tmp_path / "ws"), LocalBackend(grace_period_s=1)
    ledger, h = _crashed_submit(ws, backend, "t1", tmp_path / "r1")
    assert ledger.open_attempts() == [] and len(ledger.unconfirmed()) == 1

    out = recover_unconfirmed(ledger, backend)

    assert out == [{"trial_id": "t1", "attempt": 1, "name": "exp-t1-1", "found": [h.job_id]}]
    (tid, att), = ledger.open_attempts()
    assert (tid, att.number, att.handle.job_id) == ("t1", 1, h.job_id)
    assert att.spec_path.endswith("spec.yaml")
    assert backend.status(att.handle).state is JobState.RUNNING
    assert ledger.unconfirmed() == []
    backend.cancel(att.handle)
    assert not process_group_alive(h.data["pgid"])


def test_found_through_the_wrappers_pid_when_handle_json_is_missing(tmp_path: Path) -> None:
    ws, backend = Workspace(tmp_path / "ws"), LocalBackend(grace_period_s=1)
    ledger, h = _crashed_submit(ws, backend, "t2", tmp_path / "r2", drop_handle=True)
    # A fresh backend object: what a resumed driver has (no child table).
    fresh = LocalBackend(grace_period_s=1)
    recover_unconfirmed(ledger, fresh)
    (_, att), = ledger.open_attempts()
    assert att.handle.data["pgid"] == h.data["pgid"]
    assert fresh.status(att.handle).state is JobState.RUNNING
    fresh.cancel(att.handle)
    assert fresh.status(att.handle).state is JobState.CANCELED
    assert not process_group_alive(h.data["pgid"])


def test_intent_without_a_job_is_closed_once(tmp_path: Path) -> None:
    ws, backend = Workspace(tmp_path / "ws"), LocalBackend()
    ledger = JobLedger(ws)
    ledger.record("t3", "submitting", attempt=1, name="exp-t3-1", results_dir=str(tmp_path / "r3"))
    assert recover_unconfirmed(ledger, backend)[0]["found"] == []
    assert ledger.unconfirmed() == [] and ledger.open_attempts() == []
    assert recover_unconfirmed(ledger, backend) == []


def test_backend_without_find_leaves_the_intent_open(tmp_path: Path) -> None:
    class NoFind:
        name = "custom"

    ledger = JobLedger(Workspace(tmp_path / "ws"))
    ledger.record("t4", "submitting", attempt=1, name="exp-t4-1", results_dir=None)
    assert recover_unconfirmed(ledger, NoFind())[0]["found"] is None
    assert len(ledger.unconfirmed()) == 1


def test_cancel_command_stops_a_job_the_ledger_had_not_recorded(tmp_path: Path) -> None:
    ws, backend = Workspace(tmp_path / "ws"), LocalBackend(grace_period_s=1)
    ws.write_json("settings.json", {"platform": "local", "platform_kwargs": {}})
    ledger, h = _crashed_submit(ws, backend, "t5", tmp_path / "r5")
    out = cancel_experiment(ws)
    assert [(e["trial_id"], e["job_id"], e["action"]) for e in out] == [("t5", h.job_id, "canceled")]
    assert not process_group_alive(h.data["pgid"])
    kinds = [ev["kind"] for ev in ws.events("ledger/t5")]
    assert kinds == ["planned", "submitting", "submitted", "stopped"]
