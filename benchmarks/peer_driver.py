"""Run NVIDIA's nvidia-tao-automl on the benchmark skill (executed by the
peer's own virtual environment's python; imports nothing from this project).

    <peer-venv>/bin/python peer_driver.py request.json

``request.json``: skill_dir, workspace, venv, algorithm, settings (the peer's
automl_settings), hyperparameters, spec_overrides, poll_interval, epoch_log,
out (where to write the answer).  The answer: wall time, import time, the
peer's result dict (best/progress/history) or the exception text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback


def main(path: str) -> int:
    with open(path) as fh:
        req = json.load(fh)
    logging.basicConfig(level=logging.WARNING)
    os.environ["BENCH_EPOCH_LOG"] = req["epoch_log"]
    answer: dict = {"ok": False}
    t0 = time.perf_counter()
    try:
        from tao_sdk.platforms.virtualenv import VirtualEnvSDK

        from tao_automl.runner import AutoMLRunner

        answer["import_s"] = time.perf_counter() - t0
        sdk = VirtualEnvSDK(venv_path=req["venv"], work_dir=os.path.join(req["workspace"], "sdk"))
        runner = AutoMLRunner(sdk=sdk, skill_dir=req["skill_dir"], action="train",
                              poll_interval=req["poll_interval"])
        t1 = time.perf_counter()
        result = runner.run(
            automl_settings=req["settings"],
            automl_hyperparameters=req["hyperparameters"],
            spec_overrides=req["spec_overrides"],
            workspace_path=os.path.join(req["workspace"], "automl"),
            env_vars={"BENCH_EPOCH_LOG": req["epoch_log"]},
            gpu_count=0,
        )
        answer["run_s"] = time.perf_counter() - t1
        answer["ok"] = True
        answer["result"] = {k: result.get(k) for k in ("best", "progress", "history")}
    except BaseException as exc:  # report exactly why, never a number
        answer["error"] = f"{type(exc).__name__}: {exc}"
        answer["traceback"] = traceback.format_exc()[-4000:]
    answer["wall_s"] = time.perf_counter() - t0
    with open(req["out"], "w") as fh:
        json.dump(answer, fh, default=str)
    return 0 if answer["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
