"""Parse the TAO schema dialect (and plain JSON Schema) into :class:`TaoSchema`.

Dialect notes handled here:

* bare ``Infinity`` / ``-Infinity`` / ``NaN`` in the JSON text; as a bound,
  ``maximum: Infinity`` / ``minimum: -Infinity`` mean *unbounded* (TAO writes
  them), while ``NaN`` and a bound infinite on the wrong side (``minimum:
  Infinity``) are refused (:class:`SchemaGateError` naming the key);
* non-dict entries inside ``properties`` (e.g. a list named
  ``automl_disabled_parameters``) are skipped as parameters, but such lists
  are still read as parameter lists;
* TAO types (``int``, ``float``, ``bool``, ``string``, ``categorical``,
  ``collection``, ``list``, ``list_1_backbone``, ``list_2``, ``list_3``,
  ``ordered_int``, ``subset_list``, ``optional_list``), standard types
  (``integer``, ``number``, ``boolean``, ``object``, ``array``, ``string``;
  ``type`` may be a list with ``"null"``) and ``anyOf`` nodes;
* ``automl_default_parameters`` / ``automl_disabled_parameters`` at the top
  level *and* inside any collection (entries are dotted paths; a relative
  entry is resolved against the collection's path when that exists).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tao_automl.errors import SchemaGateError, describe
from tao_automl.schema.model import KINDS, ParamDef, TaoSchema

__all__ = ["load_schema", "parse_schema", "normalize_kind"]

_STD = {
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "object": "collection",
    "array": "list",
    "string": "string",
}
_LIST_KEYS = ("automl_default_parameters", "automl_disabled_parameters")
#: Deepest nesting of collections (``properties`` inside ``properties``) accepted.
MAX_SCHEMA_DEPTH = 64


def load_schema(path: str | Path) -> TaoSchema:
    """Read and parse a schema file; :class:`SchemaGateError` when it is
    missing or does not parse."""
    path = Path(path)
    if not path.is_file():
        raise SchemaGateError("schema file is missing", file=path,
                              expected="an existing <action>.schema.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_parse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        value = (f"nested too deeply ({exc})" if isinstance(exc, RecursionError) else str(exc))[:300]
        raise SchemaGateError("schema file does not parse as JSON", file=path, value=value,
                              expected="UTF-8 JSON (bare Infinity allowed), nested at most "
                                       f"{MAX_SCHEMA_DEPTH} levels") from exc
    return parse_schema(data, source=str(path))


def _parse_constant(name: str) -> float:
    return float({"Infinity": "inf", "-Infinity": "-inf", "NaN": "nan"}[name])


def normalize_kind(node: dict, *, source: str = "<schema>", path: str = "") -> str:
    """Map a schema node's ``type``/``anyOf``/``enum`` onto one of :data:`KINDS`."""
    typ = node.get("type")
    if isinstance(typ, list):
        non_null = [t for t in typ if t != "null"]
        typ = non_null[0] if len(non_null) == 1 else None
        if typ is None and non_null:
            return _from_any_of([{"type": t} for t in non_null], node)
    if typ is None and isinstance(node.get("anyOf"), list):
        return _from_any_of([b for b in node["anyOf"] if isinstance(b, dict)], node)
    if typ is None:
        if isinstance(node.get("properties"), dict):
            return "collection"
        if node.get("enum"):
            return "categorical"
        d = node.get("default")
        return _kind_of_value(d) if "default" in node else "string"
    if typ in KINDS:
        if typ == "string" and node.get("enum"):
            return "categorical"
        return typ
    if typ in _STD:
        kind = _STD[typ]
        if kind == "string" and node.get("enum"):
            return "categorical"
        return kind
    # An unknown type word: keep it searchable only if an enum exists.
    return "categorical" if node.get("enum") else "string"


def _kind_of_value(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, dict):
        return "collection"
    if isinstance(v, list):
        return "list"
    return "string"


