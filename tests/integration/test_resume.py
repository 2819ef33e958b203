"""Crash and resume, signals: the driver runs in a subprocess of its own.

A SIGKILLed driver leaves its jobs running; ``run(resume=True)`` reattaches
to them (same job ids), never re-runs a finished trial and ends with exactly
the requested number of trials.  SIGTERM/SIGINT cancel every job (no orphan
process) and leave a workspace that resumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from skillkit import TOY

from tao_automl.errors import WorkspaceError
from tao_automl.platforms.local import process_group_alive
from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

SETTINGS = {"max_recommendations": 4, "max_concurrent": 2, "seed": 1, "session_id": "exp",
            "baseline": False, "final_eval": False,
            # Tune-side crash and resume with trials mid-job: early start (random feeds its whole
            # budget while Ray starts, so short runs end before Tune runs a job) has its own kill
            # points in test_kill_points.py
            "early_start": False}
OVERRIDES = {"train.num_epochs": 4, "train.epoch_sleep_s": 1.0}
DRIVER = """
import json, sys
from tao_automl.runner import AutoMLRunner
r = AutoMLRunner(skill_dir=sys.argv[1], workspace_dir=sys.argv[2])
r.run(automl_algorithm=sys.argv[3], automl_settings=json.loads(sys.argv[4]),
      spec_overrides=json.loads(sys.argv[5]))
"""


def start_driver(ws: Path, algorithm: str = "random", settings=None, overrides=None) -> subprocess.Popen:
    cmd = [sys.executable, "-c", DRIVER, str(TOY), str(ws), algorithm, json.dumps(settings or SETTINGS),
           json.dumps(overrides or OVERRIDES)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(ws.parent / "driver.log", "w"))


def wait_for(pred, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        if proc.poll() is not None:
            raise AssertionError(f"driver exited early ({proc.returncode})")
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def ledger(ws: Path) -> JobLedger:
    return JobLedger(Workspace(ws / "exp"))


def submits_per_trial(ws: Path) -> Counter:
    c: Counter = Counter()
    for tid in ledger(ws).trial_ids():
        c[tid] = sum(1 for e in Workspace(ws / "exp").events(f"ledger/{tid}") if e["kind"] == "submitted")
    return c


def job_alive(att) -> bool:
    return process_group_alive(int(att.handle.data["pgid"]))


@pytest.mark.slow
def test_sigkill_then_resume_reattaches_and_finishes(ray_cluster, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    proc = start_driver(ws)

    def some_done_some_running() -> bool:
        if not (ws / "exp" / "ledger").exists():
            return False
        led = ledger(ws)
        return any(r.done for r in led.trials()) and len(led.open_attempts()) >= 1

    wait_for(some_done_some_running, proc)
    time.sleep(1.5)  # Tune saves its experiment state every second
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    led = ledger(ws)
    done_before = {r.trial_id: r.attempts[-1].handle.job_id for r in led.trials() if r.done}
    running_before = {tid: att.handle.job_id for tid, att in led.open_attempts()}
    assert done_before and running_before
    assert any(job_alive(att) for _, att in led.open_attempts()), "jobs outlive the driver"

    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(resume=True, automl_settings={"session_id": "exp"})
    validate_result(res)
    hist = {t["rec_id"]: t for t in res["history"]}
    assert len(hist) == SETTINGS["max_recommendations"]
    assert all(t["status"] == "succeeded" for t in hist.values())
    counts = submits_per_trial(ws)
    for tid, job in done_before.items():
        assert counts[tid] == 1 and hist[tid]["job_id"] == job, "a finished trial is never re-run"
    for tid, job in running_before.items():
        if tid in hist:
            assert counts[tid] == 1 and hist[tid]["job_id"] == job, "a running job is reattached"
    # the resumed trials used the saved spec overrides
    for t in hist.values():
        assert t["epochs_completed"] == OVERRIDES["train.num_epochs"]
    assert ledger(ws).open_attempts() == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_cancels_every_job_and_leaves_a_resumable_workspace(sig, ray_cluster, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    proc = start_driver(ws, overrides={"train.num_epochs": 4, "train.epoch_sleep_s": 2.0})
    wait_for(lambda: (ws / "exp" / "ledger").exists() and len(ledger(ws).open_attempts()) == 2, proc)
    handles = [att for _, att in ledger(ws).open_attempts()]
    proc.send_signal(sig)
    assert proc.wait(timeout=90) == 0, (ws.parent / "driver.log").read_text()[-3000:]
    for att in handles:
        assert not job_alive(att), f"job {att.handle.job_id} outlived the driver"
    out = json.loads((ws / "exp" / "result.json").read_text())
    assert out["stopped_early"] and signal.Signals(sig).name in out["stopped_early"]
    assert ledger(ws).open_attempts() == []
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(resume=True, automl_settings={"session_id": "exp"})
    assert res["stopped_early"] is None
    done = [t for t in res["history"] if t["status"] == "succeeded"]
    assert len(done) == SETTINGS["max_recommendations"]


def test_resume_with_nothing_to_resume(tmp_path):
    r = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    with pytest.raises(WorkspaceError) as ei:
        r.run(resume=True)
    assert "nothing to resume" in str(ei.value)
    with pytest.raises(WorkspaceError) as ei:
        r.run(resume=True, automl_settings={"session_id": "nope"})
    assert "nope" in str(ei.value)
    assert not (tmp_path / "ws" / "nope").exists()


def test_fresh_run_with_existing_session_id(tmp_path):
    (tmp_path / "ws" / "exp").mkdir(parents=True)
    (tmp_path / "ws" / "exp" / "settings.json").write_text(json.dumps({"created": 1, "settings": {}}))
    r = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    with pytest.raises(WorkspaceError) as ei:
        r.run(automl_settings={"session_id": "exp", "baseline": False})
    assert "already exists" in str(ei.value) and "resume=True" in str(ei.value)
    assert os.listdir(tmp_path / "ws" / "exp") == ["settings.json"]

