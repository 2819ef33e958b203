"""DEHB end to end on the toy skill through AutoMLRunner on Ray: brackets and
epoch budgets as the ledger records them, promotions, concurrency, the best
trial, review; and an interrupted run that resumes the DE state."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
import yaml
from skillkit import TOY

from tao_automl.algorithms._de import geometry
from tao_automl.reporting.results import validate_result
from tao_automl.reporting.review_render import render_review
from tao_automl.runner import AutoMLRunner
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

# min 1, max 4, eta 2: levels 1/2/4 epochs; bracket 0 = 4@1, 2@2, 1@4 (7 jobs),
# bracket 1 = 2@2, 1@4 (3 jobs): 10 jobs are exactly two whole brackets.
SETTINGS = {"max_recommendations": 10, "max_concurrent": 2, "max_epochs": 4, "min_epochs": 1,
            "reduction_factor": 2, "seed": 3}
OVERRIDES = {"train.epoch_sleep_s": 0.3}


def planned(ws: str) -> list[dict]:
    led = JobLedger(Workspace(ws))
    out = []
    for rec in led.trials():
        cfg = rec.planned["config"]
        out.append({"trial": rec.trial_id, "epochs": rec.planned["fidelity_epochs"], "bracket": cfg["__bracket"],
                    "rung": cfg["__rung"], "config_epochs": cfg["__epochs"], "hp": rec.planned["hyperparameters"],
                    "attempts": rec.attempts, "outcome": rec.outcome})
    return out


def peak_overlap(rows: list[dict]) -> int:
    events = []
    for r in rows:
        for att in r["attempts"]:
            end = (att.finished or att.stopped or {}).get("t")
            events += [(att.submitted_at, 1), (end, -1)]
    cur = peak = 0
    for _, d in sorted(events):
        cur += d
        peak = max(peak, cur)
    return peak


def test_dehb_runs_brackets_with_exact_budgets(ray_cluster, tmp_path):
    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    review = runner.review(automl_algorithm="dehb", automl_settings=SETTINGS, spec_overrides=OVERRIDES)
    b = review["budget"]
    assert b["fidelity_levels"] == [1, 2, 4] and b["planned_jobs"] == 10 and b["planned_epochs"] == 12 + 8
    assert [br["rungs"] for br in b["brackets"][:2]] == [
        [{"configs": 4, "epochs": 1}, {"configs": 2, "epochs": 2}, {"configs": 1, "epochs": 4}],
        [{"configs": 2, "epochs": 2}, {"configs": 1, "epochs": 4}]]
    assert b["mutation_factor"] == 0.5 and b["crossover_prob"] == 0.5
    assert b["dehb_strategy"] == "currenttobest1_bin" and b["dehb_promotion"] == "rank"  # the measured defaults
    text = render_review(review, color=False, width=200)  # what the person confirming reads
    assert "0: 4 x 1 ep -> 2 x 2 ep -> 1 x 4 ep (7 jobs, 12 epochs)" in text
    assert "1: 2 x 2 ep -> 1 x 4 ep (3 jobs, 8 epochs)" in text
    assert "dehb_strategy=currenttobest1_bin" in text and "dehb_promotion=rank" in text

    res = runner.run(automl_algorithm="dehb", automl_settings=SETTINGS, spec_overrides=OVERRIDES)
    validate_result(res)
    assert res["algorithm"] == "dehb" and res["stopped_early"] is None
    hist = {t["rec_id"]: t for t in res["history"]}
    assert len(hist) == 10 and all(t["status"] == "succeeded" for t in hist.values())
    rows = planned(res["workspace"])
    # every job trained exactly its budget: the spec it ran, the epochs it reported
    for r in rows:
        assert r["epochs"] == r["config_epochs"]
        spec = yaml.safe_load(Path(hist[r["trial"]]["spec_path"]).read_text())
        assert spec["train"]["num_epochs"] == r["epochs"]
        assert hist[r["trial"]]["epochs_completed"] == r["epochs"]
        assert not any(k.startswith("__") for k in r["hp"])  # annotations never reach the spec
    # the brackets of the geometry, rung by rung
    geo = geometry(1, 4, 2)
    shape = Counter((r["bracket"], r["rung"], r["epochs"]) for r in rows)
    expected = Counter()
    for i in (0, 1):
        for rung, (lvl, n) in enumerate(geo.brackets[i]):
            expected[(i, rung, geo.budgets[lvl])] = n
    assert shape == expected
    assert sum(r["epochs"] for r in rows) == 20
    # first Hyperband iteration: bracket 0's rung 1 are the best two of its rung 0, its top rung the best of rung 1
    value = {r["trial"]: hist[r["trial"]]["metric_value"] for r in rows}

    def hps(bracket, rung):
        return [r for r in rows if r["bracket"] == bracket and r["rung"] == rung]

    best2 = sorted(hps(0, 0), key=lambda r: value[r["trial"]])[:2]
    assert sorted(map(str, (r["hp"] for r in hps(0, 1)))) == sorted(map(str, (r["hp"] for r in best2)))
    top = min(hps(0, 1), key=lambda r: value[r["trial"]])
    assert [r["hp"] for r in hps(0, 2)] == [top["hp"]]
    # both slots used; the best is a full-fidelity job (min over those)
    assert peak_overlap(rows) == 2
    full = [t for t in hist.values() if t["epochs_completed"] == 4]
    assert res["best"]["metric_value"] == min(t["metric_value"] for t in full)
    assert res["final_evaluation"]["status"] == "measured"


@pytest.mark.slow
def test_dehb_interrupted_then_resumed_continues_the_brackets(ray_cluster, tmp_path):
    """SIGINT mid-run (graceful: Tune saves the searcher), then resume: the
    restored DE state finishes the same brackets, no job is re-run."""
    ws = tmp_path / "ws"
    settings = {**SETTINGS, "session_id": "exp", "baseline": False, "final_eval": False}
    seen: list[str] = []

    def stop_after_four(rec, metric_value, status) -> None:  # nvidia-tao-automl's on_result shape
        seen.append(rec.id)
        if len(seen) == 4:
            import os

            os.kill(os.getpid(), signal.SIGINT)

    first = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(
        automl_algorithm="dehb", automl_settings=settings, spec_overrides=OVERRIDES, on_result=stop_after_four)
    assert first["stopped_early"]
    done_before = {t["rec_id"] for t in first["history"] if t["status"] == "succeeded"}
    assert 4 <= len(done_before) < 10
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(resume=True, automl_settings={"session_id": "exp"})
    assert res["stopped_early"] is None
    rows = planned(str(ws / "exp"))
    done = [r for r in rows if r["outcome"] and r["outcome"].get("state") == "succeeded"]
    assert len(done) == 10
    shape = Counter((r["bracket"], r["rung"], r["epochs"]) for r in done)
    assert shape == Counter({(0, 0, 1): 4, (0, 1, 2): 2, (0, 2, 4): 1, (1, 0, 2): 2, (1, 1, 4): 1})
    for r in done:
        if r["trial"] in done_before:
            assert len(r["attempts"]) == 1  # never re-run
