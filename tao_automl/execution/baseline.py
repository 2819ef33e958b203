"""The baseline a search is compared with, measured once and reusable.

``automl_settings["baseline"]``:

- ``True`` (default): the skill's evaluate action on the starting checkpoint
  (or ``baseline_fn``), see :mod:`tao_automl.execution.evaluations`;
- ``"defaults"``: for models trained from scratch (no checkpoint to
  evaluate), one training job with the search space's default values, the
  untuned configuration; its metric is the baseline (``source: "defaults"``);
- ``False``: no baseline.

``AutoMLRunner.baseline(...)`` (and ``review(..., run_baseline=True)``, the
CLI's ``run`` before its question) measures it *before* the search and keeps
the record under ``<workspace_dir>/baselines/<key>/``, where ``key`` is a hash
of every input that determines the baseline (skill, action, overrides, data,
starting checkpoint, metric, default values, launch shape).  ``run(...)``
reuses a succeeded record with the same key instead of launching a second
baseline job; a changed spec gives another key, so a stale record is never
reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import attrs

from tao_automl.config.statuses import EvalStatus
from tao_automl.errors import AutoMLError
from tao_automl.execution.evaluations import run_evaluation
from tao_automl.execution.jobs import artifact_reader, build_job_request, submit_job, watch_job
from tao_automl.execution.metrics import MetricStream, extract_metric
from tao_automl.execution.objective_values import evaluation_fields
from tao_automl.planning.plan import RunPlan
from tao_automl.reporting.results import Evaluation
from tao_automl.spec import SpecBuilder, SpecParamContext, write_spec

__all__ = ["baseline_key", "default_values", "measure", "cached", "reuse", "BASELINES_DIR"]

log = logging.getLogger("tao_automl")

BASELINES_DIR = "baselines"
_FIELDS = {a.name for a in attrs.fields(Evaluation)}


def default_values(prepared: RunPlan) -> dict[str, Any]:
    """The search space's default value of every searched parameter that has one."""
    out = {}
    for p in prepared.space.params:
        default = getattr(p, "default", None)
        if default is not None:
            out[p.name] = default
    return out


def baseline_key(prepared: RunPlan, skill_dir: str) -> str:
    """A short hash of the inputs that determine the baseline's value."""
    s = prepared.settings
    opts = prepared.job_options
    data = {
        "mode": s.baseline,
        "skill_dir": str(skill_dir),
        "action": prepared.action if s.baseline == "defaults" else prepared.evaluate_action,
        "overrides": prepared.overrides,
        "dataset_uris": prepared.dataset_uris,
        "base_checkpoint": prepared.base_checkpoint,
        "metric": prepared.metric,
        "platform": getattr(prepared.backend, "name", type(prepared.backend).__name__),
        "image": opts.image,
        "gpu_count": opts.gpu_count,
        "num_nodes": opts.num_nodes,
        "options": opts.options,
    }
    if s.baseline == "defaults":
        data["defaults"] = default_values(prepared)
        data["fidelity"] = [prepared.fidelity_key, prepared.max_epochs, prepared.algorithm.multi_fidelity]
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _from_record(rec: Any) -> Evaluation | None:
    if not isinstance(rec, dict) or not rec.get("status"):
        return None
    return Evaluation(**{k: v for k, v in rec.items() if k in _FIELDS})


def cached(base_ws: Any, key: str) -> Evaluation | None:
    """The succeeded baseline stored under ``baselines/<key>/`` of ``base_ws``, if any."""
    rec = base_ws.read_json(f"{BASELINES_DIR}/{key}/evaluations/baseline.json", default=None)
    ev = _from_record(rec)
    if ev is None or ev.status != EvalStatus.MEASURED or (rec or {}).get("key") != key:
        return None
    return ev


def reuse(ev: Evaluation, key: str) -> Evaluation:
    """A cached baseline, marked as reused (the caller records it in the experiment)."""
    return attrs.evolve(ev, metadata={**ev.metadata, "reused": True, "key": key})


