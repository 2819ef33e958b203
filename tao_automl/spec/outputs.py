"""Route an action's declared ``outputs`` into the job's own folder.

``actions.<action>.outputs`` in ``skill_info.yaml`` maps spec keys (dotted,
any depth) to ``{type: folder}`` or ``{type: file}``.  Whatever the template
(or a key default / data source) holds there -- ``""``, ``./results``,
``/results`` -- would be shared by every job of a run, so each job gets its
own place, inside the job folder (``output_dir`` of the spec_params context):

* the first folder output is the job folder itself (so ``metrics.json``,
  ``status.json`` and checkpoints land where the metric and checkpoint readers
  look first); a further folder output is ``<job folder>/<its key>``;
* a file output is ``<job folder>/<file name>``: the base name of the value
  it had, or the key's last segment when it had none;
* a value already inside the job folder (set by a ``spec_params`` function
  such as ``output_dir`` or ``create_onnx_file``) is kept;
* a value the user gave explicitly (spec override) is kept when it is a URI
  (``s3://...``): it is the user's own place.  A local path given explicitly
  would be shared by every concurrent job (they overwrite each other), so it
  is refused before launch.

Outputs of any other type are left alone with a note.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

import attrs

from tao_automl.errors import SpecError
from tao_automl.spec.data_sources import join_uri
from tao_automl.spec.paths import Path, format_path, get_path, parse_path

__all__ = ["OutputRouting", "ROUTED_TYPES", "declared_outputs", "route_outputs", "is_uri"]

ROUTED_TYPES = ("folder", "file")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ABSENT: Any = object()


@attrs.frozen
class OutputRouting:
    """``values``: ``{key path: routed value}`` to assign; ``kept``: declared
    outputs left as they were (``{dotted key: value}``); ``notes``."""

    values: dict[Path, str] = attrs.field(factory=dict)
    kept: dict[str, Any] = attrs.field(factory=dict)
    notes: list[str] = attrs.field(factory=list)


def is_uri(value: Any) -> bool:
    """True for ``scheme://...`` (``file://`` is a local path)."""
    return isinstance(value, str) and bool(_URI.match(value)) and not value.startswith("file://")


def declared_outputs(action_info: Any) -> dict[str, str | None]:
    """``{dotted key: type}`` of an action's ``outputs`` (IOSpec or plain dicts)."""
    out: dict[str, str | None] = {}
    for key, io in (getattr(action_info, "outputs", None) or {}).items():
        kind = io.get("type") if isinstance(io, Mapping) else getattr(io, "type", None)
        out[str(key)] = None if kind is None else str(kind).lower()
    return out


def _inside(value: Any, root: str) -> bool:
    if not isinstance(value, str) or not value:
        return False
    if is_uri(root) or is_uri(value):
        base = root.rstrip("/")
        return value.rstrip("/") == base or value.startswith(base + "/")
    v, r = posixpath.normpath(value), posixpath.normpath(root)
    return v == r or v.startswith(r.rstrip("/") + "/")


def _file_name(key: Path, value: Any) -> str:
    if isinstance(value, str) and value and not is_uri(value):
        name = posixpath.basename(value.rstrip("/"))
        if name not in ("", ".", ".."):
            return name
    last = next((s for s in reversed(key) if isinstance(s, str)), "output")
    return _UNSAFE.sub("_", last)


def route_outputs(
    action_info: Any,
    spec: Mapping[str, Any],
    output_dir: str | None,
    *,
    explicit: Mapping[Path, Any] | None = None,
    given_as: Mapping[Path, str] | None = None,
    action: str = "",
    skill_file: str | None = None,
) -> OutputRouting:
    """Where each declared output of ``action_info`` goes for the job whose
    folder is ``output_dir`` (see the module docstring for the rules).

    ``explicit``: ``{key path: value}`` the user set (spec overrides); such a
    key with a local path raises :class:`SpecError` naming the key as the
    user wrote it (``given_as``).  Without an ``output_dir`` nothing is routed
    (a note says so).
    """
    declared = declared_outputs(action_info)
    res = OutputRouting()
    if not declared:
        return res
    explicit = dict(explicit or {})
    given_as = dict(given_as or {})
    parsed = {k: parse_path(k) for k in declared}
    for dotted, kind in declared.items():
        path = parsed[dotted]
        if path not in explicit or kind not in ROUTED_TYPES:
            continue
        value = explicit[path]
        if is_uri(value):
            res.kept[format_path(path)] = value
            res.notes.append(f"output '{format_path(path)}' = {value!r}: a URI given by the user, "
                             "kept as given (every job of the run writes there)")
            continue
        user_key = given_as.get(path, format_path(path))
        where = f" in {skill_file}" if skill_file else ""
        raise SpecError(f"spec override '{user_key}' sets '{dotted}', declared{where} as a {kind} output of "
                        f"action '{action}', to a local path every job of the run would share (concurrent "
                        "trials would overwrite each other's files)", key=user_key, value=value,
                        expected="no override (each job's output goes to its own folder in the workspace) "
                                 "or a URI such as s3://bucket/prefix")
    if not output_dir:
        todo = [d for d, k in declared.items() if k in ROUTED_TYPES and parsed[d] not in explicit]
        if todo:
            res.notes.append("no output_dir in the context: declared outputs not routed: "
                             + ", ".join(todo))
        return res
    root_taken = any(
        kind == "folder" and parsed[d] not in explicit
        and _norm(get_path(spec, parsed[d], None)) == _norm(output_dir)
        for d, kind in declared.items())
    used: set[str] = set()
    for dotted, kind in declared.items():
        path = parsed[dotted]
        key = format_path(path)
        if path in explicit:
            continue
        if kind not in ROUTED_TYPES:
            res.notes.append(f"output '{key}' has type {kind!r}: not routed "
                             f"(only {' and '.join(ROUTED_TYPES)} outputs are)")
            continue
        current = get_path(spec, path, None)
        if _inside(current, output_dir):
            res.kept[key] = current
            continue
        if kind == "folder":
            if not root_taken:
                routed, root_taken = output_dir, True
            else:
                routed = join_uri(output_dir, _unique(_UNSAFE.sub("_", key), used))
        else:
            routed = join_uri(output_dir, _unique(_file_name(path, current), used))
        res.values[path] = routed
        res.notes.append(f"output '{key}' ({kind}): {current!r} -> {routed!r} (the job's own folder)")
    return res


def _norm(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    return value.rstrip("/") if is_uri(value) else posixpath.normpath(value)


def _unique(name: str, used: set[str]) -> str:
    out, i = name, 1
    while out in used:
        i += 1
        out = f"{name}-{i}"
    used.add(out)
    return out
