"""One AutoML run from a validated plan to the result dict."""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path
from typing import Any

import attrs

from tao_automl.algorithms.llm.brain import audit
from tao_automl.config.secrets import mask_env
from tao_automl.config.statuses import EvalStatus, TrialStatus
from tao_automl.errors import PreflightError
from tao_automl.execution import baseline as bl
from tao_automl.execution import early
from tao_automl.execution.checkpoints import best_checkpoint
from tao_automl.execution.early_feed import EarlyFeeder
from tao_automl.execution.evaluations import FAILED, comparison, improvement, run_evaluation
from tao_automl.execution.extras import after_run, platform_record
from tao_automl.execution.jobs import cancel_open_jobs
from tao_automl.execution.metrics import coerce_metric
from tao_automl.execution.ray_session import RaySession, start_ray
from tao_automl.execution.recommendation import Recommendation
from tao_automl.execution.trial import TrialPlan, launch_early
from tao_automl.execution.tuning import EarlyStop, install_signal_handlers, run_search
from tao_automl.planning.plan import RunPlan
from tao_automl.planning.review import build_review
from tao_automl.reporting.collect import pick_best, trial_result
from tao_automl.reporting.pareto import (
    fill_objective_values,
    pareto_front,
    pick_by_rule,
    rule_text,
    summary,
)
from tao_automl.reporting.results import AutoMLResult, BestTrial, Evaluation, Progress, history_csv
from tao_automl.spec import SpecBuilder, SpecParamContext, dump_spec, load_spec_file
from tao_automl.store.ledger import JobLedger
from tao_automl.store.local_mirror import job_root as local_job_root
from tao_automl.store.local_mirror import workspace_paths
from tao_automl.store.workspace import Workspace

__all__ = ["execute", "workspace_status"]

log = logging.getLogger("tao_automl")


def _storage(ws: Workspace) -> tuple[str, Any]:
    if not ws.uri:
        return ws.path("ray"), None
    import pyarrow.fs
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, root = ws.filesystem()
    path = root.split("://", 1)[1] + "/ray"
    _ = pyarrow.fs  # imported for the side effect of loading pyarrow's fs module
    return path, PyFileSystem(FSSpecHandler(fs))


def _write_plan(ws: Workspace, runner: Any, prepared: RunPlan) -> None:
    ws.write_json("settings.json", {
        "created": time.time(),
        "skill_dir": runner.skill_dir,
        "action": prepared.action,
        "platform": getattr(prepared.backend, "name", type(prepared.backend).__name__),
        "platform_kwargs": platform_record(prepared),
        "settings": prepared.settings.to_dict(),
        "metric": prepared.metric,
        "direction": prepared.direction,
        "overrides": prepared.overrides,
        "dataset_uris": prepared.dataset_uris,
    })
    ws.write_json("search_space.json", prepared.space.to_dict())
    ws.write_json("review.json", build_review(prepared, workspace=ws.root))


