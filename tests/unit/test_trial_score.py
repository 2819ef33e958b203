"""The single scoring rule (tao_automl.reporting.score.trial_score) and its
ledger front end (collect.score_of / trial_result)."""

from __future__ import annotations

import math

import pytest

from tao_automl.platforms.base import JobHandle
from tao_automl.reporting.collect import score_of, trial_result
from tao_automl.reporting.score import TrialScore, lineage, trial_score
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace


def _epochs(values, attempt=1, start=1):
    return [{"epoch": e, "attempt": attempt, "val_loss": v} for e, v in enumerate(values, start)]


CURVE = _epochs([1.0, 0.5, 0.7])  # best epoch 2, last epoch 3


@pytest.mark.parametrize("selection, direction, want", [
    ("best", "minimize", TrialScore(0.5, 2, 1)),
    ("best", "maximize", TrialScore(1.0, 1, 1)),
    ("last", "minimize", TrialScore(0.7, 3, 1)),
    ("last", "maximize", TrialScore(0.7, 3, 1)),
    ("best", None, TrialScore(0.7, 3, 1)),  # no direction: epochs cannot be ranked
])
def test_best_or_last_epoch(selection, direction, want):
    assert trial_score(CURVE, "val_loss", direction, selection) == want


def test_tie_keeps_the_earliest_epoch():
    assert trial_score(_epochs([0.5, 0.4, 0.4]), "val_loss", "minimize").epoch == 2


def test_final_value_only_and_no_value():
    assert trial_score([], "val_loss", "minimize", final_value=0.3) == TrialScore(0.3)
    assert trial_score([], "val_loss", "minimize") == TrialScore(None)


def test_final_value_of_a_finished_job():
    # "best" ranks the epochs; "last" takes the job's final report (from the last epoch)
    assert trial_score(CURVE, "val_loss", "minimize", "best", final_value=0.7) == TrialScore(0.5, 2, 1)
    assert trial_score(CURVE, "val_loss", "minimize", "last", final_value=0.65) == TrialScore(0.65, 3, 1)
    # a user eval_fn measured the trial: its value is the score, whatever the selection
    assert trial_score(CURVE, "val_loss", "minimize", "best", final_value=0.9,
                       final_is_epoch=False) == TrialScore(0.9, 3, 1)


def test_invalid_values_are_not_candidates():
    recs = _epochs([math.nan, True, 0.8, math.inf])
    assert trial_score(recs, "val_loss", "minimize") == TrialScore(0.8, 3, 1)
    assert trial_score([{"epoch": 1, "attempt": 1, "acc": 0.9}], "val_loss", "minimize") == TrialScore(None)


def test_unknown_selection_is_refused():
    with pytest.raises(ValueError, match="median"):
        trial_score(CURVE, "val_loss", "minimize", "median")


def test_lineage_of_paused_resumed_and_retried_attempts():
    # attempt 1 ran epochs 1-3, was paused at 2 and resumed (attempt 2 after epoch 2);
    # attempt 3 retried attempt 2 from the same point: attempt 2's epochs are replaced
    recs = (_epochs([0.9, 0.6, 0.1]) + _epochs([0.2], attempt=2, start=3)
            + _epochs([0.55, 0.5], attempt=3, start=3))
    kept = lineage(recs, {1: 0, 2: 2, 3: 2})
    assert [(r["attempt"], r["epoch"]) for r in kept] == [(1, 1), (1, 2), (3, 3), (3, 4)]
    # attempt 1's epoch 3 (trained past the pause point) and attempt 2 never count
    assert trial_score(recs, "val_loss", "minimize", start_epochs={1: 0, 2: 2, 3: 2}) == TrialScore(0.5, 4, 3)
    assert trial_score(recs, "val_loss", "minimize", start_epochs={1: 0, 2: 2, 3: 0}) == TrialScore(0.5, 4, 3)
    # a duplicate report of an epoch: the latest record wins
    dup = _epochs([0.9, 0.6]) + [{"epoch": 2, "attempt": 1, "val_loss": 0.7}]
    assert trial_score(dup, "val_loss", "minimize") == TrialScore(0.7, 2, 1)