def _from_any_of(branches: list[dict], node: dict) -> str:
    types = set()
    string_enum = False
    for b in branches:
        t = b.get("type")
        if t == "null":
            continue
        types.add(t)
        if t == "string" and b.get("enum"):
            string_enum = True
    if string_enum or (node.get("enum") and types - {"integer", "number"}):
        return "categorical"
    if "number" in types or "float" in types:
        d = node.get("default")
        if ("integer" in types or "int" in types) and isinstance(d, int) and not isinstance(d, bool):
            return "int"
        return "float"
    if "integer" in types or "int" in types:
        return "int"
    if "boolean" in types or "bool" in types:
        return "bool"
    if "array" in types:
        return "list"
    if "object" in types:
        return "collection"
    return "string"


def _tuple_or_none(v: Any) -> tuple | None:
    if v is None:
        return None
    return tuple(v) if isinstance(v, list | tuple) else (v,)


def _enum_of(node: dict, kind: str) -> tuple | None:
    enum = node.get("enum")
    if enum is None and isinstance(node.get("anyOf"), list):
        opts: list = []
        for b in node["anyOf"]:
            if isinstance(b, dict):
                if b.get("type") == "boolean":
                    opts += [True, False]
                opts += list(b.get("enum") or [])
        enum = opts or None
    if enum is None and kind == "bool":
        return None
    return _tuple_or_none(enum)


def _depends(v: Any) -> tuple[str, ...]:
    if not v:
        return ()
    if isinstance(v, list | tuple):
        items = [str(x) for x in v]
    else:
        items = str(v).split(",")
    return tuple(s.strip() for s in items if s and s.strip())


def parse_schema(data: Any, source: str = "<schema>") -> TaoSchema:
    """Parse an already-loaded schema document (see module docstring)."""
    if not isinstance(data, dict):
        raise SchemaGateError("schema root is not an object", file=source, value=type(data).__name__,
                              expected="a JSON object with 'properties'")
    if not isinstance(data.get("properties"), dict):
        raise SchemaGateError("schema has no 'properties' object", file=source, key="properties",
                              value=data.get("properties"), expected="an object of parameters")
    params: dict[str, ParamDef] = {}
    lists: dict[str, list[str]] = {k: [] for k in _LIST_KEYS}
    popular: set[str] = set()
    _collect_lists(data, "", lists, source)
    _collect_popular(data.get("popular"), "", popular)
    _walk(data["properties"], "", True, params, lists, popular, source)

    def resolve(entries: list[tuple[str, str]]) -> list[str]:
        out: list[str] = []
        for prefix, e in entries:
            full = e
            if prefix and e not in params and f"{prefix}.{e}" in params:
                full = f"{prefix}.{e}"
            if full not in out:
                out.append(full)
        return out

    default_parameters = resolve(lists["automl_default_parameters"])
    disabled = set(resolve(lists["automl_disabled_parameters"]))
    popular |= {p.path for p in params.values() if p.popular}
    params = {
        k: (p if p.popular or k not in popular else _with_popular(p)) for k, p in params.items()
    }
    defaults = data.get("default") if isinstance(data.get("default"), dict) else {}
    return TaoSchema(
        params=params,
        default_parameters=default_parameters,
        disabled_parameters=disabled,
        defaults=defaults,
        popular=popular,
        source=source,
    )


def _with_popular(p: ParamDef) -> ParamDef:
    import attrs

    return attrs.evolve(p, popular=True)


