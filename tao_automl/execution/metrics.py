"""Metric extraction from a finished (or running) training job.

Sources, in order of precedence (the first one that mentions the metric wins,
and :attr:`MetricResult.source` records which):

1. ``tagged``       ``[tao-automl-metric] {"epoch": 3, "val_loss": 0.41}`` lines
                    in the job's log (see :func:`tao_automl.emit.emit_metric`);
2. ``status.json``  TAO's JSON-lines status file (values inside ``kpi`` /
                    ``graphical`` are found by name; ``kpi`` itself is never a metric);
3. ``metrics.json``, 4. ``best_score.json``, 5. ``results.json`` under the results dir;
6. ``log``          free text (``val_loss: 0.41``, ``Validation loss = 0.41``,
                    ``val/loss_epoch=0.41``), case-insensitive, latest value wins.

A user ``metric_extractor(logs, metric_name)`` overrides all of the above
(source ``extractor``).  Booleans, NaN and inf are never metric values: as the
final value they raise :class:`~tao_automl.errors.MetricError`; as intermediate
values they are skipped and a note is recorded.

:class:`MetricStream` parses a growing log incrementally so schedulers can act
on per-epoch values while the job runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from tao_automl.config.direction import best_index, is_better, resolve_direction
from tao_automl.errors import AutoMLError, MetricError, describe
from tao_automl.execution._metric_parse import (
    EpochRecord,
    LineParser,
    TargetState,
    canonical_name,
    find_key,
    merge_records,
    parse_json_artifact,
    valid_number,
)

__all__ = [
    "EpochRecord",
    "MetricResult",
    "MetricStream",
    "ARTIFACT_SOURCES",
    "extract_metric",
    "coerce_metric",
    "canonical_name",
    "find_key",
    "resolve_direction",
    "is_better",
    "best_index",
]

#: Artifact files read (by base name, top-most first), in precedence order.
ARTIFACT_SOURCES = ("status.json", "metrics.json", "best_score.json", "results.json")

Artifacts = Mapping[str, bytes | str] | Callable[[str], bytes | str | None] | None
Extractor = Callable[[str, str], Any]


@attrs.frozen
class MetricResult:
    """The metric of one job.

    Attributes:
        value: the final value (``None`` when no source mentions the metric).
        per_epoch: one record per epoch, ascending (intermediate values).
        source: ``tagged``, ``status.json``, ``metrics.json``, ``best_score.json``,
            ``results.json``, ``log`` or ``extractor``; ``None`` when not found.
        epoch: epoch of the final value when known.
        notes: what was skipped or not found, for humans.
        extra: extra keys an extractor returned next to ``metric_value``.
    """

    value: float | None
    per_epoch: list[EpochRecord] = attrs.field(factory=list)
    source: str | None = None
    epoch: int | None = None
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = attrs.field(factory=dict)


class MetricStream:
    """Incremental parser of a growing job log.

    ``feed(new_text)`` parses only complete lines (``\\n`` or ``\\r`` ends a
    line, so tqdm progress bars work); a partial trailing line is kept until
    the next ``feed`` or :meth:`close`.  Tagged lines take precedence over free
    text: once a tagged line mentioned the metric, ``feed`` returns tagged
    records only.
    """

    def __init__(self, metric: str, aliases: Iterable[str] = ()) -> None:
        self.metric = metric
        self.aliases = tuple(aliases)
        self._parser = LineParser(metric, self.aliases)
        self._buffer = ""
        self._lineno = 0
        self.records: list[EpochRecord] = []
        self._final: dict[str, TargetState] = {}
        self._skipped: list[str] = []

    @property
    def notes(self) -> list[str]:
        """Parse problems and skipped intermediate values."""
        return [*self._parser.notes, *self._skipped]

    def _preferred(self) -> str:
        return "tagged" if "tagged" in self._final else "log"

    def _consume(self, lines: list[str]) -> list[EpochRecord]:
        new: list[EpochRecord] = []
        for line in lines:
            self._lineno += 1
            parsed = self._parser.parse(line, self._lineno)
            if parsed is None:
                continue
            rec, state = parsed
            if state is not None:
                old = self._final.get(rec.source)
                if old is not None and not old.valid:
                    self._skipped.append(
                        f"skipped invalid {self.metric} at {old.where}: {old.raw!r}"
                    )
                self._final[rec.source] = state
            if rec.values:
                self.records.append(rec)
                new.append(rec)
        preferred = self._preferred()
        return [r for r in new if r.source == preferred]

    def feed(self, text: str) -> list[EpochRecord]:
        """Parse newly appended log text; returns the new records."""
        data = self._buffer + text
        parts = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buffer = parts.pop()
        return self._consume(parts)

    def close(self) -> list[EpochRecord]:
        """Parse the partial trailing line, if any (call when the job ended)."""
        rest, self._buffer = self._buffer, ""
        return self._consume([rest]) if rest.strip() else []

    def per_epoch(self, source: str | None = None) -> list[EpochRecord]:
        """Merged per-epoch records of ``source`` (default: tagged if any, else log)."""
        src = source or self._preferred()
        return merge_records(r for r in self.records if r.source == src)

    def final_state(self, source: str) -> TargetState | None:
        """Last value (valid or not) of the metric seen in ``source``."""
        return self._final.get(source)

    def latest(self) -> float | None:
        """Latest valid value of the metric (tagged first, then log), else ``None``."""
        for src in ("tagged", "log"):
            for rec in reversed(self.records):
                if rec.source == src and self.metric in rec.values:
                    return rec.values[self.metric]
        return None


def _pick(paths: Iterable[str], name: str) -> str | None:
    """``name`` itself, else the top-most path whose base name is ``name``."""
    paths = [str(p) for p in paths]
    if name in paths:
        return name
    matches = sorted(
        (p for p in paths if p.rsplit("/", 1)[-1] == name), key=lambda p: (p.count("/"), p)
    )
    return matches[0] if matches else None


def _read_artifact(
    artifacts: Artifacts, name: str, paths: Iterable[str] | None = None
) -> tuple[str, bytes | str] | None:
    """Find ``name`` in ``artifacts`` by exact path, else by base name (top-most)."""
    if artifacts is None:
        return None
    if callable(artifacts) and not isinstance(artifacts, Mapping):
        # A listing that misses the file (a backend listing lazily) never hides it.
        path = (_pick(paths, name) if paths is not None else None) or name
        try:
            data = artifacts(path)
        except (OSError, KeyError, AutoMLError):
            return None
        return None if data is None else (path, data)
    path = _pick(artifacts, name)
    return None if path is None else (path, artifacts[path])


def _check_final(metric: str, state: TargetState, source: str) -> float:
    if state.valid:
        return float(state.raw)
    raise MetricError.from_message(
        describe(
            f"final value of metric {metric!r} from {source} is not a finite number",
            file=state.where,
            key=metric,
            value=state.raw,
            expected="a finite int/float (not a bool, NaN or inf)",
        ),
        file=source,
        key=metric,
        value=state.raw,
    )


def _extractor_name(extractor: Any) -> str:
    return (
        getattr(extractor, "__qualname__", None)
        or getattr(extractor, "__name__", None)
        or repr(extractor)
    )


def _split_result(out: Any, name: str, metric: str | None) -> tuple[Any, dict[str, Any]]:
    """``out`` -> (raw value, extra keys) for a float/None/dict-with-metric_value result."""
    if not isinstance(out, Mapping):
        return out, {}
    if "metric_value" not in out:
        raise MetricError(f"{name} returned a dict without 'metric_value'", key=metric, value=dict(out),
                          expected=_EXPECTED)
    return out["metric_value"], {k: v for k, v in out.items() if k != "metric_value"}


_EXPECTED = "a finite float, None, or a dict with a finite 'metric_value'"


def coerce_metric(value: Any, *, source: str, metric: str | None = None) -> float | None:
    """Validate a user callback's metric result (``eval_fn``, ``final_eval_fn``,
    ``metric_extractor``): a finite number, ``None``, or a dict holding
    ``metric_value``.  Anything else (bool, NaN, inf, str...) raises
    :class:`MetricError` naming ``source``."""
    raw, _ = _split_result(value, source, metric)
    if raw is None:
        return None
    if not valid_number(raw):
        raise MetricError(f"{source} returned an invalid metric value", key=metric, value=raw,
                          expected=_EXPECTED)
    return float(raw)


def _run_extractor(extractor: Extractor, logs: str, metric: str) -> MetricResult:
    name = f"metric_extractor {_extractor_name(extractor)!r}"
    try:
        out = extractor(logs, metric)
    except Exception as exc:  # a user callback: any failure becomes a MetricError
        raise MetricError(f"{name} raised {type(exc).__name__}: {exc}", key=metric, expected=_EXPECTED) from exc
    _, extra = _split_result(out, name, metric)
    value = coerce_metric(out, source=name, metric=metric)
    if value is None:
        return MetricResult(
            value=None, source="extractor", notes=(f"{name} returned no value",), extra=extra
        )
    per_epoch = []
    for item in extra.pop("per_epoch", None) or []:
        if isinstance(item, Mapping):
            vals = {str(k): float(v) for k, v in item.items() if k != "epoch" and valid_number(v)}
            if "value" in vals and metric not in vals:
                vals[metric] = vals.pop("value")
            ep = item.get("epoch")
            per_epoch.append(
                EpochRecord(
                    epoch=ep if isinstance(ep, int) else None, values=vals, source="extractor"
                )
            )
    return MetricResult(
        value=value, per_epoch=merge_records(per_epoch), source="extractor", extra=extra
    )


def extract_metric(
    metric: str,
    *,
    logs: str = "",
    artifacts: Artifacts = None,
    extractor: Extractor | None = None,
    aliases: Iterable[str] = (),
    artifact_paths: Iterable[str] | None = None,
) -> MetricResult:
    """Extract ``metric`` from a job's ``logs`` and result ``artifacts``.

    Args:
        metric: metric name, e.g. ``val_loss``.
        logs: the job's full log text (stdout+stderr).
        artifacts: mapping of result-dir-relative path -> content, or a callable
            ``read(name) -> bytes | None`` (e.g. ``lambda p: backend.read_artifact(h, p)``;
            ``OSError``/``KeyError``/``AutoMLError`` count as "absent").
        extractor: user ``metric_extractor(logs, metric_name)``; overrides everything.
        aliases: extra names that mean the same metric.
        artifact_paths: the job's artifact listing (``backend.list_artifacts``);
            with a callable ``artifacts`` it lets files in sub-folders
            (``train/status.json``) be found by base name.

    Raises:
        MetricError: the final value is a bool/NaN/inf/non-number, or the
            extractor failed or returned something invalid.
    """
    if extractor is not None:
        return _run_extractor(extractor, logs, metric)
    aliases = tuple(aliases)
    paths = None if artifact_paths is None else [str(p) for p in artifact_paths]
    stream = MetricStream(metric, aliases)
    stream.feed(logs or "")
    stream.close()
    notes = list(stream.notes)
    sources: list[tuple[str, list[EpochRecord], TargetState | None]] = [
        (
            "tagged",
            [r for r in stream.records if r.source == "tagged"],
            stream.final_state("tagged"),
        )
    ]
    for name in ARTIFACT_SOURCES:
        found = _read_artifact(artifacts, name, paths)
        if found is None:
            sources.append((name, [], None))
            continue
        records, state, file_notes = parse_json_artifact(found[0], found[1], metric, aliases)
        notes.extend(file_notes)
        sources.append((name, records, state))
    sources.append(
        ("log", [r for r in stream.records if r.source == "log"], stream.final_state("log"))
    )

    per_epoch: list[EpochRecord] = []
    for _, records, _ in sources:
        merged = merge_records(records)
        if any(r.epoch is not None and metric in r.values for r in merged):
            per_epoch = merged
            break
    for name, _records, state in sources:
        if state is not None:
            value = _check_final(metric, state, name)
            if not per_epoch:
                per_epoch = [r for r in merge_records(_records) if metric in r.values]
            return MetricResult(
                value=value, per_epoch=per_epoch, source=name, epoch=state.epoch, notes=tuple(notes)
            )
    searched = ", ".join(n for n, _, _ in sources)
    seen = sorted({k for _, records, _ in sources for r in records for k in r.values})
    notes.append(f"metric {metric!r} not found in: {searched}; metrics the job reported: "
                 + (", ".join(seen[:20]) + (" ..." if len(seen) > 20 else "") if seen else "none")
                 + " (names match exactly or by the alias rule of the README's Metrics section)")
    return MetricResult(value=None, per_epoch=per_epoch, source=None, notes=tuple(notes))