def execute(*, runner: Any, prepared: RunPlan, ws: Workspace, resumed: bool, hooks: dict[str, Any]) -> dict[str, Any]:
    """Baseline -> search -> final evaluation -> result (written and returned)."""
    started = time.time()
    mask_env(prepared.job_options.secret_env)  # values masked in every workspace file and WandB
    s = prepared.settings
    # Ray's processes start while the plan is written and the baseline runs.
    ray_start = start_ray(s.ray_address, s.max_concurrent, quiet=s.quiet)
    ws.makedirs()
    if not resumed:
        _write_plan(ws, runner, prepared)
    job_root = local_job_root(ws)
    ledger = JobLedger(ws)
    stop = EarlyStop(ws.root)
    restore_signals = install_signal_handlers(stop)
    feedback: dict[str, Any] = dict(ws.read_json("feedback.json", default=None) or {}) if resumed else {}
    feeder: EarlyFeeder | None = None
    try:
        baseline = _baseline(prepared, ws, job_root, hooks, resumed, runner)
        plan = TrialPlan(
            skill_dir=runner.skill_dir, action=prepared.action, space=prepared.space.to_dict(),
            overrides=prepared.overrides, dataset_uris=prepared.dataset_uris,
            base_checkpoint=prepared.base_checkpoint, metric=prepared.metric, mode=prepared.mode,
            fidelity_key=prepared.fidelity_key, max_epochs=prepared.max_epochs,
            needs_checkpoints=prepared.algorithm.needs_checkpoints,
            multi_fidelity=prepared.algorithm.multi_fidelity,
            workspace_root=ws.root, storage_options=dict(runner.storage_options), job_root=job_root,
            backend=prepared.backend_ref, job_options=prepared.job_options, max_retries=s.max_retries,
            poll_interval_s=s.poll_interval_s,
            train_sample_count=None if s.allow_unsafe_effective_batch else s.train_sample_count,
            shard_count=prepared.shard_count, batch_key=prepared.batch_key,
            metric_extractor=hooks.get("metric_extractor"), eval_fn=hooks.get("eval_fn"),
            session_id=ws.root.rstrip("/").rsplit("/", 1)[-1],
            checkpoint_epoch_offset=prepared.checkpoint_epoch_offset,
            execution=dict(hooks["execution"]) if hooks.get("execution") is not None else None,
            objectives=tuple(prepared.objectives),
        )
        storage_path, storage_fs = _storage(ws)
        if not stop.is_set and _early_start(prepared, ws, resumed, hooks):
            folder = ws.path(early.EARLY_DIR)
            batch = len(prepared.initial_points)
            plan = attrs.evolve(plan, early_dir=folder, early_batch=batch)
            launched = launch_early(plan, list(prepared.initial_points), folder)
            log.info("early start: %d of %d first jobs submitted before Ray Tune", launched, batch)
            if prepared.queued_points and launched == batch:  # slots that free up take the next ones
                feeder = EarlyFeeder(plan, list(prepared.queued_points), folder=folder, start=batch,
                                     slots=s.max_concurrent, backend=prepared.backend,
                                     should_stop=lambda: stop.is_set).start()
        if not stop.is_set:
            with RaySession(s.ray_address, s.max_concurrent, quiet=s.quiet, starter=ray_start) as ray_session:
                run_search(
                    prepared=prepared, plan=plan, storage_path=storage_path,
                    storage_filesystem=storage_fs, ray_session=ray_session, ledger=ledger, stop=stop,
                    resume=resumed, searcher=hooks.get("searcher"), scheduler=hooks.get("scheduler"),
                    on_result=hooks.get("on_result"), on_recommendation=hooks.get("on_recommendation"),
                    feedback_fn=hooks.get("feedback_fn"), feedback=feedback,
                )
    finally:
        if feeder is not None:
            feeder.stop()
        ray_start.wait()  # never leave Ray half-started behind an error
        _reap(prepared.backend, ledger)
        restore_signals()
    if stop.error is not None:  # e.g. LLMError from the llm searcher: the run stops with it
        raise stop.error

    records = {r.trial_id: r for r in ledger.trials()}
    history = [trial_result(r, prepared.metric, prepared.direction, s.checkpoint_selection)
               for r in records.values()]
    history = [attrs.evolve(t, metric=t.metric_value,  # metric: nvidia-tao-automl's name
                            feedback=feedback.get(t.rec_id)) for t in history]
    if feedback:
        ws.write_json("feedback.json", feedback)
    objectives = tuple(prepared.objectives)
    history = fill_objective_values(history, objectives, {k: r.outcome for k, r in records.items()},
                                    prepared.metric)
    # dehb's short-budget jobs rank only when no full-fidelity job succeeded
    full = [t for t in history
            if (records[t.rec_id].planned or {}).get("fidelity_epochs") in (None, prepared.max_epochs)]
    best_t = pick_best(full, prepared.direction) or pick_best(history, prepared.direction)
    selected_by, mo = "score", None
    if objectives:
        mo = summary(history, objectives)
    if prepared.select_rule is not None:
        mo = mo or {}
        picked = pick_by_rule(history, prepared.select_rule)
        mo["select_best"] = {"rule": rule_text(prepared.select_rule), "feasible": picked is not None}
        if picked is not None:
            best_t, selected_by = picked, rule_text(prepared.select_rule)
        elif best_t is not None:
            mo["select_best"]["note"] = ("no succeeded trial meets the rule's constraints: best is the "
                                         "trial with the best score")
    best = None
    if best_t is not None:
        ckpt = best_checkpoint(prepared.backend, records[best_t.rec_id], best_t, prepared.metric,
                               prepared.direction, s.checkpoint_selection, prepared.checkpoint_epoch_offset)
        history = [attrs.evolve(t, checkpoint=ckpt) if t is best_t else t for t in history]
        best_t = attrs.evolve(best_t, checkpoint=ckpt)
        best = BestTrial(
            rec_id=best_t.rec_id, job_id=best_t.job_id, metric_value=best_t.metric_value,
            hyperparameters=best_t.hyperparameters, specs=_load_spec(best_t.spec_path),
            checkpoint=ckpt, spec_path=best_t.spec_path, results_dir=best_t.results_dir,
            metric_epoch=best_t.metric_epoch,
            feedback=best_t.feedback,
            objective_values=best_t.objective_values, selected_by=selected_by,
        )
    final = _final(prepared, ws, job_root, hooks, best, stop, baseline)
    baseline = attrs.evolve(baseline, comparison_to_best=comparison(
        baseline.metric_value, best.metric_value if best else None, prepared.direction))
    succeeded = sum(1 for t in history if t.status == TrialStatus.SUCCEEDED)
    failed = sum(1 for t in history if t.status == TrialStatus.FAILED)
    result = AutoMLResult(
        session_id=ws.root.rstrip("/").rsplit("/", 1)[-1],
        algorithm=prepared.algorithm.name, metric=prepared.metric, direction=prepared.direction,
        workspace=ws.root, best=best,
        progress=Progress(completed=succeeded, failed=failed, total=len(history),
                          best_metric=best.metric_value if best else None,
                          best_rec_id=best.rec_id if best else None, algorithm=prepared.algorithm.name),
        baseline=baseline, final_evaluation=final, history=history,
        search_space=prepared.space.review_rows(), excluded=dict(prepared.space.excluded),
        settings=s.to_dict(), stopped_early=stop.reason, elapsed_s=time.time() - started,
        workspace_id=hooks.get("workspace_id"),
        plots_dir=ws.path("plots"),
        llm=_llm_summary(prepared, ws),
        pareto_front=pareto_front(history, objectives) if objectives else None,
        multi_objective=mo,
    )
    out = result.to_dict()
    if ws.uri:  # the local job folder is published into the workspace when the run ends
        out = workspace_paths(out, ws)
    ws.write_json("result.json", out)
    ws.write_text("history.csv", history_csv(out))
    if best is not None and best.specs:
        fmt = prepared.skill.action(prepared.action).config_format or "yaml"
        ws.write_text(f"best_spec.{fmt}", dump_spec(best.specs, fmt))
    after_run(ws, out)  # WandB summary run + plots, in the background; never raises
    return out


