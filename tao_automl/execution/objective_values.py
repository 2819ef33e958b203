"""Every objective's value of one job (multi-objective runs).

Each objective metric is extracted through the same channels as the single
metric (:func:`~tao_automl.execution.metrics.extract_metric`: tagged lines,
status.json kpi, metrics.json ...).  A value missing for any objective makes
the trial fail with that objective named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from tao_automl.config.objectives import SCORE, Objective, scalarize
from tao_automl.config.statuses import EvalStatus
from tao_automl.errors import MetricError
from tao_automl.execution.metrics import extract_metric

__all__ = ["ObjectiveValues", "extract_objectives", "epoch_values"]


@attrs.frozen
class ObjectiveValues:
    values: dict[str, float]
    score: float | None
    missing: tuple[str, ...]
    sources: dict[str, str]
    notes: tuple[str, ...] = ()

    def reason(self) -> str:
        """Why the job has no score, naming the missing objective(s)."""
        parts = [f"no value for objective '{m}'" for m in self.missing]
        why = "; ".join(self.notes[-2:])
        return ", ".join(parts) + (f" ({why})" if why else "")


def extract_objectives(objectives: Sequence[Objective], *, logs: str, artifacts: Any,
                       artifact_paths: Iterable[str] | None = None,
                       extractor: Callable[..., Any] | None = None) -> ObjectiveValues:
    """The final value of every objective of a finished job."""
    paths = None if artifact_paths is None else list(artifact_paths)
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    missing: list[str] = []
    notes: list[str] = []
    for o in objectives:
        try:
            res = extract_metric(o.metric, logs=logs, artifacts=artifacts, extractor=extractor,
                                 artifact_paths=paths)
        except MetricError as exc:
            missing.append(o.metric)
            notes.append(f"{o.metric}: {exc}")
            continue
        if res.value is None:
            missing.append(o.metric)
            notes.extend(res.notes[-1:])
        else:
            values[o.metric] = float(res.value)
            sources[o.metric] = res.source or "?"
    score = scalarize(objectives, values) if not missing else None
    return ObjectiveValues(values, score, tuple(missing), sources, tuple(notes))


def epoch_values(objectives: Sequence[Objective], values: Mapping[str, Any]) -> dict[str, float] | None:
    """One epoch record's objective values plus the score (``SCORE``); None
    unless every objective has a value."""
    score = scalarize(objectives, values)
    if score is None:
        return None
    return {**{o.metric: float(values[o.metric]) for o in objectives}, SCORE: score}


def evaluation_fields(objectives: Sequence[Objective], logs: str, read: Any, paths: Iterable[str] | None,
                      what: str, extractor: Callable[..., Any] | None = None) -> dict[str, Any]:
    """An evaluation job's objectives as Evaluation fields: status, metric_value
    (the weighted score), reason (naming a missing objective), objective_values."""
    got = extract_objectives(objectives, logs=logs, artifacts=read, artifact_paths=paths, extractor=extractor)
    return {"status": EvalStatus.MEASURED if got.score is not None else EvalStatus.METRIC_MISSING, "metric_value": got.score,
            "reason": None if got.score is not None else f"{what}: {got.reason()}",
            "objective_values": dict(got.values)}
