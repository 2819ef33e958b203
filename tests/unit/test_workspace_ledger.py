"""Workspace atomic writes and events; ledger folding; trial results and best pick."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tao_automl.errors import WorkspaceError
from tao_automl.platforms.base import JobHandle
from tao_automl.reporting.collect import pick_best, trial_result
from tao_automl.reporting.results import TrialResult
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace, is_uri, new_session_id


def _handle(job_id: str = "123", results_dir: str = "/r") -> dict:
    return JobHandle(backend="local", job_id=job_id, name="j", results_dir=results_dir, data={}).to_dict()


# -- workspace ------------------------------------------------------------------
def test_uri_detection_and_session_ids():
    assert is_uri("s3://b/k") and is_uri("gs://b") and not is_uri("/tmp/x") and not is_uri("file:///x")
    a, b = new_session_id(), new_session_id()
    assert a != b and a.startswith("automl-")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    ws = Workspace(tmp_path / "exp")
    ws.write_json("a/b.json", {"x": 1})
    ws.write_json("a/b.json", {"x": 2})
    assert ws.read_json("a/b.json") == {"x": 2}
    assert os.listdir(tmp_path / "exp" / "a") == ["b.json"]


def test_atomic_write_failure_keeps_old_content(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    ws.write_json("s.json", {"v": "old"})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(WorkspaceError) as ei:
        ws.write_json("s.json", {"v": "new"})
    assert "s.json" in str(ei.value)
    monkeypatch.undo()
    assert ws.read_json("s.json") == {"v": "old"}


def test_read_json_missing_and_corrupt(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(WorkspaceError) as ei:
        ws.read_json("nope.json")
    assert "nope.json" in str(ei.value)
    assert ws.read_json("nope.json", default=None) is None
    (tmp_path / "bad.json").write_text("{torn")
    with pytest.raises(WorkspaceError):
        ws.read_json("bad.json")
    assert ws.read_json("bad.json", default={}) == {}


def test_listdir_child_file_uri(tmp_path):
    ws = Workspace(f"file://{tmp_path}")
    assert ws.root == str(tmp_path) and not ws.uri
    assert ws.listdir("missing") == []
    c = ws.child("sess")
    c.write_text("x.txt", "hi")
    assert ws.listdir() == ["sess"] and c.listdir() == ["x.txt"]


def test_events_in_write_order_and_corrupt_skipped(tmp_path):
    ws = Workspace(tmp_path)
    for i in range(5):
        ws.append_event("ev", "tick", {"i": i})
    stream = tmp_path / "ev"
    names = sorted(os.listdir(stream))
    # a torn file (crash during a non-atomic writer), a temp file and junk
    (stream / (names[2][:-5] + "-torn.json")).write_text('{"kind": "tick", "i"')
    (stream / f".{names[0]}.abcd.tmp").write_text("{}")
    (stream / "zz-list.json").write_text("[1, 2]")
    got = [e["i"] for e in ws.events("ev")]
    assert got == [0, 1, 2, 3, 4]
    assert all(e["kind"] == "tick" and "t" in e for e in ws.events("ev"))


# -- ledger folding ----------------------------------------------------------------
def test_ledger_fold_open_attempt_and_stop(tmp_path):
    led = JobLedger(Workspace(tmp_path))
    led.record("t1", "planned", config={"a": 1}, hyperparameters={"lr": 0.1}, adjustments=[])
    led.record("t1", "submitted", attempt=1, handle=_handle("11"), spec_path="/s1", start_epoch=0)
    rec = led.trial("t1")
    assert rec.open_attempt is not None and rec.open_attempt.handle.job_id == "11"
    assert led.open_attempts()[0][0] == "t1" and not rec.done
    led.record("t1", "epoch", attempt=1, epoch=1, values={"val_loss": 0.5})
    led.record("t1", "stopped", attempt=1, why="paused")
    rec = led.trial("t1")
    assert rec.open_attempt is None and led.open_attempts() == []
    assert rec.attempts[0].stopped["why"] == "paused" and not rec.done
    tr = trial_result(rec, "val_loss")
    assert tr.status == "stopped" and tr.metric_value == 0.5 and tr.epochs_completed == 1
    # resumed from a checkpoint: a second attempt opens again
    led.record("t1", "submitted", attempt=2, handle=_handle("12"), resume_from="/ck1", start_epoch=1)
    rec = led.trial("t1")
    assert [a.number for a in rec.attempts] == [1, 2]
    assert rec.open_attempt.resume_from == "/ck1" and rec.open_attempt.start_epoch == 1
    assert trial_result(rec, "val_loss").status == "running"


def test_ledger_non_final_failure_then_success(tmp_path):
    led = JobLedger(Workspace(tmp_path))
    led.record("t", "planned", config={}, hyperparameters={"lr": 0.2}, adjustments=["capped"])
    led.record("t", "submitted", attempt=1, handle=_handle("1"))
    led.record("t", "finished", attempt=1, state="failed", reason="infrastructure", exit_code=137,
               message="node lost", metric_value=None, final=False)
    rec = led.trial("t")
    assert rec.outcome is None and not rec.done and rec.open_attempt is None
    led.record("t", "submitted", attempt=2, handle=_handle("2"))
    led.record("t", "epoch", attempt=2, epoch=1, values={"val_loss": 0.9})
    led.record("t", "finished", attempt=2, state="succeeded", reason=None, exit_code=0, message="",
               metric_value=0.4, final=True)
    rec = led.trial("t")
    assert rec.done and rec.outcome["metric_value"] == 0.4
    tr = trial_result(rec, "val_loss")
    assert (tr.status, tr.metric_value, tr.attempts, tr.job_id) == ("succeeded", 0.4, 2, "2")
    assert tr.adjustments == ["capped"] and tr.hyperparameters == {"lr": 0.2}
    assert tr.duration_s is not None and tr.duration_s >= 0


def test_ledger_final_failure(tmp_path):
    led = JobLedger(Workspace(tmp_path))
    led.record("t", "planned", config={}, hyperparameters={}, adjustments=[])
    led.record("t", "submitted", attempt=1, handle=_handle("1"))
    led.record("t", "finished", attempt=1, state="failed", reason="data", exit_code=1,
               message="no such file", metric_value=None, final=True)
    tr = trial_result(led.trial("t"), "val_loss")
    assert tr.status == "failed" and tr.metric_value is None
    assert (tr.failure_reason, tr.exit_code, tr.failure_message) == ("data", 1, "no such file")


def test_ledger_latest_planned_wins(tmp_path):
    """PBT exploit changes a trial's config: the newest 'planned' is the truth."""
    led = JobLedger(Workspace(tmp_path))
    led.record("t", "planned", config={"lr": 1}, hyperparameters={"lr": 0.1}, adjustments=[])
    led.record("t", "planned", config={"lr": 2}, hyperparameters={"lr": 0.2}, adjustments=[])
    assert trial_result(led.trial("t"), "m").hyperparameters == {"lr": 0.2}


