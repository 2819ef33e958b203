"""The baseline: 'defaults' for models trained from scratch, measured before
the search for the review, reused by run() only when its inputs are the same."""

from __future__ import annotations

from pathlib import Path

from tao_automl.reporting.results import format_result, validate_result
from tao_automl.reporting.review_render import render_review
from tao_automl.runner import AutoMLRunner

TOY = Path(__file__).resolve().parents[2] / "examples" / "toy_skill"
SETTINGS = {"max_recommendations": 2, "max_concurrent": 2, "seed": 1, "baseline": "defaults"}
OVERRIDES = {"train.num_epochs": 2}


def test_run_with_defaults_baseline_reports_the_gain(ray_cluster, tmp_path):
    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    res = runner.run(automl_algorithm="random", automl_settings={**SETTINGS, "session_id": "s"},
                     spec_overrides=OVERRIDES)
    validate_result(res)
    b = res["baseline"]
    assert b["status"] == "measured" and b["source"] == "defaults" and b["metric_value"] > 0
    assert "reused" not in b["metadata"]  # nothing measured before: run() launched it
    assert b["metadata"]["hyperparameters"] == {"train.lr": 0.01, "train.weight_decay": 0.0001,
                                                "train.momentum": 0.9, "train.batch_size": 64,
                                                "model.hidden_size": 32, "model.activation": "relu"}
    assert (tmp_path / "ws" / "s" / "trials" / "baseline-defaults" / "spec.yaml").is_file()
    assert res["progress"]["total"] == 2  # the defaults run is the baseline, not a trial
    assert res["final_evaluation"]["source"] == "evaluate_action"
    assert res["final_evaluation"]["improvement"] is not None
    text = format_result(res)
    assert "(measured, a run with the schema's default values)" in text and "gain:      " in text


def test_review_run_baseline_blocked_is_highlighted(tmp_path):
    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    review = runner.review(run_baseline=True, automl_settings={"max_recommendations": 2})
    # the toy model starts from scratch: its evaluate action has no checkpoint to read
    assert review["baseline"]["status"] == "unavailable"
    assert "evaluate.checkpoint" in review["baseline"]["reason"]
    text = render_review(review, color=False)
    assert "BLOCKERS (1)" in text and "baseline unavailable" in text and "baseline: defaults" in text
    coloured = render_review(review, color=True)
    assert "\x1b[1;31mBLOCKERS" in coloured


def test_baseline_key_is_a_hash_of_what_determines_the_baseline(tmp_path):
    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    first = runner.baseline(automl_settings=SETTINGS, spec_overrides=OVERRIDES)
    assert first["status"] == "measured" and first["reused"] is False
    assert Path(first["record"]).is_file()
    # the review shows it (reused) and times the estimate with it: the defaults run is one full trial
    review = runner.review(run_baseline=True, automl_settings=SETTINGS, spec_overrides=OVERRIDES)
    assert review["baseline"]["reused"] is True and review["baseline"]["job_id"] == first["job_id"]
    assert review["estimate"]["assumptions"][0].endswith("s per full trial, measured by the defaults baseline run")
    assert review["estimate"]["per_trial_s"] < 120
    # a budget change does not change the baseline: reused, no second job
    more = runner.baseline(automl_settings={**SETTINGS, "max_recommendations": 9}, spec_overrides=OVERRIDES)
    assert more["reused"] is True and more["key"] == first["key"] and more["job_id"] == first["job_id"]
    # the spec, data or starting point do: another key, measured again
    other = runner.review(run_baseline=False, automl_settings=SETTINGS,
                          spec_overrides={**OVERRIDES, "dataset.noise": 2.0})
    assert "baseline" not in other  # review alone launches nothing
    changed = runner.baseline(automl_settings=SETTINGS, spec_overrides={**OVERRIDES, "dataset.noise": 2.0})
    assert changed["key"] != first["key"] and changed["reused"] is False
    assert changed["metric_value"] != first["metric_value"]
