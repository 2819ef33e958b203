"""A skill in NVIDIA's public example format (``cwd: .``, ``outputs:
{results_dir: {type: folder}}``, template ``results_dir: ""``) run through
AutoMLRunner on the local backend with real Ray: 4 trials, 2 at a time, plus
baseline and final evaluation.  Every job writes into its own folder, the
metric is read from each job's routed ``metrics.json``, and the skill folder
is byte-for-byte unchanged (no file changed, none added)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from skillkit import REPO

from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

NV_SKILL = REPO / "tests" / "fixtures" / "nvidia_format_skill"


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()}


def _same_dir(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def test_nvidia_format_skill_jobs_never_share_a_folder(ray_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a job writing into the driver's cwd would land here, not in the repo
    before = _hashes(NV_SKILL)
    assert "metrics.json" not in before
    res = AutoMLRunner(skill_dir=NV_SKILL, workspace_dir=tmp_path / "ws", action="train").run(
        automl_algorithm="random",
        automl_settings={"metric": "accuracy", "direction": "maximize", "max_recommendations": 4,
                         "max_concurrent": 2, "seed": 5, "baseline": True, "final_eval": True},
        automl_hyperparameters=["model.n_estimators", "model.max_depth"],
    )
    validate_result(res)
    assert _hashes(NV_SKILL) == before, "the skill folder was changed"

    history = res["history"]
    assert len(history) == 4 and all(t["status"] == "succeeded" for t in history)
    ws = Workspace(res["workspace"])
    outcomes = {r.trial_id: r.outcome for r in JobLedger(ws).trials()}
    folders = set()
    for t in history:
        folder = Path(t["results_dir"])
        folders.add(os.path.realpath(folder))
        assert _same_dir(folder.parent.parent, ws.path("trials"))  # trials/<trial id>/<attempt>
        spec = json.loads(Path(t["spec_path"]).read_text())
        assert _same_dir(spec["results_dir"], folder)  # routed: not "" any more
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["model"] == spec["model"]  # this trial's own file, not a neighbour's
        assert {k: spec["model"][k.split(".")[1]] for k in t["hyperparameters"]} == t["hyperparameters"]
        assert t["metric_value"] == pytest.approx(metrics["accuracy"])
        assert outcomes[t["rec_id"]]["metric_source"] == "metrics.json"
        notes = json.loads((folder / "train_notes.txt").read_text())  # written at a relative path
        assert _same_dir(notes["cwd"], folder)
    assert len(folders) == 4

    evals = [res["baseline"], res["final_evaluation"]]
    for ev in evals:
        assert ev["status"] == "measured", ev
        folder = Path(ev["record_path"])
        assert os.path.realpath(folder) not in folders
        assert _same_dir(json.loads((folder / "spec.json").read_text())["results_dir"], folder)
        assert ev["metric_value"] == pytest.approx(json.loads((folder / "metrics.json").read_text())["accuracy"])
        assert _same_dir(json.loads((folder / "evaluate_notes.txt").read_text())["cwd"], folder)
    assert not _same_dir(evals[0]["record_path"], evals[1]["record_path"])
    assert res["best"]["metric_value"] == max(t["metric_value"] for t in history)
    assert not list(tmp_path.glob("*.json")) and not list(tmp_path.glob("*.txt"))
