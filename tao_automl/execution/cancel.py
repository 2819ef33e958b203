"""Cancel a running experiment from any process (``tao-automl cancel``).

Two things happen: ``cancel.json`` is dropped in the experiment folder (the
driver, if alive, notices it within seconds and stops the search: no new
trials, final evaluation skipped), and every job still running -- each one the
ledger shows as open, one whose submit the ledger never confirmed
(:mod:`tao_automl.store.intents`), and a baseline or final evaluation job
in progress -- is canceled through a backend rebuilt from ``settings.json``
(platform name + the non-secret options recorded there).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from tao_automl.errors import PlatformError, SettingsError
from tao_automl.execution.extras import CANCEL_FILE
from tao_automl.execution.jobs import cancel_job, cancel_open_jobs
from tao_automl.platforms import BACKENDS, get_backend
from tao_automl.platforms.base import JobHandle
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

__all__ = ["cancel_experiment", "backend_from_settings"]

log = logging.getLogger("tao_automl")


def backend_from_settings(ws: Workspace) -> Any:
    """Rebuild the experiment's platform backend from its ``settings.json``."""
    settings = ws.read_json("settings.json")
    name = str(settings.get("platform") or "local")
    if name.lower() not in BACKENDS:
        raise SettingsError("cannot rebuild the experiment's platform backend",
                            file=ws.path("settings.json"), key="platform", value=name,
                            expected="one of " + ", ".join(sorted(BACKENDS)),
                            hint="the run used a custom backend object; cancel its jobs through that object")
    return get_backend(name, **dict(settings.get("platform_kwargs") or {}))


def cancel_experiment(ws: Workspace, *, reason: str = "canceled by tao-automl cancel") -> list[dict[str, Any]]:
    """Stop the experiment in ``ws``; returns one entry per open job:
    ``{"trial_id", "job_id", "action": "canceled" | "already finished" | "error: ..."}``."""
    ws.write_json(CANCEL_FILE, {"t": time.time(), "reason": reason, "pid": os.getpid()})
    ledger = JobLedger(ws)
    # Baseline/final evaluation jobs: handle written at submit, record at the end.
    evals = []
    for kind in ("baseline", "final"):
        raw = ws.read_json(f"evaluations/{kind}-handle.json", default=None)
        if isinstance(raw, dict) and not ws.exists(f"evaluations/{kind}.json"):
            try:
                evals.append((f"{kind}-eval", JobHandle.from_dict(raw)))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("unreadable %s evaluation handle: %s", kind, exc)
    if not ledger.open_attempts() and not ledger.unconfirmed() and not evals:
        return []
    backend = backend_from_settings(ws)
    out = []
    for label, handle in evals:
        entry = {"trial_id": label, "job_id": handle.job_id}
        try:
            entry["action"] = cancel_job(backend, handle)
        except PlatformError as exc:
            entry["action"] = f"error: {exc}"
            log.warning("could not cancel the %s job %s: %s", label, handle.job_id, exc)
        out.append(entry)
    # a job submitted but not yet recorded is looked up and canceled too
    return out + cancel_open_jobs(ledger, backend, reason)
