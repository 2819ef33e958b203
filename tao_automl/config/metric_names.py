"""The one name rule for metrics: :func:`canonical_name` and the aliases a
requested metric matches (used by the preflight check of ``metric`` and by
every metric reader in :mod:`tao_automl.execution._metric_parse`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["canonical_name", "alias_targets"]

# token synonyms: canonical token -> spellings accepted in free text
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "val": ("val", "validation", "valid"),
    "train": ("train", "training"),
    "acc": ("acc", "accuracy"),
}
_CANON = {spelling: canon for canon, spellings in _SYNONYMS.items() for spelling in spellings}


def canonical_name(name: str) -> str:
    """``'Validation loss'``, ``'val/loss_epoch'``, ``'valLoss'`` -> ``'val_loss'``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    tokens = [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]
    tokens = [_CANON.get(t, t) for t in tokens]
    if len(tokens) > 1 and tokens[-1] == "epoch":
        tokens = tokens[:-1]
    return "_".join(tokens)


def alias_targets(metric: str, aliases: Iterable[str] = ()) -> set[str]:
    """Canonical names that stand for ``metric``.  A name with no letter or
    digit (``"(("``, ``".*"``) has no canonical form: it matches only itself,
    exactly, never every other metric."""
    return {c for c in (canonical_name(metric), *(canonical_name(a) for a in aliases)) if c}
