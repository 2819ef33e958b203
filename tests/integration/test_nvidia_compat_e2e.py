"""Scripts written for NVIDIA's nvidia-tao-automl, end to end: a real
nvidia-tao-sdk ``VirtualEnvSDK`` passed as ``sdk=`` runs the trial jobs (real
processes in a virtual environment made here from this interpreter), the
callbacks get their shapes, the result carries their keys; and NVIDIA's own
example ``run.py`` runs unmodified (slow)."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from skillkit import REPO, make_skill

from tao_automl.execution.recommendation import Recommendation
from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner

pytest.importorskip("tao_sdk")

GOOD = """
lr = spec["train"]["lr"]
for e in range(1, spec["train"]["num_epochs"] + 1):
    emit(epoch=e, val_loss=abs(lr - 0.05) + 1.0 / e)
"""


def make_venv(path: Path) -> Path:
    """A virtual environment whose python sees this interpreter's packages
    (a ``.pth`` naming our site-packages): no pip, no network."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    purelib = subprocess.run([str(path / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "_tao_automl_parent.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return path


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    return make_venv(tmp_path_factory.mktemp("model-venv") / "venv")


def test_sdk_object_callbacks_and_result_keys(ray_cluster, venv, tmp_path):
    from tao_sdk.platforms.virtualenv import VirtualEnvSDK

    skill = make_skill(tmp_path / "skill", GOOD, eval_body="emit(val_loss=0.5)\n")
    sdk = VirtualEnvSDK(venv_path=venv, work_dir=tmp_path / "jobs", state_file=tmp_path / "jobs.db")
    seen: dict[str, list] = {"rec": [], "result": [], "final": [], "baseline": [], "fb": []}

    eval_log = tmp_path / "eval_fn.jsonl"  # eval_fn runs in the trial's worker process

    def eval_fn(rec, job_id):
        with open(eval_log, "a") as fh:
            fh.write(json.dumps({"id": rec.id, "job": job_id, "lr": rec.get("train.lr", -1),
                                 "is_rec": isinstance(rec, Recommendation), "n": len(rec)}) + "\n")
        return None  # fall back to the extracted metric

    def final_eval_fn(best, job_id):
        seen["final"].append((best, job_id))
        return {"metric_value": 0.25, "record_path": "elsewhere.json"}

    def baseline_fn(specs):
        seen["baseline"].append(specs)
        return 2.0

    def feedback_fn(rec, job_id):
        seen["fb"].append(job_id)
        return {"lr": rec.get("train.lr"), "job": job_id}

    runner = AutoMLRunner(sdk, skill, "train", poll_interval=0.2)  # nvidia-tao-automl's signature
    res = runner.run(
        automl_settings={"algorithm": "random", "metric": "val_loss", "direction": "minimize",
                         "automl_max_recommendations": 3, "automl_max_concurrent": 2,
                         "session_id": "compat", "seed": 4},
        workspace_path=str(tmp_path / "ws"), workspace_id="ws-123", gpu_count=0,
        on_recommendation=seen["rec"].append,
        on_result=lambda rec, value, status: seen["result"].append((rec, value, status)),
        eval_fn=eval_fn, final_eval_fn=final_eval_fn, baseline_fn=baseline_fn, feedback_fn=feedback_fn,
    )
    validate_result(res)
    history = {t["rec_id"]: t for t in res["history"]}
    assert len(history) == 3 and all(t["status"] == "succeeded" for t in history.values())
    # every job went through the SDK object: its store knows each trial's job
    for t in history.values():
        assert sdk.get_job_status(t["job_id"]).status == "Complete"
        assert t["metric"] == t["metric_value"]
        assert t["feedback"] == {"lr": t["hyperparameters"]["train.lr"], "job": t["job_id"]}
    assert res["settings"]["poll_interval_s"] == 0.2 and res["workspace_id"] == "ws-123"
    # callbacks: one Recommendation shape
    assert sorted(r.id for r in seen["rec"]) == sorted(history)
    assert all(isinstance(r, Recommendation) and "train.lr" in r for r in seen["rec"])
    for rec, value, status in seen["result"]:
        assert status == "success" and value == history[rec.id]["metric_value"] == rec.result
        assert rec.job_id == history[rec.id]["job_id"]
    evals = [json.loads(line) for line in eval_log.read_text().splitlines()]
    assert sorted(e["job"] for e in evals) == sorted(t["job_id"] for t in history.values())
    assert all(e["is_rec"] and e["n"] == 1 and e["lr"] == history[e["id"]]["hyperparameters"]["train.lr"]
               for e in evals)
    (best_rec, best_job), = seen["final"]
    assert best_rec.id == res["best"]["rec_id"] and best_job == res["best"]["job_id"]
    assert dict(best_rec) == res["best"]["hyperparameters"] and best_rec.result == res["best"]["metric_value"]
    (specs,) = seen["baseline"]
    assert specs["train"]["num_epochs"] == 2 and "lr" in specs["train"]  # the nested starting spec
    # evaluation records in their words
    b, f = res["baseline"], res["final_evaluation"]
    assert (b["status"], b["source"], b["metric_value"], b["enabled"]) == ("measured", "baseline_fn", 2.0, True)
    assert (f["status"], f["source"], f["metric_value"]) == ("measured", "final_eval_fn", 0.25)
    assert f["comparison_to_baseline"] == {"delta": 1.75, "improved": True, "direction": "minimize"}
    assert b["comparison_to_best"]["improved"] is True and f["metric_name"] == "val_loss"