def test_ledger_skips_torn_and_bad_events(tmp_path):
    ws = Workspace(tmp_path)
    led = JobLedger(ws)
    led.record("t", "planned", config={}, hyperparameters={}, adjustments=[])
    led.record("t", "submitted", attempt=1, handle={"garbage": True})  # unreadable handle
    (tmp_path / "ledger" / "t" / "99999999999999999999-finished-torn.json").write_text('{"kind": "fin')
    rec = led.trial("t")
    assert rec.attempts == [] and rec.outcome is None
    assert trial_result(rec, "m").status == "pending"


def test_trials_sorted_by_plan_time(tmp_path):
    led = JobLedger(Workspace(tmp_path))
    for tid in ("b", "a", "c"):
        led.record(tid, "planned", config={}, hyperparameters={}, adjustments=[])
    assert [r.trial_id for r in led.trials()] == ["b", "a", "c"]


# -- best pick ------------------------------------------------------------------
def _t(rec_id, status, value):
    return TrialResult(rec_id=rec_id, status=status, metric_value=value)


def test_pick_best_minimize_maximize():
    hist = [_t("a", "succeeded", 0.5), _t("b", "succeeded", 0.2), _t("c", "succeeded", 0.9)]
    assert pick_best(hist, "minimize").rec_id == "b"
    assert pick_best(hist, "maximize").rec_id == "c"


def test_failed_never_best_and_none_never_zero():
    hist = [_t("f", "failed", None), _t("g", "failed", -100.0), _t("s", "succeeded", 3.0),
            _t("p", "pending", None)]
    assert pick_best(hist, "minimize").rec_id == "s"
    assert pick_best([_t("f", "failed", None)], "minimize") is None
    assert pick_best([_t("f", "failed", None)], "maximize") is None


def test_stopped_only_when_nothing_succeeded():
    hist = [_t("st", "stopped", 0.1), _t("ok", "succeeded", 0.3)]
    assert pick_best(hist, "minimize").rec_id == "ok"
    assert pick_best([_t("st", "stopped", 0.1), _t("f", "failed", None)], "minimize").rec_id == "st"


def test_nan_never_best():
    hist = [_t("n", "succeeded", float("nan")), _t("ok", "succeeded", 1.0)]
    assert pick_best(hist, "minimize").rec_id == "ok"
    assert pick_best(hist, "maximize").rec_id == "ok"


def test_result_json_is_plain(tmp_path):
    led = JobLedger(Workspace(tmp_path))
    led.record("t", "planned", config={}, hyperparameters={"x": 1}, adjustments=[])
    Path(tmp_path, "out.json").write_text(json.dumps(led.trial("t").planned.to_dict()))
    assert json.loads(Path(tmp_path, "out.json").read_text())["hyperparameters"] == {"x": 1}
