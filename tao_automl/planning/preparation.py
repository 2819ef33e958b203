"""Turn ``run()``/``review()`` arguments into one validated :class:`Prepared`
plan -- before any job is launched.

Every check that can fail on user input happens here, so bad input gets a
clear :class:`~tao_automl.errors.AutoMLError` naming the file, key and value,
and nothing is launched or written.  ``review()`` turns the same checks into
``blockers`` instead of raising where the run could still be set up by the
user (missing data keys, unset credentials, missing evaluate action).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from tao_automl.algorithms import AlgorithmSpec, algorithms_reading, get_algorithm, llm_guided_names
from tao_automl.algorithms.llm import check_llm_settings
from tao_automl.config import safe_yaml
from tao_automl.config.direction import resolve_direction
from tao_automl.config.metric_names import alias_targets
from tao_automl.config.objectives import SCORE, Objective, parse_objectives, parse_select_best
from tao_automl.config.secrets import missing_secrets, replace_secrets, secret_names
from tao_automl.config.settings import (
    AUTORESEARCH_SETTINGS,
    LLM_SETTINGS,
    AutoMLSettings,
    name_as_written,
    parse_settings,
    written_keys,
)
from tao_automl.errors import (
    AutoMLError,
    CredentialError,
    PreflightError,
    SettingsError,
    SkillError,
    SpecError,
    describe,
)
from tao_automl.planning import checks as preflight
from tao_automl.planning.plan import JobOptions, RunPlan
from tao_automl.platforms import get_backend
from tao_automl.search import build_search_space, coerce_constraints, constraints_from_skill
from tao_automl.skill.loader import confined
from tao_automl.spec import SpecBuilder, SpecParamContext, apply_overrides, canonicalize, get_path

__all__ = ["RunPlan", "Prepared", "prepare", "JOB_KWARGS"]

# Platform-agnostic launch kwargs of run(); everything else goes to the backend.
JOB_KWARGS = {
    "gpu_count", "num_gpus", "num_nodes", "gpu_ids", "image", "container_image",
    "env", "secret_env", "job_timeout_s",
}
EPOCH_KEYS = ("train.num_epochs", "train.epochs", "train.epoch", "num_epochs", "epochs")


#: The name the plan had before it was frozen and typed (kept for callers).
Prepared = RunPlan


def load_sidecar(skill: Any) -> dict[str, Any]:
    """``references/automl.yaml``: AutoML facts a packaged skill adds beside an
    unmodified skill_info.yaml (metric, direction, constraints); {} if absent."""
    import yaml

    path = Path(skill.root) / "references" / "automl.yaml"
    if not path.exists():
        return {}
    confined(Path(skill.root), path, file=path, key="references/automl.yaml")  # a symlink leading out
    try:
        data = safe_yaml.load_file(path) or {}
    except yaml.YAMLError as exc:
        raise SkillError("cannot parse the AutoML sidecar", file=str(path), value=str(exc)) from exc
    if not isinstance(data, dict):
        raise SkillError("the AutoML sidecar must be a mapping", file=str(path), value=type(data).__name__)
    # The same shapes skill_info.yaml allows for these keys (never a silent pick).
    checks = (("metric", lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
               "a metric name (string) or null"),
              ("metric_direction", lambda v: v is None or v in ("minimize", "maximize", "min", "max"),
               "one of minimize, maximize, min, max or null"),
              ("action", lambda v: v is None or isinstance(v, str), "an action name (string)"))
    for key, ok, expected in checks:
        if key in data and not ok(data[key]):
            raise SkillError("invalid AutoML sidecar entry", file=str(path), key=key, value=data[key],
                             expected=expected)
    return data


def checkpoint_epoch_offset(skill: Any, sidecar: Mapping[str, Any]) -> int | None:
    """``checkpoint_epoch_offset`` from skill_info.yaml or the sidecar: 0 (checkpoints
    numbered like the reported epochs), -1 (numbered from 0, TAO PyTorch), or
    absent/``auto`` (inferred from each job's first checkpoint)."""
    sources = [(getattr(skill.info, "extra", None) or {}, "references/skill_info.yaml"),
               (sidecar, "references/automl.yaml")]
    for data, rel in sources:
        if not isinstance(data, Mapping) or "checkpoint_epoch_offset" not in data:
            continue
        value = data["checkpoint_epoch_offset"]
        if value in (None, "auto"):
            return None
        if isinstance(value, bool) or value not in (0, -1):
            raise SkillError("invalid checkpoint numbering", file=str(Path(skill.root) / rel),
                             key="checkpoint_epoch_offset", value=value,
                             expected="0 (same numbers as the reported epochs), -1 (checkpoints "
                                      "counted from 0) or 'auto'")
        return int(value)
    return None


def _metric_and_direction(
    skill: Any, action: str, settings: AutoMLSettings, sidecar: Mapping[str, Any]
) -> tuple[str, str]:
    info = skill.action(action)
    side = sidecar if sidecar.get("action", action) == action else {}
    metric = (settings.metric or getattr(info, "metric", None) or side.get("metric")
              or getattr(skill.info, "metric", None))
    declared = None
    if metric and metric == (getattr(info, "metric", None) or side.get("metric") or getattr(skill.info, "metric", None)):
        declared = (getattr(info, "metric_direction", None) or side.get("metric_direction")
                    or getattr(skill.info, "metric_direction", None))
    if not metric:
        raise SettingsError("no metric to optimise", key="automl_settings.metric", value=None,
                            expected="a metric name (the model skill declares none for this action)",
                            hint="pass automl_settings={'metric': 'val_loss', 'direction': 'minimize'}")
    if not alias_targets(metric):
        raise SettingsError("not a metric name", key="automl_settings.metric", value=metric,
                            expected="a name with letters or digits, as the job reports it (e.g. 'val_loss'); "
                                     "it is matched literally or by the alias rule, never as a pattern")
    if metric == "kpi":
        raise SettingsError("'kpi' is not a metric name", key="automl_settings.metric", value=metric,
                            expected="a named metric such as 'val_loss' (kpi is a container of metrics)")
    direction = resolve_direction(metric, explicit=settings.direction, declared=declared)
    return metric, direction


def _fidelity_key(skill: Any, template: Mapping[str, Any]) -> str | None:
    short = dict(getattr(skill.info, "spec_shorthand_keys", None) or {})
    candidates = [short["num_epochs"]] if "num_epochs" in short else []
    candidates += list(EPOCH_KEYS)
    for key in candidates:
        try:
            val = get_path(template, key, default=None)
        except AutoMLError:
            val = None
        if isinstance(val, int) and not isinstance(val, bool):
            return key
    return candidates[0] if candidates and "num_epochs" in short else None


def _split_platform_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    job = {k: v for k, v in kwargs.items() if k in JOB_KWARGS}
    rest = {k: v for k, v in kwargs.items() if k not in JOB_KWARGS}
    return job, rest


def _job_options(job: Mapping[str, Any], settings: AutoMLSettings) -> JobOptions:
    gpu = job.get("gpu_count", job.get("num_gpus", 0)) or 0
    if not isinstance(gpu, int) or isinstance(gpu, bool) or gpu < 0:
        raise SettingsError("invalid platform kwarg", key="gpu_count", value=gpu, expected="an integer >= 0")
    nodes = job.get("num_nodes", 1)
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
        raise SettingsError("invalid platform kwarg", key="num_nodes", value=nodes,
                            expected="an integer >= 1")
    env = job.get("env") or {}
    if not isinstance(env, Mapping):
        raise SettingsError("invalid platform kwarg", key="env", value=env,
                            expected="a mapping of names to values")
    secret = job.get("secret_env") or ()
    if isinstance(secret, str):
        secret = (secret,)
    return JobOptions(
        image=job.get("image") or job.get("container_image"),
        gpu_count=gpu,
        gpu_ids=tuple(job.get("gpu_ids") or ()),
        num_nodes=nodes,
        env={str(k): str(v) for k, v in env.items()},
        secret_env=tuple(secret),
        timeout_s=job.get("job_timeout_s", settings.trial_timeout_s),
    )


def _backend(platform_sdk: Any, rest: Mapping[str, Any]) -> tuple[Any, Any]:
    if platform_sdk is None or isinstance(platform_sdk, str):
        name = platform_sdk or "local"
        backend = get_backend(name, **rest)
        return backend, (name, dict(rest))
    backend = get_backend(platform_sdk, **rest)
    return backend, backend


def _check_uri_readable(key: str, uri: str) -> str | None:
    """Remote URIs (s3://...) are checked from the driver; plain paths are
    checked by the backend (:func:`tao_automl.planning.checks.check_dataset_paths`)."""
    if "://" in uri and not uri.startswith("file://"):
        try:
            import fsspec

            fs, path = fsspec.core.url_to_fs(uri)
            return None if fs.exists(path) else f"{key}: dataset URI {uri!r} does not exist or is not readable"
        except Exception as exc:  # foreign client errors -> a blocker text
            return f"{key}: dataset URI {uri!r} cannot be checked ({type(exc).__name__}: {exc})"
    p = Path(uri[7:] if uri.startswith("file://") else uri).expanduser()
    if not p.exists():
        return f"{key}: dataset path {uri!r} does not exist"
    if not os.access(p, os.R_OK):
        return f"{key}: dataset path {uri!r} is not readable"
    return None


def prepare(
    *,
    skill: Any,
    action: str,
    platform_sdk: Any,
    automl_algorithm: str | None,
    automl_settings: Mapping[str, Any] | AutoMLSettings | None,
    spec_overrides: Mapping[str, Any] | None,
    automl_hyperparameters: list[str] | None,
    custom_param_ranges: Mapping[str, Any] | None,
    train_dataset_uri: str | list[str] | None,
    eval_dataset_uri: str | None,
    dataset_uris: Mapping[str, Any] | None,
    base_checkpoint: str | None,
    platform_kwargs: Mapping[str, Any],
    has_baseline_fn: bool = False,
    has_final_eval_fn: bool = False,
) -> Prepared:
    """Validate everything and build the plan. Raises AutoMLError subclasses."""
    settings = parse_settings(automl_settings, algorithm=automl_algorithm)
    algorithm = get_algorithm(settings.algorithm)
    for knob in ("perturbation_factor", "kde_samples", "top_n_percent", "min_points_in_model"):
        if getattr(settings, knob) is not None and knob not in algorithm.settings_used:
            raise SettingsError(f"setting '{knob}' does not apply to algorithm '{algorithm.name}'",
                                key=f"automl_settings.{knob}", value=getattr(settings, knob),
                                expected="leave it out, or use " + "/".join(algorithms_reading(knob)))
    if settings.sampler != "random" and "sampler" not in algorithm.settings_used:
        raise SettingsError(f"setting 'sampler' does not apply to algorithm '{algorithm.name}'",
                            key="automl_settings.sampler", value=settings.sampler,
                            expected="leave it out, or use " + "/".join(algorithms_reading("sampler"))
                            + " (bayesian is model-based already)")
    for key in ("mutation_factor", "crossover_prob", "epoch_budget", "dehb_strategy",
                "dehb_promotion"):  # dehb's knobs: never dropped silently
        if getattr(settings, key) is not None and key not in algorithm.settings_used:
            raise SettingsError.from_message(
                describe(
                    f"setting '{key}' does not apply to algorithm '{algorithm.name}'",
                    key=f"automl_settings.{key}",
                    value=getattr(settings, key),
                    expected="leave it out, or use "
                    + " or ".join(f"automl_algorithm='{a}'" for a in algorithms_reading(key)),
                ),
                key=key,
                value=getattr(settings, key),
            )
    _check_llm(settings, algorithm, automl_settings, automl_algorithm)
    seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(2**31)
    settings = attrs.evolve(settings, seed=seed)
    notes: list[str] = []
    blockers: list[str] = []

    if not skill.has_action(action):
        raise SkillError("the model skill has no such action",
                         file=str(Path(skill.root) / "references" / "skill_info.yaml"),
                         key=f"actions.{action}", expected="one of " + ", ".join(sorted(skill.info.actions)))
    if dataset_uris is not None and not isinstance(dataset_uris, Mapping):
        raise SettingsError("dataset_uris must be a mapping", key="dataset_uris",
                            value=type(dataset_uris).__name__)
    preflight.check_run_args(skill=skill, automl_hyperparameters=automl_hyperparameters,
                             custom_param_ranges=custom_param_ranges, dataset_uris=dataset_uris or {})
    if not getattr(skill.info, "automl_enabled", False):
        notes.append(f"skill '{skill.name}' does not declare automl_enabled: true; running on explicit request")
    template = skill.template(action)
    schema = skill.schema(action)  # SchemaGateError when missing/unparsable
    sidecar = load_sidecar(skill)
    action_defaults = list(getattr(skill.action(action), "automl_default_parameters", None) or [])
    overrides = _canonical_overrides(skill, spec_overrides)
    # secret("NAME") values become ${oc.env:NAME}; NAME joins every job's secret_env.
    secret_envs = secret_names(overrides)
    overrides = replace_secrets(overrides)
    preflight.check_overrides(schema, overrides, file=str(skill.schema_path(action)))
    # Ranges that depend on the template (e.g. lr_steps within num_epochs) see
    # the user's overrides; constraints come from skill_info and the sidecar.
    effective = apply_overrides(template, overrides)
    constraints = [
        *constraints_from_skill(skill.info),
        *coerce_constraints(sidecar.get("constraints") or (), source=f"{skill.root}/references/automl.yaml"),
    ]
    space = build_search_space(
        schema,
        effective,
        hyperparameters=automl_hyperparameters,
        custom_ranges=custom_param_ranges,
        constraints=constraints,
        skill_name=skill.name,
        action_defaults=action_defaults or None,
    )
    preflight.check_exclusive(space.constraints, effective, source=str(skill.template_path(action)))
    if not space.params:
        raise SettingsError("the search space is empty", file=str(skill.schema_path(action)),
                            key="automl_hyperparameters", value=automl_hyperparameters,
                            expected="at least one searchable parameter",
                            hint="; ".join(f"{k}: {v}" for k, v in list(space.excluded.items())[:5]))
    first = (settings.objectives or [None])[0]
    first = first if isinstance(first, str) else (first or {}).get("metric") if isinstance(first, Mapping) else None
    if settings.metric is None and first:
        settings = attrs.evolve(settings, metric=first)  # the first objective is the run's metric
    metric, direction = _metric_and_direction(skill, action, settings, sidecar)
    settings = attrs.evolve(settings, metric=metric, direction=direction)
    objectives, select_rule = _objectives(settings, metric, direction)
    if len(objectives) > 1:
        settings = attrs.evolve(settings, objectives=[o.to_dict() for o in objectives])
        metric, direction = SCORE, "maximize"  # the weighted score ranks trials (config.objectives)
    else:  # one objective: it is the run's metric
        metric, direction = objectives[0].metric, objectives[0].direction
        settings = attrs.evolve(settings, metric=metric, direction=direction)
        objectives = []
    mode = "min" if direction == "minimize" else "max"

    fidelity_key = _fidelity_key(skill, template)
    max_epochs = settings.max_epochs
    if max_epochs is None and fidelity_key:
        val = overrides.get(fidelity_key, get_path(template, fidelity_key, default=None))
        max_epochs = val if isinstance(val, int) and not isinstance(val, bool) else None
    if algorithm.multi_fidelity and (fidelity_key is None or max_epochs is None):
        raise SettingsError(f"algorithm '{algorithm.name}' uses epochs as the fidelity, but no epoch key was found",
                            file=str(skill.template_path(action)), key="spec_shorthand_keys.num_epochs",
                            expected="an integer epoch count in the template, or automl_settings['max_epochs']")
    if (algorithm.multi_fidelity and fidelity_key and settings.max_epochs is not None
            and fidelity_key in overrides and overrides[fidelity_key] != settings.max_epochs):
        notes.append(
            f"{algorithm.name} trains up to max_epochs={settings.max_epochs} (the fidelity); "
            f"spec_overrides['{fidelity_key}']={overrides[fidelity_key]!r} applies to the evaluate spec only"
        )
    if fidelity_key and algorithm.multi_fidelity and fidelity_key in space.names:
        space = _drop_default_fidelity(space, fidelity_key, algorithm.name)
    if fidelity_key and algorithm.multi_fidelity and fidelity_key in space.names:
        raise SettingsError("the fidelity (epoch count) cannot also be a searched hyperparameter",
                            key=fidelity_key,
                            expected=f"{fidelity_key} left out of automl_hyperparameters for '{algorithm.name}'")
    short = dict(getattr(skill.info, "spec_shorthand_keys", None) or {})
    batch_key = short.get("batch_size")

    job_kwargs, rest = _split_platform_kwargs(platform_kwargs)
    preflight.check_job_kwargs(job_kwargs)
    job_options = _job_options(job_kwargs, settings)
    if secret_envs:
        job_options = attrs.evolve(
            job_options, secret_env=tuple(dict.fromkeys([*job_options.secret_env, *secret_envs])))
    backend, backend_ref = _backend(platform_sdk, rest)
    preflight.check_base_checkpoint(base_checkpoint, backend)
    shard_count = settings.shard_count or max(1, job_options.gpu_count) * job_options.num_nodes
    if not settings.allow_unsafe_effective_batch:
        _check_batch_possible(space, effective, batch_key, settings.train_sample_count, shard_count)

    uris: dict[str, Any] = dict(dataset_uris or {})
    if train_dataset_uri is not None:
        uris["train_datasets"] = train_dataset_uri
    if eval_dataset_uri is not None:
        uris["eval_dataset"] = eval_dataset_uri
    local_paths: list[tuple[str, str]] = []
    for key in preflight.readable_uri_keys(uris):
        value = uris[key]
        for uri in value if isinstance(value, list) else [value]:
            if not isinstance(uri, str):
                raise SettingsError("dataset URI must be a string", key=key, value=uri)
            if "://" not in uri or uri.startswith("file://"):
                local_paths.append((key, uri))  # checked where the jobs run, below
                continue
            problem = _check_uri_readable(key, uri)
            if problem:
                raise PreflightError.from_message(problem, key=key, value=uri)
    # Paths: the backend answers from where its jobs run; unreadable -> blocker.
    path_checks = preflight.check_dataset_paths(backend, local_paths)
    blockers += [c.blocker() for c in path_checks if c.state == "unreadable"]
    notes += [c.note() for c in path_checks if c.state == "unverified"]

    # Data keys and credentials: blockers for review, errors for run.
    probe = SpecBuilder(skill, action).build(
        overrides=overrides,
        dataset_uris=uris,
        context=SpecParamContext(action=action, job_id="review", output_dir="<output_dir>", ptm=base_checkpoint),
    )
    for key in probe.missing_data:
        blockers.append(f"missing data key '{key}' for action '{action}': pass it in spec_overrides or a dataset URI")
    for name in getattr(skill.info, "required_credentials", None) or []:
        if not os.environ.get(name):
            blockers.append(f"required credential env var {name} is UNSET")
    for name in missing_secrets(secret_envs):
        blockers.append(f"required credential env var {name} is UNSET (a secret spec override)")
    evaluate_action = "evaluate" if skill.has_action("evaluate") else None
    preflight.check_execution(skill, action)
    if evaluate_action and ((settings.baseline and not has_baseline_fn)
                            or (settings.final_eval and not has_final_eval_fn)):
        preflight.check_execution(skill, evaluate_action)
    if settings.baseline is True and evaluate_action is None and not has_baseline_fn and settings.baseline_metric is None:
        blockers.append("baseline evaluation: the model skill has no evaluate action (pass baseline_fn or disable baseline)")
    if settings.final_eval and evaluate_action is None and not has_final_eval_fn:
        notes.append("final evaluation: no evaluate action and no final_eval_fn; it will be skipped")

    rng = random.Random(seed)
    initial_values: list[dict[str, Any]] = []
    notes.extend(algorithm.review_notes(settings))
    initial_points = algorithm.initial_batch(settings, space, rng)
    for point in initial_points:
        values, adj = space.enforce(
            space.decode(point),
            train_sample_count=settings.train_sample_count,
            shard_count=shard_count,
            batch_key=batch_key,
        )
        initial_values.append({"values": values, "adjustments": adj})
    queued_points = algorithm.queued(settings, space, rng, len(initial_points))
    preflight.check_algorithm(algorithm=algorithm, space=space, settings=settings, metric=metric, mode=mode,
                              max_epochs=max_epochs, initial_points=initial_points)
    if settings.early_start and algorithm.early_start and initial_points:
        notes.append(f"early start: the {len(initial_points)} job(s) of the initial batch are submitted as soon "
                     "as the run starts, before Ray Tune is up"
                     + (", and the next configurations as slots free up until Ray Tune takes over"
                        if queued_points else "")
                     + " (on a local workspace; early_start: false turns it off)")

    return RunPlan(
        skill=skill,
        action=action,
        settings=settings,
        algorithm=algorithm,
        space=space,
        metric=metric,
        direction=direction,
        mode=mode,
        fidelity_key=fidelity_key,
        max_epochs=max_epochs,
        batch_key=batch_key,
        shard_count=shard_count,
        overrides=overrides,
        dataset_uris=uris,
        base_checkpoint=base_checkpoint,
        backend=backend,
        backend_ref=backend_ref,
        job_options=job_options,
        initial_points=initial_points,
        queued_points=queued_points,
        initial_values=initial_values,
        blockers=blockers,
        notes=notes,
        evaluate_action=evaluate_action,
        seed=seed,
        checkpoint_epoch_offset=checkpoint_epoch_offset(skill, sidecar),
        path_checks=path_checks,
        objectives=tuple(objectives),
        select_rule=select_rule,
    )


def _check_llm(settings: AutoMLSettings, algorithm: AlgorithmSpec, raw: Any, arg: str | None) -> None:
    """``llm_*`` settings need an LLM-guided algorithm; such an algorithm needs
    an endpoint, a model, its API key variable set and the openai package."""
    try:
        if algorithm.llm_guided:
            check_llm_settings(settings, algorithm=algorithm.name)
            return
        defaults = {a.name: a.default for a in attrs.fields(AutoMLSettings)}
        for key in (*LLM_SETTINGS, *AUTORESEARCH_SETTINGS):
            if getattr(settings, key) != defaults[key]:
                raise SettingsError(f"this setting does not apply to algorithm '{algorithm.name}'",
                                    key=f"automl_settings.{key}", value=getattr(settings, key),
                                    expected="leave it out, or use an LLM-guided algorithm ("
                                    + ", ".join(repr(a) for a in llm_guided_names()) + ")")
    except (SettingsError, CredentialError) as exc:
        raise name_as_written(exc, written_keys(raw, algorithm=arg)) from None


def _objectives(settings: AutoMLSettings, metric: str, direction: str) -> tuple[list[Any], Any]:
    """The run's objectives (one: ``metric``) and its ``select_best`` rule, checked."""
    objectives = (parse_objectives(settings.objectives, metric, direction) if settings.objectives
                  else [Objective(metric, direction)])
    for i, o in enumerate(objectives):
        if not alias_targets(o.metric) or o.metric in ("kpi", SCORE):
            raise SettingsError.from_message(describe(
                "not a metric name", key=f"automl_settings.objectives[{i}].metric", value=o.metric,
                expected="a named metric as the job reports it (e.g. 'mAP', 'latency_ms'); not 'kpi' "
                         f"or '{SCORE}'"), key="objectives", value=o.metric)
    rule = None
    if settings.select_best is not None:
        rule = parse_select_best(settings.select_best, [o.metric for o in objectives])
    return objectives, rule


def _drop_default_fidelity(space: Any, fidelity_key: str, algorithm: str) -> Any:
    """A schema-default epoch count leaves the space under a multi-fidelity
    algorithm (which owns the epochs); one the user asked for stays (an error)."""
    param = next(p for p in space.params if p.name == fidelity_key)
    if param.source == "user":
        return space
    return attrs.evolve(
        space,
        params=[p for p in space.params if p.name != fidelity_key],
        excluded={**space.excluded, fidelity_key: f"the fidelity of '{algorithm}' (epochs are set by max_epochs)"},
    )


def _canonical_overrides(skill: Any, spec_overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Resolve shorthand aliases to dotted paths (validating the paths)."""
    if spec_overrides is None:
        return {}
    if not isinstance(spec_overrides, Mapping):
        raise SpecError("spec_overrides must be a mapping", value=type(spec_overrides).__name__)
    short = dict(getattr(skill.info, "spec_shorthand_keys", None) or {})
    return canonicalize(spec_overrides, shorthand=short).dotted()


def _check_batch_possible(space: Any, spec: Mapping[str, Any], batch_key: str | None,
                          samples: int | None, shards: int) -> None:
    """A batch larger than samples/shards gives zero training steps; when even
    the smallest allowed (or the fixed) batch does, nothing can run."""
    if not samples or not batch_key:
        return
    limit = samples // max(1, shards)
    rows = {r["name"]: r for r in space.review_rows()}
    if batch_key in rows:
        low = rows[batch_key].get("minimum")
        options = rows[batch_key].get("options")
        smallest = min(options) if options else low
        what = f"the smallest searched value {smallest}"
    else:
        smallest = get_path(spec, batch_key, default=None)
        what = f"the fixed value {smallest}"
    if isinstance(smallest, int | float) and not isinstance(smallest, bool) and smallest > limit:
        raise SettingsError("batch size impossible for the training sample count", key=batch_key,
                            value=smallest,
                            expected=f"<= {limit} (train_sample_count {samples} / {shards} shard(s)); {what} gives "
                            "zero training steps",
                            hint="lower the batch range (custom_param_ranges) or check train_sample_count")


def raise_blockers(prepared: RunPlan) -> None:
    """For run(): turn blockers into errors before anything is launched."""
    preflight.raise_unreadable_paths(prepared.path_checks)
    creds = [b for b in prepared.blockers if "credential" in b]
    if creds:
        raise CredentialError("; ".join(creds))
    data = [b for b in prepared.blockers if b.startswith("missing data key")]
    if data:
        raise SpecError("; ".join(data))
