"""Multi-objective results: each trial's objective values, the Pareto front,
its hypervolume as the search went, and ``best`` by a ``select_best`` rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from tao_automl.config.objectives import (
    SCORE,
    Objective,
    SelectRule,
    hypervolume,
    pareto_indices,
    reference_point,
    select_index,
)
from tao_automl.config.statuses import TrialStatus
from tao_automl.reporting.results import TrialResult

__all__ = ["objective_values", "fill_objective_values", "pareto_front", "hypervolume_trace", "pick_by_rule",
           "summary"]


def objective_values(t: TrialResult, objectives: Sequence[Objective], outcome: dict[str, Any] | None) -> \
        dict[str, float] | None:
    """The objectives of the epoch that earned the trial's score; else those
    the finished job reported (``outcome['objective_values']``)."""
    if t.metric_value is None:
        return None
    names = [o.metric for o in objectives]
    for rec in reversed(t.metrics_per_epoch):
        if rec.get("epoch") == t.metric_epoch and rec.get(SCORE) == t.metric_value \
                and all(isinstance(rec.get(n), (int, float)) for n in names):
            return {n: float(rec[n]) for n in names}
    got = (outcome or {}).get("objective_values") or {}
    if all(isinstance(got.get(n), (int, float)) for n in names):
        return {n: float(got[n]) for n in names}
    return None


def fill_objective_values(history: list[TrialResult], objectives: Sequence[Objective],
                          outcomes: dict[str, dict[str, Any] | None], metric: str) -> list[TrialResult]:
    """``history`` with every entry's ``objective_values`` set (one-metric runs:
    ``{metric: score}``); the entries are frozen, so these are new ones."""
    out = []
    for t in history:
        if objectives:
            t = attrs.evolve(t, objective_values=objective_values(t, objectives, outcomes.get(t.rec_id)))
        elif t.metric_value is not None:
            t = attrs.evolve(t, objective_values={metric: t.metric_value})
        out.append(t)
    return out


def _done(history: list[TrialResult]) -> list[TrialResult]:
    return [t for t in history if t.status == TrialStatus.SUCCEEDED and t.objective_values]


def pareto_front(history: list[TrialResult], objectives: Sequence[Objective]) -> list[dict[str, Any]]:
    """The non-dominated succeeded trials, with their objective values and score."""
    done = _done(history)
    idx = pareto_indices(objectives, [t.objective_values or {} for t in done])
    return [{"rec_id": done[i].rec_id, "job_id": done[i].job_id, "objective_values": done[i].objective_values,
             "metric_value": done[i].metric_value, "hyperparameters": done[i].hyperparameters} for i in idx]


def hypervolume_trace(history: list[TrialResult], objectives: Sequence[Objective]) -> list[float]:
    """The front's hypervolume after each succeeded trial (in finishing order),
    all against the run's reference point: each objective's ``reference``,
    else its worst value over every succeeded trial (so the trace never
    decreases)."""
    done = sorted(_done(history), key=lambda t: t.finished_at or 0.0)
    pts = [t.objective_values or {} for t in done]
    ref = reference_point(objectives, pts)
    return [hypervolume(objectives, pts[:k + 1], ref) for k in range(len(pts))]


def pick_by_rule(history: list[TrialResult], rule: SelectRule) -> TrialResult | None:
    """The succeeded trial the rule picks; None when none meets its constraints."""
    done = _done(history)
    i = select_index(rule, [t.objective_values or {} for t in done])
    return None if i is None else done[i]


def rule_text(rule: SelectRule) -> str:
    cons = " and ".join(str(c) for c in rule.subject_to)
    return f"{rule.direction} {rule.metric}" + (f" subject to {cons}" if cons else "")


def summary(history: list[TrialResult], objectives: Sequence[Objective]) -> dict[str, Any]:
    """``result['multi_objective']``: objectives, hypervolume and its trace."""
    trace = hypervolume_trace(history, objectives)
    pts = [t.objective_values or {} for t in _done(history)]
    return {"objectives": [o.to_dict() for o in objectives], "score": SCORE,
            "hypervolume": trace[-1] if trace else None, "hypervolume_trace": trace,
            "reference_point": _raw_reference(objectives, pts)}


def _raw_reference(objectives: Sequence[Objective], pts: list[dict[str, float]]) -> dict[str, float] | None:
    ref = reference_point(objectives, pts)
    if ref is None:
        return None
    return {o.metric: (r if o.direction == "minimize" else -r) * o.scale for o, r in zip(objectives, ref, strict=True)}
