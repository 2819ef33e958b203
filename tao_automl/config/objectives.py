"""Multi-objective settings: ``automl_settings["objectives"]`` and ``select_best``.

An objective is ``{metric, direction, weight, scale, reference}`` (a bare
string is a metric name; ``reference`` is optional: the worst value that still
counts, the hypervolume's reference point).  With two or more objectives the run is multi-objective:

* the **score** of a trial is nvidia-tao-automl's weighted scalarisation
  ``sum(weight * (+/-) value / scale)`` (each objective oriented so higher is
  better), maximized; it ranks trials for ``best`` and drives the
  multi-fidelity schedulers (asha, hyperband, bohb, pbt);
* the model-based search (``bayesian``) optimises the objectives themselves
  (a multi-objective sampler exploring the Pareto front);
* the result keeps the Pareto front (:func:`pareto_indices`) and its
  hypervolume (:func:`hypervolume`).

``select_best: {"maximize": "mAP", "subject_to": ["latency_ms <= 20"]}``
picks ``best`` by a rule instead of the score: the best value of one
objective among the trials meeting every constraint.  Constraints are parsed
with a regular expression, never evaluated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tao_automl.config.direction import normalize_direction, resolve_direction
from tao_automl.errors import SettingsError, describe

__all__ = ["SCORE", "Objective", "Constraint", "SelectRule", "check_objectives", "parse_objectives",
           "scalarize", "dominates", "pareto_indices", "hypervolume", "parse_select_best",
           "reference_point", "select_index"]

#: The name of the scalarised score in a multi-objective run (Tune's metric, maximized).
SCORE = "objective_score"
_KEY = "automl_settings.objectives"
_FIELDS = ("metric", "direction", "weight", "scale", "reference")


@attrs.frozen
class Objective:
    """One objective: ``value / scale`` weighted by ``weight`` in the score."""

    metric: str
    direction: str  # "minimize" | "maximize"
    weight: float = 1.0
    scale: float = 1.0
    #: The worst value that still counts (the hypervolume reference point's
    #: coordinate, in the metric's own units; BoTorch's ``ref_point``, Ax's
    #: objective threshold).  None: the worst value any succeeded trial reached.
    reference: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _number(value: Any, key: str, what: str, ok: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise SettingsError("invalid objective", key=key, value=value, expected=what)
    return float(value)


def check_objectives(raw: Any) -> None:
    """The structure of ``objectives`` (no metric resolution): raises SettingsError."""
    _entries(raw, metric=None, direction=None, resolve=False)


def _entries(raw: Any, *, metric: str | None, direction: str | None, resolve: bool,
             declared: str | None = None) -> list[Objective]:
    if not isinstance(raw, list) or not raw:
        raise SettingsError.from_message(describe("invalid setting", key=_KEY, value=raw,
                                     expected="a non-empty list of metric names or {metric, direction, "
                                              "weight, scale, reference} mappings"), key="objectives", value=raw)
    out: list[Objective] = []
    for i, item in enumerate(raw):
        key = f"{_KEY}[{i}]"
        if isinstance(item, str):
            item = {"metric": item}
        if not isinstance(item, Mapping):
            raise SettingsError.from_message(describe("invalid objective", key=key, value=item,
                                         expected="a metric name or a mapping {metric, direction, weight, "
                                                  "scale, reference}"), key="objectives", value=item)
        unknown = sorted(str(k) for k in item if k not in (*_FIELDS, "name"))
        if unknown:
            raise SettingsError.from_message(describe("invalid objective", key=f"{key}.{unknown[0]}",
                                         value=item[unknown[0]] if unknown[0] in item else None,
                                         expected="only the keys " + ", ".join(_FIELDS)),
                                key="objectives", value=item)
        name = item.get("metric", item.get("name"))
        if name is None and i == 0 and resolve:
            name = metric  # nvidia-tao-automl's metric_weight/metric_scale: the run's metric
        if name is None and i == 0 and not resolve:
            name = "<the run's metric>"
        if not isinstance(name, str) or not name.strip():
            raise SettingsError.from_message(describe("invalid objective", key=f"{key}.metric", value=name,
                                         expected="a metric name (string)"), key="objectives", value=item)
        d = normalize_direction(item.get("direction"), source=f"{key}.direction")
        if d is None and resolve:
            explicit = direction if name == metric else None
            d = resolve_direction(name, explicit=explicit, declared=declared if name == metric else None)
        w = _number(item.get("weight", 1.0), f"{key}.weight", "a finite number >= 0", lambda v: v >= 0)
        s = _number(item.get("scale", 1.0), f"{key}.scale", "a finite number > 0", lambda v: v > 0)
        ref = item.get("reference")
        if ref is not None:
            ref = _number(ref, f"{key}.reference", "a finite number (the worst value that still counts)",
                          lambda v: True)
        if any(o.metric == name for o in out):
            raise SettingsError.from_message(describe("duplicate objective", key=f"{key}.metric", value=name,
                                         expected="each metric once"), key="objectives", value=name)
        out.append(Objective(name.strip(), d or "maximize", w, s, ref))
    if resolve and len(out) > 1 and not any(o.weight > 0 for o in out):
        raise SettingsError.from_message(describe("invalid objectives", key=_KEY, value=raw,
                                     expected="at least one objective with weight > 0 (the weighted score "
                                              "ranks trials)"), key="objectives", value=raw)
    return out


def parse_objectives(raw: Any, metric: str, direction: str | None = None,
                     declared: str | None = None) -> list[Objective]:
    """The objectives of a run.  ``metric``/``direction``: the run's metric (an
    entry without a metric name -- nvidia-tao-automl's ``metric_weight`` -- is
    it); a direction left out is the metric's (``config.direction`` rule)."""
    return _entries(raw, metric=metric, direction=direction, resolve=True, declared=declared)


