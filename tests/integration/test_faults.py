"""Injected faults, each classified in the result and never ranked best:
a job hanging past its time limit, a corrupt status file, a backend whose
status calls fail (for a while / for good), submissions that keep failing,
and a shared root cause (every job times out) that stops the run early.

(Crashes, exit 0 without a metric, NaN, transient submit errors retried
within the bound and fail-fast on a data error are in test_failures.py.)
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from skillkit import make_skill

from tao_automl.platforms.local import process_group_alive
from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

GOOD = """
lr = spec["train"]["lr"]
for e in range(1, spec["train"]["num_epochs"] + 1):
    emit(epoch=e, val_loss=abs(lr - 0.05) + 1.0 / e)
"""
QUIET = {"baseline": False, "final_eval": False, "seed": 3, "fail_fast_after": 0}


def run(skill: Path, ws: Path, settings: dict, algorithm: str = "grid", **kw) -> dict:
    res = AutoMLRunner(skill_dir=skill, workspace_dir=ws, **kw).run(
        automl_algorithm=algorithm, automl_settings={**QUIET, **settings})
    validate_result(res)
    return res


def ledger_of(res: dict) -> JobLedger:
    return JobLedger(Workspace(res["workspace"]))


def assert_never_best(res: dict, bad: list[dict]) -> None:
    best = res["best"]
    for t in bad:
        assert t["metric_value"] is None
        assert best is None or best["rec_id"] != t["rec_id"]


def test_hanging_job_is_killed_at_the_timeout(ray_cluster, tmp_path):
    skill = make_skill(tmp_path / "hang", textwrap.dedent("""
        if spec["train"]["lr"] > 0.05:
            print("waiting for a lock that never comes", flush=True)
            time.sleep(300)
        """) + GOOD)
    res = run(skill, tmp_path / "ws", {"grid_points": 2, "max_recommendations": 2, "max_concurrent": 2,
                                       "trial_timeout_s": 3})
    by = {t["status"]: t for t in res["history"]}
    assert sorted(by) == ["failed", "succeeded"], res["history"]
    hung = by["failed"]
    assert hung["failure_reason"] == "timeout" and "time limit" in hung["failure_message"]
    assert hung["attempts"] == 1  # a timeout is not retried
    assert hung["duration_s"] < 60
    assert_never_best(res, [hung])
    assert res["best"]["rec_id"] == by["succeeded"]["rec_id"]
    (att,) = ledger_of(res).trial(hung["rec_id"]).attempts
    assert not process_group_alive(int(att.handle.data["pgid"])), "the hung job was left running"


def test_corrupt_status_file_without_tagged_lines(ray_cluster, tmp_path):
    # Both jobs print no tagged metric line and write a torn status.json; the
    # low-lr one also writes a valid metrics.json, which is used instead.
    skill = make_skill(tmp_path / "corrupt", """
        with open(os.path.join(results_dir, "status.json"), "wb") as fh:
            fh.write(b'{"epoch": 1, "kpi": {"val_lo\\n\\x00\\xff{{{ not json\\n')
        if spec["train"]["lr"] <= 0.05:
            json.dump({"val_loss": 0.25}, open(os.path.join(results_dir, "metrics.json"), "w"))
        print("training finished", flush=True)
        """)
    res = run(skill, tmp_path / "ws", {"grid_points": 2, "max_recommendations": 2, "max_concurrent": 2})
    by = {t["status"]: t for t in res["history"]}
    assert sorted(by) == ["failed", "succeeded"], res["history"]
    bad = by["failed"]
    assert bad["failure_reason"] == "program" and bad["exit_code"] == 0
    msg = bad["failure_message"]
    assert "no value for metric 'val_loss'" in msg and "status.json: line 1 is not JSON" in msg, msg
    assert_never_best(res, [bad])
    good = by["succeeded"]
    assert good["metric_value"] == 0.25 and res["best"]["rec_id"] == good["rec_id"]
    outcome = ledger_of(res).trial(good["rec_id"]).outcome
    assert outcome["metric_source"] == "metrics.json"


def flaky_status_backend(counter_dir: str, failures: int | None):
    """The real LocalBackend behind a delegating wrapper whose ``wait`` and
    ``status`` raise PlatformError ``failures`` times (None: forever).  The
    count lives in files: the backend is pickled into Ray's trial workers."""
    from tao_automl.errors import PlatformError
    from tao_automl.platforms import LocalBackend

    class FlakyStatus:
        name = "local"

        def __init__(self) -> None:
            self.inner = LocalBackend()
            self.python = self.inner.python

        def _maybe_fail(self, what: str) -> None:
            n = len(os.listdir(counter_dir))
            if failures is None or n < failures:
                Path(counter_dir, str(n)).touch()
                raise PlatformError(f"status API unreachable ({what} call {n + 1})")

        def submit(self, request):
            return self.inner.submit(request)

        def status(self, handle):
            self._maybe_fail("status")
            return self.inner.status(handle)

        def wait(self, handle, timeout):
            self._maybe_fail("wait")
            return self.inner.wait(handle, timeout)

        def logs(self, handle, since=0):
            return self.inner.logs(handle, since)

        def cancel(self, handle):
            return self.inner.cancel(handle)

        def list_artifacts(self, handle):
            return self.inner.list_artifacts(handle)

        def read_artifact(self, handle, path):
            return self.inner.read_artifact(handle, path)

        def cleanup(self, handle):
            return self.inner.cleanup(handle)

    return FlakyStatus()


