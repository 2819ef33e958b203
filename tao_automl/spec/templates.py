"""Read and write spec files in YAML, JSON or TOML.

* :func:`load_spec_file` reads a template (local path or fsspec URI).  The
  format comes from ``fmt`` or the file suffix (``.yaml``/``.yml``,
  ``.json``, ``.toml``).  JSON may contain bare ``Infinity``/``NaN``.
* :func:`dump_spec` renders a spec.  TOML has no null: a ``None`` anywhere in
  the spec raises :class:`SpecError` naming the key, because writing would
  silently lose it.  Callers that *know* a ``None`` came from the template
  itself (and so means "unset") drop it first with :func:`drop_none_leaves`
  and record a note; :class:`~tao_automl.spec.builder.SpecBuilder` does that.
* :func:`write_spec` writes to a local path (parents created) or any fsspec
  URI (``s3://...``) and returns the location written.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tao_automl.config import safe_yaml
from tao_automl.errors import SpecError
from tao_automl.spec.paths import Segment, format_path

__all__ = [
    "FORMATS",
    "format_for",
    "load_spec_file",
    "parse_spec_text",
    "dump_spec",
    "write_spec",
    "drop_none_leaves",
    "none_leaves",
]

FORMATS = ("yaml", "json", "toml")
_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}


def _is_uri(path: str) -> bool:
    return "://" in path


def format_for(path: str | Path, fmt: str | None = None) -> str:
    """Normalise ``fmt`` or infer it from the suffix of ``path``."""
    if fmt is not None:
        f = str(fmt).lower()
        f = "yaml" if f == "yml" else f
        if f not in FORMATS:
            raise SpecError("unknown spec format", file=str(path), value=fmt,
                            expected="one of yaml, json, toml")
        return f
    suffix = Path(str(path).split("?", 1)[0]).suffix.lower()
    if suffix not in _SUFFIXES:
        raise SpecError("cannot infer spec format from the file suffix", file=str(path), value=suffix,
                        expected=".yaml, .yml, .json or .toml (or pass fmt=)")
    return _SUFFIXES[suffix]


def parse_spec_text(text: str, fmt: str, *, source: str = "<text>") -> dict[str, Any]:
    """Parse spec text; the top level must be a mapping (an empty file gives ``{}``)."""
    fmt = format_for(source, fmt)
    try:
        if fmt == "yaml":
            data = safe_yaml.safe_load(text)
        elif fmt == "json":
            data = json.loads(text) if text.strip() else None
        else:
            data = tomllib.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise SpecError(f"spec file does not parse as {fmt.upper()}: {exc}", file=source,
                        expected=f"valid {fmt.upper()}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError("spec file top level is not a mapping", file=source, value=type(data).__name__,
                        expected="a mapping of sections")
    return data


def load_spec_file(path: str | Path, fmt: str | None = None) -> dict[str, Any]:
    """Load a spec/template file (local path or fsspec URI) into a dict."""
    fmt = format_for(path, fmt)
    spath = str(path)
    try:
        if _is_uri(spath):
            import fsspec

            with fsspec.open(spath, "rt", encoding="utf-8") as fh:
                text = fh.read()
        else:
            text = Path(spath).read_text(encoding="utf-8")
    except (OSError, ValueError, ImportError) as exc:
        raise SpecError(f"cannot read spec file: {exc}", file=spath, expected="a readable file") from exc
    return parse_spec_text(text, fmt, source=spath)


def _normalise(node: Any, path: tuple[Segment, ...], fmt: str) -> Any:
    """Deep-copy into plain dict/list/scalars; reject what ``fmt`` cannot hold."""
    if isinstance(node, Mapping):
        out = {}
        for k, v in node.items():
            if not isinstance(k, str):
                if fmt != "yaml" and isinstance(k, (int, float, bool)):
                    k = str(k)
                elif fmt != "yaml":
                    raise _unwritable(path + (str(k),), k, fmt, "a non-string key")
            out[k] = _normalise(v, path + (str(k),), fmt)
        return out
    if isinstance(node, (list, tuple)):
        return [_normalise(v, path + (i,), fmt) for i, v in enumerate(node)]
    if node is None:
        if fmt == "toml":
            raise _unwritable(path, None, fmt, "None (TOML has no null; it would be lost)")
        return None
    if isinstance(node, (bool, int, str)):
        return node
    if isinstance(node, float):
        if fmt == "json" and not math.isfinite(node):
            return node  # json writes Infinity/NaN, which json.loads reads back
        return node
    raise _unwritable(path, node, fmt, f"a {type(node).__name__} value")


def _unwritable(path: tuple[Segment, ...], value: Any, fmt: str, what: str) -> SpecError:
    key = format_path(path) if path else "<spec root>"
    return SpecError(f"spec cannot be written as {fmt.upper()}: {what}", key=key, value=value,
                     expected="str, int, float, bool, list or mapping values"
        + (" (no None)" if fmt == "toml" else ""))


def dump_spec(spec: Mapping[str, Any], fmt: str) -> str:
    """Render ``spec`` as YAML, JSON or TOML text (key order kept)."""
    fmt = format_for("<spec>", fmt)
    if not isinstance(spec, Mapping):
        raise SpecError("spec must be a mapping", value=type(spec).__name__, expected="a dict")
    data = _normalise(spec, (), fmt)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    import tomli_w

    try:
        return tomli_w.dumps(data)
    except (TypeError, ValueError) as exc:  # pragma: no cover - _normalise catches known cases
        raise SpecError(f"spec cannot be written as TOML: {exc}", expected="TOML-compatible values") from exc


def write_spec(spec: Mapping[str, Any], path: str | Path, fmt: str | None = None) -> str:
    """Write ``spec`` to a local path or fsspec URI; returns the location written."""
    fmt = format_for(path, fmt)
    text = dump_spec(spec, fmt)
    spath = str(path)
    try:
        if _is_uri(spath):
            import fsspec

            with fsspec.open(spath, "wt", encoding="utf-8") as fh:
                fh.write(text)
        else:
            p = Path(spath)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
    except (OSError, ValueError, ImportError) as exc:
        raise SpecError(f"cannot write spec file: {exc}", file=spath, expected="a writable location") from exc
    return spath


def none_leaves(spec: Any, prefix: tuple[Segment, ...] = ()) -> list[tuple[Segment, ...]]:
    """Paths of every ``None`` value (mapping values and list items)."""
    out: list[tuple[Segment, ...]] = []
    if isinstance(spec, Mapping):
        for k, v in spec.items():
            out.extend(none_leaves(v, prefix + (k,)))
    elif isinstance(spec, list):
        for i, v in enumerate(spec):
            out.extend(none_leaves(v, prefix + (i,)))
    elif spec is None and prefix:
        out.append(prefix)
    return out


def drop_none_leaves(spec: dict[str, Any], paths: list[tuple[Segment, ...]]) -> list[str]:
    """Delete the mapping entries at ``paths`` whose value is ``None`` (in place).

    Returns the dotted keys dropped.  ``None`` items inside lists are not
    dropped (that would shift indices); :func:`dump_spec` reports them.
    """
    dropped: list[str] = []
    for path in paths:
        node: Any = spec
        try:
            for seg in path[:-1]:
                node = node[seg]
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(node, dict) and path[-1] in node and node[path[-1]] is None:
            del node[path[-1]]
            dropped.append(format_path(path))
    return dropped
