"""Driver-side extras around a search: live progress, WandB tracking, the
``tao-automl cancel`` watcher, plots -- none of them can break a run."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from tao_automl.config.backoff import wait_until
from tao_automl.execution import early
from tao_automl.execution.early_feed import stop_feeder
from tao_automl.execution.jobs import sweep_early_jobs
from tao_automl.planning.plan import RunPlan
from tao_automl.reporting.plots import render_plots
from tao_automl.reporting.progress import progress_callback
from tao_automl.reporting.tracking import finish_tracking, tracker_for, tracking_callback
from tao_automl.store.workspace import Workspace

__all__ = ["driver_callbacks", "after_run", "platform_record", "wait_for_plots", "CANCEL_FILE", "PLOTS_DONE"]

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


def _early_callback(folder: str, backend: Any) -> Any:
    """Cancels the early jobs nobody adopted: early job ``i`` belongs to the
    ``i``-th trial Tune starts (the searcher suggests the early configurations
    first, in order), so once ``i + 1`` trials have been running for
    :data:`~tao_automl.execution.early.SWEEP_GRACE_S` (the grace lets a trial
    whose actor is slow to come up, on a loaded machine, still take its job)
    an untaken early job ``i`` matched no trial and is canceled; it would
    otherwise hold a slot to its end.  Tune's first trial also stops the
    driver's feeder (:mod:`tao_automl.execution.early_feed`)."""
    from ray.tune import Callback

    class _EarlySweep(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.starts: list[float] = []  # when Tune started each trial (monotonic)
            self.swept_below = 0

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if not self.starts:
                stop_feeder(folder)  # Tune is up: the number of early jobs is final
            self.starts.append(time.monotonic())

        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            now = time.monotonic()
            due = sum(1 for t in self.starts if now - t >= early.SWEEP_GRACE_S)
            if due > self.swept_below:
                self.swept_below = due
                sweep_early_jobs(folder, backend, "Tune started its trial without adopting it", below=due)

    return _EarlySweep()


def driver_callbacks(prepared: RunPlan, plan: Any, stop: Any) -> list[Any]:
    """Extra Tune callbacks: cancel watcher, early-start sweep, live progress (unless quiet), WandB."""
    ws = Workspace(plan.workspace_root, plan.storage_options)
    out: list[Any] = [_cancel_callback(ws, stop)]
    if getattr(plan, "early_dir", None):
        out.append(_early_callback(plan.early_dir, prepared.backend))
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


PLOTS_DONE = "plots/done.json"
_RENDERERS: list[Any] = []  # background plot processes started by this driver


_SUMMARIES: list[Any] = []  # the WandB summary threads started by after_run


def wait_for_summaries(timeout_s: float = 120.0) -> bool:
    """Wait until the WandB summary runs of finished runs are written (a
    notebook or test that reads them right after ``run()``); True when all are."""
    import time

    deadline = time.monotonic() + timeout_s
    while _SUMMARIES:
        thread = _SUMMARIES[0]
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            return False
        _SUMMARIES.pop(0)
    return True


def after_run(ws: Workspace, result: dict[str, Any]) -> None:
    """Summary WandB run and plots after ``result.json`` was written, both off
    the run's critical path: the WandB summary in a (non-daemon) thread that
    the interpreter waits for at exit, the plots in a detached process
    (``plots/done.json`` marks its end; :func:`wait_for_plots`)."""
    import threading

    def summary() -> None:
        try:
            finish_tracking(result)
        except Exception as exc:  # noqa: BLE001
            log.warning("WandB summary run skipped: %s: %s", type(exc).__name__, exc)

    thread = threading.Thread(target=summary, name="tao-automl-wandb-summary", daemon=False)
    _SUMMARIES.append(thread)
    thread.start()
    try:
        _render_in_background(ws, result)
    except Exception as exc:  # noqa: BLE001
        log.warning("plots skipped: %s: %s", type(exc).__name__, exc)


def _render_in_background(ws: Workspace, result: dict[str, Any]) -> None:
    import os
    import subprocess
    import sys
    import threading

    try:  # a resumed run's earlier marker
        if ws.uri:
            ws.filesystem()[0].rm(ws.path(PLOTS_DONE))
        else:
            os.remove(ws.path(PLOTS_DONE))
    except Exception:  # noqa: BLE001 - absent
        pass
    if ws.uri:  # a remote workspace needs the driver's storage options: render in a thread
        threading.Thread(target=_render, args=(ws, result), name="tao-automl-plots", daemon=False).start()
        return
    _RENDERERS[:] = [p for p in _RENDERERS if p.poll() is None]  # reap finished ones
    os.makedirs(ws.path("plots"), exist_ok=True)
    with open(ws.path("plots/render.log"), "ab") as logf:
        _RENDERERS.append(subprocess.Popen(
            [sys.executable, "-m", "tao_automl.execution.extras", ws.root],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, close_fds=True, start_new_session=True,
        ))


def _render(ws: Workspace, result: dict[str, Any] | None = None) -> list[str]:
    """Render the plots of a finished experiment and write ``plots/done.json``."""
    paths: list[str] = []
    try:
        paths = render_plots(ws, result if result is not None else ws.read_json("result.json"))
    except Exception as exc:  # noqa: BLE001
        log.warning("plots skipped: %s: %s", type(exc).__name__, exc)
    ws.write_json(PLOTS_DONE, {"t": time.time(), "paths": [str(p) for p in paths]})
    return paths


def wait_for_plots(workspace: Workspace | str, timeout_s: float = 120.0) -> list[str] | None:
    """Wait until the plots a run renders in the background are written;
    their paths, or None if they are not done within ``timeout_s``."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(str(workspace))

    def done() -> list[str] | None:
        try:
            if ws.exists(PLOTS_DONE):
                return list((ws.read_json(PLOTS_DONE, default={}) or {}).get("paths") or [])
        except Exception:  # noqa: BLE001 - being written
            pass
        return None

    return wait_until(done, timeout_s, until=lambda paths: paths is not None, first=0.05, cap=0.05)


if __name__ == "__main__":  # python -m tao_automl.execution.extras WORKSPACE (the background renderer)
    import sys

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    _render(Workspace(sys.argv[1]))
