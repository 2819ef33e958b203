"""The one metric-direction rule used everywhere (search, ranking, checkpoints).

Order of precedence:

1. an explicit ``direction`` from the caller (``minimize``/``maximize``, also
   ``min``/``max``);
2. the model skill's declared ``metric_direction``;
3. a fallback on the metric's name, which logs a WARNING naming the metric and
   how to silence it.  Names made of words such as ``loss``, ``error``, ``wer``,
   ``latency`` or ``mse`` are minimized; everything else is maximized.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from typing import Literal

from tao_automl.errors import SettingsError, SkillError

__all__ = [
    "Direction",
    "MINIMIZE_WORDS",
    "normalize_direction",
    "resolve_direction",
    "is_better",
    "best_index",
]

Direction = Literal["minimize", "maximize"]

_LOG = logging.getLogger("tao_automl.direction")

_ALIASES = {
    "minimize": "minimize",
    "min": "minimize",
    "maximize": "maximize",
    "max": "maximize",
}

#: Words that mark a metric as "lower is better" in the fallback rule.
MINIMIZE_WORDS = frozenset(
    {
        "loss",
        "error",
        "err",
        "wer",
        "cer",
        "latency",
        "time",
        "mse",
        "mae",
        "rmse",
        "perplexity",
        "ppl",
        "nll",
    }
)
_SUBSTRING_WORDS = ("loss", "error")  # safe to match inside longer words (celoss, val_error)


def normalize_direction(value: object, *, source: str = "direction") -> Direction | None:
    """Map ``minimize``/``min``/``maximize``/``max`` (any case) to the canonical
    name; ``None`` stays ``None``.  Anything else raises :class:`SettingsError`
    (or :class:`SkillError` when ``source`` names a skill file)."""
    if value is None:
        return None
    key = str(value).strip().lower() if isinstance(value, str) else None
    if key in _ALIASES:
        return _ALIASES[key]  # type: ignore[return-value]
    err = SkillError if "skill_info" in source else SettingsError
    raise err("invalid metric direction", key=source, value=value,
              expected="'minimize' or 'maximize' (or 'min'/'max')")


def _tokens(metric: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", metric)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def _fallback(metric: str) -> Direction:
    lowered = metric.lower()
    if any(w in lowered for w in _SUBSTRING_WORDS):
        return "minimize"
    if any(t in MINIMIZE_WORDS for t in _tokens(metric)):
        return "minimize"
    return "maximize"


def resolve_direction(
    metric: str,
    explicit: str | None = None,
    declared: str | None = None,
    *,
    logger: logging.Logger | None = None,
    declared_source: str = "skill_info.yaml:metric_direction",
) -> Direction:
    """Return ``"minimize"`` or ``"maximize"`` for ``metric``.

    Args:
        metric: the metric name (used only by the fallback rule and messages).
        explicit: the caller's ``direction`` setting; wins when given.
        declared: the model skill's declared ``metric_direction``.
        logger: where the fallback WARNING goes (default ``tao_automl.direction``).
        declared_source: names the declaration in error messages.
    """
    chosen = normalize_direction(explicit, source="direction")
    if chosen is not None:
        return chosen
    chosen = normalize_direction(declared, source=declared_source)
    if chosen is not None:
        return chosen
    guess = _fallback(metric)
    (logger or _LOG).warning(
        "metric %r has no declared direction; guessing %r from its name. "
        "Silence this by passing direction='minimize'|'maximize' or by declaring "
        "metric_direction in the model skill's references/skill_info.yaml.",
        metric,
        guess,
    )
    return guess


def _usable(value: float | None) -> bool:
    return value is not None and not isinstance(value, bool) and math.isfinite(value)


def is_better(a: float | None, b: float | None, direction: str) -> bool:
    """True when ``a`` is strictly better than ``b`` under ``direction``.

    A missing/non-finite value is never better, and any usable value beats a
    missing one.
    """
    d = normalize_direction(direction)
    if d is None:
        raise SettingsError("missing metric direction", key="direction", value=None,
                            expected="'minimize' or 'maximize'")
    if not _usable(a):
        return False
    if not _usable(b):
        return True
    return a < b if d == "minimize" else a > b  # type: ignore[operator]


def best_index(values: Iterable[float | None], direction: str) -> int | None:
    """Index of the best value (first one on ties), ignoring ``None``/NaN/inf;
    ``None`` when no value is usable."""
    best: int | None = None
    best_value: float | None = None
    for i, v in enumerate(values):
        if is_better(v, best_value, direction):
            best, best_value = i, v
    return best