def test_provided_and_reused_evaluations(ray_cluster, tmp_path):
    skill = make_skill(tmp_path / "skill", GOOD)  # no evaluate action
    records = tmp_path / "records"
    res = AutoMLRunner(skill_dir=skill, workspace_dir=tmp_path / "ws").run(
        automl_algorithm="random",
        automl_settings={"max_recommendations": 2, "seed": 1, "baseline_metric": 1.5,
                         "reuse_best_metric_for_final_evaluation": True,
                         "evaluation_records_dir": str(records),
                         "automl_range_override": [{"parameter": "train.lr", "valid_min": 0.04,
                                                    "valid_max": 0.06}]})
    validate_result(res)
    b, f = res["baseline"], res["final_evaluation"]
    assert (b["status"], b["source"], b["metric_value"]) == ("provided", "automl_settings.baseline_metric", 1.5)
    assert (f["status"], f["source"]) == ("reused_best", "best_selection_metric")
    assert f["metric_value"] == res["best"]["metric_value"]
    assert json.loads((records / "ptm_baseline.json").read_text())["status"] == "provided"
    assert json.loads((records / "best_automl.json").read_text())["status"] == "reused_best"
    assert b["record_path"] == str(records / "ptm_baseline.json")
    assert all(0.04 <= t["hyperparameters"]["train.lr"] <= 0.06 for t in res["history"])


@pytest.mark.slow
def test_nvidia_example_runs_unmodified(tmp_path):
    """NVIDIA's examples/virtualenv_random_forest/run.py (copied byte for byte
    into examples/nvidia_compat/) against this package and nvidia-tao-sdk's
    VirtualEnvSDK, in a model venv that has scikit-learn."""
    pytest.importorskip("sklearn")
    example = tmp_path / "example"
    shutil.copytree(REPO / "examples" / "nvidia_compat", example)  # its train.py writes beside itself
    venv = make_venv(tmp_path / "model-venv")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, str(example / "run.py"), "--venv-path", str(venv),
                           "--work-dir", str(tmp_path / "work")],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout[proc.stdout.index("{\n"):]
    result = json.loads(out)
    assert result["progress"]["completed"] == 2
    # Each trial's accuracy is what scikit-learn gives for its hyperparameters (the example's
    # own split and seed), and the best is the highest. The example sets no AutoML seed, so the
    # values vary from run to run: two trials drawing max_depth 1 score 0.66 on Iris.
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    x, y = load_iris(return_X_y=True)
    tx, ex, ty, ey = train_test_split(x, y, test_size=0.25, random_state=11, stratify=y)
    for t in result["history"]:
        hp = t["hyperparameters"]
        model = RandomForestClassifier(n_estimators=hp["model.n_estimators"], max_depth=hp["model.max_depth"],
                                       random_state=7).fit(tx, ty)
        assert t["metric_value"] == pytest.approx(accuracy_score(ey, model.predict(ex)), abs=1e-6), t
    assert result["best"]["metric_value"] == max(t["metric_value"] for t in result["history"])
    assert result["baseline"]["status"] == result["final_evaluation"]["status"] == "skipped"
    # the jobs ran with the venv's interpreter, through the SDK's own job folders
    jobs = list((tmp_path / "work" / "jobs" / "jobs").iterdir())
    assert len(jobs) == 2
    meta = json.loads((jobs[0] / "metadata.json").read_text())
    assert meta["argv"][0] == str(venv / "bin" / "python") and meta["status"] == "Complete"
