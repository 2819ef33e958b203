"""Baseline evaluation (before the search) and final evaluation of the best
trial's checkpoint (after it), through the skill's evaluate action or a
user callback.  Both write a structured record under ``evaluations/``.

Status words (nvidia-tao-automl's): ``measured`` (a job or callback gave the
metric), ``provided`` (given in automl_settings), ``reused_best`` (final
only: the best trial's own value), ``metric_missing`` (ran, no metric),
``failure`` (the evaluate job failed), ``callback_error`` (the callback
raised), ``unavailable`` (nothing to evaluate with), ``skipped``
(disabled or nothing to evaluate), ``not_run``
(:class:`~tao_automl.config.statuses.EvalStatus`).

An evaluate job goes the trials' way (:mod:`tao_automl.execution.jobs`): its
submit retries transient errors ``max_retries`` times, as a trial's does."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tao_automl.config.statuses import EVAL_FAILED, EvalStatus
from tao_automl.errors import AutoMLError
from tao_automl.execution.jobs import (
    artifact_reader,
    build_job_request,
    job_files,
    submit_job,
    watch_job,
)
from tao_automl.execution.metrics import MetricStream, coerce_metric, extract_metric
from tao_automl.execution.objective_values import evaluation_fields
from tao_automl.planning.plan import RunPlan
from tao_automl.reporting.results import Evaluation
from tao_automl.spec import SpecBuilder, SpecParamContext, get_path, write_spec

__all__ = ["run_evaluation", "coerce_eval_return", "improvement", "comparison", "FAILED"]

#: evaluation statuses that mean it ran and gave no usable metric
FAILED = EVAL_FAILED

log = logging.getLogger("tao_automl")


def improvement(baseline: float | None, value: float | None, direction: str) -> float | None:
    """Positive when ``value`` is better than ``baseline`` in ``direction``."""
    if baseline is None or value is None:
        return None
    return (baseline - value) if direction == "minimize" else (value - baseline)


def comparison(baseline: float | None, value: float | None, direction: str) -> dict[str, Any] | None:
    """nvidia-tao-automl's comparison block: delta (positive = better), improved, direction."""
    delta = improvement(baseline, value, direction)
    if delta is None:
        return None
    return {"delta": delta, "improved": delta > 0, "direction": direction}


def coerce_eval_return(ret: Any, source: str) -> tuple[float | None, dict[str, Any]]:
    """A callback may return a number or a dict with ``metric_value``."""
    if isinstance(ret, dict):
        meta = {k: v for k, v in ret.items() if k != "metric_value"}
        return coerce_metric(ret.get("metric_value"), source=source), meta
    return coerce_metric(ret, source=source), {}


def run_evaluation(
    *,
    kind: str,  # "baseline" | "final"
    prepared: RunPlan,
    ws: Any,
    job_root: str,
    checkpoint: str | None,
    callback: Any = None,
    callback_args: tuple = (),
) -> Evaluation:
    """Run one evaluation and store ``evaluations/<kind>.json``."""
    record_rel = f"evaluations/{kind}.json"
    started = time.time()
    if callback is not None:
        fn_name = "baseline_fn" if kind == "baseline" else "final_eval_fn"
        try:
            ret = callback(*callback_args)
        except Exception as exc:  # noqa: BLE001 - user code: "your code broke", not a bad metric
            ev = Evaluation(status=EvalStatus.CALLBACK_ERROR, reason=f"{fn_name} raised {type(exc).__name__}: {exc}",
                            checkpoint=checkpoint, source=fn_name)
        else:
            try:
                value, meta = coerce_eval_return(ret, source=fn_name)
                ev = Evaluation(
                    status=EvalStatus.MEASURED if value is not None else EvalStatus.METRIC_MISSING,
                    metric_value=value,
                    reason=None if value is not None else f"{fn_name} returned no metric",
                    job_id=meta.get("job_id"),
                    record_path=meta.get("record_path") or ws.path(record_rel),
                    checkpoint=checkpoint,
                    metadata={k: v for k, v in meta.items() if k not in ("job_id", "record_path")},
                    source=fn_name,
                )
            except AutoMLError as exc:
                ev = Evaluation(status=EvalStatus.METRIC_MISSING, reason=str(exc), checkpoint=checkpoint, source=fn_name)
        ws.write_json(record_rel, {"kind": kind, "elapsed_s": time.time() - started, **_ev_dict(ev)})
        return ev
    action = prepared.evaluate_action
    if action is None:
        ev = Evaluation(status=EvalStatus.UNAVAILABLE, reason="the model skill has no evaluate action", checkpoint=checkpoint)
        ws.write_json(record_rel, {"kind": kind, **_ev_dict(ev)})
        return ev
    ev = _run_eval_job(kind, prepared, ws, job_root, checkpoint)
    ws.write_json(record_rel, {"kind": kind, "elapsed_s": time.time() - started, **_ev_dict(ev)})
    return ev


