"""nvidia-tao-automl's ``run(execution={...})``: a ``python_script`` execution
replacing one action's execution for a run (the settings side of that
compatibility is :mod:`tao_automl.config.compat`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from tao_automl.errors import SettingsError
from tao_automl.skill.model import Execution

__all__ = ["apply_execution"]


def apply_execution(skill: Any, action: str, execution: Any) -> Any:
    """``run(execution={...})``: a ``python_script`` execution replacing
    ``actions.<action>.execution`` of the skill for this run (nvidia-tao-automl's
    keys: ``type``, ``script``, ``args``/``script_args``, ``config_format``,
    ``cwd``).  Checked before launch: the script must exist, ``cwd`` too."""
    if execution is None:
        return skill
    where = f"{skill.root}/references/skill_info.yaml"

    def bad(key: str, value: Any, expected: str) -> SettingsError:
        return SettingsError("invalid run(execution=...)", file=where, key=f"execution.{key}", value=value,
                             expected=expected)

    if not isinstance(execution, Mapping):
        raise bad("", execution, "a mapping {type: python_script, script, args, config_format, cwd}")
    unknown = sorted(set(execution) - {"type", "script", "args", "script_args", "config_format", "cwd"})
    if unknown:
        raise bad(unknown[0], execution[unknown[0]], "one of type, script, args, script_args, config_format, cwd")
    if execution.get("type") != "python_script":
        raise bad("type", execution.get("type"), "'python_script'")
    script = execution.get("script")
    if not isinstance(script, str) or not script.strip():
        raise bad("script", script, "a non-empty path to a Python script")
    full = Path(script).expanduser()
    full = full if full.is_absolute() else Path(skill.root) / full
    if not full.is_file():
        raise bad("script", script, f"an existing file ({full} does not exist)")
    args = execution.get("args", execution.get("script_args", ["--config", "{config_path}"]))
    if not isinstance(args, list | tuple) or not all(isinstance(a, str) for a in args):
        raise bad("args", args, "a list of strings")
    info = skill.action(action)
    fmt = execution.get("config_format", info.config_format)
    if fmt not in ("json", "yaml", "toml"):
        raise bad("config_format", fmt, "json, yaml or toml")
    cwd = execution.get("cwd", ".")
    if not isinstance(cwd, str) or not cwd.strip():
        raise bad("cwd", cwd, "a non-empty path")
    cwd_full = Path(cwd).expanduser()
    if not (cwd_full if cwd_full.is_absolute() else Path(skill.root) / cwd_full).is_dir():
        raise bad("cwd", cwd, "an existing directory (relative to the skill)")
    new_action = attrs.evolve(info, execution=Execution(type="python_script", script=script, args=list(args),
                                                        cwd=cwd), command=None, config_format=fmt)
    new_info = attrs.evolve(skill.info, actions={**skill.info.actions, action: new_action})
    return attrs.evolve(skill, info=new_info)
