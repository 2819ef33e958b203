"""Fill dataset spec keys from ``data_sources.<action>`` and dataset root URIs.

Each entry of ``data_sources.<action>`` maps a spec key to a source:

``source``
    which dataset root feeds it: ``train_datasets``, ``eval_dataset``,
    ``inference_dataset`` or ``calibration_dataset`` (keys of ``dataset_uris``).
``path``
    a file or folder relative to the root URI.  ``{name}`` placeholders
    (``{train_dataset_annotation}``) are filled from ``placeholders``; an
    unfilled one makes the key *missing* (reported, never guessed).  A filled
    value that is itself absolute (``/x`` or ``scheme://``) is used as is.
``path_from_format``
    ``{data_format: path}`` with ``*`` as fallback.  A list value names
    several candidates: the first is used (and a note names the others),
    or all of them when the entry has ``list: true``.
``mapping``
    ``{field: relative path}``: the value is a mapping built per root URI.
``list``
    the value is a list with one entry per URI of the source.
``multiple_sources``
    whether the source may hold several URIs for a non-list key; when it is
    false and several are given, SpecError names the key.
``optional``
    a missing root URI is not an error (the template value is kept).
``runtime: extracted_folder``
    the path names an archive (``images.tar.gz``) that the model reads as an
    extracted folder.  This library does **not** download or extract data:
    the spec value is the archive URI, the key is listed in
    :attr:`DataResolution.archives`, and a note says so.  The platform (or
    the user, by overriding the key with an extracted folder) must provide
    the folder; the job fails with ``NotADirectoryError`` otherwise.

Keys the user set explicitly (``user_keys``) always win: they are skipped.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from tao_automl.errors import SpecError
from tao_automl.spec.paths import format_path, parse_path

__all__ = ["SOURCE_NAMES", "SourceView", "as_source", "DataResolution", "resolve_data_sources",
           "join_uri"]

SOURCE_NAMES = ("train_datasets", "eval_dataset", "inference_dataset", "calibration_dataset")
_ABS = re.compile(r"^(/|[A-Za-z][A-Za-z0-9+.\-]*://)")


@attrs.frozen
class SourceView:
    """Normalised view of one ``data_sources`` entry (from an object or a dict)."""

    source: str
    path: str | None = None
    runtime: str | None = None
    list: bool = False
    mapping: dict[str, Any] | None = None
    path_from_format: dict[str, Any] | None = None
    optional: bool = False
    multiple_sources: bool | None = None


def as_source(entry: Any, *, key: str = "?") -> SourceView:
    """Adapt a loader ``DataSource`` (duck-typed) or a plain dict."""
    fields = ("source", "path", "runtime", "list", "mapping", "path_from_format", "optional",
              "multiple_sources")
    if isinstance(entry, Mapping):
        get = entry.get
    else:
        def get(name: str, default: Any = None) -> Any:
            return getattr(entry, name, default)
    vals = {f: get(f) for f in fields}
    if not isinstance(vals["source"], str) or not vals["source"]:
        raise SpecError("data source entry has no 'source'", key=key, value=vals["source"],
                        expected=f"one of {', '.join(SOURCE_NAMES)}")
    if vals["path"] is None and not vals["path_from_format"] and not vals["mapping"]:
        raise SpecError("data source entry has neither 'path', 'path_from_format' "
                        "nor 'mapping'", key=key, value=dict(vals), expected="one of them")
    return SourceView(
        source=vals["source"],
        path=None if vals["path"] is None else str(vals["path"]),
        runtime=vals["runtime"],
        list=bool(vals["list"]),
        mapping=dict(vals["mapping"]) if vals["mapping"] else None,
        path_from_format=dict(vals["path_from_format"]) if vals["path_from_format"] else None,
        optional=bool(vals["optional"]),
        multiple_sources=vals["multiple_sources"],
    )


@attrs.frozen
class DataResolution:
    """Result of :func:`resolve_data_sources`.

    ``values``: ``{dotted spec key: value}`` to assign; ``missing``: mandatory
    keys that could not be filled; ``notes``: what was decided and why;
    ``archives``: ``{dotted key: archive URI}`` for ``runtime: extracted_folder``.
    """

    values: dict[str, Any] = attrs.field(factory=dict)
    missing: list[str] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)
    archives: dict[str, str | list[str]] = attrs.field(factory=dict)


def join_uri(root: str, rel: str) -> str:
    """Join a root URI/path and a relative path with exactly one ``/``."""
    if _ABS.match(rel):
        return rel
    if not rel:
        return root
    return root.rstrip("/") + "/" + rel.lstrip("/")


def _uris(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value if v]


def _fill(template: str, placeholders: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    absent = [n for n in names if placeholders.get(n) in (None, "")]
    if absent:
        return None, absent
    return template.format_map({n: placeholders[n] for n in names}), []


def _candidates(view: SourceView, data_format: str | None) -> tuple[list[str], str]:
    if view.path is not None:
        return [view.path], ""
    table = view.path_from_format or {}
    if data_format is not None and data_format in table:
        choice, why = table[data_format], f"data_format '{data_format}'"
    elif "*" in table:
        choice, why = table["*"], f"fallback '*' (data_format {data_format!r} not listed)"
    else:
        return [], f"no path_from_format entry for data_format {data_format!r} and no '*'"
    cands = [str(c) for c in choice] if isinstance(choice, list) else [str(choice)]
    return cands, why


def resolve_data_sources(
    sources: Mapping[str, Any],
    dataset_uris: Mapping[str, str | list[str]] | None,
    *,
    data_format: str | None = None,
    user_keys: Iterable[str] = (),
    placeholders: Mapping[str, Any] | None = None,
) -> DataResolution:
    """Compute the dataset spec values for one action.

    ``dataset_uris`` keys are source names; any other key is also usable as a
    path placeholder (``{"train_dataset_annotation": "annotations.json"}``),
    as are the entries of ``placeholders`` (which win).
    """
    uris = dict(dataset_uris or {})
    fills: dict[str, Any] = {k: v for k, v in uris.items() if k not in SOURCE_NAMES}
    fills.update(placeholders or {})
    given = {format_path(parse_path(k)) for k in user_keys}
    res = DataResolution()
    for raw_key, entry in (sources or {}).items():
        key = format_path(parse_path(raw_key))
        view = as_source(entry, key=key)
        if key in given:
            res.notes.append(f"data source '{key}': user-given value kept")
            continue
        roots = _uris(uris.get(view.source))
        if not roots:
            if view.optional:
                res.notes.append(f"data source '{key}': optional source '{view.source}' not given; "
                                 "template value kept")
            else:
                res.missing.append(key)
                res.notes.append(f"data source '{key}': no URI for '{view.source}'; "
                                 f"set dataset_uris['{view.source}'] or override '{key}'")
            continue
        many = view.list or view.multiple_sources is True
        if len(roots) > 1 and not many:
            raise SpecError(f"data source '{key}' takes one '{view.source}' URI but {len(roots)} were given",
                            key=key, value=roots,
                            expected="a single URI (the entry has multiple_sources: false and no list: true)")
        value, ok = _build_value(key, view, roots, data_format, fills, res)
        if ok:
            res.values[key] = value
    return res


def _one(key: str, view: SourceView, root: str, rels: list[str], fills: Mapping[str, Any],
         res: DataResolution) -> list[str] | None:
    out = []
    for rel in rels:
        filled, absent = _fill(rel, fills)
        if filled is None:
            res.missing.append(key)
            res.notes.append(f"data source '{key}': path '{rel}' needs "
                             + ", ".join(f"'{a}'" for a in absent)
                             + f" (pass it in placeholders/dataset_uris or override '{key}')")
            return None
        out.append(join_uri(root, filled))
    return out


def _build_value(key: str, view: SourceView, roots: list[str], data_format: str | None,
                 fills: Mapping[str, Any], res: DataResolution) -> tuple[Any, bool]:
    if view.mapping:
        items = []
        for root in roots:
            item = {}
            for field, rel in view.mapping.items():
                got = _one(key, view, root, [str(rel)], fills, res)
                if got is None:
                    return None, False
                item[field] = got[0]
            items.append(item)
        return (items if view.list or len(items) > 1 else items[0]), True
    cands, why = _candidates(view, data_format)
    if not cands:
        res.missing.append(key)
        res.notes.append(f"data source '{key}': {why}")
        return None, False
    if not view.list and len(cands) > 1:
        res.notes.append(f"data source '{key}': picked '{cands[0]}' for {why} from candidates "
                         f"{cands}; override '{key}' to use another")
        cands = cands[:1]
    values: list[str] = []
    for root in roots:
        got = _one(key, view, root, cands, fills, res)
        if got is None:
            return None, False
        values.extend(got)
    if view.runtime == "extracted_folder":
        res.archives[key] = list(values) if (view.list or len(values) > 1) else values[0]
        res.notes.append(f"data source '{key}': {values[0] if len(values) == 1 else values} is an "
                         "archive the model reads as an extracted folder (runtime: "
                         "extracted_folder); the platform must extract it, or override "
                         f"'{key}' with an extracted folder")
    elif view.runtime not in (None, ""):
        res.notes.append(f"data source '{key}': runtime {view.runtime!r} is not known to this "
                         "library; value passed through")
    if view.list or len(values) > 1:
        return values, True
    return values[0], True
