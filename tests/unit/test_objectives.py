"""Objectives: parsing and validation, the weighted score, the Pareto front,
hypervolume against hand-computed values, select_best rules, and a job
missing an objective."""

from __future__ import annotations

import json

import pytest

from tao_automl.config.objectives import (
    Objective,
    dominates,
    hypervolume,
    pareto_indices,
    parse_objectives,
    parse_select_best,
    reference_point,
    scalarize,
    select_index,
)
from tao_automl.config.settings import parse_settings
from tao_automl.errors import SettingsError
from tao_automl.execution.objective_values import epoch_values, extract_objectives
from tao_automl.reporting.pareto import hypervolume_trace, pareto_front, pick_by_rule
from tao_automl.reporting.results import TrialResult

ACC = Objective("mAP", "maximize")
LAT = Objective("latency_ms", "minimize", weight=0.5, scale=10.0)


def test_parse_names_and_mappings_with_directions():
    objs = parse_objectives(["mAP", {"metric": "latency_ms", "weight": 0.5, "scale": 10}], "mAP", "maximize")
    assert objs == [ACC, LAT]
    # a direction left out follows the metric-name rule; an entry without a metric is the run's metric
    objs = parse_objectives([{"weight": 2}, {"name": "val_loss"}], "mAP", "maximize")
    assert objs == [Objective("mAP", "maximize", 2.0), Objective("val_loss", "minimize")]


@pytest.mark.parametrize("raw, key, expected", [
    ("mAP", "automl_settings.objectives", "non-empty list"),
    ([], "automl_settings.objectives", "non-empty list"),
    ([3], "automl_settings.objectives[0]", "metric name or a mapping"),
    ([{"metric": "a", "weight": -1}], "automl_settings.objectives[0].weight", ">= 0"),
    ([{"metric": "a", "scale": 0}], "automl_settings.objectives[0].scale", "> 0"),
    ([{"metric": "a", "scale": float("nan")}], "automl_settings.objectives[0].scale", "> 0"),
    ([{"metric": "a", "weight": True}], "automl_settings.objectives[0].weight", "finite number"),
    (["a", {"metric": "b", "direction": "up"}], "automl_settings.objectives[1].direction", "minimize"),
    (["a", "a"], "automl_settings.objectives[1].metric", "each metric once"),
    (["a", {"metric": "b", "wieght": 1}], "automl_settings.objectives[1].wieght", "only the keys"),
    (["a", {"metric": ""}], "automl_settings.objectives[1].metric", "metric name"),
    ([{"metric": "a", "weight": 0}, {"metric": "b", "weight": 0}], "automl_settings.objectives", "weight > 0"),
    (["a", {"metric": "b", "reference": "20ms"}], "automl_settings.objectives[1].reference", "worst value"),
    (["a", {"metric": "b", "reference": float("inf")}], "automl_settings.objectives[1].reference", "finite"),
    (["a", {"metric": "b", "reference": True}], "automl_settings.objectives[1].reference", "finite number"),
])
def test_bad_objectives_name_key_value_and_expectation(raw, key, expected):
    with pytest.raises(SettingsError) as info:
        parse_objectives(raw, "a", "minimize")
    assert f"key '{key}'" in str(info.value) and expected in str(info.value)


def test_settings_check_the_structure_before_the_skill_is_known():
    with pytest.raises(SettingsError, match=r"objectives\[0\]\.weight"):
        parse_settings({"objectives": [{"metric": "mAP", "weight": "heavy"}]})
    assert parse_settings({"objectives": ["mAP", "latency_ms"]}).objectives == ["mAP", "latency_ms"]


def test_nvidia_latency_keys_need_their_switch_and_do_not_mix_with_objectives():
    with pytest.raises(SettingsError, match="latency_scale.*include_latency"):
        parse_settings({"latency_scale": 100})
    with pytest.raises(SettingsError, match="conflicting settings.*metric_weight"):
        parse_settings({"objectives": ["a", "b"], "metric_weight": 2})
    with pytest.raises(SettingsError, match="include_latency.*true or false"):
        parse_settings({"include_latency": "yes"})


