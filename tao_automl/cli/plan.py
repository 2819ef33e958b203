"""YAML plans for the ``tao-automl`` CLI: the same fields as ``AutoMLRunner.run``.

>>> plan = load_plan("examples/quickstart.yaml")        # doctest: +SKIP
>>> result = run_plan(plan)                             # doctest: +SKIP

Example::

    skill_dir: toy_skill              # relative paths: against the plan's folder
    platform: local                   # local | slurm | docker | kubernetes | brev
    workspace_dir: ../automl_workspace
    action: train
    automl_algorithm: bayesian
    automl_settings: {max_recommendations: 6, max_concurrent: 2, seed: 0}
    spec_overrides: {train.num_epochs: 3}
    platform_kwargs: {partition: gpu}  # backend options and gpu_count/num_nodes/image/env

Unknown keys are a :class:`~tao_automl.errors.SettingsError` with a "did you
mean"; wrong types name the plan file, the key, the value and the expected type.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tao_automl.config import safe_yaml
from tao_automl.config.settings import SETTINGS_ALIASES
from tao_automl.errors import SettingsError
from tao_automl.runner import AutoMLRunner
from tao_automl.spec.data_sources import SOURCE_NAMES
from tao_automl.store.workspace import check_session_id, is_uri

__all__ = ["PLAN_KEYS", "load_plan", "validate_plan", "runner_for", "run_kwargs"]

_TYPES = {"str": str, "dict": dict, "list": list, "bool": bool}


def _table(text: str) -> dict[str, tuple[tuple[type, ...], str]]:
    """``key  type[,type]  description`` lines -> {key: (types, description)}."""
    rows = (line.split(None, 2) for line in text.strip().splitlines())
    return {key: (tuple(_TYPES[t] for t in types.split(",")), what) for key, types, what in rows}


# key -> (expected python types, description for errors)
PLAN_KEYS: dict[str, tuple[tuple[type, ...], str]] = _table("""
skill_dir               str       a path to a model skill folder
platform                str       a platform name (local, slurm, docker, kubernetes, brev)
workspace_dir           str       a folder or fsspec URI
action                  str       an action name, e.g. train
automl_algorithm        str       an algorithm name, e.g. bayesian
automl_settings         dict      a mapping of AutoML settings
spec_overrides          dict      a mapping of dotted spec keys to values
automl_hyperparameters  list      a list of dotted hyperparameter names
custom_param_ranges     dict      a mapping of hyperparameter names to ranges
train_dataset_uri       str,list  a dataset path/URI or a list of them
eval_dataset_uri        str       a dataset path/URI
dataset_uris            dict      a mapping of data source names to paths/URIs
base_checkpoint         str       a checkpoint path/URI
resume                  bool      true or false
platform_kwargs         dict      a mapping of platform options
versions_file           str       a path to versions.yaml
""")
_PATH_KEYS = ("skill_dir", "workspace_dir", "eval_dataset_uri", "base_checkpoint", "versions_file")


def _resolve(value: str, base: Path) -> str:
    if is_uri(value) or value.startswith("file://"):
        return value
    p = Path(os.path.expandvars(value)).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def validate_plan(raw: Any, *, source: str = "<plan>", base_dir: str | Path | None = None) -> dict[str, Any]:
    """Check a plan mapping; returns a copy with relative paths resolved against ``base_dir``."""
    if not isinstance(raw, Mapping):
        raise SettingsError("a plan must be a mapping", file=source, value=type(raw).__name__,
                            expected="a YAML mapping with skill_dir and run() fields")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    plan: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in PLAN_KEYS:
            close = difflib.get_close_matches(str(key), list(PLAN_KEYS), n=1, cutoff=0.6)
            raise SettingsError("unknown plan key", file=source, key=key, value=value,
                                expected="one of " + ", ".join(sorted(PLAN_KEYS)),
                                hint=f"did you mean '{close[0]}'?" if close else None)
        types, what = PLAN_KEYS[key]
        if value is None:
            continue
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise SettingsError("wrong type in plan", file=source, key=key, value=value, expected=what)
        plan[key] = dict(value) if isinstance(value, dict) else value
    if "skill_dir" not in plan:
        raise SettingsError("plan has no skill_dir", file=source, key="skill_dir",
                            expected=PLAN_KEYS["skill_dir"][1])
    for key, value in (plan.get("automl_settings") or {}).items():
        if SETTINGS_ALIASES.get(key, key) == "session_id" and value is not None:
            check_session_id(value, key=f"automl_settings.{key}", file=source)
    for key in ("automl_hyperparameters",):
        for item in plan.get(key, []):
            if not isinstance(item, str):
                raise SettingsError("wrong type in plan", file=source, key=key, value=item,
                                    expected="dotted names (strings)")
    for key in _PATH_KEYS:
        if key in plan:
            plan[key] = _resolve(plan[key], base)
    tds = plan.get("train_dataset_uri")
    if isinstance(tds, str):
        plan["train_dataset_uri"] = _resolve(tds, base)
    elif isinstance(tds, list):
        if not all(isinstance(x, str) for x in tds):
            raise SettingsError("wrong type in plan", file=source, key="train_dataset_uri", value=tds,
                                expected="a list of paths/URIs (strings)")
        plan["train_dataset_uri"] = [_resolve(x, base) for x in tds]
    uris = plan.get("dataset_uris")
    if uris:
        for name, value in list(uris.items()):
            if name in SOURCE_NAMES and isinstance(value, str):
                uris[name] = _resolve(value, base)
            elif name in SOURCE_NAMES and isinstance(value, list):
                uris[name] = [_resolve(v, base) if isinstance(v, str) else v for v in value]
    return plan


def load_plan(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a YAML (or JSON) plan file."""
    import yaml

    p = Path(path).expanduser()
    try:
        text = safe_yaml.decode_utf8(p.read_bytes())
    except yaml.YAMLError as exc:
        raise SettingsError("plan is not UTF-8 text", file=str(p), value=str(exc),
                            expected="a UTF-8 YAML file") from None
    except OSError as exc:
        raise SettingsError("cannot read plan", file=str(p), value=str(exc), expected="a readable YAML file") from None
    try:
        raw = safe_yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError("plan does not parse", file=str(p), value=str(exc).splitlines()[0],
                            expected="YAML") from None
    return validate_plan(raw if raw is not None else {}, source=str(p), base_dir=p.resolve().parent)


def runner_for(plan: Mapping[str, Any]) -> Any:
    """The :class:`~tao_automl.runner.AutoMLRunner` for a validated plan."""
    runner = AutoMLRunner(
        skill_dir=plan["skill_dir"], platform_sdk=plan.get("platform"),
        workspace_dir=plan.get("workspace_dir"), action=plan.get("action", "train"),
        versions_file=plan.get("versions_file"),
    )
    runner._platform_arg = "platform"  # errors name the plan's key
    return runner


def run_kwargs(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``run()``/``review()`` for a validated plan."""
    skip = {"skill_dir", "platform", "workspace_dir", "action", "versions_file", "platform_kwargs"}
    kwargs = {k: v for k, v in plan.items() if k not in skip}
    kwargs.update(plan.get("platform_kwargs") or {})
    return kwargs
