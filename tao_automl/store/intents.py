"""Close the window between a platform accepting a job and the ledger knowing it.

The trial writes a ``submitting`` event (job name, results dir, attempt)
before it calls ``backend.submit`` and the ``submitted`` event (with the job
handle) after.  A driver killed in between leaves a job nobody tracks.
:func:`recover_unconfirmed` runs on resume, before the end-of-run reaper and
before ``tao-automl cancel``: it asks the backend for jobs with that name
(``backend.find``) and records each one as the ``submitted`` attempt, so the
normal paths reattach, abandon or cancel it.  When nothing is found (the
submit never happened, or the job already ended and the platform forgot it)
the intent is closed with an ``unconfirmed`` event.  Backends without
``find`` leave the intent open and log it once per call.
"""

from __future__ import annotations

import logging
from typing import Any

from tao_automl.errors import PlatformError
from tao_automl.store.events import SubmittedEvent, UnconfirmedEvent
from tao_automl.store.ledger import JobLedger

__all__ = ["recover_unconfirmed"]

log = logging.getLogger("tao_automl")


def recover_unconfirmed(ledger: JobLedger, backend: Any) -> list[dict[str, Any]]:
    """Resolve every open ``submitting`` intent; returns one entry per intent:
    ``{"trial_id", "attempt", "name", "found": [job ids] | None}`` (None: the
    backend cannot look jobs up)."""
    out: list[dict[str, Any]] = []
    for trial_id, ev in ledger.unconfirmed():
        attempt, name = ev.attempt, ev.name
        entry: dict[str, Any] = {"trial_id": trial_id, "attempt": attempt, "name": name, "found": None}
        out.append(entry)
        find = getattr(backend, "find", None)
        if find is None or not name:
            log.warning("trial %s: attempt %d may have a job nobody tracks (%s); backend %s cannot look "
                        "jobs up by name", trial_id, attempt, name, getattr(backend, "name", backend))
            continue
        try:
            handles = list(find(name, ev.results_dir))
        except PlatformError as exc:
            log.warning("trial %s: could not look up job %s: %s", trial_id, name, exc)
            continue
        entry["found"] = [h.job_id for h in handles]
        if not handles:
            ledger.write(UnconfirmedEvent(trial_id=trial_id, attempt=attempt, name=name,
                                          why="no job with this name on the platform"))
            continue
        # Newest last: the ledger's attempt takes the last one; earlier duplicates
        # (a submit retried after a lost reply) are canceled.
        for extra in handles[:-1]:
            try:
                backend.cancel(extra)
            except PlatformError as exc:
                log.warning("could not cancel duplicate job %s: %s", extra.job_id, exc)
        ledger.write(SubmittedEvent(trial_id=trial_id, attempt=attempt, handle=handles[-1].to_dict(),
                                    recovered=True, spec_path=ev.spec_path, resume_from=ev.resume_from,
                                    start_epoch=ev.start_epoch, purpose=ev.purpose))
    return out
