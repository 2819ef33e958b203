"""One live driver per experiment (issue 12; ``tao_automl.store.lease``).

Real driver processes on the toy skill: a second ``run(resume=True)`` while
the first driver runs is refused and writes nothing; ``status`` still reads
the experiment; after the first driver is SIGKILLed a successor takes over
(once the lease expired, or at once when the dead owner is on this host) and
finishes with no duplicate ``finished`` event.  The same on ``s3://`` (moto's
server; conditional PUTs).  Concurrent fresh runs with one session_id:
exactly one wins.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from s3_fixture import S3Server, s3_server_fixture  # noqa: F401  (the s3_server fixture)
from skillkit import TOY

from tao_automl.errors import WorkspaceError
from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.lease import LEASE_FILE, DriverLease
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
BUDGET = 4
SETTINGS = {"max_recommendations": BUDGET, "max_concurrent": 2, "seed": 1, "session_id": "exp",
            "baseline": False, "final_eval": False,
            # the lease is checked while Tune's trials run their jobs: early start (random feeds its
            # whole budget while Ray starts, so short runs can end before Tune runs a job) is off
            "early_start": False}
OVERRIDES = {"train.num_epochs": 4, "train.epoch_sleep_s": 0.8}
DRIVER = """
import json, sys, time
from tao_automl.runner import AutoMLRunner
skill, ws, endpoint, settings, overrides, resume, start_at = sys.argv[1:8]
options = {"client_kwargs": {"endpoint_url": endpoint}} if endpoint != "-" else {}
r = AutoMLRunner(skill_dir=skill, workspace_dir=ws, storage_options=options)
time.sleep(max(0.0, float(start_at) - time.time()))
if resume == "resume":
    res = r.run(resume=True, automl_settings=json.loads(settings))
else:
    res = r.run(automl_algorithm="random", automl_settings=json.loads(settings),
                spec_overrides=json.loads(overrides))
print("RESULT " + json.dumps(res["progress"]), flush=True)
"""


def driver(ws: str, log: Path, *, settings=None, overrides=None, endpoint: str = "-", resume: bool = False,
           start_at: float = 0.0, ttl_s: float | None = None) -> subprocess.Popen:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    if ttl_s is not None:
        env["TAO_AUTOML_LEASE_TTL_S"] = str(ttl_s)
    cmd = [sys.executable, "-c", DRIVER, str(TOY), ws, endpoint, json.dumps(settings or SETTINGS),
           json.dumps(overrides or OVERRIDES), "resume" if resume else "fresh", str(start_at)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=open(log, "w"), cwd=log.parent)


def wait_for(pred, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        assert proc.poll() is None, f"driver exited early: {log.read_text()[-3000:]}"
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


class WriteRecorder:
    """Observes every workspace write of this process (the real writes still happen)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writes: list[str] = []
        for name in ("write_bytes", "makedirs", "append_event"):
            real = getattr(Workspace, name)

            def spy(ws, *args, _real=real, _name=name, **kw):
                self.writes.append(f"{_name} {ws.root} {args[:1]}")
                return _real(ws, *args, **kw)

            monkeypatch.setattr(Workspace, name, spy)


def assert_no_duplicate_finished(led: JobLedger) -> None:
    for tid in led.trial_ids():
        evs = list(led.ws.events(f"ledger/{tid}"))
        fin = Counter(e.get("attempt") for e in evs if e["kind"] == "finished")
        sub = Counter(e.get("attempt") for e in evs if e["kind"] == "submitted")
        assert all(n == 1 for n in fin.values()), (tid, fin)
        assert all(n == 1 for n in sub.values()), (tid, sub)
        assert sum(1 for e in evs if e["kind"] == "finished" and e.get("final", True)) <= 1, tid


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_second_driver_refused_then_successor_after_kill(ray_cluster, tmp_path):
    ws = tmp_path / "ws"
    exp = ws / "exp"
    log = tmp_path / "driver.log"
    proc = driver(str(ws), log, ttl_s=4)
    try:
        wait_for(lambda: (exp / LEASE_FILE).exists() and (exp / "ledger").exists()
                 and JobLedger(Workspace(exp)).open_attempts(), proc, log)
        runner = AutoMLRunner(skill_dir=TOY, workspace_dir=ws)
        # read-only views work while the experiment is locked
        assert AutoMLRunner.status(exp)["history"]
        assert "exp" in AutoMLRunner.render_status(exp)

        with pytest.MonkeyPatch.context() as mp:
            rec = WriteRecorder(mp)
            with pytest.raises(WorkspaceError) as err:
                runner.run(resume=True, automl_settings={"session_id": "exp"})
        msg = str(err.value)
        assert f"pid {proc.pid}" in msg and str(exp / LEASE_FILE) in msg and "in use by another driver" in msg
        assert rec.writes == [], rec.writes  # refused before writing anything
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The dead driver's lease, as if it ran on another host: only expiry frees it.
    lease = json.loads((exp / LEASE_FILE).read_text())
    assert lease["pid"] == proc.pid and not lease["released"]
    lease["host"] = "another-host"
    Workspace(exp).write_json(LEASE_FILE, lease)
    if time.time() - lease["refreshed"] < 3:
        with pytest.raises(WorkspaceError, match="another-host"):
            AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(resume=True, automl_settings={"session_id": "exp"})
    time.sleep(max(0.0, lease["refreshed"] + lease["ttl_s"] + 0.5 - time.time()))

    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(resume=True, automl_settings={"session_id": "exp"})
    validate_result(res)
    assert res["progress"]["total"] == BUDGET == res["progress"]["completed"]
    led = JobLedger(Workspace(exp))
    assert_no_duplicate_finished(led)
    assert led.open_attempts() == []
    after = json.loads((exp / LEASE_FILE).read_text())
    assert after["released"] is True and after["pid"] == os.getpid()


