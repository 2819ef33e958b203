"""The durable, append-only job ledger.

Every fact about a trial's jobs is one immutable event file under
``ledger/<trial_id>/`` in the workspace (see :class:`~tao_automl.store.workspace.Workspace`):

``planned``    the trial's hyperparameters, overrides and adjustments
``submitting`` written just *before* a job is submitted: attempt number, job
               name, results dir.  A driver killed between the platform
               accepting the job and the ``submitted`` event leaves only this;
               on resume the job is looked up by name
               (:func:`tao_automl.store.intents.recover_unconfirmed`)
``submitted``  attempt number, the serialized JobHandle, spec path, resume pointer
``unconfirmed`` closes a ``submitting`` intent whose job was never found
``epoch``      one per-epoch metric record
``finished``   terminal status (state, reason, exit code, message), final metric,
               checkpoint
``stopped``    the scheduler stopped or paused the trial; the job was canceled.
               With ``abandoned: true`` the trial is unknown to the restored
               search (see :mod:`tao_automl.execution.orphans`): it is left out
               of the history and of every count, so a resumed run ends with
               exactly the requested number of trials
``adopted``    the restored search started an abandoned trial again (same id);
               it counts again
``note``       something the trial ignored and why (e.g. an absurd epoch number
               the job reported); becomes the trial's ``notes`` in the history

Each kind is a frozen attrs class of :mod:`tao_automl.store.events`
(:meth:`JobLedger.write` takes one; the field names are the file's keys, so
ledgers of earlier versions read back unchanged).

Because events are never rewritten, a driver killed at any point leaves a
ledger that tells exactly which jobs were launched and which finished, so a
resumed run reattaches instead of relaunching and never re-runs a finished
trial.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from tao_automl.platforms.base import JobHandle
from tao_automl.store import events
from tao_automl.store.events import LedgerEvent, SubmittingEvent, event_from_dict
from tao_automl.store.workspace import Workspace

__all__ = ["JobLedger", "Attempt", "TrialRecord"]


@attrs.define
class Attempt:
    """One job launched for a trial."""

    number: int
    handle: JobHandle
    purpose: str = "train"
    spec_path: str | None = None
    resume_from: str | None = None
    start_epoch: int = 0
    submitted_at: float = 0.0
    #: when the platform took the job: ``submitted_at``, or earlier for an
    #: early-start job the trial adopted (tao_automl.execution.early)
    launched_at: float = 0.0
    finished: events.FinishedEvent | None = None  # reads as its dict too: att.finished["t"]
    stopped: events.StoppedEvent | None = None

    @property
    def terminal(self) -> bool:
        return self.finished is not None or self.stopped is not None


@attrs.define
class TrialRecord:
    """Everything the ledger knows about one trial."""

    trial_id: str
    planned: events.PlannedEvent | None = None  # events read as their dicts too: rec.planned.get("config")
    attempts: list[Attempt] = attrs.field(factory=list)
    epochs: list[dict[str, Any]] = attrs.field(factory=list)
    outcome: events.FinishedEvent | None = None  # the last final 'finished' event
    first_planned_t: float = 0.0  # when the trial was first planned (history order)
    abandoned: bool = False  # unknown to the restored search; not part of the run
    # 'submitting' intents with neither a 'submitted' nor an 'unconfirmed' event
    unconfirmed: list[SubmittingEvent] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)  # 'note' events: e.g. ignored absurd epochs

    @property
    def open_attempt(self) -> Attempt | None:
        """The last attempt if it has neither finished nor been stopped."""
        if self.attempts and not self.attempts[-1].terminal:
            return self.attempts[-1]
        return None

    @property
    def done(self) -> bool:
        return self.outcome is not None and self.outcome.get("final", True)


class JobLedger:
    """Append-only event store for trial jobs, on top of a :class:`Workspace`."""

    def __init__(self, workspace: Workspace, folder: str = "ledger") -> None:
        self.ws = workspace
        self.folder = folder

    def _stream(self, trial_id: str) -> str:
        return f"{self.folder}/{trial_id}"

    def write(self, event: LedgerEvent) -> None:
        """Append ``event`` to its trial's stream (the workspace stamps ``t``)."""
        data = event.to_dict()
        data.pop("kind")
        self.ws.append_event(self._stream(event.trial_id), event.kind, data)

    def record(self, trial_id: str, kind: str, **payload: Any) -> None:
        """``write`` the ``kind`` event made of ``payload`` (keys its class
        does not know are kept in ``extra``)."""
        cls = events.EVENT_CLASSES.get(kind)
        if cls is None:
            raise ValueError(f"unknown ledger event kind {kind!r}; known: {', '.join(events.EVENT_CLASSES)}")
        names = {a.name for a in attrs.fields(cls)} - {"extra", "trial_id"}
        known = {k: v for k, v in payload.items() if k in names}
        extra = {k: v for k, v in payload.items() if k not in names}
        self.write(cls(trial_id=trial_id, **known, extra=extra))

    def events(self, trial_id: str) -> list[LedgerEvent]:
        """The trial's events in write order, as their classes (a torn,
        unknown or damaged file is skipped)."""
        out = []
        for raw in self.ws.events(self._stream(trial_id)):
            ev = event_from_dict(raw)
            if ev is not None:
                out.append(ev)
        return out

    def trial_ids(self) -> list[str]:
        return [n for n in self.ws.listdir(self.folder) if not n.startswith(".")]

    def trial(self, trial_id: str) -> TrialRecord:
        return self._fold(trial_id, self.events(trial_id))

    def trials(self, *, include_abandoned: bool = False) -> list[TrialRecord]:
        """The run's trials in planning order; abandoned ones (unknown to the
        restored search) only with ``include_abandoned``."""
        recs = [self.trial(t) for t in self.trial_ids()]
        recs = [r for r in recs if include_abandoned or not r.abandoned]
        recs.sort(key=lambda r: r.first_planned_t)
        return recs

    @staticmethod
    def _fold(trial_id: str, stream: Iterable[LedgerEvent | dict[str, Any]]) -> TrialRecord:
        """The trial's record from its events (classes, or the dicts of their files)."""
        rec = TrialRecord(trial_id=trial_id)
        by_number: dict[int, Attempt] = {}
        intents: dict[int, SubmittingEvent] = {}
        for raw in stream:
            ev = raw if isinstance(raw, LedgerEvent) else event_from_dict({"trial_id": trial_id, **raw})
            if isinstance(ev, events.PlannedEvent):
                if rec.planned is None:
                    rec.first_planned_t = float(ev.t or 0.0)
                rec.planned = ev  # the newest plan wins (PBT changes a trial's config)
            elif isinstance(ev, SubmittingEvent):
                intents[ev.attempt] = ev
            elif isinstance(ev, events.UnconfirmedEvent):
                intents.pop(ev.attempt, None)
            elif isinstance(ev, events.SubmittedEvent):
                intents.pop(ev.attempt, None)
                try:
                    handle = JobHandle.from_dict(ev.handle)
                except (KeyError, TypeError):
                    continue
                att = Attempt(
                    number=ev.attempt,
                    handle=handle,
                    purpose=ev.purpose or "train",
                    spec_path=ev.spec_path,
                    resume_from=ev.resume_from,
                    start_epoch=ev.start_epoch or 0,
                    submitted_at=float(ev.t or 0.0),
                    launched_at=float(ev.launched_t or ev.t or 0.0),
                )
                by_number[att.number] = att
                rec.attempts.append(att)
                rec.abandoned = False
            elif isinstance(ev, events.EpochEvent):
                rec.epochs.append({"attempt": ev.attempt, "epoch": ev.epoch, "values": ev.values,
                                   **({"t": ev.t} if ev.t is not None else {})})
            elif isinstance(ev, events.FinishedEvent):
                att = by_number.get(ev.attempt)
                if att is not None:
                    att.finished = ev
                if ev.final:
                    rec.outcome = ev
            elif isinstance(ev, events.StoppedEvent):
                att = by_number.get(ev.attempt)
                if att is not None:
                    att.stopped = ev
                if ev.abandoned:
                    rec.abandoned = True
            elif isinstance(ev, events.AdoptedEvent):
                rec.abandoned = False
            elif isinstance(ev, events.NoteEvent):
                rec.notes.append(ev.note)
        rec.unconfirmed = list(intents.values())
        return rec

    def unconfirmed(self) -> list[tuple[str, SubmittingEvent]]:
        """(trial_id, 'submitting' event) for every submit whose outcome was never recorded."""
        return [(rec.trial_id, ev) for rec in self.trials(include_abandoned=True) for ev in rec.unconfirmed]

    def open_attempts(self) -> list[tuple[str, Attempt]]:
        """(trial_id, attempt) for every job that may still be running."""
        out = []
        for rec in self.trials(include_abandoned=True):
            att = rec.open_attempt
            if att is not None:
                out.append((rec.trial_id, att))
        return out
