"""Extra pre-launch checks used by :func:`tao_automl.planning.preparation.prepare`.

Each function raises an :class:`~tao_automl.errors.AutoMLError` subclass
whose message names the bad value; none launches or writes anything.  They
cover inputs whose mistakes would otherwise surface only after the run has
started (inside Ray, in a job, or while writing the workspace):

* :func:`check_run_args` -- ``automl_hyperparameters``/``custom_param_ranges``
  shapes, dataset source names;
* :func:`check_job_kwargs` -- ``secret_env`` names, ``job_timeout_s``, ``image``, ``gpu_ids``;
* :func:`check_exclusive` -- mutually exclusive spec keys both set (Cosmos fps/nframes);
* :func:`check_algorithm` -- a dry build of the algorithm's searcher/scheduler
  (grid larger than the budget, fidelity limits, PBT interval) for the
  algorithms whose builders validate settings;
* :func:`check_base_checkpoint` -- a local starting checkpoint that does not exist;
* :func:`check_dataset_paths` -- dataset paths readable *where the jobs run*
  (the backend's ``check_paths``): unreadable ones become review blockers and
  :func:`raise_unreadable_paths` errors for ``run()``.
* :func:`check_execution` -- a ``python_script`` action whose script is unnamed or missing;
* :func:`check_overrides` -- ``spec_overrides`` values the schema refuses (enum, type, bounds).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from tao_automl.algorithms import BuildContext
from tao_automl.errors import PreflightError, SettingsError, SkillError, SpecError, describe
from tao_automl.platforms.paths import check_paths
from tao_automl.spec import get_path
from tao_automl.spec.data_sources import SOURCE_NAMES

__all__ = [
    "ENV_NAME",
    "check_run_args",
    "check_job_kwargs",
    "check_exclusive",
    "check_algorithm",
    "check_base_checkpoint",
    "check_execution",
    "check_overrides",
    "readable_uri_keys",
    "DatasetPathCheck",
    "check_dataset_paths",
    "raise_unreadable_paths",
]

#: A portable environment variable name.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_run_args(*, skill: Any, automl_hyperparameters: Any, custom_param_ranges: Any,
                   dataset_uris: Mapping[str, Any]) -> None:
    """Shapes of the ``run()`` arguments the search space and data sources read."""
    hp = automl_hyperparameters
    if hp is not None:
        if not isinstance(hp, list | tuple):
            raise SettingsError("automl_hyperparameters must be a list of dotted parameter paths",
                                key="automl_hyperparameters", value=hp,
                                expected="a list such as ['train.lr']")
        for item in hp:
            if not isinstance(item, str) or not item.strip():
                raise SettingsError("hyperparameter names must be non-empty strings",
                                    key="automl_hyperparameters", value=item, expected="a dotted path string")
    cr = custom_param_ranges
    if cr is not None:
        if not isinstance(cr, Mapping):
            raise SettingsError.from_message(
                describe("custom_param_ranges must be a mapping", key="custom_param_ranges",
                         value=type(cr).__name__,
                         expected="{'train.lr': {'valid_min': ..., 'valid_max': ...}}"),
                key="custom_param_ranges", value=cr)
        for name in cr:
            if not isinstance(name, str):
                raise SettingsError("custom_param_ranges keys must be dotted parameter paths",
                                    key="custom_param_ranges", value=name, expected="a string")
    placeholders = _placeholders(skill)
    for key in dataset_uris:
        if not isinstance(key, str):
            raise SettingsError("dataset_uris keys must be strings", key="dataset_uris", value=key)
        if key in SOURCE_NAMES or key in placeholders:
            continue
        close = difflib.get_close_matches(key, list(SOURCE_NAMES) + sorted(placeholders), n=1)
        raise SettingsError.from_message(
            describe("unknown dataset source", key=f"dataset_uris.{key}", value=key,
                     expected="one of " + ", ".join(SOURCE_NAMES)
                     + (" or a path placeholder of the skill (" + ", ".join(sorted(placeholders)) + ")"
                        if placeholders else ""),
                     hint=f"did you mean '{close[0]}'?" if close else None),
            key=key, value=key)


def _placeholders(skill: Any) -> set[str]:
    """``{name}`` placeholders used by the skill's data source entries."""
    text = repr(getattr(skill.info, "data_sources", {}) or {})
    return set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", text))


def readable_uri_keys(uris: Mapping[str, Any]) -> list[str]:
    """The dataset_uris keys that name data roots (placeholders are file names)."""
    return [k for k in uris if k in SOURCE_NAMES]


