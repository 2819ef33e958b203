"""Early start, continued: keep the slots busy until Ray Tune takes over.

For an algorithm whose configurations are all drawn in advance (registry
``queue_rest``: ``random``), the driver knows what Tune will suggest after
the initial batch (``RunPlan.queued_points``, handed to Tune's searcher
after the batch).  A cold Ray start and Tune's set-up take seconds, in which
short jobs of the initial batch may already have ended; the
:class:`EarlyFeeder` then submits the next queued configuration as early job
``<i>.json`` for each slot that frees up, until the first early job is
adopted by a trial (Tune is up), the driver stops it, or the queue is empty.
The trials adopt the extra jobs exactly like the initial batch's
(:mod:`tao_automl.execution.early`); one nobody adopts is swept like them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from tao_automl.errors import PlatformError
from tao_automl.execution import early
from tao_automl.execution.trial import TrialPlan, launch_early_one
from tao_automl.platforms.base import JobHandle

__all__ = ["EarlyFeeder", "stop_feeder"]

log = logging.getLogger(__name__)

#: the feeders running in this driver, by early-records folder (Tune pickles its callbacks,
#: so a callback names the folder, never the thread)
_RUNNING: dict[str, EarlyFeeder] = {}


def stop_feeder(folder: str | None) -> None:
    """Stop the driver's feeder of ``folder`` (if one runs here)."""
    feeder = _RUNNING.get(folder or "")
    if feeder is not None:
        feeder.stop()


class EarlyFeeder:
    """A driver thread submitting ``points`` as early jobs ``start``,
    ``start + 1``, ... while fewer than ``slots`` early jobs run and no trial
    has adopted one yet."""

    def __init__(self, plan: TrialPlan, points: list[Mapping[str, Any]], *, folder: str, start: int,
                 slots: int, backend: Any, should_stop: Callable[[], bool] = lambda: False,
                 poll_s: float = 0.05) -> None:
        self.plan, self.points, self.folder = plan, list(points), folder
        self.next_index, self.slots, self.backend = start, max(1, int(slots)), backend
        self.should_stop, self.poll_s = should_stop, poll_s
        self.submitted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handles: list[JobHandle] = []

    def start(self) -> EarlyFeeder:
        for i in range(self.next_index):  # the initial batch's jobs hold the slots first
            rec = early.record(self.folder, i)
            if rec and rec.get("handle"):
                self._handles.append(JobHandle.from_dict(rec["handle"]))
        if self.points:
            _RUNNING[self.folder] = self
            self._thread = threading.Thread(target=self._run, name="tao-automl-early-feed", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """No further submits; waits for a submit in flight (its record complete)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        if _RUNNING.get(self.folder) is self:
            del _RUNNING[self.folder]

    def _done(self) -> bool:
        return self._stop.is_set() or self.should_stop() or early.any_taken(self.folder)

    def _running(self) -> int:
        n = 0
        for h in self._handles:
            try:
                if not self.backend.status(h).terminal:
                    n += 1
            except PlatformError:  # unknown: count it as running (never more jobs than slots)
                n += 1
        return n

    def _run(self) -> None:
        try:
            while self.points and not self._done():
                free = self.slots - self._running()
                while free > 0 and self.points and not self._done():
                    handle = launch_early_one(self.plan, self.points.pop(0), self.folder, self.next_index)
                    self.next_index += 1
                    self.submitted += 1
                    if handle is None:  # the platform refused it: its trial retries, no more feeding
                        return
                    self._handles.append(handle)
                    free -= 1
                self._stop.wait(self.poll_s)
        except Exception as exc:  # noqa: BLE001 - the trials submit what was not fed
            log.warning("early start: feeding queued jobs stopped (%s: %s); Tune's trials submit the rest",
                        type(exc).__name__, exc)
        finally:
            if self.submitted:
                log.info("early start: %d queued job(s) submitted while Ray Tune started", self.submitted)
