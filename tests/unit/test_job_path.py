"""The one job path (tao_automl.execution.jobs): bounded submit retry with
the package's one backoff, the intent/submitted ledger events, cancel; and an
evaluation's transient submit failure is retried as a trial's is."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tao_automl.config.backoff import delays, retry, wait_until
from tao_automl.config.statuses import EvalStatus, TrialStatus
from tao_automl.errors import SubmitError, TransientSubmitError
from tao_automl.execution import jobs
from tao_automl.execution.evaluations import run_evaluation
from tao_automl.execution.jobs import JobOptions, cancel_open_jobs, submit_job
from tao_automl.platforms import JobRequest, JobState
from tao_automl.platforms.local import process_group_alive
from tao_automl.skill import load_skill
from tao_automl.store.events import SubmittedEvent, SubmittingEvent
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace, dumps_strict
from tao_automl.testing.platform import FlakySubmit

NV_SKILL = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia_format_skill"


@pytest.fixture
def quick_backoff(monkeypatch):
    monkeypatch.setattr(jobs, "SUBMIT_BACKOFF_S", 0.01)


def test_delays_grow_to_their_cap():
    it = delays(0.5, cap=3.0)
    assert [next(it) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_retry_is_bounded_and_pauses_with_backoff():
    pauses: list[float] = []
    calls = []

    def busy():
        calls.append(1)
        raise TransientSubmitError("busy")

    with pytest.raises(TransientSubmitError):
        retry(busy, retry_on=TransientSubmitError, retries=2, first=1.0, sleep=pauses.append)
    assert len(calls) == 3 and pauses == [1.0, 2.0]

    def refused():
        calls.append(1)
        raise SubmitError("bad image")  # not transient: never retried

    calls.clear()
    with pytest.raises(SubmitError):
        retry(refused, retry_on=TransientSubmitError, retries=5, sleep=pauses.append)
    assert len(calls) == 1


def test_wait_until_returns_the_value_or_gives_up_at_the_timeout():
    values = iter([1, 2, 3, 4])
    assert wait_until(lambda: next(values), 5.0, until=lambda v: v >= 3, first=0.001) == 3
    started = time.monotonic()
    assert wait_until(lambda: False, 0.05, first=0.01) is False
    assert 0.04 <= time.monotonic() - started < 1.0


def _request(tmp_path: Path, name: str) -> JobRequest:
    return JobRequest(name=name, results_dir=str(tmp_path / name), command="echo accuracy=0.5")


def test_trial_submit_writes_the_intent_then_the_handle_after_retries(tmp_path, quick_backoff):
    ledger = JobLedger(Workspace(tmp_path / "ws"))
    backend = FlakySubmit(failures=2)
    intent = SubmittingEvent(trial_id="t1", attempt=1, name="s-t1-1", results_dir=str(tmp_path / "s-t1-1"))
    handle = submit_job(backend, _request(tmp_path, "s-t1-1"), retries=2, ledger=ledger, intent=intent, node="n")
    assert backend.submits == 3
    kinds = [type(e) for e in ledger.events("t1")]
    assert kinds == [SubmittingEvent, SubmittedEvent]
    (att,) = ledger.trial("t1").attempts
    assert att.handle.job_id == handle.job_id and ledger.unconfirmed() == []
    assert backend.wait(handle, 20).state is JobState.SUCCEEDED


def test_submit_that_stays_busy_raises_and_leaves_the_intent_open(tmp_path, quick_backoff):
    ledger = JobLedger(Workspace(tmp_path / "ws"))
    backend = FlakySubmit(failures=5)
    intent = SubmittingEvent(trial_id="t1", attempt=1, name="s-t1-1")
    with pytest.raises(TransientSubmitError, match="submit 3 of 5"):
        submit_job(backend, _request(tmp_path, "s-t1-1"), retries=2, ledger=ledger, intent=intent)
    assert backend.submits == 3
    assert [(tid, ev.attempt) for tid, ev in ledger.unconfirmed()] == [("t1", 1)]


def _prepared(backend, max_retries: int):
    """The plan fields an evaluation reads (as in test_spec_outputs), with the real skill and backend."""
    return SimpleNamespace(
        skill=load_skill(NV_SKILL), evaluate_action="evaluate", backend=backend, base_checkpoint=None,
        dataset_uris={}, job_options=JobOptions(), metric="accuracy", overrides={}, objectives=(),
        settings=SimpleNamespace(poll_interval_s=0.05, max_retries=max_retries))


def test_evaluation_submit_retries_transient_failures_like_a_trial(tmp_path, quick_backoff):
    backend = FlakySubmit(failures=2, python=sys.executable)
    ws = Workspace(str(tmp_path / "ws"))
    ev = run_evaluation(kind="final", prepared=_prepared(backend, max_retries=2), ws=ws,
                        job_root=ws.path("trials"), checkpoint=None)
    assert ev.status == EvalStatus.MEASURED and ev.metric_value is not None, ev.reason
    assert backend.submits == 3
    assert ws.read_json("evaluations/final-handle.json")["job_id"] == ev.job_id
    assert ws.read_json("evaluations/final.json")["status"] == "measured"


def test_evaluation_submit_gives_up_after_max_retries(tmp_path, quick_backoff):
    backend = FlakySubmit(failures=3, python=sys.executable)
    ws = Workspace(str(tmp_path / "ws"))
    ev = run_evaluation(kind="baseline", prepared=_prepared(backend, max_retries=1), ws=ws,
                        job_root=ws.path("trials"), checkpoint=None)
    assert backend.submits == 2
    assert ev.status == EvalStatus.FAILURE and "platform busy (submit 2 of 3 refused)" in ev.reason
    assert not ws.exists("evaluations/baseline-handle.json")


def test_cancel_open_jobs_cancels_records_and_is_idempotent(tmp_path):
    ledger = JobLedger(Workspace(tmp_path / "ws"))
    backend = FlakySubmit(failures=0, grace_period_s=1)
    running = JobRequest(name="s-t1-1", results_dir=str(tmp_path / "r1"), command="sleep 60")
    handle = submit_job(backend, running, retries=0, ledger=ledger,
                        intent=SubmittingEvent(trial_id="t1", attempt=1, name="s-t1-1"))
    done = submit_job(backend, _request(tmp_path, "s-t2-1"), retries=0, ledger=ledger,
                      intent=SubmittingEvent(trial_id="t2", attempt=1, name="s-t2-1"))
    backend.wait(done, 20)
    out = cancel_open_jobs(ledger, backend, "canceled by the test")
    assert sorted((e["trial_id"], e["action"]) for e in out) == [("t1", "canceled"), ("t2", "already finished")]
    assert backend.status(handle).state is JobState.CANCELED
    assert not process_group_alive(handle.data["pgid"])
    assert ledger.trial("t1").attempts[0].stopped["why"] == "canceled by the test"
    assert ledger.open_attempts() == [] and cancel_open_jobs(ledger, backend, "again") == []


def test_status_words_are_their_plain_strings():
    assert TrialStatus.SUCCEEDED == "succeeded" and f"{TrialStatus.FAILED}" == "failed"
    assert dumps_strict({"s": EvalStatus.REUSED_BEST}) == '{"s": "reused_best"}'
    from tao_automl.reporting.results import Evaluation, TrialResult

    assert type(Evaluation(status=EvalStatus.MEASURED).status) is str
    assert type(TrialResult(rec_id="t", status=TrialStatus.STOPPED).status) is str
