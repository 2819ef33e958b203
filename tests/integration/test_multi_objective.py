"""Multi-objective search end to end (local backend, real Ray Tune): a job
reports two objectives; the bayesian search (Pareto-front sampler) runs, the
result has every trial's objective values, the Pareto front, its
hypervolume, ``best`` picked by a ``select_best`` rule, and a final
evaluation that measured every objective.  A job missing one objective fails
with that objective named."""

from __future__ import annotations

from pathlib import Path

import pytest
from skillkit import make_skill

from tao_automl.reporting.progress import headline, snapshot
from tao_automl.reporting.results import format_result, validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.workspace import Workspace

# accuracy-like loss best at lr = 0.6; latency grows with lr: a real trade-off for lr <= 0.6,
# dominated trials above it
TRAIN = """
lr = spec["train"]["lr"]
for e in range(1, spec["train"]["num_epochs"] + 1):
    emit(epoch=e, val_loss=(lr - 0.6) ** 2 + 0.1 / e, latency_ms=10 + 40 * lr)
"""
EVAL = """
emit(val_loss=0.25, latency_ms=12.5)
"""


def _dominates(a: dict, b: dict) -> bool:
    le = a["val_loss"] <= b["val_loss"] and a["latency_ms"] <= b["latency_ms"]
    return le and (a["val_loss"] < b["val_loss"] or a["latency_ms"] < b["latency_ms"])


def test_multi_objective_bayesian_end_to_end(ray_cluster, tmp_path: Path) -> None:
    skill = make_skill(tmp_path / "mo", TRAIN, eval_body=EVAL)
    res = AutoMLRunner(skill_dir=skill, workspace_dir=tmp_path / "ws").run(
        automl_algorithm="bayesian",
        automl_settings={"max_recommendations": 7, "seed": 0, "max_concurrent": 2,
                         "objectives": ["val_loss", {"metric": "latency_ms", "scale": 10, "reference": 40}],
                         "select_best": {"minimize": "val_loss", "subject_to": ["latency_ms <= 30"]}},
        spec_overrides={"train.num_epochs": 2},
    )
    validate_result(res)
    assert res["metric"] == "objective_score" and res["direction"] == "maximize"
    hist = res["history"]
    assert len(hist) == 7 and all(t["status"] == "succeeded" for t in hist)
    for t in hist:
        ov = t["objective_values"]
        lr = t["hyperparameters"]["train.lr"]
        assert ov["latency_ms"] == pytest.approx(10 + 40 * lr)
        # the score is nvidia-tao-automl's weighted sum (minimized objectives negated, latency / scale)
        assert t["metric_value"] == pytest.approx(-ov["val_loss"] - ov["latency_ms"] / 10)
        assert t["metric_epoch"] == 2  # the loss falls every epoch, latency is constant
    # the Pareto front: exactly the non-dominated trials
    want = {t["rec_id"] for t in hist
            if not any(_dominates(o["objective_values"], t["objective_values"]) for o in hist if o is not t)}
    front = res["pareto_front"]
    assert {p["rec_id"] for p in front} == want and want
    assert all(p["objective_values"] == next(t for t in hist if t["rec_id"] == p["rec_id"])["objective_values"]
               for p in front)
    # best by the rule: the lowest loss among trials within the latency budget
    feasible = [t for t in hist if t["objective_values"]["latency_ms"] <= 30]
    assert feasible, [t["objective_values"] for t in hist]
    rule_best = min(feasible, key=lambda t: t["objective_values"]["val_loss"])
    best = res["best"]
    assert best["rec_id"] == rule_best["rec_id"]
    assert best["selected_by"] == "minimize val_loss subject to latency_ms <= 30"
    assert best["objective_values"] == rule_best["objective_values"]
    mo = res["multi_objective"]
    assert mo["select_best"]["feasible"] is True
    assert [o["metric"] for o in mo["objectives"]] == ["val_loss", "latency_ms"]
    trace = mo["hypervolume_trace"]
    assert len(trace) == 7 and trace == sorted(trace) and mo["hypervolume"] == trace[-1] > 0
    # the reference point: latency's given reference (40 ms), the worst loss seen; the
    # hypervolume by hand in units of scale (latency / 10), trials beyond 40 ms count for nothing
    worst = max(t["objective_values"]["val_loss"] for t in hist)
    assert mo["reference_point"] == {"val_loss": pytest.approx(worst), "latency_ms": pytest.approx(40.0)}
    assert mo["objectives"][1]["reference"] == 40
    pts = sorted((t["objective_values"]["val_loss"], t["objective_values"]["latency_ms"] / 10) for t in hist
                 if t["objective_values"]["latency_ms"] < 40 and t["objective_values"]["val_loss"] < worst)
    hv, low = 0.0, 4.0
    for i, (x, y) in enumerate(pts):
        if y < low:
            nxt = next((p[0] for p in pts[i + 1:] if p[1] < y), worst)
            hv, low = hv + (nxt - x) * (4.0 - y), y
    assert mo["hypervolume"] == pytest.approx(hv)
    # baseline and final evaluation measured every objective
    for ev in (res["baseline"], res["final_evaluation"]):
        assert ev["status"] == "measured" and ev["objective_values"] == {"val_loss": 0.25, "latency_ms": 12.5}
        assert ev["metric_value"] == pytest.approx(-0.25 - 1.25)
    text = format_result(res)
    assert f"pareto front ({len(front)} trials" in text and "selected by minimize val_loss" in text
    # the live table (rebuilt from the ledger) shows the same hypervolume
    snap = snapshot(Workspace(res["workspace"]))
    assert snap.hypervolume == pytest.approx(mo["hypervolume"]) and snap.front_size == len(front)
    assert "hypervolume" in headline(snap)