def measure(*, prepared: RunPlan, ws: Any, job_root: str, callback: Any = None, callback_args: tuple = (),
            metric_extractor: Any = None, key: str | None = None) -> Evaluation:
    """Measure the baseline now (evaluate job, defaults run or callback); the
    caller records it (``evaluations/baseline.json``, with ``key``)."""
    s = prepared.settings
    if s.baseline == "defaults" and callback is None:
        started = time.time()
        ev = _run_defaults(prepared, ws, job_root, metric_extractor)
        ev.metadata["elapsed_s"] = time.time() - started
        return ev
    return run_evaluation(kind="baseline", prepared=prepared, ws=ws, job_root=job_root,
                          checkpoint=prepared.base_checkpoint, callback=callback, callback_args=callback_args)


def _run_defaults(prepared: RunPlan, ws: Any, job_root: str, metric_extractor: Any) -> Evaluation:
    """One training job with the default values: the untuned configuration."""
    skill, action, backend = prepared.skill, prepared.action, prepared.backend
    values = default_values(prepared)
    meta = {"metric": prepared.metric, "hyperparameters": values}
    out_dir = f"{job_root}/baseline-defaults"
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    overrides = dict(prepared.overrides)
    if prepared.algorithm.multi_fidelity and prepared.fidelity_key and prepared.max_epochs:
        overrides[prepared.fidelity_key] = prepared.max_epochs
    try:
        built = SpecBuilder(skill, action).build(
            overrides=overrides, hyperparameters=values, dataset_uris=prepared.dataset_uris,
            context=SpecParamContext(action=action, job_id="baseline-defaults", output_dir=out_dir,
                                     ptm=prepared.base_checkpoint),
        )
        fmt = skill.action(action).config_format or "yaml"
        spec_path = str(Path(out_dir) / f"spec.{fmt}")
        write_spec(built.spec, spec_path, fmt)
        request = build_job_request(skill=skill, action=action, name="baseline-defaults", spec_path=spec_path,
                                    results_dir=out_dir, backend=backend, options=prepared.job_options)
        handle = submit_job(backend, request, retries=prepared.settings.max_retries,
                            on_submitted=lambda h: ws.write_json("evaluations/baseline-handle.json", h.to_dict()))
        stream_metric = prepared.objectives[0].metric if prepared.objectives else prepared.metric
        watched = watch_job(backend, handle, stream=MetricStream(stream_metric),
                            poll_s=prepared.settings.poll_interval_s)
        if not watched.status.succeeded:
            st = watched.status
            return Evaluation(
                status=EvalStatus.FAILURE, source="defaults", job_id=handle.job_id, record_path=out_dir, metadata=meta,
                reason=f"{(st.reason.value if st.reason else 'program')} (exit {st.exit_code}): {st.message[-300:]}",
            )
        read = artifact_reader(backend, handle)
        if prepared.objectives:
            return Evaluation(**evaluation_fields(prepared.objectives, watched.logs, read, None, "the defaults run",
                                                  extractor=metric_extractor),
                              source="defaults", job_id=handle.job_id, record_path=out_dir, metadata=meta)
        res = extract_metric(prepared.metric, logs=watched.logs, artifacts=read, extractor=metric_extractor)
        return Evaluation(
            status=EvalStatus.MEASURED if res.value is not None else EvalStatus.METRIC_MISSING, source="defaults",
            metric_value=res.value, job_id=handle.job_id, record_path=out_dir,
            reason=None if res.value is not None else f"the defaults run reported no '{prepared.metric}'",
            metadata={**meta, "metric_source": res.source},
        )
    except AutoMLError as exc:
        log.warning("baseline (defaults run) failed: %s", exc)
        return Evaluation(status=EvalStatus.FAILURE, source="defaults", reason=str(exc), metadata=meta)
