"""NVIDIA's nvidia-tao-automl 7.2.0, installed into its own virtual
environment under the output folder and driven through its own
``AutoMLRunner`` + ``VirtualEnvSDK`` on the same objective skill.

Nothing here imports the peer: each run is a subprocess of the peer's
python running ``benchmarks/peer_driver.py``.  A run that cannot be made to
work is recorded with the exact reason, never with a number.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import HERE, SKILL_DIR, read_epoch_log, score_epoch_log
from benchmarks.problems import MF_EPOCHS, MF_ETA, SEQUENTIAL_TRIALS, Problem

PEER_SPEC = "nvidia-tao-automl==7.2.0"
PEER_DEFAULT_POLL_S = 30  # tao_automl.runner._DEFAULT_POLL_INTERVAL in 7.2.0
PEER_POLL_S = 0.1
RUN_TIMEOUT_S = 300.0



def peer_env(**extra: str) -> dict[str, str]:
    """The environment for peer processes: ours minus PYTHONPATH/PYTHONHOME.
    The peer's package is also called ``tao_automl``; a PYTHONPATH pointing at
    this checkout would make the peer venv import *our* runner."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(extra)
    return env

def ensure_peer(out_dir: Path, *, allow_install: bool) -> dict[str, Any]:
    """The peer's venv (created and installed on first use). Returns
    ``{"ok", "python", "venv", "installed_now", "install_s", "version" | "error"}``."""
    venv = out_dir / "peer" / "venv"
    py = venv / "bin" / "python"
    info: dict[str, Any] = {"ok": False, "venv": str(venv), "python": str(py), "installed_now": False}
    if not py.exists() or not _peer_importable(py):
        if not allow_install:
            info["error"] = f"peer not installed at {venv} (quick mode installs nothing; run --full once)"
            return info
        t0 = time.perf_counter()
        steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
                 [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PEER_SPEC]]
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=peer_env())
            if proc.returncode != 0:
                info["error"] = f"`{' '.join(cmd)}` failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-1500:]}"
                return info
        info["installed_now"] = True
        info["install_s"] = round(time.perf_counter() - t0, 1)
        if not _peer_importable(py):
            info["error"] = "installed, but `from tao_automl.runner import AutoMLRunner` fails in the peer venv"
            return info
    ver = subprocess.run([str(py), "-c", "from importlib.metadata import version as v; "
                          "print(v('nvidia-tao-automl'), v('nvidia-tao-sdk'))"],
                         capture_output=True, text=True, timeout=60, env=peer_env())
    info["version"] = ver.stdout.strip()
    info["ok"] = True
    return info


def _peer_importable(py: Path) -> bool:
    try:
        proc = subprocess.run([str(py), "-c", "from tao_automl.runner import AutoMLRunner; "
                               "from tao_sdk.platforms.virtualenv import VirtualEnvSDK"],
                              capture_output=True, text=True, timeout=120, env=peer_env())
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def peer_settings(problem: Problem, algorithm: str, trials: int = SEQUENTIAL_TRIALS) -> dict[str, Any]:
    s: dict[str, Any] = {"algorithm": algorithm, "metric": "val_loss", "direction": "minimize",
                         "automl_max_recommendations": trials, "run_baseline": False,
                         "run_final_evaluation": False}
    if problem.multi_fidelity:
        s.update(automl_max_epochs=MF_EPOCHS, automl_reduction_factor=MF_ETA)
        if algorithm == "pbt":
            s.update(automl_population_size=SEQUENTIAL_TRIALS)
    return s


def run_peer(peer: dict[str, Any], problem: Problem, algorithm: str, seed: int, workdir: Path, *,
             poll_s: float = PEER_POLL_S, trials: int = SEQUENTIAL_TRIALS, budget_epochs: int | None = None,
             timeout_s: float = RUN_TIMEOUT_S, extra_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """One peer run; stopped (process group killed) once the jobs have spent
    the epoch budget.  Returns the scored record or the exact failure."""
    base = {"driver": "nvidia-tao-automl", "algorithm": algorithm, "problem": problem.name, "seed": seed,
            "poll_s": poll_s}
    if not peer.get("ok"):
        return {**base, "ok": False, "error": peer.get("error", "peer unavailable")}
    run_dir = workdir / f"peer-{algorithm}-{problem.name}-s{seed}-p{poll_s:g}"
    shutil.rmtree(run_dir, ignore_errors=True)  # the epoch log appends
    run_dir.mkdir(parents=True)
    epoch_log = run_dir / "epochs.jsonl"
    budget = budget_epochs if budget_epochs is not None else problem.budget_epochs
    overrides = {**problem.spec_overrides(seed), **(extra_overrides or {})}
    req = {"skill_dir": str(SKILL_DIR), "workspace": str(run_dir), "venv": peer["venv"],
           "settings": peer_settings(problem, algorithm, trials), "hyperparameters": problem.hyperparameters,
           "spec_overrides": overrides, "poll_interval": poll_s, "epoch_log": str(epoch_log),
           "out": str(run_dir / "answer.json")}
    (run_dir / "request.json").write_text(json.dumps(req, indent=1))
    env = peer_env(PYTHONHASHSEED=str(seed), BENCH_EPOCH_LOG=str(epoch_log))
    t0 = time.perf_counter()
    with open(run_dir / "driver.log", "w") as logf:
        proc = subprocess.Popen([peer["python"], str(HERE / "peer_driver.py"), str(run_dir / "request.json")],
                                stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        stopped, timed_out = False, False
        while proc.poll() is None:
            time.sleep(0.2)
            # Multi-fidelity runs are stopped at the epoch budget; sequential
            # ones end by themselves after `trials` recommendations.
            if budget and problem.multi_fidelity and len(read_epoch_log(epoch_log)) >= budget:
                stopped = True
            if time.perf_counter() - t0 > timeout_s:
                timed_out = True
            if stopped or timed_out:
                _kill_group(proc)
                break
    wall = time.perf_counter() - t0
    answer: dict[str, Any] = {}
    try:
        answer = json.loads((run_dir / "answer.json").read_text())
    except (OSError, json.JSONDecodeError):
        pass
    recs = read_epoch_log(epoch_log)
    if not recs:
        why = answer.get("error") or ("timed out" if timed_out else f"exit code {proc.returncode}, no epoch ran")
        return {**base, "ok": False, "error": why, "wall_s": wall, "log": str(run_dir / "driver.log")}
    score = score_epoch_log(recs, budget_epochs=budget, full_epoch=problem.full_epoch)
    hist = ((answer.get("result") or {}).get("history")) or []
    out = {**base, "ok": True, "wall_s": wall, **score, "stopped_on_budget": stopped,
           "timed_out": timed_out, "trials": len(hist) or None,
           "failed": sum(1 for h in hist if h.get("status") not in ("success", "done")) if hist else None,
           "import_s": answer.get("import_s"), "run_s": answer.get("run_s")}
    if answer.get("error"):
        out["peer_error"] = answer["error"]
    return out


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
