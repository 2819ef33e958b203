"""Ledger events are typed classes: each round-trips through its file, and a
ledger written before the classes existed reads back the same."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import attrs
import pytest

from tao_automl.reporting.collect import trial_result
from tao_automl.store.events import (
    EVENT_CLASSES,
    AdoptedEvent,
    EpochEvent,
    FinishedEvent,
    LedgerEvent,
    NoteEvent,
    PlannedEvent,
    StoppedEvent,
    SubmittedEvent,
    SubmittingEvent,
    UnconfirmedEvent,
    event_from_dict,
)
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "old_ledger"
HANDLE = {"backend": "local", "job_id": "7", "name": "s-t-1", "results_dir": "/j/t/1", "data": {"pid": 7}}

ONE_OF_EACH = [
    PlannedEvent(trial_id="t", config={"lr": 0.1, "__epochs": 2}, hyperparameters={"lr": 0.1},
                 adjustments=["batch 64 -> 32"], revision=1, source_trial="t0", fidelity_epochs=2),
    SubmittingEvent(trial_id="t", attempt=1, name="s-t-1", results_dir="/j/t/1", spec_path="/j/t/1/spec.yaml",
                    resume_from="/ckpt/e1.pth", start_epoch=1, purpose="train"),
    SubmittedEvent(trial_id="t", attempt=1, handle=HANDLE, spec_path="/j/t/1/spec.yaml", resume_from=None,
                   start_epoch=0, purpose="train", node="n1", recovered=True),
    UnconfirmedEvent(trial_id="t", attempt=2, name="s-t-2", why="no job with this name on the platform"),
    EpochEvent(trial_id="t", attempt=1, epoch=3, values={"accuracy": 0.5}),
    FinishedEvent(trial_id="t", attempt=1, state="succeeded", reason=None, exit_code=0, message="",
                  metric_value=0.5, metric_source="log", objective_values={"accuracy": 0.5}, final=True),
    StoppedEvent(trial_id="t", attempt=1, why="abandoned: unknown to the restored search", abandoned=True),
    AdoptedEvent(trial_id="t", why="the restored search started this trial again"),
    NoteEvent(trial_id="t", attempt=1, note="ignored an absurd epoch"),
]


def test_every_kind_has_a_class_and_the_sample_covers_them():
    assert sorted(EVENT_CLASSES) == sorted(e.kind for e in ONE_OF_EACH)
    assert all(attrs.has(c) and c.__attrs_attrs__ and issubclass(c, LedgerEvent) for c in EVENT_CLASSES.values())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ONE_OF_EACH[0].revision = 2


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: e.kind)
def test_event_round_trips_through_its_ledger_file(tmp_path, event):
    ledger = JobLedger(Workspace(tmp_path))
    ledger.write(event)
    (path,) = (tmp_path / "ledger" / "t").iterdir()
    on_disk = json.loads(path.read_text())
    assert on_disk["kind"] == event.kind and f"-{event.kind}-" in path.name
    assert isinstance(on_disk["t"], float)  # the workspace stamps the time
    (back,) = ledger.events("t")
    assert type(back) is type(event)
    assert attrs.evolve(back, t=None) == event
    assert back.to_dict() == on_disk  # the dict view is the file, key for key
    assert dict(back) == on_disk


def test_unset_optional_fields_are_not_written_and_unknown_keys_are_kept(tmp_path):
    ledger = JobLedger(Workspace(tmp_path))
    ledger.record("t", "stopped", attempt=1, why="stopped by the scheduler", by="a newer version")
    (path,) = (tmp_path / "ledger" / "t").iterdir()
    on_disk = json.loads(path.read_text())
    assert "abandoned" not in on_disk and on_disk["by"] == "a newer version"
    (ev,) = ledger.events("t")
    assert isinstance(ev, StoppedEvent) and ev.abandoned is None and ev.extra == {"by": "a newer version"}
    assert ev["by"] == "a newer version" and ev.get("abandoned") is None and "abandoned" not in ev


def test_unknown_kind_and_damaged_fields_are_skipped_not_fatal(tmp_path, caplog):
    assert event_from_dict({"kind": "teleported", "trial_id": "t"}) is None
    assert event_from_dict({"kind": "epoch", "trial_id": "t", "attempt": "one", "values": {}}) is None
    assert "teleported" in caplog.text and "epoch" in caplog.text
    with pytest.raises(ValueError, match="teleported"):
        JobLedger(Workspace(tmp_path)).record("t", "teleported")


def test_ledger_written_before_typed_events_still_loads(tmp_path):
    """tests/fixtures/old_ledger was written by the dict-event code (commit da27218)."""
    shutil.copytree(OLD / "ledger", tmp_path / "ledger")
    ledger = JobLedger(Workspace(tmp_path))
    recs = {r.trial_id: r for r in ledger.trials(include_abandoned=True)}
    assert list(recs) == ["t1", "t2", "t3"]  # planning order

    t1 = recs["t1"]
    assert isinstance(t1.planned, PlannedEvent) and t1.planned["fidelity_epochs"] == 3
    assert [(a.number, a.handle.job_id, bool(a.finished), a.stopped) for a in t1.attempts] == [
        (1, "4242", True, None), (2, "4343", True, None)]
    assert t1.attempts[0].finished["t"] > 0 and t1.attempts[0].finished.get("final") is False
    assert t1.done and t1.outcome["metric_value"] == 0.75 and t1.outcome.get("objective_values") == {"accuracy": 0.75}
    assert [e["epoch"] for e in t1.epochs] == [1, 3]
    assert t1.notes == ["ignored a log record from attempt 1: epoch -3 is outside 0..3"]

    t2 = recs["t2"]
    (att,) = t2.attempts
    assert (att.number, att.start_epoch, att.resume_from) == (2, 1, "/ckpt/epoch_1.pth")
    assert att.stopped["why"] == "abandoned: unknown to the restored search" and not t2.abandoned  # adopted after
    assert t2.notes == ["the llm searcher noted this"] and t2.unconfirmed == []

    assert [(tid, ev.attempt, ev["name"]) for tid, ev in ledger.unconfirmed()] == [("t3", 1, "s-t3-1")]
    assert ledger.open_attempts() == []
    history = [trial_result(r, "accuracy", "maximize") for r in recs.values()]
    assert [(t.status, t.metric_value, t.attempts, t.epochs_completed) for t in history] == [
        ("succeeded", 0.75, 2, 3), ("stopped", None, 1, None), ("pending", None, 0, None)]


def test_old_event_files_keep_every_key_and_value():
    """An old file's event, written again, has the same keys and values (plus,
    at most, an unset field as null)."""
    for path in sorted((OLD / "ledger").rglob("*.json")):
        data = json.loads(path.read_text())
        ev = event_from_dict(data)
        assert ev is not None and ev.kind == data["kind"], path.name
        again = ev.to_dict()
        assert {k: v for k, v in again.items() if k in data} == data, path.name
        assert all(again[k] is None for k in set(again) - set(data)), path.name