def test_score_is_nvidias_weighted_sum():
    # sum(weight * oriented value / scale): 1 * 0.8 - 0.5 * 20 / 10
    assert scalarize([ACC, LAT], {"mAP": 0.8, "latency_ms": 20}) == pytest.approx(-0.2)
    assert scalarize([ACC, LAT], {"mAP": 0.8}) is None
    assert scalarize([ACC, LAT], {"mAP": 0.8, "latency_ms": float("nan")}) is None
    assert epoch_values([ACC, LAT], {"mAP": 0.8, "latency_ms": 20, "loss": 3}) == {
        "mAP": 0.8, "latency_ms": 20.0, "objective_score": pytest.approx(-0.2)}


PTS = [{"mAP": 0.9, "latency_ms": 30}, {"mAP": 0.8, "latency_ms": 10}, {"mAP": 0.7, "latency_ms": 20},
       {"mAP": 0.5, "latency_ms": 40}, {"mAP": 0.8, "latency_ms": 10}]


def test_pareto_front_and_dominance():
    assert dominates([ACC, LAT], PTS[1], PTS[2]) and not dominates([ACC, LAT], PTS[0], PTS[1])
    assert not dominates([ACC, LAT], PTS[1], PTS[4])  # equal points do not dominate each other
    assert pareto_indices([ACC, LAT], PTS) == [0, 1, 4]


def test_hypervolume_2d_by_hand():
    # minimisation form in units of scale: (-0.9, 3), (-0.8, 1), (-0.7, 2), (-0.5, 4); reference = worst
    assert reference_point([ACC, LAT], PTS) == [-0.5, 4.0]
    # strips: [-0.9, -0.8) x [3, 4) = 0.1, then [-0.8, -0.5) x [1, 4) = 0.9
    assert hypervolume([ACC, LAT], PTS) == pytest.approx(1.0)
    assert hypervolume([ACC, LAT], PTS, ref=[0.0, 5.0]) == pytest.approx(0.9 * 2 + 0.8 * 2 + 0.0)
    assert hypervolume([ACC, LAT], []) == 0.0


def test_a_reference_given_is_the_hypervolumes_reference_point():
    objs = parse_objectives(["mAP", {"metric": "latency_ms", "weight": 0.5, "scale": 10, "reference": 50}],
                            "mAP", "maximize")
    assert objs[1] == Objective("latency_ms", "minimize", 0.5, 10.0, 50.0) and objs[1].to_dict()["reference"] == 50
    # mAP: the worst seen (0.5 -> -0.5 in minimisation form); latency: 50 ms / scale 10
    assert reference_point(objs, PTS) == [-0.5, 5.0]
    # strips: [-0.9, -0.8) x [3, 5) = 0.2, then [-0.8, -0.5) x [1, 5) = 1.2
    assert hypervolume(objs, PTS) == pytest.approx(1.4)
    both = [Objective("mAP", "maximize", reference=0.0), objs[1]]
    assert reference_point(both, []) == [0.0, 5.0]  # every reference given: no trial needed
    # a trial beyond the reference counts for nothing
    assert hypervolume([ACC, Objective("latency_ms", "minimize", scale=10.0, reference=15)], PTS) \
        == pytest.approx((-0.5 + 0.8) * (1.5 - 1.0))
    hist = [_trial(i, p) for i, p in enumerate(PTS)]
    from tao_automl.reporting.pareto import summary

    mo = summary(hist, objs)
    assert mo["reference_point"] == {"mAP": 0.5, "latency_ms": 50.0}
    assert mo["hypervolume"] == pytest.approx(1.4) and mo["objectives"][1]["reference"] == 50.0


def test_hypervolume_3d_by_hand_and_the_samplers_2d_helper():
    objs = [Objective(m, "minimize") for m in "abc"]
    pts = [{"a": 0, "b": 1, "c": 1}, {"a": 1, "b": 0, "c": 1}]
    # two 2x1x1 boxes overlapping in a 1x1x1 cube
    assert hypervolume(objs, pts, ref=[2, 2, 2]) == pytest.approx(3.0)
    np = pytest.importorskip("numpy")
    from tao_automl.algorithms._gp_sampler import _hv2

    front = np.array([[-0.9, 3.0], [-0.8, 1.0], [-0.7, 2.0]])
    assert _hv2(front, np.array([-0.5, 4.0])) == pytest.approx(1.0)


