"""Nothing left behind: everything a run creates outside its workspace is
removed when the run ends, however it ends (success, failure, cancel).

The driver runs in a subprocess of its own with ``TMPDIR`` pointed at a fresh
folder, so the Ray cluster it starts (and every Ray worker running a trial)
writes its temporary files there: pointer checkpoints of a multi-fidelity
search, Ray's session folder, anything else.  After a successful hyperband
run, a failing one and a canceled one, the folder must be empty again and
Ray's session folders of the driver must be gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from skillkit import TOY, make_skill

from tao_automl.execution.ray_session import ray_temp_dir

DRIVER = r"""
import json, os, signal, sys, threading, time
from pathlib import Path
from tao_automl.errors import AutoMLError
from tao_automl.store.ledger import JobLedger
from tao_automl.execution.ray_session import ray_temp_dir
from tao_automl.runner import AutoMLRunner
from tao_automl.store.workspace import Workspace

toy, crash, ws = sys.argv[1], sys.argv[2], Path(sys.argv[3])
quiet = {"baseline": False, "final_eval": False, "seed": 3, "max_concurrent": 2}
hb = {**quiet, "max_recommendations": 6, "max_epochs": 4, "reduction_factor": 2}
out = {}
seen = set()  # Ray session folders of this process, sampled while the runs go on

def watch_sessions():
    while True:
        try:
            seen.update(n for n in os.listdir(ray_temp_dir()) if n.endswith(f"_{os.getpid()}"))
        except OSError:
            pass
        time.sleep(0.2)
threading.Thread(target=watch_sessions, daemon=True).start()

# 1. success: hyperband pauses and resumes trials through pointer checkpoints
res = AutoMLRunner(skill_dir=toy, workspace_dir=ws / "ok").run(
    automl_algorithm="hyperband", automl_settings={**hb, "session_id": "ok"},
    spec_overrides={"train.epoch_sleep_s": 0.1})
led = JobLedger(Workspace(ws / "ok" / "ok"))
out["ok"] = {"completed": res["progress"]["completed"],
             "resumed": sum(1 for r in led.trials() for a in r.attempts if a.resume_from)}

# 2. failure: every job reports two epochs (with checkpoints), then crashes
try:
    res = AutoMLRunner(skill_dir=crash, workspace_dir=ws / "fail").run(
        automl_algorithm="hyperband", automl_settings={**hb, "session_id": "fail"})
    out["fail"] = {"failed": res["progress"]["failed"], "completed": res["progress"]["completed"]}
except AutoMLError as exc:
    out["fail"] = {"error": type(exc).__name__}

# 3. cancel: SIGTERM once two jobs run (the CLI's cancel and Ctrl-C end the same way)
def cancel():
    deadline = time.time() + 120
    while time.time() < deadline:
        if (ws / "cancel" / "cancel" / "ledger").exists():
            if len(JobLedger(Workspace(ws / "cancel" / "cancel")).open_attempts()) >= 2:
                os.kill(os.getpid(), signal.SIGTERM)
                return
        time.sleep(0.1)
threading.Thread(target=cancel, daemon=True).start()
res = AutoMLRunner(skill_dir=toy, workspace_dir=ws / "cancel").run(
    automl_algorithm="pbt", automl_settings={**quiet, "population_size": 2, "max_epochs": 8,
                                             "perturbation_interval": 2, "session_id": "cancel"},
    spec_overrides={"train.epoch_sleep_s": 1.0})
out["cancel"] = {"stopped_early": res["stopped_early"], "total": res["progress"]["total"]}
out["ray_sessions"] = sorted(seen)
print("RESULT " + json.dumps(out), flush=True)
"""

CRASH = """
for e in (1, 2):
    open(os.path.join(results_dir, f"model_epoch_{e:03d}_step_{e:05d}.pth"), "w").write("weights")
    emit(epoch=e, val_loss=1.0 / e + spec["train"]["lr"])
print("Traceback: boom", flush=True)
sys.exit(1)
"""


def _ours(folder: Path, pid: int) -> list[str]:
    """Ray session folders of process ``pid`` (other runs share the folder)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(f"_{pid}"))


@pytest.mark.timeout(420)
def test_runs_leave_nothing_outside_the_workspace(tmp_path: Path) -> None:
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    ws = tmp_path / "ws"
    crash = make_skill(tmp_path / "crash", textwrap.dedent(CRASH))
    env = {**os.environ, "TMPDIR": str(tmp), "WANDB_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    before = sorted(os.listdir(tmp))
    assert before == []
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(TOY), str(crash), str(ws)], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=400)
    assert proc.returncode == 0, stderr[-4000:]
    out = json.loads(stdout.split("RESULT ", 1)[1].splitlines()[0])

    # the three runs did what they should (so the check below is meaningful)
    assert out["ok"]["completed"] >= 1, out
    assert out["fail"].get("failed", 0) >= 1 or out["fail"].get("error"), out
    assert out["cancel"]["stopped_early"] and "SIGTERM" in out["cancel"]["stopped_early"], out
    pointers = list((ws / "ok" / "ok" / "ray").rglob("pointer.json"))
    assert pointers, "the hyperband run reported pointer checkpoints (Tune's copies live in the workspace)"
    assert len(list((ws / "cancel" / "cancel" / "ray").rglob("pointer.json"))) >= 1, "PBT reported some"

    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    assert left == [], f"left behind in TMPDIR: {left[:20]}"
    # Ray's session folders live in a short per-user folder (socket path limit)
    assert out["ray_sessions"], "the driver started Ray itself"
    assert _ours(Path(ray_temp_dir()), proc.pid) == []
    # no transient pointer folders left in the workspace either
    assert not [p for p in ws.rglob("pointer-*") if p.is_dir()]
