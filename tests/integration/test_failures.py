"""Failure handling: crashing jobs, no metric, NaN, fail-fast on a shared
cause, infrastructure retries, baseline failure, bad inputs before launch."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from skillkit import TOY, make_skill

from tao_automl.errors import AutoMLError, PreflightError, SettingsError
from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

GOOD = """
lr = spec["train"]["lr"]
for e in range(1, spec["train"]["num_epochs"] + 1):
    emit(epoch=e, val_loss=abs(lr - 0.05) + 1.0 / e)
"""
QUIET = {"baseline": False, "final_eval": False, "seed": 3}


def runner(skill: Path, ws: Path, **kw) -> AutoMLRunner:
    return AutoMLRunner(skill_dir=skill, workspace_dir=ws, **kw)


def test_crashing_jobs_are_failed_and_never_best(ray_cluster, tmp_path):
    skill = make_skill(tmp_path / "crash", textwrap.dedent("""
        import sys
        if spec["train"]["lr"] > 0.05:
            print("Traceback: boom", flush=True)
            sys.exit(1)
        """) + GOOD)
    res = runner(skill, tmp_path / "ws").run(
        automl_algorithm="grid",
        automl_settings={**QUIET, "grid_points": 4, "max_recommendations": 4, "max_concurrent": 2,
                         "fail_fast_after": 0})
    validate_result(res)
    by_status = {}
    for t in res["history"]:
        by_status.setdefault(t["status"], []).append(t)
    assert len(by_status["failed"]) == 2 and len(by_status["succeeded"]) == 2
    for t in by_status["failed"]:
        assert t["metric_value"] is None and t["exit_code"] == 1
        assert t["failure_reason"] == "program" and t["hyperparameters"]["train.lr"] > 0.05
        assert t["attempts"] == 1  # a program error is not retried
    assert res["best"]["hyperparameters"]["train.lr"] <= 0.05
    assert res["progress"]["failed"] == 2 and res["progress"]["completed"] == 2
    assert res["stopped_early"] is None


def test_exit_zero_without_metric_and_nan(ray_cluster, tmp_path):
    skill = make_skill(tmp_path / "nometric", """
        if spec["train"]["lr"] > 0.05:
            print("all done, but I forgot to print a metric", flush=True)
        else:
            emit(epoch=1, val_loss=float("nan"))
        """)
    res = runner(skill, tmp_path / "ws").run(
        automl_algorithm="grid",
        automl_settings={**QUIET, "grid_points": 2, "max_recommendations": 2, "max_concurrent": 2,
                         "fail_fast_after": 0, "final_eval": True})
    validate_result(res)
    assert [t["status"] for t in res["history"]] == ["failed", "failed"]
    for t in res["history"]:
        assert t["metric_value"] is None and t["exit_code"] == 0
        assert "no value for metric 'val_loss'" in t["failure_message"]
    assert res["best"] is None and res["progress"]["best_metric"] is None
    assert res["final_evaluation"]["status"] == "skipped"


def test_fail_fast_on_a_shared_cause(ray_cluster, tmp_path):
    skill = make_skill(tmp_path / "ff", """
        import sys
        print("FileNotFoundError: [Errno 2] No such file or directory: '/data/train.npz'", flush=True)
        sys.exit(2)
        """)
    res = runner(skill, tmp_path / "ws").run(
        automl_algorithm="random",
        automl_settings={**QUIET, "max_recommendations": 8, "max_concurrent": 1, "fail_fast_after": 2})
    validate_result(res)
    assert res["stopped_early"] and "shared cause" in res["stopped_early"]
    assert "data" in res["stopped_early"] and "No such file" in res["stopped_early"]
    assert 2 <= len(res["history"]) < 8
    assert all(t["status"] == "failed" and t["failure_reason"] == "data" for t in res["history"])
    assert res["best"] is None


def test_infrastructure_failures_are_retried(ray_cluster, tmp_path):
    # attempt 1 of every trial dies of an infrastructure error; attempt 2 works
    skill = make_skill(tmp_path / "infra", textwrap.dedent("""
        import sys
        if results_dir.rstrip("/").endswith("/1"):
            print("Input/output error while reading the dataset", flush=True)
            sys.exit(1)
        """) + GOOD)
    res = runner(skill, tmp_path / "ws").run(
        automl_algorithm="random",
        automl_settings={**QUIET, "max_recommendations": 2, "max_concurrent": 2, "max_retries": 1})
    validate_result(res)
    assert [t["status"] for t in res["history"]] == ["succeeded", "succeeded"]
    assert all(t["attempts"] == 2 for t in res["history"])
    led = JobLedger(Workspace(res["workspace"]))
    for rec in led.trials():
        first = rec.attempts[0].finished
        assert first["reason"] == "infrastructure" and first["final"] is False


def test_infrastructure_retries_are_bounded(ray_cluster, tmp_path):
    skill = make_skill(tmp_path / "infra2", """
        import sys
        print("node failure", flush=True)
        sys.exit(1)
        """)
    res = runner(skill, tmp_path / "ws").run(
        automl_algorithm="random",
        automl_settings={**QUIET, "max_recommendations": 1, "max_retries": 2, "fail_fast_after": 0})
    (t,) = res["history"]
    assert t["status"] == "failed" and t["attempts"] == 3 and t["failure_reason"] == "infrastructure"


def test_transient_submit_errors_are_retried(ray_cluster, tmp_path):
    from tao_automl.errors import TransientSubmitError
    from tao_automl.platforms import LocalBackend

    counter = tmp_path / "submits"
    counter.mkdir()

    class FlakySubmit(LocalBackend):
        """The real local backend; the first two submissions fail transiently."""

        def __init__(self, counter_dir: str, **kw):
            super().__init__(**kw)
            self.counter_dir = counter_dir

        def submit(self, request):
            n = len(os.listdir(self.counter_dir))
            Path(self.counter_dir, f"{n}").touch()
            if n < 2:
                raise TransientSubmitError(f"API busy (attempt {n})")
            return super().submit(request)

    skill = make_skill(tmp_path / "sk", GOOD)
    res = runner(skill, tmp_path / "ws", platform_sdk=FlakySubmit(str(counter))).run(
        automl_algorithm="random", automl_settings={**QUIET, "max_recommendations": 1, "max_retries": 2})
    (t,) = res["history"]
    assert t["status"] == "succeeded" and t["attempts"] == 1
    assert len(os.listdir(counter)) == 3


def test_baseline_failure_raises_before_any_trial(ray_cluster, tmp_path):
    skill = make_skill(tmp_path / "bl", GOOD, eval_body="""
        import sys
        print("evaluate crashed", flush=True)
        sys.exit(3)
        """)
    ws = tmp_path / "ws"
    with pytest.raises(PreflightError) as ei:
        runner(skill, ws).run(automl_algorithm="random",
                              automl_settings={"max_recommendations": 2, "seed": 1, "session_id": "s"})
    assert "baseline evaluation failed" in str(ei.value) and "exit 3" in str(ei.value)
    assert "baseline': False" in str(ei.value)
    assert not (ws / "s" / "ledger").exists()
    assert (ws / "s" / "evaluations" / "baseline.json").is_file()


def test_baseline_and_final_evaluation_succeed(ray_cluster, tmp_path):
    skill = make_skill(tmp_path / "ev", GOOD, eval_body="""
        emit(val_loss=0.5)
        """)
    res = runner(skill, tmp_path / "ws").run(
        automl_algorithm="random", automl_settings={"max_recommendations": 2, "seed": 1, "max_concurrent": 2})
    assert res["baseline"]["status"] == "measured" and res["baseline"]["metric_value"] == 0.5
    assert res["baseline"]["source"] == "evaluate_action"
    assert res["final_evaluation"]["status"] == "measured"
    assert res["final_evaluation"]["improvement"] == 0.0
    assert res["final_evaluation"]["comparison_to_baseline"] == {
        "delta": 0.0, "improved": False, "direction": "minimize"}


# -- bad inputs: raised before launch, nothing written --------------------------------
BAD_INPUTS = [
    ("unknown algorithm", dict(automl_algorithm="bayesain"), SettingsError, "bayesain"),
    ("unknown setting", dict(automl_settings={"max_recomendations": 3}), SettingsError, "max_recomendations"),
    ("wrong type", dict(automl_settings={"max_concurrent": "2"}), SettingsError, "max_concurrent"),
    ("hyperparameter not in schema", dict(automl_hyperparameters=["train.no_such_knob"]), AutoMLError,
     "train.no_such_knob"),
    ("custom range outside bounds", dict(custom_param_ranges={"train.lr": {"min": -5.0, "max": 0.1}}),
     AutoMLError, "train.lr"),
    ("bad override path", dict(spec_overrides={"train.lr.deeper": 1}), AutoMLError, "train.lr"),
    ("unreadable dataset", dict(train_dataset_uri="/no/such/dir/train.npz"), PreflightError,
     "/no/such/dir/train.npz"),
    ("unknown platform kwarg", dict(partitionn="gpu"), SettingsError, "partitionn"),
    ("bad direction", dict(automl_settings={"direction": "sideways"}), SettingsError, "sideways"),
    ("kpi as metric", dict(automl_settings={"metric": "kpi"}), SettingsError, "kpi"),
    ("fidelity searched", dict(automl_algorithm="asha", automl_hyperparameters=["train.num_epochs", "train.lr"]),
     AutoMLError, "train.num_epochs"),
]


# Inputs that review() reports as blockers (run() still refuses them).
REVIEW_BLOCKERS = {"unreadable dataset"}


@pytest.mark.parametrize("label,kwargs,exc,needle", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_raise_before_launch(label, kwargs, exc, needle, tmp_path):
    ws = tmp_path / "ws"
    r = runner(TOY, ws)
    with pytest.raises(exc) as ei:
        r.run(**kwargs)
    assert needle in str(ei.value), str(ei.value)
    assert not ws.exists() or not any(ws.iterdir()), "nothing may be written"
    if label in REVIEW_BLOCKERS:  # the user can still fix it: review lists it and shows the rest
        rv = r.review(**kwargs)
        assert any(needle in b for b in rv["blockers"]) and rv["recommendations"], rv["blockers"]
        return
    # review refuses the same input the same way
    with pytest.raises(exc):
        r.review(**kwargs)
