"""Trials of a resumed run that the restored search does not know.

Ray Tune saves its experiment state (trials + searcher) about once a second.
A driver killed between a trial's start and the next save leaves that trial
in the job ledger -- often with a running job -- but not in the state Tune
restores.  The restored searcher then plans a replacement, so counting the
ledger's trial would end the run with one trial more than the budget.

:func:`abandon_callback` settles such trials on resume.  A searcher that
regenerates trial ids deterministically (Tune's ``BasicVariantGenerator``,
used by random and grid search) starts the *same* trial ids again, in order,
before any new one; such a trial reattaches to its job (or replays its
outcome), so nothing is abandoned.  A trial id still unknown when the search
starts a trial with a new id (a searcher with random ids, e.g. Optuna, does so
at once), or at the end of the search, is **abandoned**: its open job is canceled and
a ``stopped`` event with ``abandoned: true`` and
``why="abandoned: unknown to the restored search"`` is recorded.  Abandoned
trials stay in the ledger (nothing is deleted) but are left out of the
history, the progress table and every count, so the result holds exactly the
requested number of trials.  If the search later starts an abandoned id
again, the trial records ``adopted`` and counts again.  A trial the ledger
shows finished is never abandoned (when Tune's state lacks one, the search is
rebuilt from the ledger instead: :mod:`tao_automl.execution.rebuild`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from tao_automl.errors import PlatformError
from tao_automl.execution.jobs import cancel_job
from tao_automl.store.events import StoppedEvent
from tao_automl.store.ledger import JobLedger

__all__ = ["ABANDONED_WHY", "OrphanSettler", "abandon", "abandon_callback"]

log = logging.getLogger("tao_automl")

ABANDONED_WHY = "abandoned: unknown to the restored search"


def abandon(ledger: JobLedger, backend: Any, trial_id: str, why: str = ABANDONED_WHY) -> None:
    """Cancel ``trial_id``'s open job (if any) and mark the trial abandoned."""
    rec = ledger.trial(trial_id)
    if rec.abandoned or rec.done:  # a finished trial is never abandoned: the ledger is the truth
        return
    att = rec.open_attempt
    if att is not None:
        try:
            cancel_job(backend, att.handle, check=False)
        except PlatformError as exc:
            log.warning("could not cancel job %s of abandoned trial %s: %s", att.handle.job_id, trial_id, exc)
    number = att.number if att is not None else (rec.attempts[-1].number if rec.attempts else 0)
    ledger.write(StoppedEvent(trial_id=trial_id, attempt=number, why=why, abandoned=True))
    log.warning("trial %s is unknown to the restored search (the driver died before Tune saved it); "
                "abandoned%s", trial_id, f" and job {att.handle.job_id} canceled" if att is not None else "")


class OrphanSettler:
    """Driver-side state of one run: ``before`` are the ledger's trial ids
    from earlier drivers (empty for a fresh run).

    At the first Tune step the trials Tune holds are the restored ones; the
    other ids of ``before`` are candidates.  A searcher that regenerates ids
    deterministically re-creates every candidate (in order) before any new
    id; a searcher with random ids never re-creates one.  So once Tune holds
    a trial that is neither restored nor a candidate -- or the search ends --
    the remaining candidates are abandoned.
    """

    def __init__(self, ledger: JobLedger, backend: Any, before: Iterable[str]) -> None:
        self.ledger, self.backend = ledger, backend
        self.before = set(before)
        self.candidates: set[str] | None = None if self.before else set()
        self.expected: set[str] = set()  # restored and re-created ids

    @property
    def pending(self) -> bool:
        return self.candidates is None or bool(self.candidates)

    def settle(self, trial_ids: Iterable[str], *, final: bool) -> None:
        """Called with the ids of every trial Tune holds, at each step."""
        if not self.pending:
            return
        known = set(trial_ids)
        if self.candidates is None:  # the first step: what the restored state holds
            recs = [self.ledger.trial(t) for t in self.before - known]
            self.candidates = {r.trial_id for r in recs if not (r.abandoned or r.done)}
            self.expected = set(known)
        recreated = self.candidates & known
        self.candidates -= recreated
        self.expected |= recreated
        if not self.candidates or not (final or known - self.expected):
            return
        for tid in sorted(self.candidates):
            try:
                abandon(self.ledger, self.backend, tid)
            except Exception as exc:  # noqa: BLE001 - never break the search
                log.warning("could not abandon trial %s: %s: %s", tid, type(exc).__name__, exc)
        self.candidates = set()


# Tune pickles its run config (callbacks included) into the experiment and a
# restored Tuner uses the unpickled copies: the callback pickles as a key and
# resolves to the settler the *current* driver registered under that key.
_SETTLERS: dict[str, OrphanSettler] = {}


def abandon_callback(key: str, settler: OrphanSettler) -> Any:
    """Register ``settler`` as the live one for ``key`` (the experiment
    folder) and return the Tune callback that drives it."""
    _SETTLERS[key] = settler
    return _callback(key)


def _callback(key: str) -> Any:
    from ray.tune import Callback

    class _Abandon(Callback):
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (_callback, (key,))

        def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
            settler = _SETTLERS.get(key)
            if settler is not None and settler.pending:
                settler.settle([t.trial_id for t in trials], final=False)

        def on_experiment_end(self, trials: list, **info: Any) -> None:
            settler = _SETTLERS.get(key)
            if settler is not None and settler.pending:
                settler.settle([t.trial_id for t in trials], final=True)

    return _Abandon()
