"""Multi-objective reporting after the search: the text report and the WandB
summary (values, hypervolume history, trials table) carry every trial's
objectives, the front and the hypervolume as it grew."""

from __future__ import annotations

import attrs
import pytest

from tao_automl.config.objectives import Objective
from tao_automl.reporting.pareto import pareto_front, summary
from tao_automl.reporting.results import TrialResult, format_result
from tao_automl.reporting.tracking import hypervolume_rows, summary_values, trials_table_data

LOSS = Objective("val_loss", "minimize")
LAT = Objective("latency_ms", "minimize", scale=10.0)
VALUES = {"t1": (0.6, 40.0), "t2": (0.2, 30.0), "t3": (0.5, 10.0)}  # t1 first, then dominated by both


def _result() -> dict:
    hist = [TrialResult(rec_id=rid, job_id=f"j{rid}", status="succeeded", metric_value=-loss - lat / 10,
                        finished_at=float(i), hyperparameters={"train.lr": loss},
                        objective_values={"val_loss": loss, "latency_ms": lat})
            for i, (rid, (loss, lat)) in enumerate(VALUES.items())]
    hist.append(TrialResult(rec_id="t4", status="failed", failure_reason="oom", hyperparameters={"train.lr": 0.9}))
    objs = [LOSS, LAT]
    best = {"rec_id": "t3", "job_id": "jt3", "metric_value": -1.5, "hyperparameters": {"train.lr": 0.5},
            "objective_values": {"val_loss": 0.5, "latency_ms": 10.0}, "selected_by": "score"}
    return {"session_id": "s", "algorithm": "bayesian", "metric": "objective_score", "direction": "maximize",
            "workspace": "/ws", "elapsed_s": 1.0, "search_space": [], "best": best,
            "progress": {"completed": 3, "failed": 1, "total": 4},
            "baseline": {"status": "skipped"}, "final_evaluation": {"status": "skipped"},
            "history": [attrs.asdict(t) for t in hist], "pareto_front": pareto_front(hist, objs),
            "multi_objective": summary(hist, objs)}


def test_text_report_shows_each_trials_objectives_the_front_and_the_hypervolume_trace():
    r = _result()
    # against the worst values (0.6, 4): t1 alone 0; with t2 0.4 * 1; with t3 0.6 (by hand)
    assert r["multi_objective"]["hypervolume_trace"] == pytest.approx([0.0, 0.4, 0.6])
    text = format_result(r)
    assert "pareto front (2 trials, hypervolume 0.6 " in text
    assert "hypervolume as the search went: 0 after 1, 0.4 after 2, 0.6 after 3 succeeded trials" in text
    trials = {ln.split()[0]: ln for ln in text.split("all trials:")[1].splitlines() if ln.strip()}
    assert trials["t1"].endswith("val_loss 0.6, latency_ms 40")
    assert trials["t2"].endswith("val_loss 0.2, latency_ms 30  (front)")
    assert trials["t3"].endswith("val_loss 0.5, latency_ms 10  (front)")
    assert "val_loss" not in trials["t4"]


def test_wandb_summary_carries_hypervolume_its_history_and_objective_columns():
    r = _result()
    s = summary_values(r)
    assert s["pareto/hypervolume"] == pytest.approx(0.6) and s["pareto/size"] == 2
    assert s["pareto/reference_point/val_loss"] == pytest.approx(0.6)
    assert s["pareto/reference_point/latency_ms"] == pytest.approx(40.0)
    assert s["best/objective/latency_ms"] == 10.0
    rows = hypervolume_rows(r)
    assert [x["pareto/trials"] for x in rows] == [1, 2, 3]
    assert [x["pareto/hypervolume"] for x in rows] == pytest.approx([0.0, 0.4, 0.6])
    cols, data = trials_table_data(r)
    i, j, k = cols.index("objective/val_loss"), cols.index("objective/latency_ms"), cols.index("pareto")
    by_id = {row[0]: row for row in data}
    assert [by_id["t2"][i], by_id["t2"][j], by_id["t2"][k]] == [0.2, 30.0, True]
    assert by_id["t1"][k] is False and by_id["t4"][i] is None
    assert by_id["t3"][cols.index("train.lr")] == 0.5


def test_one_metric_runs_have_no_pareto_entries():
    r = _result()
    r.update(pareto_front=None, multi_objective=None)
    assert not any(k.startswith("pareto/") for k in summary_values(r))
    assert hypervolume_rows(r) == []
    cols, _ = trials_table_data(r)
    assert "pareto" not in cols and not any(c.startswith("objective/") for c in cols)
    assert "hypervolume" not in format_result(r)