def test_missing_objective_fails_the_trial_naming_it(ray_cluster, tmp_path: Path) -> None:
    skill = make_skill(tmp_path / "half", """
        for e in range(1, spec["train"]["num_epochs"] + 1):
            emit(epoch=e, val_loss=1.0 / e)
        """)
    res = AutoMLRunner(skill_dir=skill, workspace_dir=tmp_path / "ws").run(
        automl_algorithm="random",
        automl_settings={"max_recommendations": 1, "seed": 0, "baseline": False, "final_eval": False,
                         "fail_fast_after": 0, "objectives": ["val_loss", "latency_ms"]},
        spec_overrides={"train.num_epochs": 2},
    )
    validate_result(res)
    (t,) = res["history"]
    assert t["status"] == "failed" and t["metric_value"] is None and t["objective_values"] is None
    assert "no value for objective 'latency_ms'" in t["failure_message"]
    assert res["best"] is None and res["pareto_front"] == []


def test_asha_runs_on_the_weighted_score(ray_cluster, tmp_path: Path) -> None:
    """Multi-fidelity algorithms see the scalarised score at every epoch."""
    skill = make_skill(tmp_path / "mf", TRAIN)
    res = AutoMLRunner(skill_dir=skill, workspace_dir=tmp_path / "ws").run(
        automl_algorithm="asha",
        automl_settings={"max_recommendations": 4, "seed": 0, "baseline": False, "final_eval": False,
                         "max_epochs": 3, "max_concurrent": 2,
                         "objectives": ["val_loss", {"metric": "latency_ms", "weight": 0.5, "scale": 10}]},
    )
    validate_result(res)
    scored = [t for t in res["history"] if t["metric_value"] is not None]
    assert scored and res["best"] is not None
    for t in scored:
        ov = t["objective_values"]
        assert t["metric_value"] == pytest.approx(-ov["val_loss"] - 0.5 * ov["latency_ms"] / 10)
        # every reported epoch carries the score Tune's scheduler ranked
        for e in t["metrics_per_epoch"]:
            assert e["objective_score"] == pytest.approx(-e["val_loss"] - 0.5 * e["latency_ms"] / 10)
    assert {p["rec_id"] for p in res["pareto_front"]} <= {t["rec_id"] for t in scored}
