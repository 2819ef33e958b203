"""ParamDef -> SearchParam (ranges, math_cond encodings, list rule) and
custom ranges (``valid_min``/``valid_max``/``valid_options``/``math_cond``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from tao_automl.errors import SearchSpaceError, describe
from tao_automl.schema import ParamDef
from tao_automl.search.params import SearchParam, derive_range, is_log_range, parse_math_cond

__all__ = ["EPOCH_NAMES", "Unsearchable", "apply_custom_range", "to_search_param"]

#: Leaf names taken to be the epoch count when bounding milestone lists.
EPOCH_NAMES = ("num_epochs", "epochs", "epoch", "max_epochs", "n_epochs")
_LISTS = ("list", "list_2", "list_3")


class Unsearchable(ValueError):
    """The parameter's type has no sampling rule (message = the reason)."""


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _pick_default(value: Any, ok) -> Any:
    return value if value is not None and ok(value) else None


def to_search_param(p: ParamDef, flat: Mapping[str, Any], *, source: str) -> SearchParam:
    """Turn a schema parameter into a :class:`SearchParam` (Unsearchable /
    ValueError with the reason when impossible)."""
    tval = flat.get(p.path)
    common = dict(name=p.path, math_cond=p.math_cond, depends_on=p.depends_on, source=source)
    if p.kind == "bool":
        return SearchParam(kind="bool", options=(True, False),
                           default=tval if isinstance(tval, bool) else p.default, **common)
    if p.kind == "categorical" or (p.kind == "string" and p.enum):
        if not p.enum:
            raise Unsearchable("categorical without enum options")
        weights = p.option_weights
        if weights is not None and (len(weights) != len(p.enum) or any(w < 0 for w in weights)
                                    or sum(weights) <= 0):
            raise ValueError(f"option_weights {list(weights)} do not match enum {list(p.enum)}")
        default = tval if tval in p.enum else (p.default if p.default in p.enum else None)
        return SearchParam(kind="categorical", options=tuple(p.enum), weights=weights,
                           default=default, **common)
    if p.kind in ("int", "float", "ordered_int"):
        return _numeric(p, tval, common)
    if p.kind in _LISTS:
        return _list_param(p, tval, flat, common)
    if p.kind == "string":
        raise Unsearchable("a free-form string (no enum) cannot be searched")
    if p.kind == "collection":
        raise Unsearchable("a collection cannot be searched; search its leaves")
    raise Unsearchable(f"type {p.kind!r} has no sampling rule")


def _numeric(p: ParamDef, tval: Any, common: dict) -> SearchParam:
    kind = "float" if p.kind == "float" else "int"
    base = p.default if _num(p.default) else (tval if _num(tval) else None)
    lo, hi, note = derive_range(kind, base, p.minimum, p.maximum)
    if lo == hi:
        raise ValueError(f"the schema fixes it to {lo} (minimum == maximum)")
    return _with_cond(SearchParam(kind=kind, low=lo, high=hi, note=note, **common), tval, p.default)


def _with_cond(sp: SearchParam, tval: Any, sdefault: Any) -> SearchParam:
    """Apply the math_cond encoding, log rule and a valid default."""
    cond = parse_math_cond(sp.math_cond)
    lo, hi = sp.low, sp.high
    enc, step = "plain", None
    if cond and cond[0] == "pow2":
        lo = max(lo, 1)
        elo, ehi = math.ceil(math.log2(lo) - 1e-9), math.floor(math.log2(hi) + 1e-9)
        if elo > ehi:
            raise ValueError(f"no power of 2 in [{sp.low}, {sp.high}]")
        lo, hi, enc = 2 ** elo, 2 ** ehi, "pow2"
        if lo == hi:
            raise ValueError(f"only one power of 2 ({lo}) in [{sp.low}, {sp.high}]")
    elif cond and cond[0] == "div" and not sp.depends_on:
        k = cond[1]
        lo, hi, step = math.ceil(lo / k - 1e-9) * k, math.floor(hi / k + 1e-9) * k, k
        if sp.kind == "int":
            lo, hi = int(lo), int(hi)
        if lo > hi or lo == hi:
            raise ValueError(f"not enough multiples of {k} in [{sp.low}, {sp.high}]")
    log = enc == "plain" and step is None and is_log_range(lo, hi)
    sp = attrs.evolve(sp, low=lo, high=hi, encoding=enc, step=step, log=log)
    default = _pick_default(tval, sp.contains) or _pick_default(sdefault, sp.contains)
    note = sp.note
    if default is None and (tval is not None or sdefault is not None):
        shown = tval if tval is not None else sdefault
        note = "; ".join(x for x in (note, f"default {shown!r} is outside the searched range") if x)
    return attrs.evolve(sp, default=default, note=note)


def _epoch_bound(p: ParamDef, flat: Mapping[str, Any]) -> tuple[int, str] | None:
    for dep in p.depends_on:
        if _num(flat.get(dep)):
            return int(flat[dep]), dep
    parts = p.path.split(".")
    best = None
    for key, v in flat.items():
        if key.rsplit(".", 1)[-1] in EPOCH_NAMES and _num(v) and not isinstance(v, bool):
            kp = key.split(".")
            common = 0
            for a, b in zip(parts, kp, strict=False):
                if a != b:
                    break
                common += 1
            if best is None or common > best[0]:
                best = (common, int(v), key)
    return (best[1], best[2]) if best else None


