"""The workspace on ``s3://`` (issue 7), served by moto's server mode on a
free localhost port.  The endpoint reaches every reader and writer only
through ``AutoMLRunner(storage_options=...)`` -- no ``AWS_ENDPOINT_URL`` --
so the driver, Ray Tune's storage (pyarrow over s3fs) and the trial workers
all prove they got it.  The first test also passes the store credentials
only as ``secret("ENV")`` references and checks they are never written.  Drivers run in subprocesses: they start their own Ray
with the fake AWS credentials in its environment, and can be SIGKILLed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from s3_fixture import S3Server, s3_server_fixture  # noqa: F401  (the s3_server fixture)

from tao_automl.reporting.results import validate_result
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"

DRIVER = """
import json, sys
from tao_automl.runner import AutoMLRunner
import os
from tao_automl import secret
skill, ws, endpoint, algorithm, settings, overrides, resume = sys.argv[1:8]
options = {"client_kwargs": {"endpoint_url": endpoint}}
if "TAO_S3_KEY" in os.environ:  # credentials as secret references, resolved in every process
    options.update(key=secret("TAO_S3_KEY"), secret=secret("TAO_S3_SECRET"))
r = AutoMLRunner(skill_dir=skill, workspace_dir=ws, storage_options=options)
if resume == "resume":
    res = r.run(resume=True, automl_settings=json.loads(settings))
else:
    res = r.run(automl_algorithm=algorithm, automl_settings=json.loads(settings),
                spec_overrides=json.loads(overrides))