def _early_start(prepared: RunPlan, ws: Workspace, resumed: bool, hooks: dict[str, Any]) -> bool:
    """Whether the driver submits the first batch itself (execution.early):
    the algorithm's searcher suggests its initial batch first (registry
    ``early_start``), no searcher of the user's replaces it, a fresh run, a
    local workspace, and the ``early_start`` setting on."""
    return (prepared.settings.early_start and prepared.algorithm.early_start and not resumed
            and hooks.get("searcher") is None and not ws.uri and bool(prepared.initial_points))


def _llm_summary(prepared: Any, ws: Workspace) -> dict[str, Any] | None:
    """LLM-guided runs: the brain log's audit (calls, proposals, fallback trials)."""
    if not getattr(prepared.algorithm, "llm_guided", False):
        return None
    return audit(ws).to_dict()


def _load_spec(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        return load_spec_file(path)
    except Exception:  # the spec of a finished trial is informative only
        return {}


def _base_specs(prepared: RunPlan, job_root: str) -> dict[str, Any]:
    """The nested spec the search starts from (template, overrides, data; no
    recommended values): what ``baseline_fn(specs)`` receives."""
    ctx = SpecParamContext(action=prepared.action, job_id="baseline", output_dir=f"{job_root}/baseline",
                           ptm=prepared.base_checkpoint)
    built = SpecBuilder(prepared.skill, prepared.action).build(
        overrides=prepared.overrides, dataset_uris=prepared.dataset_uris, context=ctx)
    return copy.deepcopy(built.spec)


def _record(ws: Workspace, prepared: RunPlan, kind: str, ev: Evaluation, key: str | None = None) -> Evaluation:
    """Fill nvidia-tao-automl's fields and write the record (also to
    ``<kind>_record_path`` / ``evaluation_records_dir`` when set)."""
    s = prepared.settings
    ev = attrs.evolve(ev, metric_name=ev.metric_name or prepared.metric)
    if ev.status not in (EvalStatus.MEASURED, EvalStatus.PROVIDED, EvalStatus.REUSED_BEST,
                         EvalStatus.SKIPPED) and ev.reason:
        ev = attrs.evolve(ev, failure_reason=ev.failure_reason or ev.reason)
    explicit = s.baseline_record_path if kind == "baseline" else s.final_evaluation_record_path
    name = "ptm_baseline.json" if kind == "baseline" else "best_automl.json"
    extra = explicit or (str(Path(s.evaluation_records_dir) / name) if s.evaluation_records_dir else None)
    if extra:
        ev = attrs.evolve(ev, record_path=extra)
        try:
            Path(extra).expanduser().parent.mkdir(parents=True, exist_ok=True)
            Path(extra).expanduser().write_text(json.dumps({"kind": kind, **attrs.asdict(ev)}, indent=2,
                                                           default=str))
        except OSError as exc:
            log.warning("could not write the %s evaluation record to %s: %s", kind, extra, exc)
    ws.write_json(f"evaluations/{kind}.json", {"kind": kind, **({"key": key} if key else {}), **attrs.asdict(ev)})
    return ev


def _baseline(prepared: RunPlan, ws: Workspace, job_root: str, hooks: dict[str, Any], resumed: bool,
              runner: Any = None) -> Evaluation:
    s = prepared.settings
    if resumed:
        prev = ws.read_json("evaluations/baseline.json", default=None)
        if isinstance(prev, dict) and prev.get("status"):
            fields = {a.name for a in attrs.fields(Evaluation)}
            return Evaluation(**{k: v for k, v in prev.items() if k in fields})
    if not s.baseline:
        ev = Evaluation(status=EvalStatus.SKIPPED, enabled=False,
                        reason="disabled by automl_settings['baseline']=False")
        return _record(ws, prepared, "baseline", ev)
    if s.baseline_metric is not None:
        value = coerce_metric(s.baseline_metric, source="automl_settings['baseline_metric']")
        ev = Evaluation(status=EvalStatus.PROVIDED, metric_value=value, source="automl_settings.baseline_metric",
                        checkpoint=prepared.base_checkpoint)
        return _record(ws, prepared, "baseline", ev)
    fn = hooks.get("baseline_fn")
    key = None
    if fn is None and runner is not None:
        # measured before the search (runner.baseline / review(run_baseline=True) / the CLI's
        # question) with the same inputs: reuse that record instead of a second job
        key = bl.baseline_key(prepared, runner.skill_dir)
        found = bl.cached(Workspace(runner.workspace_dir, runner.storage_options), key)
        if found is not None:
            log.info("baseline: reusing the record measured before the search (key %s)", key)
            return _record(ws, prepared, "baseline", bl.reuse(found, key))
    args = (_base_specs(prepared, job_root),) if fn is not None else ()
    ev = bl.measure(prepared=prepared, ws=ws, job_root=job_root, callback=fn, callback_args=args,
                    metric_extractor=hooks.get("metric_extractor"), key=key)
    ev = _record(ws, prepared, "baseline", ev, key=key)
    if ev.status in FAILED:
        raise PreflightError(
            f"baseline evaluation failed ({ev.status}): {ev.reason}; fix it, or pass "
            "automl_settings={'baseline': False} to optimise without an impact baseline (record: "
            f"{ws.path('evaluations/baseline.json')})"
        )
    return ev


def _final(prepared: RunPlan, ws: Workspace, job_root: str, hooks: dict[str, Any], best: BestTrial | None,
           stop: EarlyStop, baseline: Evaluation) -> Evaluation:
    s = prepared.settings
    fn = hooks.get("final_eval_fn")
    payload = s.final_evaluation
    if not s.final_eval:
        ev = Evaluation(status=EvalStatus.SKIPPED, enabled=False,
                        reason="disabled by automl_settings['final_eval']=False")
    elif best is None:
        ev = Evaluation(status=EvalStatus.SKIPPED, reason="no trial succeeded")
    elif stop.is_set and stop.reason and stop.reason.startswith("interrupted"):
        ev = Evaluation(status=EvalStatus.SKIPPED, reason=stop.reason)
    elif payload is not None:
        raw = payload.get("metric_value", payload.get(prepared.metric))
        value = coerce_metric(raw, source="automl_settings['final_evaluation']")
        extra = {k: v for k, v in payload.items() if k not in ("metric_value", "status", "source")}
        ev = Evaluation(status=str(payload.get("status", EvalStatus.PROVIDED)) if value is not None
                        else EvalStatus.METRIC_MISSING,
                        metric_value=value, source=str(payload.get("source", "provided")),
                        record_path=payload.get("record_path"), metadata=extra, checkpoint=best.checkpoint)
    elif s.final_evaluation_metric is not None:
        value = coerce_metric(s.final_evaluation_metric, source="automl_settings['final_evaluation_metric']")
        ev = Evaluation(status=EvalStatus.PROVIDED, metric_value=value, checkpoint=best.checkpoint,
                        source="automl_settings.final_evaluation_metric")
    elif fn is None and s.reuse_best_metric_for_final_evaluation:
        ev = Evaluation(status=EvalStatus.REUSED_BEST, metric_value=best.metric_value, job_id=best.job_id,
                        checkpoint=best.checkpoint, source="best_selection_metric",
                        objective_values=best.objective_values if prepared.objectives else None)
    else:
        args: tuple = ()
        if fn is not None:
            rec = Recommendation(id=best.rec_id, specs=best.hyperparameters, job_id=best.job_id,
                                 status="success", result=best.metric_value, metric=prepared.metric,
                                 state=TrialStatus.SUCCEEDED, results_dir=best.results_dir, spec_path=best.spec_path,
                                 checkpoint=best.checkpoint)
            args = (rec, best.job_id)
        ev = run_evaluation(kind="final", prepared=prepared, ws=ws, job_root=job_root,
                            checkpoint=best.checkpoint, callback=fn, callback_args=args)
    ev = attrs.evolve(ev, improvement=improvement(baseline.metric_value, ev.metric_value, prepared.direction),
                      comparison_to_baseline=comparison(baseline.metric_value, ev.metric_value,
                                                        prepared.direction))
    return _record(ws, prepared, "final", ev)


def _reap(backend: Any, ledger: JobLedger) -> None:
    """Cancel every job the ledger still shows as open (trial actors killed
    outright run no ``finally``)."""
    cancel_open_jobs(ledger, backend, "reaped at the end of the run")


def workspace_status(ws: Workspace) -> dict[str, Any]:
    """Progress of a running or finished experiment, read from its files."""
    settings = ws.read_json("settings.json")
    metric = settings.get("metric")
    selection = (settings.get("settings") or {}).get("checkpoint_selection") or "best"
    history = [attrs.asdict(trial_result(r, metric, settings.get("direction"), selection))
               for r in JobLedger(ws).trials()]
    result = ws.read_json("result.json", default=None)
    return {"workspace": ws.root, "settings": settings, "history": history,
            "finished": result is not None, "result": result}