def _ev_dict(ev: Evaluation) -> dict[str, Any]:
    import attrs

    return attrs.asdict(ev)


def _run_eval_job(kind: str, prepared: RunPlan, ws: Any, job_root: str, checkpoint: str | None) -> Evaluation:
    skill, action, backend = prepared.skill, prepared.evaluate_action, prepared.backend
    out_dir = f"{job_root}/{kind}-eval"
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    ctx = SpecParamContext(
        action=action,
        job_id=f"{kind}-eval",
        output_dir=out_dir,
        ptm=prepared.base_checkpoint,
        parent_checkpoint=checkpoint,
        parent_folder=str(Path(checkpoint).parent) if checkpoint and "://" not in checkpoint else checkpoint,
    )
    try:
        builder = SpecBuilder(skill, action)
        built = builder.build(overrides=_eval_overrides(prepared), dataset_uris=prepared.dataset_uris, context=ctx)
        if built.missing_data:
            return Evaluation(
                status=EvalStatus.UNAVAILABLE,
                reason="evaluate spec is missing data keys: " + ", ".join(built.missing_data),
                checkpoint=checkpoint,
            )
        fmt = skill.action(action).config_format or "yaml"
        spec_path = str(Path(out_dir) / f"spec.{fmt}")
        write_spec(built.spec, spec_path, fmt)
        request = build_job_request(
            skill=skill, action=action, name=f"{kind}-eval", spec_path=spec_path,
            results_dir=out_dir, backend=backend, options=prepared.job_options,
        )
        handle = submit_job(backend, request, retries=prepared.settings.max_retries,
                            on_submitted=lambda h: ws.write_json(f"evaluations/{kind}-handle.json", h.to_dict()))
        metric = getattr(skill.action(action), "metric", None) or prepared.metric
        if prepared.objectives:
            metric = prepared.objectives[0].metric
        watched = watch_job(backend, handle, stream=MetricStream(metric), poll_s=prepared.settings.poll_interval_s)
        if not watched.status.succeeded:
            st = watched.status
            return Evaluation(
                status=EvalStatus.FAILURE,
                reason=f"{(st.reason.value if st.reason else 'program')} (exit {st.exit_code}): {st.message[-300:]}",
                job_id=handle.job_id, record_path=out_dir, checkpoint=checkpoint, source="evaluate_action",
            )
        read = artifact_reader(backend, handle)
        if prepared.objectives:  # every objective of the checkpoint is measured
            return Evaluation(
                **evaluation_fields(prepared.objectives, watched.logs, read, job_files(backend, handle),
                                    "evaluate job"),
                job_id=handle.job_id, record_path=out_dir, checkpoint=checkpoint,
                metadata={"metric": prepared.metric, "objectives": [o.metric for o in prepared.objectives]},
                source="evaluate_action")
        res = extract_metric(metric, logs=watched.logs, artifacts=read,
                             artifact_paths=job_files(backend, handle))
        return Evaluation(
            status=EvalStatus.MEASURED if res.value is not None else EvalStatus.METRIC_MISSING,
            metric_value=res.value,
            reason=None if res.value is not None else f"evaluate job reported no '{metric}'",
            job_id=handle.job_id, record_path=out_dir, checkpoint=checkpoint,
            metadata={"metric": metric, "source": res.source}, source="evaluate_action",
        )
    except AutoMLError as exc:
        log.warning("%s evaluation failed: %s", kind, exc)
        return Evaluation(status=EvalStatus.FAILURE, reason=str(exc), checkpoint=checkpoint,
                          source="evaluate_action")


def _eval_overrides(prepared: RunPlan) -> dict[str, Any]:
    """Overrides for the evaluate spec: only keys that exist in its template
    (train-only keys such as ``train.lr`` do not belong in an eval spec)."""
    template = prepared.skill.template(prepared.evaluate_action)
    out = {}
    for k, v in prepared.overrides.items():
        try:
            if get_path(template, k, default=None) is not None:
                out[k] = v
        except AutoMLError:
            continue
    return out
