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


def test_take_matches_the_key_and_skips_records_without_a_handle(tmp_path, monkeypatch):
    monkeypatch.setattr(early, "SUBMIT_WAIT_S", 0.2)
    folder = str(tmp_path / "early")
    early.write_record(folder, 0, {"key": "a", "handle": None})  # submit in flight (and never done)
    early.write_record(folder, 1, {"key": "b", "handle": {"backend": "local", "job_id": "7"}})
    t0 = time.monotonic()
    assert early.take(folder, "a", "t0") is None
    assert 0.2 <= time.monotonic() - t0 < 2  # waited for the driver's submit, then gave up
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


def test_take_waits_for_the_handle_of_a_job_the_driver_is_submitting(tmp_path):
    folder = str(tmp_path / "early")
    early.write_record(folder, 4, {"key": "a", "handle": None})  # the driver's submit is in flight

    def finish() -> None:
        time.sleep(0.3)
        early.write_record(folder, 4, {"key": "a", "handle": {"backend": "local", "job_id": "9"}})

    threading.Thread(target=finish).start()
    rec = early.take(folder, "a", "t0")
    assert rec is not None and rec["handle"]["job_id"] == "9"
    assert os.listdir(folder) == ["4.t0.taken"] and early.any_taken(folder) and early.count(folder) == 1
    assert early.record(folder, 4)["handle"]["job_id"] == "9" and early.record(folder, 5) is None


def test_wait_taken_waits_for_the_first_batch_only(tmp_path):
    folder = str(tmp_path / "early")
    for i in range(4):
        early.write_record(folder, i, {"key": str(i), "handle": {"backend": "local", "job_id": str(i)}})
    early.take(folder, "0", "t0")
    early.take(folder, "1", "t1")
    t0 = time.monotonic()
    assert early.wait_taken(folder, batch=2, timeout_s=5)  # records 2 and 3 were queued beyond the batch
    assert time.monotonic() - t0 < 0.5
    assert not early.wait_taken(folder, batch=3, timeout_s=0.2)
    assert not early.wait_taken(folder, timeout_s=0.2)  # default: every record
    early.unadopted(folder)  # swept records are no trial's
    assert early.any_taken(folder) and early.count(folder) == 4 and early.pending(folder) == 0


def _feed_setup(tmp_path, monkeypatch, job_s: float, fail_at: int | None = None):
    """Initial batch of 2 real local jobs of ``job_s`` seconds; the feeder's submit
    (``launch_early_one``) replaced by one submitting the same real job and recording it."""
    from tao_automl.execution import early_feed

    backend = LocalBackend(grace_period_s=1.0)
    folder = str(tmp_path / "early")
    starts: list[tuple[float, int]] = []

    def submit(i: int):
        h = backend.submit(JobRequest(name=f"early-{i}", results_dir=str(tmp_path / f"early-{i}"),
                                      argv=[sys.executable, "-c", f"import time; time.sleep({job_s})"]))
        starts.append((time.monotonic(), i))
        early.write_record(folder, i, {"key": str(i), "handle": h.to_dict()})
        return h

    def launch_one(plan, point, folder_, index):
        if index == fail_at:
            early.write_record(folder_, index, {"key": str(index), "handle": None, "error": {"message": "x"}})
            return None
        return submit(index)

    monkeypatch.setattr(early_feed, "launch_early_one", launch_one)
    handles = [submit(0), submit(1)]
    return early_feed, backend, folder, starts, handles


def test_the_feeder_keeps_the_slots_busy_until_a_trial_adopts_a_job(tmp_path, monkeypatch):
    early_feed, backend, folder, starts, _ = _feed_setup(tmp_path, monkeypatch, job_s=0.3)
    feeder = early_feed.EarlyFeeder(None, [{"x": i} for i in range(2, 40)], folder=folder, start=2, slots=2,
                                    backend=backend).start()
    time.sleep(1.5)  # about 2 jobs per slot-second: some batches fed, far from the 38 queued
    fed = early.count(folder)
    assert 4 <= fed < 40, fed
    early.take(folder, "0", "trial-0")  # Tune is up: the first early job is adopted
    time.sleep(0.5)
    settled = early.count(folder)
    time.sleep(1.0)
    assert early.count(folder) == settled  # nothing fed after the adoption
    feeder.stop()
    # never more than 2 jobs at once: each fed job started after an earlier one ended
    ends = sorted(t for t, _ in starts)
    for k in range(2, len(ends)):
        assert ends[k] >= ends[k - 2] + 0.25, (k, ends)
    assert [i for _, i in sorted(starts)] == list(range(len(starts)))  # in the queue's order


def test_the_feeder_stops_at_a_refused_submit_and_on_request(tmp_path, monkeypatch):
    early_feed, backend, folder, starts, _ = _feed_setup(tmp_path, monkeypatch, job_s=0.1, fail_at=4)
    feeder = early_feed.EarlyFeeder(None, [{"x": i} for i in range(2, 20)], folder=folder, start=2, slots=2,
                                    backend=backend).start()
    time.sleep(1.5)
    assert early.count(folder) == 5  # 0-3 ran, 4 was refused (its trial retries), no more after it
    assert early.record(folder, 4)["error"] == {"message": "x"}
    feeder.stop()
    stop = threading.Event()
    early_feed2, backend2, folder2, _, _ = _feed_setup(tmp_path / "b", monkeypatch, job_s=0.1)
    feeder2 = early_feed2.EarlyFeeder(None, [{"x": i} for i in range(2, 20)], folder=folder2, start=2, slots=2,
                                      backend=backend2, should_stop=stop.is_set)
    stop.set()  # the run was canceled before the feeder ran
    feeder2.start()
    time.sleep(0.5)
    feeder2.stop()
    assert early.count(folder2) == 2


def test_a_sweep_below_an_index_leaves_later_early_jobs_to_their_trials(tmp_path):
    folder = str(tmp_path / "early")
    for i in range(4):
        early.write_record(folder, i, {"key": str(i), "handle": {"backend": "local", "job_id": str(i)}})
    early.take(folder, "0", "t0")
    # trials 0 and 1 started long enough ago: record 1 matched none; 2 and 3 wait for theirs
    assert [label for label, _ in early.unadopted(folder, below=2)] == ["early-1"]
    assert early.pending(folder) == 2 and early.take(folder, "3", "t3") is not None
