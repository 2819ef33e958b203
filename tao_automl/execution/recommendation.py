"""What the user callbacks receive: one :class:`Recommendation` per trial.

``on_recommendation(rec)``, ``on_result(rec, metric_value, status)``,
``eval_fn(rec, job_id)``, ``final_eval_fn(best_rec, train_job_id)`` and
``feedback_fn(rec, job_id)`` all get a :class:`Recommendation`, the shape
NVIDIA's nvidia-tao-automl callbacks use: a read-only mapping of the trial's
dotted hyperparameter values (``rec.get("train.optim.lr", 1e-4)``,
``rec["model.depth"]``, ``dict(rec)``, ``key in rec``) with attributes.
``baseline_fn(specs)`` gets the nested baseline spec dict.

Status words (``rec.status``, the third argument of ``on_result``):
``pending`` (not launched yet), ``running``, ``success`` (a metric value was
reported: finished, or stopped early by the scheduler), ``failure``
(no value: ``rec.result`` is ``None``, never 0.0), ``canceled``.
``rec.state`` keeps this runner's own word (``succeeded``, ``stopped``,
``failed``...).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from tao_automl.config.statuses import TrialStatus

__all__ = ["Recommendation", "STATUS_WORDS"]

STATUS_WORDS = ("pending", "running", "success", "failure", "canceled")


@attrs.frozen(kw_only=True, eq=False)
class Recommendation(Mapping[str, Any]):
    """One trial as the callbacks see it (read-only).

    Attributes:
        id: the trial id (also ``rec_id``).
        specs: the recommended values, dotted keys (also ``hyperparameters``;
            the mapping itself).
        job_id: the platform job id of the trial's latest job (None before launch).
        status: one of :data:`STATUS_WORDS`.
        result: the metric value (also ``metric_value``); None when there is none.
        metric: the metric name.
        state: this runner's trial status (``succeeded``/``stopped``/``failed``...).
        failure_reason, failure_message: why a failed trial failed.
        results_dir, spec_path, checkpoint: where the trial's files are.
        metrics_per_epoch: the per-epoch records reported so far.
        feedback: what ``feedback_fn`` returned for it.
    """

    id: str
    specs: dict[str, Any] = attrs.field(factory=dict, converter=dict)
    job_id: str | None = None
    status: str = "pending"
    result: float | None = None
    metric: str | None = None
    state: str | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    results_dir: str | None = None
    spec_path: str | None = None
    checkpoint: str | None = None
    metrics_per_epoch: list[dict[str, Any]] = attrs.field(factory=list)
    feedback: Any = None

    # -- Mapping over the dotted values ------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.specs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def __bool__(self) -> bool:  # a recommendation with no values is still one
        return True

    def __repr__(self) -> str:
        return f"Recommendation(id={self.id!r}, status={self.status!r}, result={self.result!r}, specs={self.specs!r})"

    # -- the names of this runner's dict form ------------------------------
    @property
    def rec_id(self) -> str:
        return self.id

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.specs)

    @property
    def metric_value(self) -> float | None:
        return self.result

    def to_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self)
        d["rec_id"] = self.id
        return d

    @classmethod
    def from_trial(cls, trial: Any, metric: str | None = None, **extra: Any) -> Recommendation:
        """From a :class:`~tao_automl.reporting.results.TrialResult` (history entry)."""
        state = trial.status
        value = trial.metric_value
        if value is not None and state in (TrialStatus.SUCCEEDED, TrialStatus.STOPPED):
            status = "success"
        elif state in ("running", "pending"):
            status = state
        elif trial.failure_reason == "canceled":
            status = "canceled"
        else:
            status = "failure"
        fields = dict(
            id=trial.rec_id, specs=trial.hyperparameters, job_id=trial.job_id, status=status,
            result=value if status == "success" else None, metric=metric, state=state,
            failure_reason=trial.failure_reason, failure_message=trial.failure_message,
            results_dir=trial.results_dir, spec_path=trial.spec_path, checkpoint=trial.checkpoint,
            metrics_per_epoch=list(trial.metrics_per_epoch),
        )
        fields.update(extra)
        return cls(**fields)