@pytest.mark.parametrize("raw, expected", [
    ({"maximize": "mAP", "subject_to": ["latency_ms <= 20"]}, 1),
    ({"maximize": "mAP", "subject_to": "latency_ms<15"}, 1),
    ({"minimize": "latency_ms", "subject_to": ["mAP >= 0.75"]}, 1),
    ({"maximize": "mAP", "subject_to": ["latency_ms < 10"]}, None),  # none feasible
    ({"maximize": "mAP"}, 0),
])
def test_select_best_rules(raw, expected):
    rule = parse_select_best(raw, ["mAP", "latency_ms"])
    assert select_index(rule, PTS) == expected


@pytest.mark.parametrize("raw, excerpt", [
    ("mAP", "a mapping"),
    ({"subject_to": ["latency_ms <= 20"]}, "exactly one of"),
    ({"maximize": "mAP", "minimize": "latency_ms"}, "exactly one of"),
    ({"maximize": "accuracy"}, "one of the objectives (mAP, latency_ms)"),
    ({"maximize": "mAP", "subject_to": ["latency_ms <= __import__('os').system('x')"]}, "subject_to[0]"),
    ({"maximize": "mAP", "subject_to": ["latency_ms ~ 20"]}, "<metric> <op> <number>"),
    ({"maximize": "mAP", "subject_to": ["memory_mb <= 20"]}, "a constraint on one of the objectives"),
    ({"maximize": "mAP", "subject_to": 20}, "a list of constraints"),
    ({"maximize": "mAP", "where": []}, "select_best.where"),
])
def test_select_best_errors(raw, excerpt):
    with pytest.raises(SettingsError) as info:
        parse_select_best(raw, ["mAP", "latency_ms"])
    assert excerpt in str(info.value)


def _trial(i: int, ov: dict | None, status: str = "succeeded") -> TrialResult:
    return TrialResult(rec_id=f"t{i}", status=status, metric_value=None if ov is None else 0.0,
                       objective_values=ov, finished_at=float(i))


def test_front_trace_and_rule_over_history():
    hist = [_trial(i, p) for i, p in enumerate(PTS)] + [_trial(9, None, "failed")]
    assert [p["rec_id"] for p in pareto_front(hist, [ACC, LAT])] == ["t0", "t1", "t4"]
    trace = hypervolume_trace(hist, [ACC, LAT])
    assert trace == sorted(trace) and trace[-1] == pytest.approx(1.0) and len(trace) == 5
    rule = parse_select_best({"maximize": "mAP", "subject_to": ["latency_ms <= 20"]}, ["mAP", "latency_ms"])
    assert pick_by_rule(hist, rule).rec_id == "t1"


def test_a_job_missing_an_objective_names_it():
    logs = "[tao-automl-metric] " + json.dumps({"epoch": 1, "mAP": 0.7}) + "\n"
    got = extract_objectives([ACC, LAT], logs=logs, artifacts={})
    assert got.values == {"mAP": 0.7} and got.score is None and got.missing == ("latency_ms",)
    assert got.reason().startswith("no value for objective 'latency_ms'")
    # the objectives may come from different channels: a tagged line and status.json's kpi
    status = json.dumps({"kpi": {"latency_ms": 12.0}})
    got = extract_objectives([ACC, LAT], logs=logs, artifacts={"status.json": status})
    assert got.values == {"mAP": 0.7, "latency_ms": 12.0} and got.score == pytest.approx(0.7 - 0.5 * 1.2)


def _mo_result() -> dict:
    hist = []
    for i, p in enumerate(PTS):
        score = scalarize([ACC, LAT], p)
        hist.append({"rec_id": f"t{i}", "job_id": f"j{i}", "status": "succeeded", "metric_value": score,
                     "metric_epoch": 1, "hyperparameters": {"train.lr": 0.1 * (i + 1)},
                     "metrics_per_epoch": [{"epoch": 1, "objective_score": score, **p}],
                     "failure_reason": None, "adjustments": [], "objective_values": p})
    return {"session_id": "mo", "metric": "objective_score", "direction": "maximize", "history": hist,
            "best": {"rec_id": "t1", "objective_values": PTS[1], "selected_by": "maximize mAP subject to ..."},
            "baseline": {}, "final_evaluation": {},
            "multi_objective": {"objectives": [ACC.to_dict(), LAT.to_dict()]},
            "pareto_front": [{"rec_id": f"t{i}", "objective_values": PTS[i]} for i in (0, 1, 4)]}


