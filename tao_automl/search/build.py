"""Build a :class:`SearchSpace` from a :class:`TaoSchema` and a spec template.

Selection: explicit ``hyperparameters`` (each must exist in the schema, not be
disabled and be searchable, else SearchSpaceError), otherwise the schema's
``automl_default_parameters`` (plus any action-level ones the caller passes
in ``hyperparameters=None, action_defaults=[...]``), otherwise every leaf
whose own ``automl_enabled`` is true.  In the default set a parameter that
cannot be searched is recorded in ``excluded`` with the reason instead.

List rule: a ``list``/``list_2``/``list_3`` whose schema gives element-wise
finite ``minimum``/``maximum`` lists is searched element-wise; a list whose
default is a strictly increasing list of integers (e.g. LR milestones) is
searched as that many integers in ``[1, E]`` decoded to a strictly increasing
list, where ``E`` is the template's epoch count (the ``depends_on`` path or
the nearest ``num_epochs``/``epochs``/``epoch``/``max_epochs`` leaf), else
``max(default)``.  Other lists, strings without ``enum`` and collections
cannot be searched.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from tao_automl.errors import SearchSpaceError
from tao_automl.schema import ParamDef, TaoSchema
from tao_automl.search.constraints import KNOWN_CONSTRAINTS, coerce_constraints
from tao_automl.search.params import Constraint, SearchParam
from tao_automl.search.ranges import Unsearchable, apply_custom_range, to_search_param
from tao_automl.search.space import SearchSpace

__all__ = ["build_search_space", "flatten_scalars"]

_RANGE_KEYS = {"valid_min", "valid_max", "valid_options", "math_cond"}


def flatten_scalars(spec: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> value for every non-dict leaf of a nested spec."""
    out: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        for k, v in spec.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, Mapping):
                out.update(flatten_scalars(v, path))
            else:
                out[path] = v
    return out


def _is_set(v: Any) -> bool:
    return v is not None and v != "" and v != [] and v != {}


def build_search_space(
    schema: TaoSchema,
    template: Mapping[str, Any] | None,
    *,
    hyperparameters: Iterable[str] | None = None,
    custom_ranges: Mapping[str, Mapping[str, Any]] | None = None,
    constraints: Iterable[Constraint | Mapping[str, Any]] = (),
    skill_name: str = "",
    action_defaults: Iterable[str] | None = None,
) -> SearchSpace:
    """Build the schema-gated search space (see module docstring)."""
    src = schema.source
    flat = flatten_scalars(template or {})
    explicit = hyperparameters is not None
    if explicit:
        names = list(dict.fromkeys(hyperparameters))
        source = "user"
        for n in names:
            _check_explicit(schema, n)
    else:
        names = list(dict.fromkeys([*schema.default_parameters, *(action_defaults or [])]))
        source = "schema_default"
        if not names:
            names = [p.path for p in schema.leaves() if p.own_automl_enabled is True]
            source = "automl_enabled"

    custom = dict(custom_ranges or {})
    for name, rng in custom.items():
        _check_custom_key(schema, name, rng, names)

    cons = [c for c in KNOWN_CONSTRAINTS if c.param in schema.params and c.other in schema.params]
    cons += coerce_constraints(constraints, source=f"constraints for {skill_name or src}")
    excluded: dict[str, str] = {}
    params: list[SearchParam] = []
    chosen = set()

    for name in names:
        pdef = schema.params.get(name)
        reason = None
        if pdef is None:
            reason = "listed as a default parameter but not defined in the schema"
        elif schema.is_disabled(name):
            reason = f"disabled ({schema.disabled_reason(name)})"
        else:
            reason = _exclusive_reason(name, cons, flat, chosen)
        if reason is None:
            try:
                sp = to_search_param(pdef, flat, source=source)
                if name in custom:
                    sp = apply_custom_range(sp, pdef, custom[name], file=src)
            except Unsearchable as exc:
                reason = str(exc)
            except ValueError as exc:
                reason = f"cannot be searched: {exc}"
        if reason is not None:
            if explicit:
                raise SearchSpaceError("hyperparameter cannot be searched", file=src, key=name, value=reason,
                                       expected="a searchable, enabled schema parameter")
            excluded[name] = reason
            continue
        params.append(sp)
        chosen.add(name)

    cons += _schema_constraints(schema, params)
    ctx_keys = {c.other for c in cons if c.other} | {c.param for c in cons}
    ctx_keys |= {d for p in params for d in p.depends_on}
    context = {k: flat[k] for k in ctx_keys if k in flat and _scalar(flat[k])}
    for k in ctx_keys - set(context):
        p = schema.params.get(k)
        if p is not None and _scalar(p.default) and p.default is not None:
            context[k] = p.default
    return SearchSpace(params=params, excluded=excluded, constraints=cons, context=context,
                       skill_name=skill_name, source=src)


