"""Check a proposed configuration against the schema-gated space.

Each parameter gets a verdict: ``accepted`` (valid as given; an integral
float for an int parameter counts), ``clamped`` (a float a rounding error
outside its bounds, or a value off its step, moved to the nearest valid
value; the note says from what) or ``rejected`` (wrong type, outside bounds,
not an option, not a power of 2...).  Unknown and missing keys, constraint
violations (``tao_automl.search.constraints``) and duplicates of finished or
pending configurations are problems too.  A proposal with any problem is not
run: the searcher sends one repair prompt naming them all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["Validation", "validate_proposal", "config_key"]

REL_TOL = 1e-9


@attrs.define
class Validation:
    ok: bool
    values: dict[str, Any]  # decoded (user) values
    encoded: dict[str, Any]  # searcher encoding (what Tune gets)
    report: dict[str, dict[str, Any]]
    problems: list[str]
    reasoning: str = ""


def config_key(values: Mapping[str, Any]) -> str:
    """A canonical text of decoded values (for duplicate checks)."""
    import json

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, float):
            return float(f"{v:.10g}")
        return v

    return json.dumps({k: norm(v) for k, v in sorted(values.items())}, sort_keys=True, default=str)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_param(p: Any, raw: Any) -> tuple[str, Any, str]:
    """(verdict, value, why) for one parameter."""
    if p.options is not None:
        for opt in p.options:  # exact type: True is not 1
            if raw == opt and type(raw) is type(opt) or (_number(raw) and _number(opt) and raw == opt
                                                          and not isinstance(opt, bool)):
                return "accepted", opt, ""
        return "rejected", raw, f"not one of the options {list(p.options)}"
    if p.encoding == "sorted_list":
        if not isinstance(raw, list) or len(raw) != p.length or not all(_number(x) for x in raw):
            return "rejected", raw, f"expected a list of {p.length} integers"
        vals = [int(x) if float(x).is_integer() else x for x in raw]
        if not p.contains(vals):
            return "rejected", raw, f"expected {p.length} strictly increasing integers within [{p.low}, {p.high}]"
        return "accepted", vals, ""
    if not _number(raw):
        return "rejected", raw, f"expected a finite {'integer' if p.kind == 'int' else 'number'}"
    value: Any = raw
    if p.kind == "int":
        if not float(raw).is_integer():
            return "rejected", raw, "expected an integer"
        value = int(raw)
    else:
        value = float(raw)
    verdict, why = "accepted", ""
    lo, hi = p.low, p.high
    if not lo <= value <= hi:
        span = abs(hi - lo) or 1.0
        if p.kind != "int" and (lo - span * REL_TOL <= value <= hi + span * REL_TOL):
            value, verdict, why = min(max(value, lo), hi), "clamped", f"{raw!r} rounded into [{lo}, {hi}]"
        else:
            return "rejected", raw, f"outside [{lo}, {hi}]"
    if p.encoding == "pow2":
        if not (value > 0 and (int(value) & (int(value) - 1)) == 0):
            return "rejected", raw, "expected a power of 2"
    elif p.step:
        q = round(value / p.step)
        snapped = q * p.step
        if p.kind == "int":
            snapped = int(snapped)
        if abs(snapped - value) > 1e-9 * max(1.0, abs(value)):
            if not lo <= snapped <= hi:
                return "rejected", raw, f"expected a multiple of {p.step} within [{lo}, {hi}]"
            value, verdict, why = snapped, "clamped", f"{raw!r} moved to the nearest multiple of {p.step}"
    return verdict, value, why


def validate_proposal(space: Any, obj: Any, *, enforce_kwargs: Mapping[str, Any] | None = None,
                      taken: Iterable[tuple[str, str]] = ()) -> Validation:
    """Validate the reply object ``{"reasoning", "config"}``.

    ``taken``: (what, config_key) of finished and pending configurations."""
    problems: list[str] = []
    report: dict[str, dict[str, Any]] = {}
    if not isinstance(obj, Mapping):
        return Validation(False, {}, {}, {}, ["the reply is not a JSON object"])
    reasoning = obj.get("reasoning")
    config = obj.get("config")
    extra = sorted(set(obj) - {"reasoning", "config"})
    if extra:
        problems.append(f"unexpected top-level keys {extra} (expected only 'reasoning' and 'config')")
    if not isinstance(reasoning, str):
        problems.append("'reasoning' must be a string")
        reasoning = "" if reasoning is None else str(reasoning)
    if not isinstance(config, Mapping):
        problems.append("'config' must be an object mapping parameter names to values")
        return Validation(False, {}, {}, {}, problems, reasoning)
    names = {p.name: p for p in space.params}
    for key in config:
        if key not in names:
            report[str(key)] = {"raw": config[key], "verdict": "rejected", "why": "unknown parameter"}
            problems.append(f"unknown parameter {key!r} (the parameters are {sorted(names)})")
    values: dict[str, Any] = {}
    for name, p in names.items():
        if name not in config:
            problems.append(f"parameter {name!r} is missing")
            report[name] = {"raw": None, "verdict": "rejected", "why": "missing"}
            continue
        verdict, value, why = _check_param(p, config[name])
        report[name] = {"raw": config[name], "value": value, "verdict": verdict, **({"why": why} if why else {})}
        if verdict == "rejected":
            problems.append(f"{name} = {config[name]!r}: {why}")
        else:
            values[name] = value
    if problems:
        return Validation(False, values, {}, report, problems, reasoning)
    fixed, notes = space.enforce(dict(values), **dict(enforce_kwargs or {}))
    for name, v in fixed.items():
        if name in values and v != values[name]:
            report[name].update(verdict="rejected", why=f"violates a constraint (would become {v!r})")
            problems.append(f"{name} = {values[name]!r} violates a constraint: " + "; ".join(notes))
    if problems:
        return Validation(False, values, {}, report, problems, reasoning)
    key = config_key(values)
    for what, other in taken:
        if other == key:
            problems.append(f"this configuration repeats a {what} trial; propose a different one")
            break
    ok = not problems
    return Validation(ok, values, space.encode(values) if ok else {}, report, problems, reasoning)