def test_pareto_plot_marks_the_chosen_trial(tmp_path):
    pytest.importorskip("matplotlib")
    from tao_automl.reporting.plots import plotly_figures, render_plots

    paths = render_plots(str(tmp_path), _mo_result())
    png = [p for p in paths if p.endswith("pareto_front.png")]
    assert png and (tmp_path / "plots" / "pareto_front.png").stat().st_size > 5000
    fig = plotly_figures(_mo_result())["pareto_front"]
    chosen = [t for t in fig.data if (t.name or "").startswith("chosen: t1")]
    assert chosen and list(chosen[0].x) == [0.8] and list(chosen[0].y) == [10.0]
    # a one-metric result has no Pareto plot
    one = _mo_result()
    one["pareto_front"] = None
    assert "pareto_front" not in plotly_figures(one)


@pytest.mark.parametrize("liar", [False, True])
def test_pareto_samplers_propose_inside_the_space_and_beat_random_on_branin_currin(liar):
    optuna = pytest.importorskip("optuna")
    from tao_automl.algorithms._gp_sampler import HVISampler

    fn = _branin_currin

    def run(sampler) -> float:
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
        pts = []
        for _ in range(16):
            trial = study.ask()
            if liar:  # one other trial still running while this one is proposed
                pending = study.ask()
            x = [trial.suggest_float("x0", 0, 1), trial.suggest_float("x1", 0, 1)]
            f = fn(x)
            study.tell(trial, f)
            pts.append({"f1": f[0], "f2": f[1]})
            if liar:
                xp = [pending.suggest_float("x0", 0, 1), pending.suggest_float("x1", 0, 1)]
                assert all(0 <= v <= 1 for v in xp)
                study.tell(pending, fn(xp))
                pts.append(dict(zip(("f1", "f2"), fn(xp), strict=True)))
        objs = [Objective("f1", "minimize"), Objective("f2", "minimize")]
        return hypervolume(objs, pts, [18.0, 6.0])

    ours = run(HVISampler(seed=1, n_startup_trials=5, constant_liar=liar))
    rand = run(optuna.samplers.RandomSampler(seed=1))
    assert ours > rand


def _branin_currin(u: list[float]) -> tuple[float, float]:  # both minimized (BoTorch's)
    import math

    x0, x1 = u
    a, b = 15 * x0 - 5, 15 * x1
    branin = (b - 5.1 / (4 * math.pi**2) * a**2 + 5 / math.pi * a - 6) ** 2 \
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(a) + 10
    currin = (1 - math.exp(-1 / (2 * max(x1, 1e-12)))) * (2300 * x0**3 + 1900 * x0**2 + 2092 * x0 + 60) \
        / (100 * x0**3 + 500 * x0**2 + 4 * x0 + 20)
    return branin, currin


def test_the_sampler_spends_its_trials_inside_the_users_reference_box():
    """With each objective's reference (the worst value that still counts), the
    hypervolume improvement is measured against it: on Branin-Currin with the
    box branin <= 18, currin <= 6 the search keeps more trials inside the box
    and reaches a larger hypervolume there than the same sampler without it."""
    optuna = pytest.importorskip("optuna")
    from tao_automl.algorithms._gp_sampler import HVISampler

    objs = [Objective("f1", "minimize", reference=18.0), Objective("f2", "minimize", reference=6.0)]

    def run(seed: int, reference) -> tuple[float, int]:
        study = optuna.create_study(directions=["minimize", "minimize"],
                                    sampler=HVISampler(seed=seed, n_startup_trials=5, reference=reference))
        pts, seen = [], []
        for _ in range(20):
            trial = study.ask()
            x = [trial.suggest_float("x0", 0, 1), trial.suggest_float("x1", 0, 1)]
            f = _branin_currin(x)
            study.tell(trial, f)
            pts.append({"f1": f[0], "f2": f[1]})
            seen.append(tuple(round(v, 3) for v in x))
        inside = sum(p["f1"] < 18 and p["f2"] < 6 for p in pts[5:])
        # a measured point on the front is not proposed again and again (it was, when a
        # candidate's optimistic prediction only just beat its own measurement)
        assert max(seen.count(c) for c in seen) <= 2, seen
        return hypervolume(objs, pts), inside

    with_ref = [run(s, [18.0, 6.0]) for s in range(3)]
    without = [run(s, None) for s in range(3)]
    assert sorted(h for h, _ in with_ref)[1] > sorted(h for h, _ in without)[1]
    assert sum(n for _, n in with_ref) > sum(n for _, n in without)


