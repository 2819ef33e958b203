"""Parsing helpers behind :mod:`tao_automl.execution.metrics`.

Three readers share one value rule (a metric value is a finite ``int``/``float``
that is not a ``bool``) and one name rule (:func:`canonical_name`):

* tagged lines ``[tao-automl-metric] {json}`` printed by the job;
* JSON / JSON-lines files TAO writes (``status.json``, ``metrics.json``,
  ``best_score.json``, ``results.json``);
* free-text log lines (``val_loss: 0.41``, ``Validation loss = 0.41``,
  ``val/loss_epoch=0.41``, rich tables, ...).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from tao_automl.config.metric_names import _SYNONYMS, alias_targets, canonical_name
from tao_automl.emit import METRIC_TAG

__all__ = [
    "EpochRecord",
    "TargetState",
    "alias_targets",
    "canonical_name",
    "find_key",
    "valid_number",
    "record_from_mapping",
    "parse_json_artifact",
    "LineParser",
    "merge_records",
]

# top-level keys of TAO status lines that are bookkeeping, never metrics
_BOOKKEEPING = frozenset(
    {
        "epoch",
        "cur_epoch",
        "current_epoch",
        "max_epoch",
        "step",
        "global_step",
        "cur_iter",
        "max_iter",
        "date",
        "time",
        "status",
        "verbosity",
        "message",
        "eta",
        "time_per_epoch",
        "time_per_iter",
    }
)
_EPOCH_KEYS = ("epoch", "cur_epoch", "current_epoch")
_STEP_KEYS = ("step", "global_step", "cur_iter")
_SCORE_KEYS = ("metric_value", "best_score", "score", "value")

_NUM = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)"
_SEP = r"[ \t_/\-.@]{1,3}"
_EPOCH_MARK = re.compile(
    r"(?<![A-Za-z0-9_])epoch['\"]?[ \t]*[\[:=#]?[ \t]*(\d+)(?![\d.])", re.IGNORECASE
)


@attrs.frozen
class EpochRecord:
    """Metric values observed for one epoch (``epoch`` is ``None`` when the
    source carries no epoch number).  ``values`` holds finite floats only; the
    requested metric is also stored under its requested name when it was found
    under an alias."""

    epoch: int | None
    values: dict[str, float] = attrs.field(factory=dict)
    step: int | None = None
    source: str = ""
    #: the epoch the source gave when it is not an integer (NaN, 2.5, "x"):
    #: the record's epoch is then unknown and the consumer decides (ignored)
    bad_epoch: Any = None

    def get(self, metric: str, aliases: Iterable[str] = ()) -> float | None:
        """Value of ``metric`` (alias-aware), or ``None``."""
        key = find_key(self.values, metric, aliases)
        return None if key is None else self.values[key]


@attrs.frozen
class TargetState:
    """The last value seen for the requested metric in one source, valid or not."""

    raw: Any
    valid: bool
    epoch: int | None
    where: str


def find_key(values: Mapping[str, Any], metric: str, aliases: Iterable[str] = ()) -> str | None:
    """The key of ``values`` naming ``metric`` (exact first, then alias-aware)."""
    if metric in values:
        return metric
    targets = alias_targets(metric, aliases)
    if not targets:
        return None
    found = None
    for key in values:
        if canonical_name(key) in targets:
            found = key
    return found


def valid_number(value: Any) -> bool:
    """True for finite real numbers that are not booleans (numpy scalars included)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return False
    return isinstance(value, numbers.Real) and math.isfinite(float(value))


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _flatten(
    d: Mapping[str, Any], prefix: str, out: dict[str, Any], leaves: dict[str, Any]
) -> None:
    for key, value in d.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            _flatten(value, path, out, leaves)
        elif prefix:
            out[path] = value
            parts = path.split("/")
            for i in range(1, len(parts)):  # suffixes: "val/loss", then "loss"
                leaves.setdefault("/".join(parts[i:]), value)
        elif str(key) not in _BOOKKEEPING:
            out[path] = value