def check_job_kwargs(job: Mapping[str, Any]) -> None:
    """Launch kwargs shared by every platform (beyond gpu_count/num_nodes/env)."""
    secret = job.get("secret_env") or ()
    names = (secret,) if isinstance(secret, str) else secret
    if not isinstance(names, list | tuple):
        raise SettingsError("invalid platform kwarg", key="secret_env", value=secret,
                            expected="a list of environment variable names")
    for name in names:
        if not isinstance(name, str) or not ENV_NAME.match(name):
            # Not echoed: a caller who got this wrong may have passed the secret value itself.
            shown = f"<str of length {len(name)}, not shown>" if isinstance(name, str) else name
            raise SettingsError("invalid platform kwarg", key="secret_env", value=shown,
                                expected="environment variable names ([A-Za-z_][A-Za-z0-9_]*); values are never passed")
    env = job.get("env") or {}
    if isinstance(env, Mapping):
        for name in env:
            if not isinstance(name, str) or not ENV_NAME.match(name):
                raise SettingsError("invalid platform kwarg", key="env", value=name,
                                    expected="environment variable names ([A-Za-z_][A-Za-z0-9_]*)")
    t = job.get("job_timeout_s")
    if t is not None and (not _is_number(t) or t <= 0):
        raise SettingsError("invalid platform kwarg", key="job_timeout_s", value=t,
                            expected="a positive number of seconds")
    for key in ("image", "container_image"):
        img = job.get(key)
        if img is not None and (not isinstance(img, str) or not img.strip()):
            raise SettingsError("invalid platform kwarg", key=key, value=img,
                                expected="a container image name")
    ids = job.get("gpu_ids")
    if ids is not None:
        items = ids if isinstance(ids, list | tuple) else None
        if items is None or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in items):
            raise SettingsError("invalid platform kwarg", key="gpu_ids", value=ids,
                                expected="a list of GPU indices >= 0")


def _is_set(v: Any) -> bool:
    return v is not None and v != "" and v != [] and v != {}


def check_exclusive(constraints: Any, spec: Mapping[str, Any], *, source: str = "") -> None:
    """Mutually exclusive keys (``kind == 'exclusive'``) may not both be set in
    the effective spec (template + overrides)."""
    for c in constraints or ():
        if getattr(c, "kind", None) != "exclusive" or not c.other:
            continue
        a = get_path(spec, c.param, default=None)
        b = get_path(spec, c.other, default=None)
        if _is_set(a) and _is_set(b):
            raise SpecError.from_message(
                describe("conflicting spec options: both are set", file=source or None,
                         key=f"{c.param} / {c.other}", value={c.param: a, c.other: b},
                         expected="exactly one of them (set the other to null in spec_overrides)",
                         hint=c.reason or None),
                key=c.param, value=a)


def check_algorithm(*, algorithm: Any, space: Any, settings: Any, metric: str, mode: str,
                    max_epochs: int | None, initial_points: list[dict[str, Any]]) -> None:
    """Dry-build the searcher/scheduler of algorithms whose builders validate
    settings (grid size, fidelity range, PBT interval); the result is dropped."""
    if not algorithm.checked_by_build:
        return
    ctx = BuildContext(param_space=space.to_ray(), metric=metric, mode=mode, settings=settings,
                       max_epochs=max_epochs or 1, initial_points=list(initial_points), space=space)
    algorithm.build(ctx)


def check_base_checkpoint(base_checkpoint: Any, backend: Any) -> None:
    """A starting checkpoint given as a local absolute path must exist when jobs
    run on this machine; model names (``nvidia/...``) and URIs pass."""
    if base_checkpoint is None:
        return
    if not isinstance(base_checkpoint, str) or not base_checkpoint.strip():
        raise SettingsError("base_checkpoint must be a path, URI or model name", key="base_checkpoint",
                            value=base_checkpoint)
    if getattr(backend, "name", None) != "local":
        return
    raw = base_checkpoint[7:] if base_checkpoint.startswith("file://") else base_checkpoint
    p = Path(raw).expanduser()
    if p.is_absolute() and not p.exists():
        raise PreflightError("base checkpoint does not exist", key="base_checkpoint", value=base_checkpoint,
                             expected="an existing checkpoint file or folder")