def test_three_objectives_parego_scales_each_objective_to_its_reference():
    optuna = pytest.importorskip("optuna")
    import numpy as np
    from optuna.trial import TrialState, create_trial

    from tao_automl.algorithms._gp_sampler import HVISampler

    study = optuna.create_study(directions=["minimize", "maximize", "minimize"])
    for v in ([0.0, 1.0, 2.0], [1.0, 0.0, 4.0], [2.0, 0.5, 3.0]):
        study.add_trial(create_trial(state=TrialState.COMPLETE, values=v, params={}, distributions={}))
    done = study.get_trials()
    # objective 0: reference 4 (the seen range 0..2 becomes 0..4); objective 1 (maximized,
    # oriented -1..0): reference 0.5 is its 1, so the trial at 0.0 (beyond it) is 2;
    # objective 2: no reference (the seen 2..4)
    sampler = HVISampler(seed=0, reference=[4.0, 0.5, None])
    w = np.random.default_rng(7).dirichlet(np.ones(3))
    sampler._rng = np.random.default_rng(7)
    f = np.array([[0.0, 0.0, 0.0], [0.25, 2.0, 1.0], [0.5, 1.0, 0.5]])
    want = (f * w).max(axis=1) + 0.05 * (f * w).sum(axis=1)
    assert sampler._targets(study, done) == pytest.approx(want)


def test_a_rebuilt_multi_objective_search_is_told_every_objective():
    from tao_automl.execution.rebuild import _point
    from tao_automl.store.ledger import TrialRecord

    ok = TrialRecord("t1", planned={"config": {"train.lr": 0.1}},
                     outcome={"state": "succeeded", "metric_value": -1.5,
                              "objective_values": {"mAP": 0.5, "latency_ms": 20.0}})
    failed = TrialRecord("t2", planned={"config": {"train.lr": 0.2}}, outcome={"state": "failed"})
    assert _point(ok, ["mAP", "latency_ms"]) == ({"train.lr": 0.1}, [0.5, 20.0])
    assert _point(failed, ["mAP", "latency_ms"]) == ({"train.lr": 0.2}, None)
    assert _point(ok, "objective_score") == ({"train.lr": 0.1}, -1.5)


def test_one_objective_is_the_runs_metric_and_two_make_the_score(tmp_path):
    from tao_automl.runner import AutoMLRunner

    toy = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples" / "toy_skill"
    runner = AutoMLRunner(skill_dir=toy, workspace_dir=tmp_path)
    one = runner.review(automl_settings={"metric": "val_loss", "baseline": False,
                                         "objectives": [{"metric": "val_acc", "direction": "max"}]})
    two = runner.review(automl_settings={"baseline": False, "objectives": [
        "val_loss", {"metric": "latency_ms", "scale": 10, "reference": 40}]})
    assert (one["metric"], one["direction"]) == ("val_acc", "maximize")
    assert (two["metric"], two["direction"]) == ("objective_score", "maximize")
    # the review shows each objective as the score and the hypervolume use it
    assert one["objectives"] == []
    assert two["objectives"] == [
        {"metric": "val_loss", "direction": "minimize", "weight": 1.0, "scale": 1.0, "reference": None},
        {"metric": "latency_ms", "direction": "minimize", "weight": 1.0, "scale": 10.0, "reference": 40.0}]
    from tao_automl.reporting.review_render import render_review

    text = render_review(two, color=False)
    assert "latency_ms (minimize), weight 1, scale 10, reference 40" in text
    assert "val_loss (minimize), weight 1, scale 1, reference the worst value seen" in text
