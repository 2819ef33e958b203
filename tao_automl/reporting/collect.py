"""Fold the job ledger into per-trial results and pick the best trial."""

from __future__ import annotations

from typing import Any

from tao_automl.config.direction import best_index
from tao_automl.config.statuses import TrialStatus
from tao_automl.platforms.base import JobState
from tao_automl.reporting.results import TrialResult
from tao_automl.reporting.score import TrialScore, trial_score
from tao_automl.store.ledger import TrialRecord

__all__ = ["trial_result", "score_of", "pick_best"]

#: Metric sources that are the user's own measure of a finished job: their value is the score.
USER_SOURCES = ("eval_fn", "extractor")


def _per_epoch(rec: TrialRecord) -> list[dict[str, Any]]:
    return [{"epoch": e.get("epoch"), "attempt": e.get("attempt"), **(e.get("values") or {})} for e in rec.epochs]


def score_of(rec: TrialRecord, metric: str, direction: str | None, selection: str = "best") -> TrialScore:
    """A trial's score from its ledger record (see :func:`~tao_automl.reporting.score.trial_score`).

    The lineage is the attempts launched since the trial's newest plan (a PBT
    exploit replaces the configuration and the weights); a succeeded outcome
    contributes its final value, which is the score when a user ``eval_fn`` or
    ``metric_extractor`` measured it.  A failed trial has no score.
    """
    out = rec.outcome
    if out is not None and not (out.get("state") == JobState.SUCCEEDED and out.get("metric_value") is not None):
        return TrialScore(None)
    planned_t = float((rec.planned or {}).get("t", 0.0) or 0.0)
    attempts = [a for a in rec.attempts if a.submitted_at >= planned_t] or rec.attempts
    final = out.get("metric_value") if out is not None else None
    return trial_score(
        _per_epoch(rec), metric, direction, selection,
        final_value=final, final_is_epoch=(out or {}).get("metric_source") not in USER_SOURCES,
        start_epochs={a.number: a.start_epoch for a in attempts} or None,
    )


def trial_result(rec: TrialRecord, metric: str, direction: str | None = None,
                 selection: str = "best") -> TrialResult:
    """One history entry from a trial's ledger record; ``metric_value`` is the
    trial's score (:func:`score_of`; without ``direction``, the last epoch's)."""
    planned = rec.planned or {}
    last = rec.attempts[-1] if rec.attempts else None
    out = rec.outcome
    per_epoch = _per_epoch(rec)
    status, value, reason, message, exit_code = TrialStatus.PENDING, None, None, None, None
    score_epoch = None
    if out is not None:
        if out.get("state") == JobState.SUCCEEDED and out.get("metric_value") is not None:
            score = score_of(rec, metric, direction, selection)
            status, value, score_epoch = TrialStatus.SUCCEEDED, score.value, score.epoch
        else:
            status = TrialStatus.FAILED
            reason, message, exit_code = out.get("reason") or "program", out.get("message"), out.get("exit_code")
    elif last is not None and last.stopped is not None:
        status = TrialStatus.STOPPED  # early-stopped / paused by the scheduler
        score = score_of(rec, metric, direction, selection)
        value, score_epoch = score.value, score.epoch
    elif last is not None:
        status = TrialStatus.RUNNING
    epochs = [e["epoch"] for e in per_epoch if isinstance(e.get("epoch"), int)]
    started = rec.attempts[0].submitted_at if rec.attempts else None
    finished = (out or {}).get("t") or ((last.stopped or {}).get("t") if last else None)
    return TrialResult(
        rec_id=rec.trial_id,
        job_id=last.handle.job_id if last else None,
        status=status,
        metric_value=value,
        metric_epoch=score_epoch,
        hyperparameters=dict(planned.get("hyperparameters") or {}),
        metrics_per_epoch=per_epoch,
        failure_reason=reason,
        failure_message=message,
        exit_code=exit_code,
        adjustments=list(planned.get("adjustments") or []),
        notes=list(rec.notes),
        attempts=len(rec.attempts),
        epochs_completed=max(epochs) if epochs else None,
        results_dir=last.handle.results_dir if last else None,
        spec_path=last.spec_path if last else None,
        started_at=started,
        finished_at=finished,
        duration_s=(finished - started) if (started and finished) else None,
    )


def pick_best(history: list[TrialResult], direction: str) -> TrialResult | None:
    """Best succeeded trial; early-stopped ones only if none succeeded.
    Failed trials (metric None) never rank."""
    for statuses in ((TrialStatus.SUCCEEDED,), (TrialStatus.STOPPED,)):
        pool = [t for t in history if t.status in statuses and t.metric_value is not None]
        if pool:
            i = best_index([t.metric_value for t in pool], direction)
            if i is not None:
                return pool[i]
    return None