def _list_param(p: ParamDef, tval: Any, flat: Mapping[str, Any], common: dict) -> SearchParam:
    default = tval if isinstance(tval, list) else p.default
    if not isinstance(default, list) or not default:
        raise Unsearchable(f"{p.kind} without a non-empty default list has no sampling rule")
    n = len(default)
    if isinstance(p.minimum, list) or isinstance(p.maximum, list):
        raise Unsearchable(f"{p.kind} with element-wise bounds is not searchable as one value; "
                           "search it through custom_ranges on a scalar instead")
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in default)
    if not ints or any(b <= a for a, b in zip(default, default[1:], strict=False)):
        raise Unsearchable(f"{p.kind} {default!r} is not a strictly increasing integer list "
                           "(the only list shape with a sampling rule)")
    lo = int(p.minimum) if _num(p.minimum) else 1
    found = _epoch_bound(p, flat)
    if _num(p.maximum):
        hi, why = int(p.maximum), "schema maximum"
    elif found:
        hi, why = found[0], f"epoch count {found[1]}={found[0]} from the template"
    else:
        hi, why = max(default), "largest default element"
    if hi - lo + 1 < n:
        raise ValueError(f"cannot fit {n} increasing values in [{lo}, {hi}] ({why})")
    sp = SearchParam(kind="int", low=lo, high=hi, length=n, encoding="sorted_list",
                     note=f"{n} strictly increasing integers in [{lo}, {hi}] ({why})", **common)
    d = _pick_default(default, sp.contains)
    note = sp.note if d is not None else sp.note + f"; default {default!r} is outside the range"
    return attrs.evolve(sp, default=d, note=note)


def apply_custom_range(sp: SearchParam, p: ParamDef, rng: Mapping[str, Any], *, file: Any
                       ) -> SearchParam:
    """Narrow ``sp`` with a user range; it must stay inside the schema's
    finite bounds and enum (SearchSpaceError otherwise)."""

    def fail(key: str, value: Any, expected: str) -> SearchSpaceError:
        return SearchSpaceError.from_message(describe("custom range outside the schema", file=file,
                                         key=f"{p.path}.{key}", value=value, expected=expected),
                                file=file, key=p.path, value=value, expected=expected)

    sp = attrs.evolve(sp, source="user")
    if "valid_options" in rng:
        opts = rng["valid_options"]
        if not isinstance(opts, list | tuple) or not opts:
            raise fail("valid_options", opts, "a non-empty list")
        if sp.options is not None:
            bad = [o for o in opts if o not in sp.options]
            if bad:
                raise fail("valid_options", bad, f"options from {list(sp.options)}")
            weights = None
            if sp.weights:
                weights = tuple(sp.weights[list(sp.options).index(o)] for o in opts)
                weights = weights if sum(weights) > 0 else None
            return attrs.evolve(sp, options=tuple(opts), weights=weights,
                                default=sp.default if sp.default in opts else None)
        if sp.encoding == "sorted_list":
            raise fail("valid_options", opts, "valid_min/valid_max for a list parameter")
        lo_s, hi_s = p.finite_minimum, p.finite_maximum
        for o in opts:
            if not _num(o) or (sp.kind == "int" and not float(o).is_integer()) \
                    or (lo_s is not None and o < lo_s) or (hi_s is not None and o > hi_s):
                raise fail("valid_options", o, f"{sp.kind} values within the schema bounds "
                                               f"[{p.minimum}, {p.maximum}]")
            cond = parse_math_cond(rng.get("math_cond", sp.math_cond))
            if cond and cond[0] == "pow2" and (o <= 0 or int(o) & (int(o) - 1)):
                raise fail("valid_options", o, "powers of 2 (math_cond '^ 2')")
        vals = tuple(int(o) if sp.kind == "int" else float(o) for o in opts)
        return attrs.evolve(sp, options=vals, encoding="plain", step=None, log=False,
                            low=None, high=None, weights=None,
                            default=sp.default if sp.default in vals else None)
    if sp.options is not None:
        if {"valid_min", "valid_max"} & set(rng):
            raise fail("valid_min", rng.get("valid_min", rng.get("valid_max")),
                       "valid_options for a categorical/bool parameter")
        return sp
    lo_s, hi_s = p.finite_minimum, p.finite_maximum
    lo = rng.get("valid_min", sp.low)
    hi = rng.get("valid_max", sp.high)
    for key, v in (("valid_min", lo), ("valid_max", hi)):
        if not _num(v) or (sp.kind == "int" and not float(v).is_integer()):
            raise fail(key, v, f"a finite {sp.kind}")
        if (lo_s is not None and v < lo_s) or (hi_s is not None and v > hi_s):
            raise fail(key, v, f"a value within the schema bounds [{p.minimum}, {p.maximum}]")
    if lo >= hi:
        raise fail("valid_min", [lo, hi], "valid_min < valid_max")
    cond = rng.get("math_cond", sp.math_cond)
    try:
        parse_math_cond(cond)
    except ValueError as exc:
        raise fail("math_cond", cond, str(exc)) from None
    if sp.kind == "int":
        lo, hi = int(lo), int(hi)
    base = SearchParam(**{**attrs.asdict(sp, recurse=False), "low": lo, "high": hi,
                          "math_cond": cond, "encoding": "plain", "step": None, "log": False,
                          "note": "custom range"})
    if sp.encoding == "sorted_list":
        if hi - lo + 1 < sp.length:
            raise fail("valid_max", hi, f"room for {sp.length} increasing values")
        return attrs.evolve(base, encoding="sorted_list",
                            default=sp.default if base.contains(sp.default) else None)
    try:
        return _with_cond(base, sp.default, p.default)
    except ValueError as exc:
        raise fail("math_cond", cond, str(exc)) from None