def record_from_mapping(
    d: Mapping[str, Any],
    metric: str,
    aliases: Iterable[str],
    *,
    source: str,
    where: str,
    score_fallback: str | None = None,
) -> tuple[EpochRecord, TargetState | None]:
    """Turn one JSON object into an :class:`EpochRecord` plus the state of the
    requested metric in it (``None`` when absent).

    Nested dicts (TAO's ``kpi``, ``graphical``) are searched by their leaf names;
    the container name itself (e.g. ``kpi``) is never taken as a metric.
    ``score_fallback`` lets a generic score key (``best_score``, ``value``...)
    stand for the metric: ``"named"`` when the object's ``metric`` key names
    it, ``"any"`` also when the object names no metric.
    """
    aliases = tuple(aliases)
    flat: dict[str, Any] = {}
    leaves: dict[str, Any] = {}
    _flatten(d, "", flat, leaves)
    for key, value in leaves.items():
        flat.setdefault(key, value)
    epoch_key = next((k for k in _EPOCH_KEYS if k in d), None)
    epoch = _as_int(d[epoch_key]) if epoch_key else None
    bad_epoch = d[epoch_key] if epoch_key and epoch is None and d[epoch_key] is not None else None
    step = next((_as_int(d[k]) for k in _STEP_KEYS if k in d), None)
    values = {k: float(v) for k, v in flat.items() if valid_number(v)}
    state = None
    key = find_key(flat, metric, aliases)
    if key is None and score_fallback:
        named = d.get("metric", d.get("metric_name"))
        if (
            (named is None and score_fallback == "any")
            or named is not None
            and (str(named) == metric or canonical_name(str(named)) in alias_targets(metric, aliases))
        ):
            key = next((k for k in _SCORE_KEYS if k in d and not isinstance(d[k], Mapping)), None)
    if key is not None:
        raw = flat.get(key, d.get(key))
        ok = valid_number(raw)
        state = TargetState(raw=raw, valid=ok, epoch=epoch, where=f"{where} key {key!r}")
        if ok:
            values[metric] = float(raw)
        else:
            values.pop(key, None)
    return EpochRecord(epoch=epoch, values=values, step=step, source=source, bad_epoch=bad_epoch), state


def _json_documents(text: str) -> tuple[list[Any], list[str]]:
    """Whole-file JSON first, JSON lines second; returns (documents, notes)."""
    try:
        return [json.loads(text)], []
    except ValueError:
        pass
    docs, notes = [], []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            docs.append(json.loads(line))
        except ValueError:
            notes.append(f"line {n} is not JSON")
    return docs, notes