def test_status_errors_that_recover_do_not_fail_the_trial(ray_cluster, tmp_path):
    counter = tmp_path / "errors"
    counter.mkdir()
    skill = make_skill(tmp_path / "sk", GOOD)
    res = run(skill, tmp_path / "ws", {"max_recommendations": 1, "max_retries": 0}, algorithm="random",
              platform_sdk=flaky_status_backend(str(counter), failures=3))
    (t,) = res["history"]
    assert t["status"] == "succeeded" and t["attempts"] == 1, t
    assert res["best"]["rec_id"] == t["rec_id"]
    assert len(os.listdir(counter)) == 3


def test_status_errors_forever_fail_the_trial_and_cancel_its_job(ray_cluster, tmp_path):
    counter = tmp_path / "errors"
    counter.mkdir()
    skill = make_skill(tmp_path / "sk", """
        emit(epoch=1, val_loss=0.5)
        time.sleep(300)
        """)
    res = run(skill, tmp_path / "ws", {"max_recommendations": 1, "max_retries": 0}, algorithm="random",
              platform_sdk=flaky_status_backend(str(counter), failures=None))
    (t,) = res["history"]
    assert t["status"] == "failed" and t["failure_reason"] == "infrastructure", t
    assert "kept failing on status calls" in t["failure_message"]
    assert "status API unreachable" in t["failure_message"]
    assert t["duration_s"] < 60
    assert res["best"] is None  # the epoch value of a lost job never ranks
    led = ledger_of(res)
    (att,) = led.trial(t["rec_id"]).attempts
    assert led.open_attempts() == []
    assert not process_group_alive(int(att.handle.data["pgid"])), "orphan job left running"


def test_submission_that_keeps_failing_is_bounded_and_classified(ray_cluster, tmp_path):
    from tao_automl.errors import TransientSubmitError
    from tao_automl.platforms import LocalBackend

    counter = tmp_path / "submits"
    counter.mkdir()

    class DownAPI(LocalBackend):
        def submit(self, request):
            Path(counter, str(len(os.listdir(counter)))).touch()
            raise TransientSubmitError("scheduler API busy")

    skill = make_skill(tmp_path / "sk", GOOD)
    res = run(skill, tmp_path / "ws", {"max_recommendations": 1, "max_retries": 1}, algorithm="random",
              platform_sdk=DownAPI())
    (t,) = res["history"]
    assert t["status"] == "failed" and t["failure_reason"] == "infrastructure", t
    assert "submission failed (2 tries)" in t["failure_message"]
    assert "scheduler API busy" in t["failure_message"]
    assert len(os.listdir(counter)) == 2  # 1 try + max_retries=1
    assert res["best"] is None and res["progress"]["failed"] == 1


def test_every_job_timing_out_stops_the_run_with_that_cause(ray_cluster, tmp_path):
    skill = make_skill(tmp_path / "slow", """
        time.sleep(300)
        """)
    res = run(skill, tmp_path / "ws", {"max_recommendations": 8, "max_concurrent": 1, "fail_fast_after": 2,
                                       "trial_timeout_s": 1}, algorithm="random")
    assert res["stopped_early"] and "shared cause" in res["stopped_early"]
    assert "(timeout)" in res["stopped_early"] and "time limit" in res["stopped_early"], res["stopped_early"]
    assert 2 <= len(res["history"]) < 8
    assert all(t["status"] == "failed" and t["failure_reason"] == "timeout" for t in res["history"])
    assert res["best"] is None