def _collect_lists(node: dict, prefix: str, lists: dict, source: str = "<schema>") -> None:
    for key in _LIST_KEYS:
        for where in (node, node.get("properties") if isinstance(node.get("properties"), dict) else {}):
            v = where.get(key)
            if v is None:
                continue
            if not isinstance(v, list) or not all(isinstance(e, str) for e in v):
                where_key = f"{prefix}.{key}" if prefix else key
                raise SchemaGateError("malformed schema list", file=source, key=where_key, value=v,
                                      expected="a list of dotted parameter paths (strings)")
            lists[key].extend((prefix, e) for e in v)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_node(node: dict, path: str, source: str) -> None:
    """Fields the search space reads must have the right shape; a wrong one is
    a schema error naming the value (never a silently ignored bound)."""

    def bad(key: str, expected: str) -> SchemaGateError:
        return SchemaGateError("malformed schema field", file=source, key=f"{path}.{key}", value=node[key],
                               expected=expected)

    for key, wrong_inf in (("minimum", math.inf), ("maximum", -math.inf)):
        v = node.get(key)
        if v is not None and not _is_num(v) and not (isinstance(v, list) and all(_is_num(x) for x in v)):
            raise bad(key, "a number (or a list of numbers for a list parameter)")
        # NaN is never a bound; -Infinity/Infinity mean "unbounded" only on
        # their own side (a minimum of +Infinity would be used as a bound).
        for x in v if isinstance(v, list) else [v]:
            if _is_num(x) and (math.isnan(x) or x == wrong_inf):
                raise bad(key, "a finite number, or " + ("-Infinity (no lower bound)" if key == "minimum"
                                                          else "Infinity (no upper bound)"))
    w = node.get("option_weights")
    if w is not None and not (isinstance(w, list) and all(_is_num(x) and math.isfinite(x) for x in w)):
        raise bad("option_weights", "a list of finite numbers")
    if "enum" in node and node["enum"] is not None and not isinstance(node["enum"], list):
        raise bad("enum", "a list of options")
    if "automl_enabled" in node and node["automl_enabled"] is not None \
            and not isinstance(node["automl_enabled"], bool):
        raise bad("automl_enabled", "true or false")
    t = node.get("type")
    if t is not None and not isinstance(t, str) and not (isinstance(t, list) and all(isinstance(x, str) for x in t)):
        raise bad("type", "a type name or a list of type names")
    d = node.get("depends_on")
    if d is not None and not isinstance(d, str) and not (isinstance(d, list) and all(isinstance(x, str) for x in d)):
        raise bad("depends_on", "a dotted path or a list of paths")
    if node.get("properties") is not None and not isinstance(node["properties"], dict):
        raise bad("properties", "an object of parameters")
    m = node.get("math_cond")
    if m is not None and not isinstance(m, str | int | float):
        raise bad("math_cond", "an expression string such as '^ 2'")


def _collect_popular(pop: Any, prefix: str, out: set[str]) -> None:
    if prefix.count(".") > MAX_SCHEMA_DEPTH:
        return  # the walk of the properties refuses such a schema
    if isinstance(pop, dict):
        for k, v in pop.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                _collect_popular(v, path, out)
            else:
                out.add(path)
    elif isinstance(pop, list):
        out.update(f"{prefix}.{k}" if prefix else str(k) for k in pop if isinstance(k, str))


def _walk(props: dict, prefix: str, parent_enabled: bool, params: dict, lists: dict,
          popular: set, source: str) -> None:
    if prefix.count(".") + 1 > MAX_SCHEMA_DEPTH:
        raise SchemaGateError.from_message(
            describe("schema nested too deeply", file=source, key=prefix[:200] + "...",
                     expected=f"collections nested at most {MAX_SCHEMA_DEPTH} levels"),
            file=source, key=prefix)
    for name, node in props.items():
        if not isinstance(node, dict):
            continue  # e.g. a list named automl_disabled_parameters
        path = f"{prefix}.{name}" if prefix else str(name)
        _check_node(node, path, source)
        kind = normalize_kind(node, source=source, path=path)
        own = node.get("automl_enabled")
        own = own if isinstance(own, bool) else None
        # A collection's flag is about the collection node itself: every real
        # schema marks each top-level collection false while its leaves are
        # tuned, so the flag is NOT inherited (as for the disabled lists).
        enabled = own if own is not None else True
        pop = node.get("popular")
        weights = node.get("option_weights")
        math_cond = node.get("math_cond")
        params[path] = ParamDef(
            path=path,
            kind=kind,
            default=node.get("default"),
            minimum=node.get("minimum"),
            maximum=node.get("maximum"),
            enum=_enum_of(node, kind),
            option_weights=tuple(float(w) for w in weights) if isinstance(weights, list) else None,
            math_cond=str(math_cond).strip() if math_cond not in (None, "") else None,
            depends_on=_depends(node.get("depends_on")),
            parent_param=node.get("parent_param"),
            automl_enabled=enabled,
            own_automl_enabled=own,
            popular=pop is True,
            title=node.get("title"),
            description=node.get("description"),
            has_default="default" in node,
            raw={k: v for k, v in node.items() if k != "properties"},
        )
        if kind == "collection":
            if isinstance(pop, list | dict):
                _collect_popular(pop, path, popular)
            _collect_lists(node, path, lists, source)
            sub = node.get("properties")
            if isinstance(sub, dict):
                _walk(sub, path, enabled, params, lists, popular, source)