def _ledger(tmp_path):
    return JobLedger(Workspace(tmp_path / "ws"))


def _handle(job_id):
    return JobHandle(backend="local", job_id=job_id, results_dir=f"/r/{job_id}").to_dict()


def test_ledger_trial_history_uses_the_rule(tmp_path):
    led = _ledger(tmp_path)
    led.record("t", "planned", hyperparameters={"lr": 0.1})
    led.record("t", "submitted", attempt=1, handle=_handle("1"))
    for e, v in enumerate([1.0, 0.5, 0.7], 1):
        led.record("t", "epoch", attempt=1, epoch=e, values={"val_loss": v})
    led.record("t", "finished", attempt=1, state="succeeded", metric_value=0.7, final=True)
    rec = led.trial("t")
    best = trial_result(rec, "val_loss", "minimize", "best")
    last = trial_result(rec, "val_loss", "minimize", "last")
    assert (best.metric_value, best.metric_epoch) == (0.5, 2)
    assert (last.metric_value, last.metric_epoch) == (0.7, 3)
    assert trial_result(rec, "val_loss").metric_value == 0.7  # no direction: the final value
    assert score_of(rec, "val_loss", "minimize") == TrialScore(0.5, 2, 1)


def test_failed_trial_has_no_score_and_stopped_one_has(tmp_path):
    led = _ledger(tmp_path)
    for tid in ("f", "s"):
        led.record(tid, "planned", hyperparameters={})
        led.record(tid, "submitted", attempt=1, handle=_handle(tid))
        led.record(tid, "epoch", attempt=1, epoch=1, values={"val_loss": 0.4})
        led.record(tid, "epoch", attempt=1, epoch=2, values={"val_loss": 0.6})
    led.record("f", "finished", attempt=1, state="failed", reason="oom", metric_value=None, final=True)
    led.record("s", "stopped", attempt=1, why="stopped by the scheduler")
    assert score_of(led.trial("f"), "val_loss", "minimize") == TrialScore(None)
    assert trial_result(led.trial("f"), "val_loss", "minimize").metric_value is None
    s = trial_result(led.trial("s"), "val_loss", "minimize", "best")
    assert (s.status, s.metric_value, s.metric_epoch) == ("stopped", 0.4, 1)


def test_pbt_replan_drops_epochs_of_the_old_configuration(tmp_path):
    import time

    led = _ledger(tmp_path)
    led.record("p", "planned", hyperparameters={"lr": 0.1})
    led.record("p", "submitted", attempt=1, handle=_handle("1"))
    led.record("p", "epoch", attempt=1, epoch=1, values={"val_loss": 0.1})
    led.record("p", "stopped", attempt=1, why="paused")
    time.sleep(0.01)
    led.record("p", "planned", hyperparameters={"lr": 0.2}, revision=1)
    led.record("p", "submitted", attempt=2, handle=_handle("2"), start_epoch=1)
    led.record("p", "epoch", attempt=2, epoch=2, values={"val_loss": 0.3})
    assert score_of(led.trial("p"), "val_loss", "minimize") == TrialScore(0.3, 2, 2)


@pytest.mark.parametrize("source, want", [("tagged", TrialScore(0.5, 2, 1)), ("eval_fn", TrialScore(0.9, 3, 1)),
                                          ("extractor", TrialScore(0.9, 3, 1))])
def test_a_user_measure_of_the_job_is_the_score(tmp_path, source, want):
    led = _ledger(tmp_path)
    led.record("t", "planned", hyperparameters={})
    led.record("t", "submitted", attempt=1, handle=_handle("1"))
    for e, v in enumerate([1.0, 0.5, 0.7], 1):
        led.record("t", "epoch", attempt=1, epoch=e, values={"val_loss": v})
    led.record("t", "finished", attempt=1, state="succeeded", metric_value=0.9, metric_source=source, final=True)
    assert score_of(led.trial("t"), "val_loss", "minimize", "best") == want