def parse_json_artifact(
    name: str, data: bytes | str, metric: str, aliases: Iterable[str]
) -> tuple[list[EpochRecord], TargetState | None, list[str]]:
    """Parse one TAO JSON(-lines) file into records, the metric's final state
    (last record mentioning it) and notes."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    docs, raw_notes = _json_documents(text)
    notes = [f"{name}: {n}" for n in raw_notes]
    source = name.rsplit("/", 1)[-1]
    fallback = {"best_score.json": "any", "status.json": None}.get(source, "named")
    objects: list[tuple[Mapping[str, Any], int | None]] = []
    for doc in docs:
        if isinstance(doc, list):
            objects.extend((x, None) for x in doc if isinstance(x, Mapping))
        elif isinstance(doc, Mapping):
            if doc and all(
                _as_int(k) is not None and isinstance(v, Mapping) for k, v in doc.items()
            ):
                objects.extend((v, _as_int(k)) for k, v in doc.items())
            else:
                objects.append((doc, None))
    records: list[EpochRecord] = []
    final: TargetState | None = None
    for i, (obj, keyed_epoch) in enumerate(objects):
        rec, state = record_from_mapping(
            obj,
            metric,
            aliases,
            source=source,
            where=f"{name} entry {i + 1}",
            score_fallback=fallback,
        )
        if keyed_epoch is not None and rec.epoch is None:
            rec = attrs.evolve(rec, epoch=keyed_epoch)
            state = state and attrs.evolve(state, epoch=keyed_epoch)
        records.append(rec)
        if state is not None:
            if final is not None and not final.valid:
                notes.append(
                    f"skipped non-finite/non-numeric {metric} at {final.where}: {final.raw!r}"
                )
            final = state
    return records, final, notes


def _alias_regex(metric: str, aliases: Iterable[str]) -> re.Pattern[str]:
    alternatives = []
    for name in (metric, *aliases):
        if name:
            alternatives.append(re.escape(name))
        canon = canonical_name(name)
        if not canon:
            continue  # an empty pattern would match before any number in the log
        parts = ["(?:" + "|".join(map(re.escape, _SYNONYMS.get(t, (t,)))) + ")" for t in canon.split("_")]
        alternatives.append(_SEP.join(parts))
    if not alternatives:
        return re.compile(r"(?!)")  # matches nothing
    name_re = "(?:" + "|".join(alternatives) + r")(?:" + _SEP + "epoch)?"
    return re.compile(
        r"(?<![A-Za-z0-9_])"
        + name_re
        + r"['\"]?[ \t]*(?:[:=│┃|][ \t]*)?(?:(?:reached|is|was|of)[ \t]+)?['\"]?"
        + r"(?:tensor\(|np\.float\d*\(|float\()?("
        + _NUM
        + r")(?![\w.])",
        re.IGNORECASE,
    )


class LineParser:
    """Stateful parser of complete log lines (remembers the current epoch)."""

    def __init__(self, metric: str, aliases: Iterable[str] = ()) -> None:
        self.metric = metric
        self.aliases = tuple(aliases)
        self._regex = _alias_regex(metric, self.aliases)
        self._epoch: int | None = None
        self.notes: list[str] = []

    def parse(self, line: str, lineno: int) -> tuple[EpochRecord, TargetState | None] | None:
        """Parse one line; returns a record (source ``tagged`` or ``log``) or ``None``."""
        where = f"log line {lineno}"
        tag_at = line.find(METRIC_TAG)
        if tag_at >= 0:
            payload = line[tag_at + len(METRIC_TAG) :].strip()
            try:
                obj = json.loads(payload)
            except ValueError:
                self.notes.append(f"{where}: tagged metric line is not JSON: {payload[:80]!r}")
                return None
            if not isinstance(obj, Mapping):
                self.notes.append(f"{where}: tagged metric payload is not an object")
                return None
            rec, state = record_from_mapping(
                obj, self.metric, self.aliases, source="tagged", where=where
            )
            if rec.epoch is not None:
                self._epoch = rec.epoch
            return rec, state
        marks = _EPOCH_MARK.findall(line)
        if marks:
            self._epoch = int(marks[-1])
        hits = self._regex.findall(line)
        if not hits:
            return None
        raw_text = hits[-1]
        value = float(raw_text)
        ok = math.isfinite(value)
        values = {self.metric: value} if ok else {}
        state = TargetState(raw=raw_text, valid=ok, epoch=self._epoch, where=where)
        return EpochRecord(epoch=self._epoch, values=values, source="log"), state


def merge_records(records: Iterable[EpochRecord]) -> list[EpochRecord]:
    """One record per epoch (later values update earlier ones), sorted by epoch.

    Records without an epoch number are kept (in order) only when no record has
    one.
    """
    records = list(records)
    numbered = [r for r in records if r.epoch is not None]
    if not numbered:
        return [r for r in records if r.values]
    merged: dict[int, EpochRecord] = {}
    for r in numbered:
        old = merged.get(r.epoch)  # type: ignore[arg-type]
        if old is None:
            merged[r.epoch] = r  # type: ignore[index]
        else:
            merged[r.epoch] = attrs.evolve(  # type: ignore[index]
                old,
                values={**old.values, **r.values},
                step=r.step if r.step is not None else old.step,
            )
    return [merged[e] for e in sorted(merged) if merged[e].values]
