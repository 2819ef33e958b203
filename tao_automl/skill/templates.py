"""Parse spec-template files (YAML, JSON or TOML) by extension, falling back
to content sniffing (a Cosmos template declares ``config_format: toml`` but is
stored as ``.yaml``; the on-disk format wins)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from tao_automl.config import safe_yaml
from tao_automl.errors import SchemaGateError

__all__ = ["parse_template_text", "read_template"]

_BY_EXT = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}


def _parse(text: str, fmt: str) -> Any:
    if fmt == "json":
        return json.loads(text)
    if fmt == "toml":
        return tomllib.loads(text)
    return safe_yaml.safe_load(text)


def parse_template_text(text: str, *, suffix: str = "", file: Any = "<template>") -> dict:
    """Parse template text; the extension's format first, then the others."""
    first = _BY_EXT.get(suffix.lower())
    order = [first] if first else []
    order += [f for f in ("json", "toml", "yaml") if f not in order]
    errors = []
    for fmt in order:
        try:
            data = _parse(text, fmt)
        except Exception as exc:  # json/toml/yaml each raise their own error types
            errors.append(f"{fmt}: {exc}")
            continue
        if isinstance(data, dict):
            return data
        errors.append(f"{fmt}: top level is {type(data).__name__}, not a mapping")
    raise SchemaGateError("spec template does not parse", file=file, value="; ".join(errors)[:400],
                          expected="a YAML, JSON or TOML mapping")


def read_template(path: Path) -> dict:
    """Read and parse the template at ``path`` (SchemaGateError when missing/unparsable)."""
    if not path.is_file():
        raise SchemaGateError("spec template is missing", file=path, expected="an existing spec template")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaGateError("spec template is unreadable", file=path, value=str(exc)) from exc
    return parse_template_text(text, suffix=path.suffix, file=path)
