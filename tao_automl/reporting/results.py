"""The run result: attrs classes, unstructured by the package's one cattrs
converter (:mod:`tao_automl.config.convert`) into a stable dict
described by ``tao_automl/data/result.schema.json``.

Stable top-level keys: ``best``, ``progress``, ``baseline``,
``final_evaluation``, ``history``, ``search_space``, ``algorithm``,
``workspace``, ``elapsed_s`` (plus ``metric``, ``direction``, ``session_id``,
``excluded``, ``stopped_early``, ``settings``).  Failed trials carry
``metric_value: None`` -- never 0.0 -- and never rank as best.
"""

from __future__ import annotations

import csv
import io
import json
from importlib import resources
from typing import Any

import attrs

from tao_automl.config.convert import converter
from tao_automl.config.statuses import TrialStatus

__all__ = [
    "TrialResult",
    "BestTrial",
    "Progress",
    "Evaluation",
    "AutoMLResult",
    "fmt_value",
    "format_result",
    "history_csv",
    "result_schema",
    "validate_result",
]


@attrs.frozen(kw_only=True)
class TrialResult:
    """One recommendation (trial) of the search."""

    rec_id: str
    job_id: str | None = None
    #: a TrialStatus word (succeeded | failed | stopped | running | pending), kept as its plain string
    status: str = attrs.field(default="unknown", converter=str)
    metric_value: float | None = None  # the trial's score (tao_automl.reporting.score)
    metric_epoch: int | None = None  # the epoch the score comes from (None: a final value only)
    hyperparameters: dict[str, Any] = attrs.field(factory=dict)
    metrics_per_epoch: list[dict[str, Any]] = attrs.field(factory=list)
    failure_reason: str | None = None
    failure_message: str | None = None
    exit_code: int | None = None
    adjustments: list[str] = attrs.field(factory=list)
    attempts: int = 0
    epochs_completed: int | None = None
    checkpoint: str | None = None
    results_dir: str | None = None
    spec_path: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    notes: list[str] = attrs.field(factory=list)  # e.g. absurd epochs the job reported, ignored
    metric: float | None = None  # = metric_value (nvidia-tao-automl's name)
    feedback: Any = None  # what feedback_fn returned for this trial
    #: the value of every objective at the scored epoch ({metric: value} in a one-metric run)
    objective_values: dict[str, float] | None = None


@attrs.frozen(kw_only=True)
class BestTrial:
    rec_id: str
    job_id: str | None
    metric_value: float
    hyperparameters: dict[str, Any]
    specs: dict[str, Any]
    checkpoint: str | None = None
    spec_path: str | None = None
    results_dir: str | None = None
    metric_epoch: int | None = None  # the epoch of the score; its checkpoint is ``checkpoint``
    feedback: Any = None
    objective_values: dict[str, float] | None = None
    selected_by: str | None = None  # "score" or the select_best rule that picked it


@attrs.frozen(kw_only=True)
class Progress:
    completed: int
    failed: int
    total: int
    best_metric: float | None
    best_rec_id: str | None
    algorithm: str


@attrs.frozen(kw_only=True)
class Evaluation:
    """Baseline or final evaluation record."""

    # measured | provided | reused_best | metric_missing | failure | callback_error
    # | unavailable | skipped | not_run  (an EvalStatus word, kept as its plain string)
    status: str = attrs.field(converter=str)
    metric_value: float | None = None
    reason: str | None = None
    job_id: str | None = None
    record_path: str | None = None
    checkpoint: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    improvement: float | None = None  # vs baseline, in the optimisation direction
    # nvidia-tao-automl's keys: whether it was enabled, the metric, where the value
    # came from, the failure text, and {delta, improved, direction} comparisons
    enabled: bool = True
    metric_name: str | None = None
    # where the value came from: "evaluate_action" (the skill's evaluate job),
    # "defaults" (baseline: one training run with the schema's default values),
    # "baseline_fn" / "final_eval_fn", "automl_settings.baseline_metric", ...
    source: str | None = None
    failure_reason: str | None = None
    comparison_to_best: dict[str, Any] | None = None  # baseline only
    comparison_to_baseline: dict[str, Any] | None = None  # final only
    objective_values: dict[str, float] | None = None  # multi-objective runs: every objective measured


