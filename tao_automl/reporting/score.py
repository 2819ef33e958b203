"""The one definition of a trial's score.

Every consumer -- the result's ``best``/``progress``/``history``, the live
table (:mod:`tao_automl.reporting.progress`), the plots, WandB, and the checkpoint the
final evaluation measures -- asks :func:`trial_score`; nothing else ranks a
trial's epochs.  Ray Tune's schedulers are not consumers: they still receive
every epoch's value as it is reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["SELECTIONS", "TrialScore", "trial_score", "lineage"]

#: Accepted values of ``automl_settings["checkpoint_selection"]``.
SELECTIONS = ("best", "last")


@attrs.frozen
class TrialScore:
    """A trial's score: its value, and the epoch (and attempt) it comes from.

    ``epoch``/``attempt`` are ``None`` when the value is not an epoch's (a job
    that only reported a final value); the checkpoint is then the last one.
    """

    value: float | None
    epoch: int | None = None
    attempt: int | None = None


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def lineage(per_epoch: Iterable[Mapping[str, Any]], start_epochs: Mapping[int, int] | None = None,
            ) -> list[Mapping[str, Any]]:
    """The epoch records the trial's current weights descend from, in order.

    ``start_epochs`` maps attempt number -> the epoch that attempt resumed
    after (0 for a fresh start).  The last attempt counts whole; an earlier
    attempt only for the epochs a later attempt resumed from (a retried or
    restarted attempt replaces the one before it).  Without ``start_epochs``
    every record counts.  One record per (attempt, epoch): the latest.
    """
    recs = [r for r in per_epoch if isinstance(r.get("epoch"), int)]
    if start_epochs:
        order = sorted(start_epochs)
        keep: list[Mapping[str, Any]] = []
        cutoff: int | None = None
        for number in reversed(order):
            mine = [r for r in recs if r.get("attempt") == number]
            if cutoff is not None:
                mine = [r for r in mine if r["epoch"] <= cutoff]
            start = start_epochs[number]
            mine = [r for r in mine if r["epoch"] > start]
            keep = mine + keep
            cutoff = start if cutoff is None else min(cutoff, start)
        recs = keep
    dedup: dict[tuple[Any, int], Mapping[str, Any]] = {}
    for r in recs:
        dedup[(r.get("attempt"), r["epoch"])] = r
    ordered = list(dedup.values())
    # attempts in number order, epochs ascending within each
    attempts = {a: i for i, a in enumerate(dict.fromkeys(r.get("attempt") for r in recs))}
    ordered.sort(key=lambda r: (attempts[r.get("attempt")], r["epoch"]))
    return ordered


def trial_score(
    per_epoch: Iterable[Mapping[str, Any]],
    metric: str,
    direction: str | None,
    selection: str = "best",
    *,
    final_value: float | None = None,
    final_is_epoch: bool = True,
    start_epochs: Mapping[int, int] | None = None,
) -> TrialScore:
    """The score of one trial, by the rule of ``checkpoint_selection``.

    The rule:

    * The candidates are the trial's per-epoch values of ``metric`` along its
      :func:`lineage` (the epochs its current weights come from).
    * ``selection="best"`` (the default): the best candidate in ``direction``
      (the earliest epoch on a tie).  ``"last"``: the last epoch's value; for a
      finished job whose final reported value is not the last epoch's (it
      printed a value after its epochs), that final value.
    * No candidate (the job reported a final value only) or a final value that
      is not an epoch's (``final_is_epoch=False``: a user ``eval_fn`` or
      ``metric_extractor`` measured the trial): ``final_value``, from the last epoch when there is one.
    * Without a ``direction`` epochs cannot be ranked: ``"best"`` acts as ``"last"``.

    The trial's checkpoint is the one of the returned ``epoch`` (and
    ``attempt``), so the final evaluation measures the weights that earned the
    score.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"checkpoint selection {selection!r}: expected one of {SELECTIONS}")
    cands = []
    for r in lineage(per_epoch, start_epochs):
        v = _number(r.get(metric))
        if v is not None:
            cands.append((v, r["epoch"], r.get("attempt")))
    final = _number(final_value)
    if not cands:
        return TrialScore(final)
    last = cands[-1]
    if final is not None and not final_is_epoch:
        return TrialScore(final, last[1], last[2])
    if selection == "best" and direction in ("minimize", "maximize"):
        pick = cands[0]
        for c in cands[1:]:
            if (c[0] < pick[0]) if direction == "minimize" else (c[0] > pick[0]):
                pick = c
        return TrialScore(*pick)
    if final is not None:
        return TrialScore(final, last[1], last[2])
    return TrialScore(*last)
