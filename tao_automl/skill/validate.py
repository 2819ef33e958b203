"""Validate the raw structure of ``skill_info.yaml`` against the JSON Schema
shipped as ``tao_automl/data/skill_info.schema.json``."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from tao_automl.errors import SkillError, describe

__all__ = ["skill_info_json_schema", "validate_skill_info"]


@lru_cache(maxsize=1)
def skill_info_json_schema() -> dict:
    """The packaged JSON Schema for ``skill_info.yaml``."""
    text = resources.files("tao_automl").joinpath("data/skill_info.schema.json").read_text("utf-8")
    return json.loads(text)


def validate_skill_info(data: Any, *, file: Any) -> None:
    """Raise SkillError listing every structural problem (file, key, value, expectation)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(skill_info_json_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    msgs = []
    for err in errors[:10]:
        key = ".".join(str(p) for p in err.absolute_path) or "<root>"
        msgs.append(describe("invalid skill_info", file=file, key=key, value=_short(err.instance),
                             expected=err.message))
    more = f" (+{len(errors) - 10} more)" if len(errors) > 10 else ""
    first = errors[0]
    raise SkillError.from_message(
        "; ".join(msgs) + more,
        file=file,
        key=".".join(str(p) for p in first.absolute_path) or None,
        value=first.instance,
        expected=first.message,
    )


def _short(v: Any) -> Any:
    text = repr(v)
    return v if len(text) <= 120 else text[:117] + "..."