def _scalar(v: Any) -> bool:
    return isinstance(v, str | int | float | bool)


def _check_explicit(schema: TaoSchema, name: str) -> None:
    if name in schema.params:
        if schema.is_disabled(name):
            raise SearchSpaceError("hyperparameter is disabled for AutoML", file=schema.source, key=name,
                                   value=schema.disabled_reason(name),
                                   expected="a parameter not in automl_disabled_parameters")
        return
    close = difflib.get_close_matches(name, list(schema.params), n=3, cutoff=0.6)
    tail = [p for p in schema.params if p.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]]
    hint = ", ".join(dict.fromkeys(close + tail)) or None
    raise SearchSpaceError("unknown hyperparameter", file=schema.source, key=name,
                           expected="a dotted parameter path defined in the schema",
                           hint=f"did you mean: {hint}" if hint else None)


def _check_custom_key(schema: TaoSchema, name: str, rng: Any, names: list[str]) -> None:
    src = schema.source
    if name not in schema.params:
        _check_explicit(schema, name)
    if name not in names:
        raise SearchSpaceError("custom range for a parameter that is not searched", file=src, key=name,
                               expected=f"one of {names}", hint="add it to the hyperparameters")
    if not isinstance(rng, Mapping):
        raise SearchSpaceError("custom range is not a mapping", file=src, key=name, value=rng,
                               expected=f"keys from {sorted(_RANGE_KEYS)}")
    bad = set(rng) - _RANGE_KEYS
    if bad:
        raise SearchSpaceError("unknown custom range keys", file=src, key=name, value=sorted(bad),
                               expected=f"keys from {sorted(_RANGE_KEYS)}")


def _exclusive_reason(name: str, cons: list[Constraint], flat: dict, chosen: set) -> str | None:
    for c in cons:
        if c.kind != "exclusive" or name not in (c.param, c.other):
            continue
        other = c.other if name == c.param else c.param
        if other in chosen:
            return f"mutually exclusive with {other}, which is already searched ({c.reason})"
        if _is_set(flat.get(other)):
            return (f"mutually exclusive with {other}, which the spec template sets to "
                    f"{flat[other]!r} ({c.reason}); remove it via overrides to search {name}")
    return None


def _schema_constraints(schema: TaoSchema, params: list[SearchParam]) -> list[Constraint]:
    out = []
    for p in params:
        pdef: ParamDef = schema.params[p.name]
        cond = (p.math_cond or "").strip()
        for dep in pdef.depends_on:
            if dep not in schema.params:
                continue
            if cond.startswith(">"):
                out.append(Constraint("greater_than", p.name, dep, reason=f"math_cond {cond!r}"))
            elif cond.startswith("/") and p.encoding == "plain":
                k = int(cond[1:].strip())
                out.append(Constraint("at_most_div", p.name, dep, factor=k,
                                      reason=f"math_cond {cond!r} with depends_on"))
    return out
