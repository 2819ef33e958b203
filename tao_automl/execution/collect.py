"""Fold the job ledger into per-trial results and pick the best trial."""

from __future__ import annotations

from typing import Any

from tao_automl.errors import AutoMLError
from tao_automl.execution.ledger import TrialRecord
from tao_automl.results import TrialResult

__all__ = ["trial_result", "pick_best", "best_checkpoint"]


def trial_result(rec: TrialRecord, metric: str) -> TrialResult:
    """One history entry from a trial's ledger record."""
    planned = rec.planned or {}
    last = rec.attempts[-1] if rec.attempts else None
    out = rec.outcome
    per_epoch = [
        {"epoch": e.get("epoch"), "attempt": e.get("attempt"), **(e.get("values") or {})} for e in rec.epochs
    ]
    status, value, reason, message, exit_code = "pending", None, None, None, None
    if out is not None:
        if out.get("state") == "succeeded" and out.get("metric_value") is not None:
            status, value = "succeeded", float(out["metric_value"])
        else:
            status = "failed"
            reason, message, exit_code = out.get("reason") or "program", out.get("message"), out.get("exit_code")
    elif last is not None and last.stopped is not None:
        status = "stopped"  # early-stopped / paused by the scheduler
        vals = [e.get(metric) for e in per_epoch if e.get(metric) is not None]
        value = float(vals[-1]) if vals else None
    elif last is not None:
        status = "running"
    epochs = [e["epoch"] for e in per_epoch if isinstance(e.get("epoch"), int)]
    started = rec.attempts[0].submitted_at if rec.attempts else None
    finished = (out or {}).get("t") or ((last.stopped or {}).get("t") if last else None)
    return TrialResult(
        rec_id=rec.trial_id,
        job_id=last.handle.job_id if last else None,
        status=status,
        metric_value=value,
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
    from tao_automl.execution.direction import best_index

    for statuses in (("succeeded",), ("stopped",)):
        pool = [t for t in history if t.status in statuses and t.metric_value is not None]
        if pool:
            i = best_index([t.metric_value for t in pool], direction)
            if i is not None:
                return pool[i]
    return None


def best_checkpoint(backend: Any, rec: TrialRecord, trial: TrialResult, metric: str, direction: str,
                    which: str, epoch_offset: int | None = None) -> str | None:
    """The best trial's checkpoint: best epoch by the metric, or the last one.
    ``epoch_offset`` None infers the checkpoint numbering from the job's files."""
    from tao_automl.checkpoints import PlatformCheckpointProvider

    if not rec.attempts:
        return None
    att = rec.attempts[-1]
    per_epoch = [e for e in trial.metrics_per_epoch if e.get("attempt") == att.number]
    try:
        from tao_automl.execution.metrics import EpochRecord

        records = [EpochRecord(epoch=e.get("epoch"), values={k: v for k, v in e.items()
                                                             if k not in ("epoch", "attempt")})
                   for e in per_epoch]
        provider = PlatformCheckpointProvider(
            backend, att.handle, per_epoch=records, metric=metric, direction=direction, which=which,
            epoch_offset=epoch_offset, start_epoch=att.start_epoch,
        )
        return provider.resolve("parent_model")
    except AutoMLError:
        try:
            provider = PlatformCheckpointProvider(backend, att.handle, which="last")
            return provider.resolve("parent_model")
        except AutoMLError:
            return None
