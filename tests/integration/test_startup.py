"""Start-up and wind-down of a run (issue 20), in a driver process of its own
with a cold Ray: Ray starts in the background, the cluster the runner started
is reused by the next run in the process, ``shutdown_ray()`` stops it, plots
are rendered after ``run()`` returns, and nothing is left running once the
driver's interpreter has exited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from skillkit import TOY

DRIVER = r"""
import json, os, sys, time
from pathlib import Path
import ray
from tao_automl.runner import AutoMLRunner
from tao_automl.execution import ray_session
from tao_automl.execution.extras import wait_for_plots
from tao_automl.reporting.results import validate_result

skill, ws = sys.argv[1:3]
out = {"runs": []}

def tree(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            kids.setdefault(ppid, []).append(int(d))
    pids, todo = [], [root]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(kids.get(p, []))
    return pids[1:]

def gcs_pid():
    node = ray._private.worker._global_node
    return [p.process.pid for p in node.all_processes["gcs_server"]][0]

def one_run(sid):
    res = AutoMLRunner(skill, workspace_dir=ws).run(
        automl_algorithm="random",
        automl_settings={"max_recommendations": 2, "max_concurrent": 2, "seed": 0, "baseline": False,
                         "final_eval": False, "session_id": sid},
        spec_overrides={"train.num_epochs": 1})
    validate_result(res)
    plots = wait_for_plots(res["workspace"], timeout_s=180)
    out["runs"].append({"completed": res["progress"]["completed"], "plots_dir": res["plots_dir"],
                        "workspace": res["workspace"], "plots": plots,
                        "owned": bool(ray_session._OWNED), "initialized": ray.is_initialized(),
                        "gcs": gcs_pid()})

one_run("first")
one_run("second")  # reuses the cluster the first run started
gone = gcs_pid()
out["shutdown"] = ray_session.shutdown_ray()
out["after_shutdown_initialized"] = ray.is_initialized()
out["shutdown_again"] = ray_session.shutdown_ray()
out["stopped_gcs"] = gone
one_run("third")  # a cold start again
out["tree"] = tree(os.getpid())  # Ray's processes, workers, plot renderers: all must end with us
print("DRIVER " + json.dumps(out), flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_background_start_reuse_shutdown_and_nothing_left(tmp_path: Path) -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(TOY), str(tmp_path / "ws")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("DRIVER ", 1)[1].splitlines()[0])
    first, second, third = out["runs"]
    for run in out["runs"]:
        assert run["completed"] == 2
        assert run["plots_dir"] == str(Path(run["workspace"]) / "plots")
        assert run["plots"] and len(run["plots"]) >= 3  # rendered in the background, then marked done
        assert all(Path(p).is_file() and Path(p).parent == Path(run["plots_dir"]) for p in run["plots"])
        assert run["owned"] and run["initialized"]  # the cluster stays up after run() for the next run
    assert second["gcs"] == first["gcs"]  # reused, not restarted
    assert out["shutdown"] is True and out["after_shutdown_initialized"] is False
    assert out["shutdown_again"] is False
    assert third["gcs"] != first["gcs"] and not _alive(out["stopped_gcs"])
    # After the interpreter exits (Ray's own atexit shutdown), nothing of the tree is left.
    deadline = time.time() + 30
    left = [p for p in out["tree"] if _alive(p)]
    while left and time.time() < deadline:
        time.sleep(0.2)
        left = [p for p in left if _alive(p)]
    assert out["tree"] and not left, left
