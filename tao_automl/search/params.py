"""Search parameters, cross-parameter constraints and the range rules.

Range rule (:func:`derive_range`), used when a schema bound is infinite or
missing.  With ``d`` the schema default (else the template value):

* both bounds finite: ``[minimum, maximum]`` as written;
* float, ``d > 0``: ``[d / 10, d * 10]`` (two decades, so log scale);
  ``d < 0``: ``[d * 10, d / 10]``; ``d == 0``: the missing side is ``0 ± 1``;
* int, ``d > 0``: ``[ceil(d / 4), d * 4]``; ``d < 0`` mirrored;
  ``d == 0``: the missing side is ``0 ± 4``;
* the derived ends never cross a finite schema bound (``max(lo, minimum)``,
  ``min(hi, maximum)``), so a schema ``minimum: 0`` with an infinite maximum
  and ``d = 1e-6`` gives ``[1e-7, 1e-5]``;
* no default and not both bounds finite: the parameter cannot be searched
  (it is excluded with that reason, or an explicit request is an error).
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

__all__ = [
    "CONSTRAINT_KINDS",
    "Constraint",
    "SearchParam",
    "derive_range",
    "is_log_range",
    "parse_math_cond",
]

CONSTRAINT_KINDS = (
    "multiple_of",  # param % other == 0
    "divisible_by",  # same test, stated the other way round in the seeds
    "greater_than",  # param > other
    "at_most_div",  # param <= other // factor   (math_cond "/ k" with depends_on)
    "exclusive",  # param and other may not both be set (build time)
    "max_batch_for_samples",  # param * shard_count <= train_sample_count
)


@attrs.frozen
class Constraint:
    """A cross-parameter rule.  ``other`` values come from the sampled
    config, else from the template (``SearchSpace.context``)."""

    kind: str = attrs.field(validator=attrs.validators.in_(CONSTRAINT_KINDS))
    param: str
    other: str | None = None
    factor: int = 1
    reason: str = ""


@attrs.frozen
class SearchParam:
    """One searchable hyperparameter.

    ``kind`` is ``float``, ``int``, ``categorical`` or ``bool``.  ``encoding``
    says how the searcher sees it: ``plain``; ``pow2`` (an integer exponent
    in ``[log2 low, log2 high]``, decoded to ``2 ** e``); ``sorted_list``
    (``length`` integer keys ``name[0]..name[n-1]`` decoded to a strictly
    increasing list within ``[low, high]``).  ``step`` makes a numeric
    parameter a multiple of ``step``.  ``weights`` are sampling weights of
    ``options`` (honoured by :meth:`SearchSpace.sample`).  ``note`` explains
    a derived range or an adjusted default.
    """

    name: str
    kind: str
    default: Any = None
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    options: tuple | None = None
    weights: tuple[float, ...] | None = None
    math_cond: str | None = None
    depends_on: tuple[str, ...] = ()
    source: str = "schema_default"
    encoding: str = "plain"
    step: float | int | None = None
    length: int = 0
    note: str = ""

    def keys(self) -> list[str]:
        """The flat keys this parameter occupies in a searcher config."""
        if self.encoding == "sorted_list":
            return [f"{self.name}[{i}]" for i in range(self.length)]
        return [self.name]

    def contains(self, value: Any) -> bool:
        """Whether a *decoded* value is valid for this parameter."""
        if self.options is not None:
            return value in self.options
        if self.encoding == "sorted_list":
            return (isinstance(value, list) and len(value) == self.length
                    and all(self._in_range(v) for v in value)
                    and all(a < b for a, b in zip(value, value[1:], strict=False)))
        if not self._in_range(value):
            return False
        if self.encoding == "pow2":
            return value > 0 and (int(value) & (int(value) - 1)) == 0
        if self.step:
            q = value / self.step
            return abs(q - round(q)) < 1e-9
        return True

    def _in_range(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        if self.kind == "int" and not float(v).is_integer():
            return False
        return self.low <= v <= self.high


_POW = re.compile(r"^\^\s*2$")
_DIV = re.compile(r"^/\s*(\d+)$")
_GT = re.compile(r"^>\s*(depends_on|\S+)?$")


def parse_math_cond(cond: str | None) -> tuple[str, int] | None:
    """``"^ 2"`` -> ``("pow2", 2)``; ``"/ k"`` -> ``("div", k)``;
    ``"> depends_on"`` -> ``("gt", 0)``; ``None`` for no condition.
    Raises ValueError for anything else."""
    if cond is None or not str(cond).strip():
        return None
    c = str(cond).strip()
    if _POW.match(c):
        return ("pow2", 2)
    m = _DIV.match(c)
    if m and int(m.group(1)) > 0:
        return ("div", int(m.group(1)))
    if _GT.match(c):
        return ("gt", 0)
    raise ValueError(f"unsupported math_cond {cond!r}; expected '^ 2', '/ <k>' or '> depends_on'")


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def derive_range(kind: str, default: Any, minimum: Any, maximum: Any) -> tuple[Any, Any, str]:
    """Finite ``(low, high, note)`` for a numeric parameter (module docstring rule).

    Raises ValueError (with the reason) when no finite range can be found.
    """
    lo_s = minimum if _finite(minimum) else None
    hi_s = maximum if _finite(maximum) else None
    if lo_s is not None and hi_s is not None:
        lo, hi, note = lo_s, hi_s, ""
    elif not _finite(default):
        raise ValueError(
            f"no default and no finite range (minimum={minimum!r}, maximum={maximum!r})")
    else:
        d = default
        factor = 4 if kind == "int" else 10
        unit = 4 if kind == "int" else 1
        if d > 0:
            lo, hi = (math.ceil(d / factor) if kind == "int" else d / factor), d * factor
        elif d < 0:
            lo, hi = d * factor, (math.floor(d / factor) if kind == "int" else d / factor)
        else:
            lo = lo_s if lo_s is not None else -unit
            hi = hi_s if hi_s is not None else (lo + unit if lo_s is not None else unit)
        if kind != "int":
            lo, hi = _tidy(lo), _tidy(hi)
        if lo_s is not None:
            lo = max(lo, lo_s)
        if hi_s is not None:
            hi = min(hi, hi_s)
        note = (f"range derived from default {d!r} (schema minimum={minimum!r}, "
                f"maximum={maximum!r})")
    if kind == "int":
        lo, hi = math.ceil(lo), math.floor(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    return lo, hi, note


def _tidy(x: float) -> float:
    """Drop float noise from ``d / 10`` and ``d * 10`` (``9.999999999999999e-06`` -> ``1e-05``)."""
    return float(f"{x:.12g}")


def is_log_range(low: Any, high: Any) -> bool:
    """Log scale when a positive range spans two decades or more."""
    return _finite(low) and _finite(high) and low > 0 and high / low >= 100 * (1 - 1e-9)