print("RESULT " + json.dumps({"workspace": res["workspace"], "progress": res["progress"]}), flush=True)
"""


S3_KEY = "AKIA-TAO-TEST-7c1e"
S3_SECRET = "s3-SeCrEt-9f2b6d-planted-by-test_s3_workspace"


def _env(tmp: Path, secret_refs: bool) -> dict[str, str]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "disabled",
           "PYTHONPATH": str(REPO), "TMPDIR": str(tmp)}
    for k in ("AWS_ENDPOINT_URL", "RAY_ADDRESS", "TAO_S3_KEY", "TAO_S3_SECRET"):
        env.pop(k, None)
    if secret_refs:  # no AWS_* credentials at all: only the secret references can reach the store
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.pop(k, None)
        env.update(TAO_S3_KEY=S3_KEY, TAO_S3_SECRET=S3_SECRET)
    return env


def _driver(s3: S3Server, tmp: Path, uri: str, settings: dict, overrides: dict | None = None, *,
            resume: bool = False, log: str = "driver.log", secret_refs: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-c", DRIVER, str(TOY), uri, s3.endpoint, "random", json.dumps(settings),
           json.dumps(overrides or {}), "resume" if resume else "fresh"]
    return subprocess.Popen(cmd, cwd=tmp, env=_env(tmp, secret_refs), stdout=subprocess.PIPE,
                            stderr=open(tmp / log, "w"))


def _finish(proc: subprocess.Popen, tmp: Path, log: str, timeout: float = 240) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, (tmp / log).read_text()[-4000:]
    return json.loads(text.split("RESULT ", 1)[1].splitlines()[0])


def _files(s3: S3Server, prefix: str) -> list[str]:
    return sorted(p.split(prefix, 1)[1] for p in s3.fs().find(prefix))


@pytest.mark.timeout(300)
def test_search_on_s3_workspace(s3_server: S3Server, tmp_path: Path) -> None:
    sid = f"s3-{uuid.uuid4().hex[:6]}"
    uri = f"s3://{s3_server.bucket}/automl"
    settings = {"max_recommendations": 2, "seed": 0, "session_id": sid}
    proc = _driver(s3_server, tmp_path, uri, settings, {"train.num_epochs": 2}, secret_refs=True)
    res = _finish(proc, tmp_path, "driver.log")
    assert res["workspace"] == f"{uri}/{sid}"
    assert res["progress"]["completed"] == 2

    prefix = f"{s3_server.bucket}/automl/{sid}/"
    files = _files(s3_server, prefix)
    for must in ("settings.json", "search_space.json", "review.json", "result.json", "history.csv",
                 "evaluations/baseline.json", "evaluations/final.json"):
        assert must in files, (must, files)
    assert sum(f.startswith("ledger/") for f in files) >= 2 * 3  # planned, submitted, finished per trial
    assert any(f.startswith("ray/tune/experiment_state") for f in files), files
    assert any(f.startswith("ray/tune/") and f.endswith("result.json") for f in files)

    ws = Workspace(f"{uri}/{sid}", s3_server.storage_options)
    result = ws.read_json("result.json")
    validate_result(result)
    assert result["best"]["metric_value"] is not None
    # the jobs' local folder was published into the workspace and removed: the
    # result names the workspace copies (best checkpoint included)
    assert not (tmp_path / "tao-automl-jobs").exists()
    assert any(f.startswith("trials/") and f.endswith(".pth") for f in files), files
    best = result["best"]["checkpoint"]
    assert best.startswith(f"{uri}/{sid}/trials/") and s3_server.fs().exists(best), best
    assert result["best"]["spec_path"].startswith(f"{uri}/{sid}/trials/")
    from tao_automl.runner import AutoMLRunner

    status = AutoMLRunner.status(f"{uri}/{sid}", storage_options=s3_server.storage_options)
    assert status["finished"] and len(status["history"]) == 2
    assert sid in AutoMLRunner.render_status(f"{uri}/{sid}", storage_options=s3_server.storage_options)
    trials = JobLedger(ws).trials()
    assert len(trials) == 2 and all(t.done for t in trials)
    # the store credentials (secret references) were never written: not to the bucket
    # (Ray's pickled experiment state included), not to the local job mirror or logs
    fs = s3_server.fs()
    for path in fs.find(prefix):
        data = fs.cat_file(path)
        assert S3_SECRET.encode() not in data and S3_KEY.encode() not in data, path
    for p in tmp_path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            assert S3_SECRET.encode() not in data and S3_KEY.encode() not in data, p
    # nothing landed in the driver's working folder
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(("driver", "ray"))) == []


def _ledger(s3: S3Server, uri: str) -> JobLedger:
    return JobLedger(Workspace(uri, s3.storage_options))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_and_resume_on_s3(s3_server: S3Server, tmp_path: Path) -> None:
    sid = f"s3-crash-{uuid.uuid4().hex[:6]}"
    base = f"s3://{s3_server.bucket}/automl"
    uri = f"{base}/{sid}"
    settings = {"max_recommendations": 4, "max_concurrent": 2, "seed": 1, "session_id": sid,
                "baseline": False, "final_eval": False}
    proc = _driver(s3_server, tmp_path, base, settings, {"train.num_epochs": 4, "train.epoch_sleep_s": 1.0},
                   log="driver1.log")
    deadline = time.time() + 180
    while True:
        assert time.time() < deadline, (tmp_path / "driver1.log").read_text()[-3000:]
        assert proc.poll() is None, (tmp_path / "driver1.log").read_text()[-3000:]
        led = _ledger(s3_server, uri)
        if any(r.done for r in led.trials()) and len(led.open_attempts()) >= 1:
            break
        time.sleep(0.5)
    time.sleep(1.5)  # Tune syncs its experiment state to storage every few seconds
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    led = _ledger(s3_server, uri)
    done_before = {r.trial_id: r.attempts[-1].handle.job_id for r in led.trials() if r.done}
    running_before = {tid: att.handle.job_id for tid, att in led.open_attempts()}
    assert done_before and running_before

    res = _finish(_driver(s3_server, tmp_path, base, {"session_id": sid}, resume=True, log="driver2.log"),
                  tmp_path, "driver2.log", timeout=400)
    assert res["progress"]["completed"] == settings["max_recommendations"]
    ws = Workspace(uri, s3_server.storage_options)
    result = ws.read_json("result.json")
    validate_result(result)
    hist = {t["rec_id"]: t for t in result["history"]}
    assert len(hist) == settings["max_recommendations"], "trial count == budget"
    assert all(t["status"] == "succeeded" for t in hist.values())
    submits: Counter = Counter()
    for tid in _ledger(s3_server, uri).trial_ids():
        submits[tid] = sum(1 for e in ws.events(f"ledger/{tid}") if e["kind"] == "submitted")
    for tid, job in done_before.items():
        assert submits[tid] == 1 and hist[tid]["job_id"] == job, "a finished trial is never re-run"
    for tid, job in running_before.items():
        if tid in hist:
            assert submits[tid] == 1 and hist[tid]["job_id"] == job, "a running job is reattached"
    assert _ledger(s3_server, uri).open_attempts() == []
