"""The job ledger's events: one frozen attrs class per kind.

Each event is one immutable JSON file (see :mod:`tao_automl.store.ledger`);
the field names are the on-disk keys, so ledgers written before these classes
existed read back unchanged.  Keys a class does not know (written by an older
or newer version) are kept in ``extra`` and written back, never dropped.

An event also reads like the dict it is stored as (``ev["t"]``,
``ev.get("metric_value")``, ``{**ev}``): the ledger's folded
:class:`~tao_automl.store.ledger.TrialRecord` holds events, and its readers
use either form.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import attrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from tao_automl.config.convert import converter

__all__ = [
    "LedgerEvent", "PlannedEvent", "SubmittingEvent", "SubmittedEvent", "UnconfirmedEvent", "EpochEvent",
    "FinishedEvent", "StoppedEvent", "AdoptedEvent", "NoteEvent", "EVENT_CLASSES", "event_from_dict",
    "event_to_dict",
]

log = logging.getLogger("tao_automl")

#: field metadata: the key is left out of the file while the value is None
#: (the writers before these classes did not write it then)
_OPTIONAL = {"omit_if_none": True}


@attrs.frozen(kw_only=True)
class LedgerEvent(Mapping):
    """Fields every event has: the trial, when it was written (``t``, set by
    the workspace on write) and the keys this class does not know."""

    kind: ClassVar[str] = ""

    trial_id: str
    t: float | None = attrs.field(default=None, metadata=_OPTIONAL)
    extra: dict[str, Any] = attrs.field(factory=dict, eq=False)

    # -- the dict view: the event as it is stored --------------------------
    def _keys(self) -> list[str]:
        keys = ["kind"]
        for a in attrs.fields(type(self)):
            if a.name == "extra" or (a.metadata.get("omit_if_none") and getattr(self, a.name) is None):
                continue
            keys.append(a.name)
        return keys + [k for k in self.extra if k not in keys]

    def __getitem__(self, key: str) -> Any:
        if key == "kind":
            return self.kind
        if key in self.extra:
            return self.extra[key]
        if key != "extra" and key in attrs.fields_dict(type(self)):
            value = getattr(self, key)
            if value is None and attrs.fields_dict(type(self))[key].metadata.get("omit_if_none"):
                raise KeyError(key)
            return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def to_dict(self) -> dict[str, Any]:
        """The event as written to its file (``t`` only once it is set)."""
        return event_to_dict(self)


@attrs.frozen(kw_only=True)
class PlannedEvent(LedgerEvent):
    """The trial's configuration (a new one when PBT changes it)."""

    kind: ClassVar[str] = "planned"
    config: dict[str, Any] = attrs.field(factory=dict)
    hyperparameters: dict[str, Any] = attrs.field(factory=dict)
    adjustments: list[Any] = attrs.field(factory=list)
    revision: int = 0
    source_trial: str | None = None
    fidelity_epochs: int | None = attrs.field(default=None, metadata=_OPTIONAL)


@attrs.frozen(kw_only=True)
class SubmittingEvent(LedgerEvent):
    """Written just before a job is submitted (the intent)."""

    kind: ClassVar[str] = "submitting"
    attempt: int
    name: str = ""
    results_dir: str | None = None
    spec_path: str | None = None
    resume_from: str | None = None
    start_epoch: int = 0
    purpose: str = "train"


@attrs.frozen(kw_only=True)
class SubmittedEvent(LedgerEvent):
    """The platform accepted the job: its serialized handle."""

    kind: ClassVar[str] = "submitted"
    attempt: int
    handle: dict[str, Any]
    spec_path: str | None = None
    resume_from: str | None = None
    start_epoch: int | None = None
    purpose: str | None = None
    node: str | None = None  # the Ray node of the trial
    recovered: bool | None = attrs.field(default=None, metadata=_OPTIONAL)  # found by name on resume
    #: an early-start job the trial adopted: when the driver submitted it (``t`` is the adoption)
    launched_t: float | None = attrs.field(default=None, metadata=_OPTIONAL)