def _oriented(o: Objective, v: float) -> float:
    """Higher is better."""
    return v if o.direction == "maximize" else -v


def scalarize(objectives: Sequence[Objective], values: Mapping[str, Any]) -> float | None:
    """nvidia-tao-automl's weighted score (higher is better); None when a value is missing."""
    total = 0.0
    for o in objectives:
        v = values.get(o.metric)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return None
        total += o.weight * _oriented(o, float(v) / o.scale)
    return total if math.isfinite(total) else None


def dominates(objectives: Sequence[Objective], a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """``a`` is at least as good as ``b`` in every objective and better in one."""
    better = False
    for o in objectives:
        x, y = _oriented(o, a[o.metric]), _oriented(o, b[o.metric])
        if x < y:
            return False
        better = better or x > y
    return better


def pareto_indices(objectives: Sequence[Objective], points: Sequence[Mapping[str, float]]) -> list[int]:
    """Indices of the non-dominated points (duplicates all kept), in input order."""
    return [i for i, p in enumerate(points)
            if not any(j != i and dominates(objectives, q, p) for j, q in enumerate(points))]


def _losses(objectives: Sequence[Objective], points: Sequence[Mapping[str, float]]) -> list[list[float]]:
    """Points as minimisation vectors in scaled units."""
    return [[-_oriented(o, float(p[o.metric]) / o.scale) for o in objectives] for p in points]


def reference_point(objectives: Sequence[Objective], points: Sequence[Mapping[str, float]]) -> list[float] | None:
    """The hypervolume reference of a run, in the minimisation form of
    :func:`hypervolume`: each objective's ``reference`` where the user gave
    one, else the worst value of that objective among ``points``."""
    if not points and any(o.reference is None for o in objectives):
        return None
    losses = _losses(objectives, points)
    return [-_oriented(o, o.reference / o.scale) if o.reference is not None else max(p[i] for p in losses)
            for i, o in enumerate(objectives)]


def _hv2d(losses: list[list[float]], ref: Sequence[float]) -> float:
    pts = sorted((p for p in losses if p[0] < ref[0] and p[1] < ref[1]), key=lambda p: (p[0], p[1]))
    front: list[list[float]] = []
    for p in pts:  # x ascending: keep the points with y strictly below every earlier one
        if not front or p[1] < front[-1][1]:
            front.append(p)
    total = 0.0
    for i, (x, y) in enumerate(front):
        nxt = front[i + 1][0] if i + 1 < len(front) else ref[0]
        total += (nxt - x) * (ref[1] - y)
    return total


def hypervolume(objectives: Sequence[Objective], points: Sequence[Mapping[str, float]],
                ref: Sequence[float] | None = None) -> float:
    """The volume dominated by ``points`` and bounded by ``ref`` (default
    :func:`reference_point`), each objective in units of its ``scale``
    (weights do not enter).  Exact: a sweep in 2-D, Optuna's WFG otherwise."""
    if not points:
        return 0.0
    ref = list(ref) if ref is not None else reference_point(objectives, points)
    losses = _losses(objectives, points)
    if len(objectives) == 1:
        return max(0.0, ref[0] - min(p[0] for p in losses))
    if len(objectives) == 2:
        return _hv2d(losses, ref)
    import numpy as np
    from optuna._hypervolume import compute_hypervolume  # WFG; optuna is a dependency

    inside = [p for p in losses if all(a < b for a, b in zip(p, ref, strict=True))]
    if not inside:
        return 0.0
    return float(compute_hypervolume(np.asarray(inside, dtype=float), np.asarray(ref, dtype=float)))


# -- select_best ------------------------------------------------------------------------------
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.\-/]*)\s*(<=|>=|<|>|==)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_OPS = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
        ">": lambda a, b: a > b, "==": lambda a, b: a == b}


