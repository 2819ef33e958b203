"""The result classes are frozen values built complete (issue 13), and the
report helpers share one cell formatter."""

from __future__ import annotations

import attrs
import pytest

from tao_automl.reporting.pareto import fill_objective_values
from tao_automl.reporting.results import (
    AutoMLResult,
    BestTrial,
    Evaluation,
    Progress,
    TrialResult,
    fmt_value,
    validate_result,
)


def _result() -> AutoMLResult:
    trial = TrialResult(rec_id="t0", job_id="j0", status="succeeded", metric_value=0.5, metric_epoch=2,
                        hyperparameters={"train.lr": 0.01})
    return AutoMLResult(
        session_id="automl-x", algorithm="bayesian", metric="val_loss", direction="minimize", workspace="/ws",
        best=BestTrial(rec_id="t0", job_id="j0", metric_value=0.5, hyperparameters={"train.lr": 0.01}, specs={}),
        progress=Progress(completed=1, failed=0, total=1, best_metric=0.5, best_rec_id="t0", algorithm="bayesian"),
        baseline=Evaluation(status="measured", metric_value=0.9), final_evaluation=Evaluation(status="skipped"),
        history=[trial], search_space=[],
    )


@pytest.mark.parametrize("cls", [AutoMLResult, BestTrial, Evaluation, Progress, TrialResult])
def test_every_result_class_is_frozen(cls):
    assert attrs.has(cls)
    obj = {AutoMLResult: _result(), BestTrial: _result().best, Evaluation: Evaluation(status="measured"),
           Progress: _result().progress, TrialResult: TrialResult(rec_id="t")}[cls]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(obj, attrs.fields(cls)[0].name, "changed")


def test_result_dict_round_trips_and_keeps_the_contract():
    res = _result()
    out = res.to_dict()
    validate_result(out)
    assert out["history"][0]["metric_value"] == 0.5 and out["baseline"]["status"] == "measured"
    assert AutoMLResult.from_dict(out) == res


def test_fill_objective_values_builds_new_entries():
    history = [TrialResult(rec_id="a", status="succeeded", metric_value=0.3),
               TrialResult(rec_id="b", status="failed")]
    filled = fill_objective_values(history, (), {}, "val_loss")
    assert [t.objective_values for t in filled] == [{"val_loss": 0.3}, None]
    assert history[0].objective_values is None  # the input is left as it was


def test_fmt_value():
    assert (fmt_value(None), fmt_value(0.123456789), fmt_value(0.123456789, digits=4), fmt_value(3)) == \
        ("-", "0.123457", "0.1235", "3")
