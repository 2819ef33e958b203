"""Cross-parameter constraints: the known table, skill-declared ones and the
enforcement applied to every decoded configuration.

A skill can declare its own constraints in ``skill_info.yaml`` under the
``automl_constraints`` key (kept in ``SkillInfo.extra``)::

    automl_constraints:
      - {kind: multiple_of, param: dataset.batch_size, other: dataset.num_instances}
      - {kind: exclusive, param: custom.vision.fps, other: custom.vision.nframes}
      - {kind: max_batch_for_samples, param: train.batch_size}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tao_automl.errors import SearchSpaceError
from tao_automl.search.params import CONSTRAINT_KINDS, Constraint, SearchParam

__all__ = ["KNOWN_CONSTRAINTS", "coerce_constraints", "constraints_from_skill", "enforce_values"]

#: Rules stated by the seed model skills.  Each applies only when both paths
#: exist in the schema at hand, so the table never affects other skills.
KNOWN_CONSTRAINTS: tuple[Constraint, ...] = (
    Constraint("multiple_of", "dataset.batch_size", "dataset.num_instances",
               reason="triplet sampling reshapes each batch into identities x num_instances"),
    Constraint("divisible_by", "train.train_batch_per_replica", "train.train_policy.mini_batch",
               reason="cosmos-rl asserts train_batch_per_replica % mini_batch == 0"),
    Constraint("exclusive", "custom.vision.fps", "custom.vision.nframes",
               reason="cosmos-rl vision sampling takes exactly one of fps / nframes"),
)


_ALIASES = {"type": "kind", "of": "other"}
_KIND_ALIASES = {"mutually_exclusive": "exclusive"}


def coerce_constraints(items: Iterable[Any], *, source: str = "constraints") -> list[Constraint]:
    """Turn dicts (or Constraint objects) into :class:`Constraint`; SearchSpaceError on junk.

    Dict keys: ``kind`` (alias ``type``), ``param``, ``other`` (alias ``of``),
    ``factor``, ``reason``.
    """
    out = []
    for i, item in enumerate(items or ()):
        if isinstance(item, Constraint):
            out.append(item)
            continue
        if isinstance(item, Mapping):  # accept the sidecar spelling {type, param, of}
            item = {_ALIASES.get(k, k) if isinstance(k, str) else k: v for k, v in item.items()}
            kind = item.get("kind")
            item["kind"] = _KIND_ALIASES.get(kind, kind) if isinstance(kind, str) else kind
            pair = item.pop("params", None)
            if isinstance(pair, list) and len(pair) == 2 and "param" not in item:
                item["param"], item["other"] = pair
        if not isinstance(item, Mapping) or not isinstance(item.get("kind"), str) \
                or item.get("kind") not in CONSTRAINT_KINDS or not isinstance(item.get("param"), str):
            raise SearchSpaceError("invalid constraint", file=source, key=f"[{i}]", value=item,
                                   expected=f"a mapping with kind in {CONSTRAINT_KINDS} and a 'param' path")
        unknown = set(item) - {"kind", "param", "other", "factor", "reason"}
        if unknown:
            raise SearchSpaceError("unknown constraint keys", file=source, key=f"[{i}]",
                                   value=sorted(unknown), expected="kind, param, other, factor, reason")
        factor = item.get("factor", 1)
        other = item.get("other")
        if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1 \
                or not (other is None or isinstance(other, str)):
            raise SearchSpaceError("invalid constraint", file=source, key=f"[{i}]", value=item,
                                   expected="'other' a parameter path and 'factor' an integer >= 1")
        out.append(Constraint(kind=item["kind"], param=item["param"], other=item.get("other"),
                              factor=int(item.get("factor", 1)), reason=str(item.get("reason", ""))))
    return out


def constraints_from_skill(info: Any) -> list[Constraint]:
    """Constraints a skill declares under ``automl_constraints`` (see module doc)."""
    extra = getattr(info, "extra", None) or {}
    return coerce_constraints(extra.get("automl_constraints") or (),
                              source=f"skill_info.yaml of {getattr(info, 'name', '?')}")


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _multiple_within(value: int, base: int, low: int, high: int) -> int | None:
    """The multiple of ``base`` inside ``[low, high]`` closest to ``value``
    (ties and overshoot resolved downwards)."""
    if base <= 0:
        return None
    down = (value // base) * base
    cands = [c for c in (down, down + base) if low <= c <= high and c > 0]
    if not cands:
        first = -(-max(low, 1) // base) * base
        return first if first <= high else None
    return min(cands, key=lambda c: (abs(c - value), c))


def enforce_values(
    values: dict[str, Any],
    params: Mapping[str, SearchParam],
    constraints: Iterable[Constraint],
    context: Mapping[str, Any],
    *,
    train_sample_count: int | None = None,
    shard_count: int = 1,
    batch_key: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Apply constraints to decoded ``values``; return (fixed values, notes).

    Values are only ever moved to another valid point of their own range;
    a parameter not being searched is added to the result only when a rule
    had to change its template value (e.g. a batch cap).
    """
    out = dict(values)
    notes: list[str] = []

    def get(key: str) -> Any:
        return out.get(key, context.get(key))

    def bounds(key: str, cur: Any) -> tuple[Any, Any]:
        p = params.get(key)
        if p is not None and p.low is not None and p.options is None:
            return p.low, p.high
        return 1, max(cur, 1) if _num(cur) else 1

    cons = list(constraints)
    caps = [c.param for c in cons if c.kind == "max_batch_for_samples"]
    if batch_key:
        caps.append(batch_key)
    if train_sample_count is not None and shard_count and shard_count > 0:
        limit = int(train_sample_count) // int(shard_count)
        for key in dict.fromkeys(caps):
            cur = get(key)
            if not _num(cur) or cur <= limit:
                continue
            if limit < 1:
                notes.append(f"{key}={cur}: {train_sample_count} samples over {shard_count} shards "
                             f"give zero steps for any batch size; cannot be fixed by capping")
                continue
            low, _ = bounds(key, cur)
            new = max(int(limit), int(low)) if low <= limit else None
            if new is None:
                notes.append(f"{key}={cur} gives zero training steps ({train_sample_count} samples, "
                             f"{shard_count} shards) and its minimum {low} is above the cap {limit}")
                continue
            out[key] = new
            notes.append(f"{key} capped {cur} -> {new}: {train_sample_count} samples / {shard_count} "
                         f"shards would give zero training steps")

    for c in cons:
        if c.kind in ("multiple_of", "divisible_by"):
            v, base = get(c.param), get(c.other)
            if not (_num(v) and _num(base)) or base <= 0 or v % base == 0:
                continue
            cap = None
            if train_sample_count is not None and c.param in caps and shard_count:
                cap = max(1, int(train_sample_count) // int(shard_count))
            low, high = bounds(c.param, v)
            high = min(high, cap) if cap is not None else high
            new = _multiple_within(int(v), int(base), int(low), int(high))
            if new is not None:
                out[c.param] = new
                notes.append(f"{c.param} {v} -> {new}: must be a multiple of {c.other}={base}")
            elif c.other in params or c.other in out or c.other in context:
                olow, ohigh = bounds(c.other, base)
                divs = [d for d in range(int(min(base, v)), 0, -1) if v % d == 0 and olow <= d <= ohigh]
                if divs:
                    out[c.other] = divs[0]
                    notes.append(f"{c.other} {base} -> {divs[0]}: {c.param}={v} must be a multiple "
                                 f"of it and no multiple fits {c.param}'s range")
                else:
                    notes.append(f"cannot make {c.param}={v} a multiple of {c.other}={base}")
        elif c.kind == "greater_than":
            v, other = get(c.param), get(c.other)
            if not (_num(v) and _num(other)) or v > other:
                continue
            low, high = bounds(c.param, v)
            p = params.get(c.param)
            step = 1 if (p is None or p.kind == "int") else max((high - low) * 1e-6, 1e-12)
            new = max(low, other + step)
            if new <= high:
                out[c.param] = new
                notes.append(f"{c.param} {v} -> {new}: must be greater than {c.other}={other}")
            else:
                notes.append(f"cannot make {c.param} greater than {c.other}={other} within {high}")
        elif c.kind == "at_most_div":
            v, other = get(c.param), get(c.other)
            if not (_num(v) and _num(other)):
                continue
            limit = other // max(c.factor, 1)
            if v <= limit:
                continue
            low, _ = bounds(c.param, v)
            if limit >= low:
                p = params.get(c.param)
                new = int(limit) if (p is None or p.kind == "int") else limit
                out[c.param] = new
                notes.append(f"{c.param} {v} -> {new}: at most {c.other} // {c.factor} = {limit}")
            else:
                out[c.param] = low
                notes.append(f"{c.param} {v} -> {low}: {c.other} // {c.factor} = {limit} is below "
                             f"the minimum, used the minimum")
    return out, notes
