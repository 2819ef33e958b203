"""The status words of a run, in one place.

``TrialStatus``: a trial in the history (``result.json``, ``history.csv``,
the progress table).  ``EvalStatus``: a baseline or final evaluation
(nvidia-tao-automl's words).  Both are :class:`enum.StrEnum`: a member equals
its plain string and serializes as it, so result files are unchanged.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TrialStatus", "EvalStatus", "EVAL_FAILED"]


class TrialStatus(StrEnum):
    PENDING = "pending"  # planned, no job submitted yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"  # early-stopped or paused by the scheduler


class EvalStatus(StrEnum):
    MEASURED = "measured"  # a job or callback gave the metric
    PROVIDED = "provided"  # given in automl_settings
    REUSED_BEST = "reused_best"  # final only: the best trial's own value
    METRIC_MISSING = "metric_missing"  # ran, no metric
    FAILURE = "failure"  # the evaluate job failed
    CALLBACK_ERROR = "callback_error"  # the user's callback raised
    UNAVAILABLE = "unavailable"  # nothing to evaluate with
    SKIPPED = "skipped"  # disabled, or nothing to evaluate
    NOT_RUN = "not_run"


#: evaluation statuses that mean it ran and gave no usable metric
EVAL_FAILED = (EvalStatus.FAILURE, EvalStatus.METRIC_MISSING, EvalStatus.CALLBACK_ERROR)
