"""review(): works for every packaged and skill-bank model, launches and
writes nothing, shows the exact initial batch, and reports blockers
(credentials by name only)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from skillkit import REPO, TOY, make_skill

from tao_automl.errors import CredentialError, SettingsError, SpecError
from tao_automl.runner import AutoMLRunner
from tao_automl.spec import get_path

NAMES = sorted(p.name for p in (REPO / "skills").iterdir() if (p / "references").is_dir())
# Each packaged skill as packaged, and as the skill bank ships it: the packaged
# folders are byte-identical copies of the bank's plus our SKILL.md and
# references/automl.yaml sidecar (test_packaged_skills.py), so removing those two
# gives the bank's skill without reading anything outside the repository.
SKILLS = [("packaged", n) for n in NAMES] + [("bank", n) for n in NAMES]
OURS = ("SKILL.md", "references/automl.yaml")


def _skill_dir(kind: str, name: str, tmp_path: Path) -> Path:
    src = REPO / "skills" / name
    if kind == "packaged":
        return src
    dst = tmp_path / "bank" / name
    shutil.copytree(src, dst)
    for rel in OURS:
        (dst / rel).unlink()
    return dst
REVIEW_KEYS = {"search_space", "excluded", "recommendations", "algorithm", "metric", "direction", "budget",
               "max_concurrent", "launch", "estimate", "blockers"}
LAUNCH_KEYS = {"platform", "image", "command", "gpu_count", "num_nodes", "workspace", "model", "action"}


def test_found_the_skills():
    assert len(NAMES) >= 4 and "tao-train-reid" in NAMES


@pytest.mark.parametrize("kind, name", SKILLS, ids=lambda v: v)
@pytest.mark.parametrize("algorithm", ["bayesian", "asha"])
def test_review_every_skill(kind, name, algorithm, tmp_path):
    skill = _skill_dir(kind, name, tmp_path)
    ws = tmp_path / "ws"
    r = AutoMLRunner(skill_dir=skill, workspace_dir=ws)
    settings = {"max_recommendations": 5, "max_concurrent": 2, "seed": 4}
    if algorithm == "asha":
        settings["max_epochs"] = 9
    try:
        rv = r.review(automl_algorithm=algorithm, automl_settings=settings)
    except SettingsError as exc:
        # the skill declares no metric: the error says how to give one
        assert "no metric to optimise" in str(exc) and "automl_settings.metric" in str(exc)
        rv = r.review(automl_algorithm=algorithm,
                      automl_settings={**settings, "metric": "val_loss", "direction": "minimize"})
        assert rv["metric"] == "val_loss"
    assert REVIEW_KEYS <= set(rv)
    assert rv["algorithm"] == algorithm and rv["direction"] in ("minimize", "maximize")
    assert rv["search_space"], "a non-empty search space"
    for row in rv["search_space"]:
        assert {"name", "type", "default", "log"} <= set(row)
        assert ("options" in row) or ({"minimum", "maximum"} <= set(row))
    recs = rv["recommendations"]
    assert len(recs) == 2 and len({json.dumps(x["overrides"], sort_keys=True) for x in recs}) == 2
    for rec in recs:
        assert rec["rec_id"] and isinstance(rec["specs"], dict)
        for key, value in rec["overrides"].items():
            assert get_path(rec["specs"], key) == value, key
    assert LAUNCH_KEYS <= set(rv["launch"]) and rv["launch"]["platform"] == "local"
    assert rv["estimate"]["total_s"] > 0 and rv["estimate"]["assumptions"]
    assert rv["max_concurrent"] == 2 and isinstance(rv["blockers"], list)
    # packaged TAO models need data: the blockers name the missing keys
    assert any(b.startswith("missing data key") for b in rv["blockers"])
    assert not ws.exists(), "review writes nothing"


def test_review_toy_has_no_blockers_and_estimate_uses_given_time(tmp_path):
    r = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    rv = r.review(automl_settings={"max_recommendations": 8, "max_concurrent": 2, "estimate_trial_s": 10.0,
                                   "baseline": False, "final_eval": False})
    assert rv["blockers"] == []
    assert rv["estimate"]["per_trial_s"] == 10.0 and rv["estimate"]["total_s"] == pytest.approx(40.0)
    assert rv["launch"]["command"].startswith("python scripts/train.py")
    assert rv["metric"] == "val_loss" and rv["direction"] == "minimize"


def test_missing_data_blocks_run_but_not_review(tmp_path):
    reid = REPO / "skills" / "tao-train-reid"
    r = AutoMLRunner(skill_dir=reid, workspace_dir=tmp_path / "ws")
    rv = r.review(automl_settings={"max_recommendations": 2})
    missing = [b for b in rv["blockers"] if b.startswith("missing data key")]
    assert any("dataset.train_dataset_dir" in b for b in missing)
    with pytest.raises(SpecError) as ei:
        r.run(automl_settings={"max_recommendations": 2})
    assert "dataset.train_dataset_dir" in str(ei.value)
    assert not (tmp_path / "ws").exists()


def test_credentials_by_name_only(tmp_path, monkeypatch):
    secret = "s3cr3t-VALUE-must-never-appear-0xC0FFEE"
    skill = make_skill(tmp_path / "cred", "emit(epoch=1, val_loss=1.0)\n", credentials=("TINY_API_KEY",))
    r = AutoMLRunner(skill_dir=skill, workspace_dir=tmp_path / "ws")
    monkeypatch.delenv("TINY_API_KEY", raising=False)
    rv = r.review(automl_settings={"baseline": False})
    assert any("TINY_API_KEY" in b and "UNSET" in b for b in rv["blockers"])
    with pytest.raises(CredentialError) as ei:
        r.run(automl_settings={"baseline": False})
    assert "TINY_API_KEY" in str(ei.value)
    monkeypatch.setenv("TINY_API_KEY", secret)
    rv = r.review(automl_settings={"baseline": False})
    assert not any("TINY_API_KEY" in b for b in rv["blockers"])
    assert secret not in json.dumps(rv, default=str)
    assert not (tmp_path / "ws").exists()


def test_missing_evaluate_action_is_a_blocker(tmp_path):
    skill = make_skill(tmp_path / "noeval", "emit(epoch=1, val_loss=1.0)\n")
    r = AutoMLRunner(skill_dir=skill, workspace_dir=tmp_path / "ws")
    rv = r.review(automl_settings={"max_recommendations": 2})
    assert any("no evaluate action" in b for b in rv["blockers"])
    rv = r.review(automl_settings={"max_recommendations": 2, "baseline": False})
    assert not any("evaluate" in b for b in rv["blockers"])
    assert any("final evaluation" in n for n in rv["notes"])


@pytest.mark.parametrize("algorithm", ["bayesian", "random"])
def test_recommendations_are_the_first_trials(algorithm, ray_cluster, tmp_path):
    args = dict(automl_algorithm=algorithm,
                automl_settings={"max_recommendations": 3, "max_concurrent": 2, "seed": 11,
                                 "baseline": False, "final_eval": False},
                spec_overrides={"train.num_epochs": 1})
    r = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    rv = r.review(**args)
    res = r.run(**args)
    key = lambda d: json.dumps(d, sort_keys=True)  # noqa: E731
    recommended = {key(x["overrides"]) for x in rv["recommendations"]}
    # both recommendations ran, and the first trial launched is one of them
    # (a fast trial's slot may start trial 3 before trial 2's actor is up,
    # so the plan order of trials 2 and 3 is not fixed)
    first = [t for t in res["history"] if key(t["hyperparameters"]) in recommended]
    assert len(first) == 2 and key(res["history"][0]["hyperparameters"]) in recommended
    # and the specs that ran match the reviewed specs (paths aside)
    by_hp = {key(x["overrides"]): x["specs"] for x in rv["recommendations"]}
    for t in first:
        ran = yaml.safe_load(Path(t["spec_path"]).read_text())
        shown = by_hp[key(t["hyperparameters"])]
        ran.pop("results_dir"), shown.pop("results_dir")
        assert ran == shown
    saved = json.loads((Path(res["workspace"]) / "review.json").read_text())
    assert [x["overrides"] for x in saved["recommendations"]] == [x["overrides"] for x in rv["recommendations"]]