@attrs.frozen(kw_only=True)
class UnconfirmedEvent(LedgerEvent):
    """Closes a ``submitting`` intent whose job was never found."""

    kind: ClassVar[str] = "unconfirmed"
    attempt: int
    name: str = ""
    why: str = ""


@attrs.frozen(kw_only=True)
class EpochEvent(LedgerEvent):
    """One per-epoch metric record of an attempt."""

    kind: ClassVar[str] = "epoch"
    attempt: int
    epoch: Any = None  # an int; kept as written
    values: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class FinishedEvent(LedgerEvent):
    """An attempt's terminal status; ``final`` false when the trial retries."""

    kind: ClassVar[str] = "finished"
    attempt: int
    state: str
    reason: str | None = None
    exit_code: int | None = None
    message: str = ""
    metric_value: float | None = None
    metric_source: str | None = attrs.field(default=None, metadata=_OPTIONAL)
    objective_values: dict[str, Any] | None = attrs.field(default=None, metadata=_OPTIONAL)
    final: bool = True


@attrs.frozen(kw_only=True)
class StoppedEvent(LedgerEvent):
    """The attempt's job was canceled (scheduler stop/pause, cancel, reaper);
    ``abandoned``: unknown to the restored search."""

    kind: ClassVar[str] = "stopped"
    attempt: int
    why: str = ""
    abandoned: bool | None = attrs.field(default=None, metadata=_OPTIONAL)


@attrs.frozen(kw_only=True)
class AdoptedEvent(LedgerEvent):
    """The restored search started an abandoned trial again."""

    kind: ClassVar[str] = "adopted"
    why: str = ""


@attrs.frozen(kw_only=True)
class NoteEvent(LedgerEvent):
    """Something the trial ignored, and why."""

    kind: ClassVar[str] = "note"
    note: str
    attempt: int | None = attrs.field(default=None, metadata=_OPTIONAL)


# An event is a Mapping: tell cattrs it is an attrs class (fields, strict keys).
converter.register_structure_hook_factory(
    lambda t: isinstance(t, type) and issubclass(t, LedgerEvent),
    lambda t: make_dict_structure_fn(t, converter, _cattrs_forbid_extra_keys=True))
converter.register_unstructure_hook_factory(
    lambda t: isinstance(t, type) and issubclass(t, LedgerEvent),
    lambda t: make_dict_unstructure_fn(t, converter))

EVENT_CLASSES: dict[str, type[LedgerEvent]] = {
    c.kind: c for c in (PlannedEvent, SubmittingEvent, SubmittedEvent, UnconfirmedEvent, EpochEvent,
                        FinishedEvent, StoppedEvent, AdoptedEvent, NoteEvent)
}


def event_to_dict(ev: LedgerEvent) -> dict[str, Any]:
    """The file's content: ``kind``, the fields (an optional one only when
    set) and the ``extra`` keys."""
    data = converter.unstructure(ev)
    extra = data.pop("extra", None) or {}
    for a in attrs.fields(type(ev)):
        if a.metadata.get("omit_if_none") and data.get(a.name) is None:
            data.pop(a.name, None)
    return {"kind": ev.kind, **data, **{k: v for k, v in extra.items() if k not in data and k != "kind"}}


def event_from_dict(data: Mapping[str, Any]) -> LedgerEvent | None:
    """The event class of ``data["kind"]`` with its fields; None (logged) for
    an unknown kind or a file whose fields do not fit the class."""
    cls = EVENT_CLASSES.get(str(data.get("kind")))
    if cls is None:
        log.warning("ledger: skipped an event of unknown kind %r", data.get("kind"))
        return None
    names = {a.name for a in attrs.fields(cls)} - {"extra"}
    known = {k: v for k, v in data.items() if k in names}
    extra = {k: v for k, v in data.items() if k not in names and k != "kind"}
    try:
        return converter.structure({**known, "extra": extra}, cls)
    except Exception as exc:  # noqa: BLE001 - a damaged event file is skipped, as a torn one is
        log.warning("ledger: skipped a %s event that does not fit its fields: %s", cls.kind, exc)
        return None