@pytest.mark.timeout(300)
def test_concurrent_fresh_runs_with_one_session_id(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    settings = {**SETTINGS, "max_recommendations": 2}
    start_at = time.time() + 8  # every driver has imported everything by then
    procs = [driver(str(ws), tmp_path / f"d{i}.log", settings=settings,
                    overrides={"train.num_epochs": 1}, start_at=start_at) for i in range(3)]
    outs = [p.communicate(timeout=240)[0].decode() for p in procs]
    won = [i for i, p in enumerate(procs) if p.returncode == 0]
    assert len(won) == 1, [(p.returncode, (tmp_path / f"d{i}.log").read_text()[-1500:]) for i, p in enumerate(procs)]
    assert "RESULT" in outs[won[0]]
    for i in range(len(procs)):
        if i != won[0]:
            err = (tmp_path / f"d{i}.log").read_text()
            assert "WorkspaceError" in err and ("in use by another driver" in err or "already exists" in err), err
    led = JobLedger(Workspace(ws / "exp"))
    assert len(led.trials()) == 2
    assert_no_duplicate_finished(led)


# -- s3:// ----------------------------------------------------------------------------


def test_lease_on_s3_conditional_writes(s3_server: S3Server):
    ws = Workspace(f"s3://{s3_server.bucket}/automl/exp", s3_server.storage_options)
    won, refused = [], []
    barrier = threading.Barrier(6)

    def contend() -> None:
        lease = DriverLease(ws, ttl_s=30)
        barrier.wait()
        try:
            won.append(lease.acquire())
        except WorkspaceError:
            refused.append(lease)

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 5
    holder = json.loads(ws.read_bytes(LEASE_FILE))
    assert holder["owner"] == won[0].owner
    assert won[0].refresh() and json.loads(ws.read_bytes(LEASE_FILE))["refreshed"] >= holder["refreshed"]
    won[0].release()
    assert json.loads(ws.read_bytes(LEASE_FILE))["released"] is True
    # a dead owner on this host is taken over; a stale If-Match loses
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    ws.write_json(LEASE_FILE, {**holder, "pid": proc.pid, "released": False, "refreshed": time.time()})
    second = DriverLease(ws, ttl_s=30).acquire()
    assert json.loads(ws.read_bytes(LEASE_FILE))["owner"] == second.owner
    ws.write_json(LEASE_FILE, {**holder, "owner": "thief", "released": False, "refreshed": time.time()})
    assert second.refresh() is False and second.lost
    second.release()
    assert json.loads(ws.read_bytes(LEASE_FILE))["owner"] == "thief"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_second_driver_refused_and_successor_on_s3(s3_server: S3Server, tmp_path):
    sid = f"lease-{uuid.uuid4().hex[:6]}"
    base = f"s3://{s3_server.bucket}/automl"
    uri = f"{base}/{sid}"
    settings = {**SETTINGS, "session_id": sid}
    log = tmp_path / "driver.log"
    proc = driver(base, log, settings=settings, endpoint=s3_server.endpoint)
    ws = Workspace(uri, s3_server.storage_options)
    try:
        wait_for(lambda: ws.exists(LEASE_FILE) and JobLedger(ws).open_attempts(), proc, log, timeout=240)
        runner = AutoMLRunner(skill_dir=TOY, workspace_dir=base, storage_options=s3_server.storage_options)
        assert AutoMLRunner.status(uri, storage_options=s3_server.storage_options)["history"]
        with pytest.MonkeyPatch.context() as mp:
            rec = WriteRecorder(mp)
            with pytest.raises(WorkspaceError) as err:
                runner.run(resume=True, automl_settings={"session_id": sid})
        assert f"pid {proc.pid}" in str(err.value) and uri in str(err.value)
        assert rec.writes == [], rec.writes
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the dead owner is on this host: the successor takes over at once
    succ = driver(base, tmp_path / "succ.log", settings={"session_id": sid}, endpoint=s3_server.endpoint,
                  resume=True)
    out, _ = succ.communicate(timeout=400)
    assert succ.returncode == 0, (tmp_path / "succ.log").read_text()[-4000:]
    progress = json.loads(out.decode().split("RESULT ", 1)[1].splitlines()[0])
    assert progress["total"] == BUDGET == progress["completed"]
    assert "took over the driver lease" in (tmp_path / "succ.log").read_text()
    led = JobLedger(ws)
    assert_no_duplicate_finished(led)
    assert json.loads(ws.read_bytes(LEASE_FILE))["released"] is True
