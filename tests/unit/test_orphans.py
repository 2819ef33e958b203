"""Trials unknown to a restored search: abandoned (job canceled, left out of
the history), adopted again when the search restarts the same id."""

from __future__ import annotations

from tao_automl.execution.orphans import ABANDONED_WHY, OrphanSettler, abandon
from tao_automl.platforms.base import JobHandle
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace


class FakeBackend:
    name = "fake"

    def __init__(self) -> None:
        self.canceled: list[str] = []

    def cancel(self, handle: JobHandle) -> None:
        self.canceled.append(handle.job_id)


def _ledger(tmp_path, *tids: str, submitted: bool = True) -> JobLedger:
    led = JobLedger(Workspace(tmp_path / "ws"))
    for tid in tids:
        led.record(tid, "planned", config={"x": 1}, hyperparameters={"x": 1})
        if submitted:
            h = JobHandle(backend="fake", job_id=f"job-{tid}", name=tid)
            led.record(tid, "submitted", attempt=1, handle=h.to_dict())
    return led


def test_abandoned_trials_leave_the_history_but_stay_in_the_ledger(tmp_path):
    led = _ledger(tmp_path, "a", "b")
    be = FakeBackend()
    abandon(led, be, "b")
    assert be.canceled == ["job-b"]
    assert [r.trial_id for r in led.trials()] == ["a"]
    assert [r.trial_id for r in led.trials(include_abandoned=True)] == ["a", "b"]
    rec = led.trial("b")
    assert rec.abandoned and rec.attempts[-1].stopped["why"] == ABANDONED_WHY
    assert [t for t, _ in led.open_attempts()] == ["a"]
    abandon(led, be, "b")  # idempotent
    assert be.canceled == ["job-b"]
    # the search starts the same id again: it counts again
    led.record("b", "adopted", why="restarted")
    assert [r.trial_id for r in led.trials()] == ["a", "b"]


def test_a_new_submission_clears_the_abandonment(tmp_path):
    led = _ledger(tmp_path, "a")
    abandon(led, FakeBackend(), "a")
    led.record("a", "submitted", attempt=2, handle=JobHandle(backend="fake", job_id="j2").to_dict())
    assert not led.trial("a").abandoned and led.trial("a").open_attempt.number == 2


def test_trial_without_a_job_is_abandoned_without_cancel(tmp_path):
    led = _ledger(tmp_path, "p", submitted=False)
    be = FakeBackend()
    abandon(led, be, "p")
    assert be.canceled == [] and led.trials() == []


def test_settler_keeps_recreated_ids_and_abandons_once_a_new_id_starts(tmp_path):
    led = _ledger(tmp_path, "known", "regen", "lost")
    be = FakeBackend()
    s = OrphanSettler(led, be, ["known", "regen", "lost"])
    s.settle(["known"], final=False)  # step 1: the restored state knows one
    assert s.candidates == {"regen", "lost"} and be.canceled == []
    for _ in range(5):  # steps pass, nothing new: 'lost' may still be re-created
        s.settle(["known"], final=False)
    s.settle(["known", "regen"], final=False)  # the searcher re-created 'regen'
    assert s.candidates == {"lost"} and be.canceled == []
    s.settle(["known", "regen", "fresh"], final=False)  # a new id: 'lost' never comes back
    assert be.canceled == ["job-lost"] and not s.pending
    assert [r.trial_id for r in led.trials()] == ["known", "regen"]


def test_settler_final_call_settles_at_once_and_fresh_run_is_a_no_op(tmp_path):
    led = _ledger(tmp_path, "a", "b")
    be = FakeBackend()
    s = OrphanSettler(led, be, ["a", "b"])
    s.settle(["a"], final=False)
    assert be.canceled == []
    s.settle(["a"], final=True)
    assert be.canceled == ["job-b"]
    fresh = OrphanSettler(led, be, [])
    assert not fresh.pending
    fresh.settle(["x"], final=True)
    assert be.canceled == ["job-b"]
