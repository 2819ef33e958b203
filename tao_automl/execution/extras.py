"""Driver-side extras around a search: live progress, WandB tracking, the
``tao-automl cancel`` watcher, plots -- none of them can break a run."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from tao_automl.planning.plan import RunPlan
from tao_automl.reporting.plots import render_plots
from tao_automl.reporting.progress import progress_callback
from tao_automl.reporting.tracking import finish_tracking, tracker_for, tracking_callback
from tao_automl.store.workspace import Workspace

__all__ = ["driver_callbacks", "after_run", "platform_record", "CANCEL_FILE"]

log = logging.getLogger("tao_automl")

CANCEL_FILE = "cancel.json"
_SECRETISH = re.compile(r"(secret|token|password|passwd|api_?key|credential|auth)", re.I)


def platform_record(prepared: RunPlan) -> dict[str, Any]:
    """What ``tao-automl cancel`` needs to rebuild the backend: its name and the
    JSON-plain, non-secret constructor options (client objects are dropped)."""
    ref = getattr(prepared, "backend_ref", None)
    kwargs: dict[str, Any] = {}
    if isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[1], dict):
        for k, v in ref[1].items():
            if _SECRETISH.search(k):
                continue
            try:
                json.dumps(v)
            except (TypeError, ValueError):
                continue
            kwargs[k] = v
    return kwargs


def _cancel_callback(ws: Workspace, stop: Any, interval_s: float = 2.0) -> Any:
    from ray.tune import Callback

    started = time.time()

    class _CancelWatch(Callback):
        """Stops the search when ``tao-automl cancel`` drops ``cancel.json``."""

        last = 0.0

        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            now = time.monotonic()
            if now - self.last < interval_s or stop.is_set:
                return
            self.last = now
            try:
                if not ws.exists(CANCEL_FILE):
                    return
                req = ws.read_json(CANCEL_FILE, default={}) or {}
            except Exception:  # noqa: BLE001
                return
            if float(req.get("t", 0)) >= started:
                stop.interrupt("interrupted by tao-automl cancel")

    return _CancelWatch()


def driver_callbacks(prepared: RunPlan, plan: Any, stop: Any) -> list[Any]:
    """Extra Tune callbacks: cancel watcher, live progress (unless quiet), WandB."""
    ws = Workspace(plan.workspace_root, plan.storage_options)
    out: list[Any] = [_cancel_callback(ws, stop)]
    settings = prepared.settings
    if not settings.quiet:
        out.append(progress_callback(ws))
    try:
        tracker = tracker_for(prepared, plan)
        if tracker is not None:
            out.append(tracking_callback(tracker, prepared.space))
    except Exception as exc:  # noqa: BLE001 - tracking never breaks a run
        log.warning("WandB tracking is off: %s: %s", type(exc).__name__, exc)
    return out


def after_run(ws: Workspace, result: dict[str, Any]) -> None:
    """Summary WandB run and plots after ``result.json`` was written."""
    try:
        finish_tracking(result)
    except Exception as exc:  # noqa: BLE001
        log.warning("WandB summary run skipped: %s: %s", type(exc).__name__, exc)
    try:
        render_plots(ws, result)
    except Exception as exc:  # noqa: BLE001
        log.warning("plots skipped: %s: %s", type(exc).__name__, exc)
