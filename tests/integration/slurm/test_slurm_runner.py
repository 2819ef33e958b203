"""The runner through the real one-node SLURM cluster of .ci/slurm-up.sh:
a plain random search end to end, and SIGTERM/SIGINT during a run cancel
every SLURM job (none of the ledger's job ids left in ``squeue``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from skillkit import TOY

from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

pytestmark = pytest.mark.slurm

# The toy skill's python_script runs `python`: the job finds this venv's
# interpreter (numpy, yaml) through PATH, exported by the batch script.
PLATFORM = {"poll_interval_s": 0.3, "grace_period_s": 2.0,
            "env": {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}}
QUIET = {"baseline": False, "final_eval": False, "seed": 2, "session_id": "exp"}


def squeue_ids() -> set[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def slurm_state(job_id: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
    for field in out.stdout.split():
        if field.startswith("JobState="):
            return field.split("=", 1)[1]
    return ""


def test_random_search_end_to_end_through_slurm(slurm_up, ray_cluster, tmp_path):
    ws = tmp_path / "ws"
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws, platform_sdk="slurm").run(
        automl_algorithm="random",
        automl_settings={**QUIET, "max_recommendations": 3, "max_concurrent": 2},
        spec_overrides={"train.num_epochs": 2}, **PLATFORM)
    validate_result(res)
    assert [t["status"] for t in res["history"]] == ["succeeded"] * 3, res["history"]
    assert res["best"] is not None and res["best"]["checkpoint"]
    led = JobLedger(Workspace(ws / "exp"))
    for rec in led.trials():
        (att,) = rec.attempts
        assert att.handle.backend == "slurm" and att.handle.job_id.isdigit()
        assert Path(att.handle.data["script"]).is_file()  # the generated sbatch script
        assert slurm_state(att.handle.job_id) == "COMPLETED"
        # Epoch events are the raw stream: SLURM's output file is polled, so the
        # human "Epoch 1/2: ..." line can be read before its tagged twin and
        # both land in the ledger.  What counts is one merged value per epoch,
        # and the last word on each epoch is the full-precision tagged record.
        assert sorted({e["epoch"] for e in rec.epochs}) == [1, 2], rec.epochs
        for epoch in (1, 2):
            last = [e for e in rec.epochs if e["epoch"] == epoch][-1]["values"]
            assert {"val_loss", "val_accuracy", "train_loss"} <= set(last), rec.epochs
    assert json.loads((ws / "exp" / "settings.json").read_text())["platform"] == "slurm"


DRIVER = """
import json, sys
from tao_automl.runner import AutoMLRunner
r = AutoMLRunner(skill_dir=sys.argv[1], workspace_dir=sys.argv[2], platform_sdk="slurm")
r.run(automl_algorithm="random", automl_settings=json.loads(sys.argv[4]),
      spec_overrides={"train.num_epochs": 10, "train.epoch_sleep_s": 3.0}, **json.loads(sys.argv[3]))
"""


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes containing ``text`` (``ps`` without ps)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            out.append(f"{pid}: {cmd}")
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_signal_cancels_every_slurm_job(sig, slurm_up, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    settings = {**QUIET, "max_recommendations": 4, "max_concurrent": 2}
    log = ws.parent / "driver.log"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(TOY), str(ws), json.dumps(PLATFORM),
                             json.dumps(settings)], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    led = JobLedger(Workspace(ws / "exp"))
    deadline = time.time() + 180
    try:
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, "two SLURM jobs never ran"
            if (ws / "exp" / "ledger").exists():
                running = [att for _, att in led.open_attempts()]
                if len(running) == 2 and all(slurm_state(a.handle.job_id) == "RUNNING" for a in running):
                    break
            time.sleep(0.3)
        jobs = {att.handle.job_id for att in running}
        assert jobs <= squeue_ids()
        # (realpath: an early-start trial's spec path goes through its trials/<trial> link; the job's
        # command line names the early job's own folder)
        assert all(processes_mentioning(os.path.realpath(att.spec_path)) for att in running)  # the check below can see them
        proc.send_signal(sig)
        assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    every = {att.handle.job_id for rec in led.trials() for att in rec.attempts}
    assert jobs <= every
    assert not every & squeue_ids(), "SLURM jobs left after the signal"
    assert all(slurm_state(j) == "CANCELLED" for j in jobs), {j: slurm_state(j) for j in jobs}
    assert led.open_attempts() == []
    for rec in led.trials():
        for att in rec.attempts:
            assert not processes_mentioning(os.path.realpath(att.spec_path)), "job process outlived its SLURM job"
    out = json.loads((ws / "exp" / "result.json").read_text())
    assert out["stopped_early"] and signal.Signals(sig).name in out["stopped_early"]