@attrs.frozen(kw_only=True)
class AutoMLResult:
    session_id: str
    algorithm: str
    metric: str
    direction: str
    workspace: str
    best: BestTrial | None
    progress: Progress
    baseline: Evaluation
    final_evaluation: Evaluation
    history: list[TrialResult]
    search_space: list[dict[str, Any]]
    excluded: dict[str, str] = attrs.field(factory=dict)
    settings: dict[str, Any] = attrs.field(factory=dict)
    stopped_early: str | None = None
    elapsed_s: float = 0.0
    workspace_id: str | None = None  # run(workspace_id=...), recorded as given
    # Where the plots go; they are rendered in the background after run()
    # returns (``<plots_dir>/done.json`` marks the end).
    plots_dir: str | None = None
    # LLM-guided algorithms: the brain log's audit (calls, proposals, fallback_trials, problems, ok)
    llm: dict[str, Any] | None = None
    #: multi-objective runs: the non-dominated succeeded trials ({rec_id, job_id,
    #: objective_values, metric_value, hyperparameters}); None with one metric
    pareto_front: list[dict[str, Any]] | None = None
    #: multi-objective runs: objectives, hypervolume, hypervolume_trace, reference_point, select_best
    multi_objective: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return converter.unstructure(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AutoMLResult:
        return converter.structure(d, cls)


def result_schema() -> dict[str, Any]:
    """The JSON Schema of the result dict (shipped as package data)."""
    text = resources.files("tao_automl").joinpath("data/result.schema.json").read_text()
    return json.loads(text)


def validate_result(result: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` if ``result`` breaks the contract."""
    import jsonschema

    jsonschema.validate(result, result_schema())


def fmt_value(v: Any, digits: int = 6) -> str:
    """A value in a report cell: ``-`` for None, a float to ``digits``
    significant digits, anything else as ``str``."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


_fmt = fmt_value


def history_csv(result: dict[str, Any]) -> str:
    """One row per trial; hyperparameters as columns."""
    hp_names = sorted({k for t in result["history"] for k in t.get("hyperparameters", {})})
    cols = ["rec_id", "job_id", "status", "metric_value", "failure_reason", "attempts",
            "epochs_completed", "duration_s", *hp_names, "adjustments"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for t in result["history"]:
        row = [t.get(c) for c in cols[:8]]
        row += [t.get("hyperparameters", {}).get(h) for h in hp_names]
        row.append("; ".join(t.get("adjustments", [])))
        w.writerow(row)
    return buf.getvalue()


def format_result(result: dict[str, Any] | AutoMLResult) -> str:
    """Readable text report: space, algorithm, budget, baseline vs best vs
    final, failed trials with root causes, elapsed time."""
    r = result.to_dict() if isinstance(result, AutoMLResult) else result
    lines = [
        f"AutoML session {r['session_id']}  ({r['algorithm']}, {r['metric']} -> {r['direction']})",
        f"workspace: {r['workspace']}",
        f"elapsed: {r['elapsed_s']:.1f} s",
        "",
        "search space:",
    ]
    for p in r["search_space"]:
        rng = p.get("options") if p.get("options") is not None else f"[{_fmt(p.get('minimum'))}, {_fmt(p.get('maximum'))}]"
        lines.append(f"  {p['name']:<40} {p['type']:<12} {rng}{'  (log)' if p.get('log') else ''}")
    for name, why in (r.get("excluded") or {}).items():
        lines.append(f"  excluded {name}: {why}")
    pr = r["progress"]
    lines += ["", f"trials: {pr['completed']} succeeded, {pr['failed']} failed, {pr['total']} total"]
    b, f = r["baseline"], r["final_evaluation"]
    best = r.get("best")
    src = {"defaults": ", a run with the schema's default values", "checkpoint": ", the starting checkpoint"}.get(
        b.get("source") or "", "")
    lines.append(f"baseline:  {_fmt(b.get('metric_value'))}  ({b['status']}{src}{': ' + b['reason'] if b.get('reason') else ''})")
    if best:
        at = f", epoch {best['metric_epoch']}" if best.get("metric_epoch") is not None else ""
        lines.append(f"best:      {_fmt(best['metric_value'])}  (trial {best['rec_id']}, job {best['job_id']}{at})")
        for k, v in sorted(best["hyperparameters"].items()):
            lines.append(f"             {k} = {_fmt(v)}")
        if best.get("checkpoint"):
            lines.append(f"           checkpoint {best['checkpoint']}")
    else:
        lines.append("best:      none (no trial succeeded)")
    lines.append(f"final:     {_fmt(f.get('metric_value'))}  ({f['status']}{': ' + f['reason'] if f.get('reason') else ''})")
    base_v = b.get("metric_value")
    if base_v is not None and best and best.get("metric_value") is not None:
        gain = (base_v - best["metric_value"]) if r["direction"] == "minimize" else (best["metric_value"] - base_v)
        rel = f" ({100 * gain / abs(base_v):+.1f}%)" if base_v else ""
        lines.append(f"gain:      {_fmt(gain)}{rel} best trial vs baseline (positive = better)"
                     + (f"; final evaluation {_fmt(f['improvement'])}" if f.get("improvement") is not None else ""))
    mo = r.get("multi_objective") or {}
    if best and best.get("objective_values") and mo:
        vals = ", ".join(f"{k} {_fmt(v)}" for k, v in best["objective_values"].items())
        lines.append(f"best objectives: {vals}  (selected by {best.get('selected_by') or 'score'})")
    if f.get("objective_values"):
        lines.append("final objectives: " + ", ".join(f"{k} {_fmt(v)}" for k, v in f["objective_values"].items()))
    if (mo.get("select_best") or {}).get("note"):
        lines.append(f"select_best: {mo['select_best']['note']}")
    if r.get("pareto_front") is not None:
        lines += ["", f"pareto front ({len(r['pareto_front'])} trials, hypervolume {_fmt(mo.get('hypervolume'))} "
                      f"against the reference point {mo.get('reference_point')}):"]
        for p in r["pareto_front"]:
            vals = ", ".join(f"{k} {_fmt(v)}" for k, v in p["objective_values"].items())
            lines.append(f"  {p['rec_id']:<14} {vals}  score {_fmt(p['metric_value'])}")
    if r.get("stopped_early"):
        lines += ["", f"stopped early: {r['stopped_early']}"]
    failed = [t for t in r["history"] if t["status"] == TrialStatus.FAILED]
    if failed:
        lines += ["", "failed trials:"]
        for t in failed:
            lines.append(f"  {t['rec_id']}: {t.get('failure_reason')} (exit {t.get('exit_code')}) {(t.get('failure_message') or '')[-160:]}")
    front_ids = {p["rec_id"] for p in r.get("pareto_front") or []}
    if mo.get("hypervolume_trace"):
        trace = mo["hypervolume_trace"]
        marks = sorted({max(1, round(len(trace) * q)) for q in (0.25, 0.5, 0.75, 1.0)})
        lines += ["", "hypervolume as the search went: "
                  + ", ".join(f"{_fmt(trace[k - 1])} after {k}" for k in marks) + " succeeded trials"]
    lines += ["", "all trials:"]
    for t in r["history"]:
        line = f"  {t['rec_id']:<14} {t['status']:<10} {_fmt(t.get('metric_value')):<12} epochs={_fmt(t.get('epochs_completed'))}"
        if r.get("pareto_front") is not None and t.get("objective_values"):
            line += "  " + ", ".join(f"{k} {_fmt(v)}" for k, v in t["objective_values"].items())
            line += "  (front)" if t["rec_id"] in front_ids else ""
        lines.append(line)
    return "\n".join(lines)