@attrs.frozen
class Constraint:
    metric: str
    op: str
    bound: float

    def holds(self, values: Mapping[str, Any]) -> bool:
        v = values.get(self.metric)
        return isinstance(v, (int, float)) and not isinstance(v, bool) and _OPS[self.op](float(v), self.bound)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


@attrs.frozen
class SelectRule:
    """Best = the best ``metric`` in ``direction`` among trials meeting every constraint."""

    metric: str
    direction: str
    subject_to: tuple[Constraint, ...] = ()


def parse_select_best(raw: Any, metrics: Sequence[str]) -> SelectRule:
    """``{"maximize"|"minimize": metric, "subject_to": ["m <= 20", ...]}``;
    every metric named must be one of ``metrics`` (the objectives)."""
    key = "automl_settings.select_best"
    if not isinstance(raw, Mapping):
        raise SettingsError.from_message(describe("invalid setting", key=key, value=raw,
                                     expected="a mapping such as {'maximize': 'mAP', 'subject_to': "
                                              "['latency_ms <= 20']}"), key="select_best", value=raw)
    unknown = sorted(str(k) for k in raw if k not in ("maximize", "minimize", "subject_to"))
    goals = [k for k in ("maximize", "minimize") if k in raw]
    if unknown or len(goals) != 1:
        bad = unknown[0] if unknown else "maximize/minimize"
        raise SettingsError.from_message(describe("invalid setting", key=f"{key}.{bad}", value=raw.get(bad, raw),
                                     expected="exactly one of 'maximize' or 'minimize' (a metric name) and "
                                              "optionally 'subject_to' (a list of 'metric <= number')"),
                            key="select_best", value=raw)
    goal = goals[0]
    metric = raw[goal]
    names = ", ".join(metrics)
    if metric not in metrics:
        raise SettingsError.from_message(describe("invalid setting", key=f"{key}.{goal}", value=metric,
                                     expected=f"one of the objectives ({names})"), key="select_best", value=metric)
    cons_raw = raw.get("subject_to", [])
    if isinstance(cons_raw, str):
        cons_raw = [cons_raw]
    if not isinstance(cons_raw, list):
        raise SettingsError.from_message(describe("invalid setting", key=f"{key}.subject_to", value=cons_raw,
                                     expected="a list of constraints such as 'latency_ms <= 20'"),
                            key="select_best", value=cons_raw)
    cons = []
    for i, c in enumerate(cons_raw):
        m = _CONSTRAINT.match(c) if isinstance(c, str) else None
        if m is None:
            raise SettingsError.from_message(describe("invalid constraint", key=f"{key}.subject_to[{i}]", value=c,
                                         expected="'<metric> <op> <number>' with op one of <=, >=, <, >, =="),
                                key="select_best", value=c)
        if m.group(1) not in metrics:
            raise SettingsError.from_message(describe("invalid constraint", key=f"{key}.subject_to[{i}]", value=c,
                                         expected=f"a constraint on one of the objectives ({names})"),
                                key="select_best", value=c)
        bound = float(m.group(3))
        cons.append(Constraint(m.group(1), m.group(2), bound))
    return SelectRule(metric, goal, tuple(cons))


def select_index(rule: SelectRule, points: Sequence[Mapping[str, Any]]) -> int | None:
    """Index of the point the rule picks (the first on a tie); None when no point is feasible."""
    best: int | None = None
    for i, p in enumerate(points):
        v = p.get(rule.metric)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not all(c.holds(p) for c in rule.subject_to):
            continue
        if best is None or (v > points[best][rule.metric] if rule.direction == "maximize"
                            else v < points[best][rule.metric]):
            best = i
    return best