@attrs.frozen(kw_only=True)
class DatasetPathCheck:
    """One dataset path as checked by the backend (shown in the review)."""

    key: str
    path: str
    platform: str
    state: str  # readable / unreadable / unverified (PathState values)
    reason: str = ""
    where: str = ""

    def blocker(self) -> str:
        return f"{self.key}: dataset path {self.path!r} is not readable on the {self.platform} platform: {self.reason}"

    def note(self) -> str:
        return f"{self.key}: dataset path {self.path!r} not verified on the {self.platform} platform: {self.reason}"


def check_dataset_paths(backend: Any, items: list[tuple[str, str]]) -> list[DatasetPathCheck]:
    """Ask ``backend`` whether each (key, path) is readable where its jobs run.
    ``file://`` is stripped; a backend without ``check_paths`` -> unverified."""
    if not items:
        return []
    strip = {uri: uri[7:] if uri.startswith("file://") else uri for _, uri in items}
    answers = check_paths(backend, list(strip.values()))
    platform = str(getattr(backend, "name", type(backend).__name__))
    return [DatasetPathCheck(key=key, path=uri, platform=platform, state=answers[strip[uri]].state.value,
                             reason=answers[strip[uri]].reason, where=answers[strip[uri]].where)
            for key, uri in items]


def raise_unreadable_paths(checks: list[DatasetPathCheck]) -> None:
    """For run(): the first unreadable dataset path, as a PreflightError naming
    the key, the path and the backend's reason."""
    for c in checks:
        if c.state == "unreadable":
            raise PreflightError(f"dataset path is not readable where the jobs run ({c.platform} platform)",
                                 key=c.key, value=c.path,
                                 expected="an existing, readable file or folder there", hint=c.reason)


def check_execution(skill: Any, action: str) -> None:
    """A ``python_script`` action's script must be named and, when it is a path
    inside the skill (relative), exist there; otherwise every trial would fail
    (as a "data" failure).  An absolute path is taken to live on the platform."""
    info = skill.action(action)
    ex = getattr(info, "execution", None)
    if ex is None or getattr(ex, "type", None) != "python_script":
        return
    key = f"actions.{action}.execution.script"
    script = ex.script
    if not isinstance(script, str) or not script.strip():
        raise SkillError("python_script action names no script", file=skill.info_path, key=key, value=script,
                         expected="a script path relative to the skill folder")
    path = Path(script)
    if not path.is_absolute():
        full = Path(skill.root) / path
        if not full.is_file():
            raise SkillError("execution script does not exist", file=skill.info_path, key=key, value=script,
                             expected=f"an existing file at {full}")


def _override_problem(p: Any, value: Any) -> str | None:
    """What the schema expects when ``value`` does not fit parameter ``p``."""
    import math

    def num(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    if p.enum and p.kind in ("categorical", "string"):
        return None if value in p.enum else "one of " + ", ".join(map(repr, p.enum))
    if p.kind == "bool":
        return None if isinstance(value, bool) else "true or false"
    if p.kind in ("int", "float", "ordered_int"):
        is_int = p.kind != "float"
        if not num(value) or (is_int and not float(value).is_integer()) or not math.isfinite(value):
            what = "an integer" if is_int else "a finite number"
        elif (p.finite_minimum is not None and value < p.finite_minimum) or \
                (p.finite_maximum is not None and value > p.finite_maximum):
            what = None
        else:
            return None
        lo = p.minimum if p.minimum is not None else "-Infinity"
        hi = p.maximum if p.maximum is not None else "Infinity"
        bounds = f" within the schema bounds [{lo}, {hi}]" if (p.finite_minimum is not None
                                                               or p.finite_maximum is not None) else ""
        return (what or ("an integer" if is_int else "a number")) + bounds
    return None


def check_overrides(schema: Any, overrides: Mapping[str, Any], *, file: Any) -> None:
    """``spec_overrides`` must fit the schema like custom ranges do: an enum
    option, a bool, an integer/number within the finite bounds.  ``None`` (unset),
    interpolations (``${...}``, e.g. secrets) and paths the schema does not
    describe pass; a whole section (a mapping) is checked leaf by leaf."""
    params = getattr(schema, "params", {}) or {}

    def walk(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{key}.{k}", v)
            return
        p = params.get(key)
        if p is None or value is None or (isinstance(value, str) and value.startswith("${")):
            return
        expected = _override_problem(p, value)
        if expected is not None:
            raise SpecError("spec override does not fit the schema", file=file, key=key, value=value,
                            expected=expected)

    for key, value in overrides.items():
        walk(str(key), value)
