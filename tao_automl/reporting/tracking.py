"""Weights & Biases tracking, run from the driver (never inside trial jobs).

One WandB run per trial (grouped by experiment: ``group`` = the session id
unless set), with the trial's hyperparameters as config, its per-epoch
metrics streamed as the ledger records them, and its final status in the
run summary; plus one ``summary`` run with the best trial, the baseline, the
final evaluation and a ``wandb.Table`` of all trials.

Switched on by the ``wandb`` block of ``automl_settings`` (``{"wandb":
{"project": "x", "mode": "offline"}}`` or ``{"wandb": True}``); every field
left unset falls back to WandB's own env vars (``WANDB_PROJECT``,
``WANDB_ENTITY``, ``WANDB_RUN_GROUP``, ``WANDB_TAGS``, ``WANDB_MODE``).  Run
files go to ``<workspace>/wandb/`` (or the block's ``dir``).

A missing ``wandb`` package, a missing login (online mode without an API
key) or any WandB error never breaks a run: one warning line and tracking
is off.  Config holds hyperparameters and non-secret settings only: no
environment values, no platform options.
"""

from __future__ import annotations

import logging
import netrc
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tao_automl.config.secrets import mask_obj
from tao_automl.config.statuses import TrialStatus
from tao_automl.planning.plan import RunPlan
from tao_automl.reporting.collect import score_of, trial_result
from tao_automl.store.ledger import JobLedger
from tao_automl.store.local_mirror import local_run_dir
from tao_automl.store.workspace import Workspace

__all__ = ["WandbTracker", "wandb_options", "tracking_callback", "finish_tracking"]

log = logging.getLogger("tao_automl")

# Settings copied into each run's config (nothing that can carry a secret).
CONFIG_SETTINGS = (
    "algorithm", "metric", "direction", "max_recommendations", "max_epochs", "min_epochs",
    "reduction_factor", "population_size", "perturbation_interval", "max_concurrent", "seed",
    "max_retries", "checkpoint_selection",
)

_ACTIVE: dict[str, WandbTracker] = {}  # workspace root -> tracker (for finish_tracking)
_WARNED: set[str] = set()


def _warn_once(key: str, msg: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(msg)


def wandb_options(settings: Any) -> dict[str, Any] | None:
    """The resolved ``wandb`` block (a plain dict) or ``None`` when tracking is off.

    ``settings`` is an :class:`~tao_automl.config.settings.AutoMLSettings`, its
    ``to_dict()``, or the ``wandb`` block itself.
    """
    if settings is None:
        return None
    block: Any = settings
    if hasattr(settings, "to_dict"):
        block = settings.to_dict().get("wandb")
    elif isinstance(settings, Mapping) and "algorithm" in settings:
        block = settings.get("wandb")
    if block is None or block is False:
        return None
    if block is True:
        block = {}
    if hasattr(block, "__attrs_attrs__"):
        import attrs

        block = attrs.asdict(block)
    opts = dict(block)
    if not opts.get("enabled", True):
        return None
    mode = opts.get("mode") or os.environ.get("WANDB_MODE") or None
    if mode == "disabled" or os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1"):
        return None
    tags = opts.get("tags") or [t for t in os.environ.get("WANDB_TAGS", "").split(",") if t.strip()]
    return {
        "project": opts.get("project") or os.environ.get("WANDB_PROJECT") or "tao-automl",
        "entity": opts.get("entity") or os.environ.get("WANDB_ENTITY") or None,
        "group": opts.get("group") or os.environ.get("WANDB_RUN_GROUP") or None,
        "tags": [str(t).strip() for t in tags],
        "mode": mode,
        "dir": opts.get("dir") or None,
    }


def _has_login(mode: str | None) -> bool:
    """Offline needs no login; online needs an API key (env, identity token or netrc)."""
    if mode in ("offline", "disabled"):
        return True
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or ""
    try:
        path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
        return bool(netrc.netrc(path).authenticators(host))
    except (OSError, netrc.NetrcParseError):
        return False


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        _warn_once("import", "WandB tracking is off: the 'wandb' package is not installed "
                             "(pip install wandb)")
        return None
    return wandb


def _run_id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", "-".join(p for p in parts if p))[:120]


def _native(v: Any) -> Any:
    if hasattr(v, "item") and callable(v.item):
        return v.item()
    return v


class WandbTracker:
    """Opens, feeds and closes the WandB runs of one experiment.

    The Tune callback (:func:`tracking_callback`) calls :meth:`trial_started`,
    :meth:`trial_progress` and :meth:`trial_finished`; :func:`finish_tracking`
    writes the summary run.  Every WandB call is guarded: the first error
    logs one warning and switches tracking off for the rest of the run.
    """

    def __init__(self, *, workspace_root: str, session_id: str, options: Mapping[str, Any],
                 run_config: Mapping[str, Any], metric: str, direction: str | None = None,
                 storage_options: Mapping[str, Any] | None = None) -> None:
        self.workspace_root = workspace_root
        self.session_id = session_id
        self.options = dict(options)
        self.run_config = dict(run_config)
        self.metric = metric
        self.direction = direction
        self.storage_options = dict(storage_options or {})
        self.enabled = True
        self._runs: dict[str, Any] = {}
        self._logged: dict[str, int] = {}  # trial id -> number of ledger epoch events logged
        self._planned: set[str] = set()
        self._lock = threading.Lock()
        self._last_poll = 0.0
        _ACTIVE[workspace_root] = self

    # -- pickling (Tune stores its run config): drop live runs ------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_runs={}, _logged={}, _planned=set(), _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- helpers --------------------------------------------------------------
    @property
    def run_dir(self) -> str:
        """Where WandB writes (its own ``wandb/`` folder is created inside)."""
        if self.options.get("dir"):
            return str(self.options["dir"])
        if "://" in self.workspace_root:  # published into the workspace when the run ends
            return str(local_run_dir(self.workspace_root))
        return self.workspace_root

    def _disable(self, exc: BaseException) -> None:
        self.enabled = False
        _warn_once("error", f"WandB tracking is off for this run: {type(exc).__name__}: {exc}")

    def _init(self, *, name: str, job_type: str, config: Mapping[str, Any], run_id: str) -> Any:
        wandb = _import_wandb()
        if wandb is None:
            self.enabled = False
            return None
        if not _has_login(self.options.get("mode")):
            self.enabled = False
            _warn_once("login", "WandB tracking is off: not logged in (run `wandb login`, set "
                                "WANDB_API_KEY, or use automl_settings={'wandb': {'mode': 'offline'}})")
            return None
        Path(self.run_dir).mkdir(parents=True, exist_ok=True)
        opts = self.options
        return wandb.init(
            project=opts["project"], entity=opts.get("entity"),
            group=opts.get("group") or self.session_id, job_type=job_type,
            tags=list(opts.get("tags") or []) or None, mode=opts.get("mode"), dir=self.run_dir,
            name=name, id=run_id, resume="allow", config=mask_obj(dict(config)), reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True,
                                    save_code=False, disable_git=True, disable_job_creation=True,
                                    x_save_requirements=False),
        )

    def _ledger(self) -> Any:
        return JobLedger(Workspace(self.workspace_root, self.storage_options))

    # -- trial runs ------------------------------------------------------------
    def trial_started(self, trial_id: str, hyperparameters: Mapping[str, Any] | None = None) -> None:
        """Open the trial's run (idempotent: a paused-and-resumed trial keeps its run)."""
        if not self.enabled or trial_id in self._runs:
            return
        config = {**self.run_config, "trial_id": trial_id,
                  **{k: _native(v) for k, v in (hyperparameters or {}).items()}}
        try:
            with self._lock:
                run = self._init(name=f"{self.session_id}-{trial_id}", job_type="trial", config=config,
                                 run_id=_run_id(self.session_id, trial_id))
        except Exception as exc:  # noqa: BLE001 - tracking never breaks a run
            self._disable(exc)
            return
        if run is not None:
            self._runs[trial_id] = run
            self._logged.setdefault(trial_id, 0)

    def trial_progress(self, trial_id: str) -> None:
        """Log the epoch records the ledger holds that were not logged yet."""
        run = self._runs.get(trial_id)
        if run is None or not self.enabled:
            return
        try:
            rec = self._ledger().trial(trial_id)
            if trial_id not in self._planned and rec.planned:
                hp = rec.planned.get("hyperparameters") or {}
                run.config.update(mask_obj({k: _native(v) for k, v in hp.items()}), allow_val_change=True)
                if rec.planned.get("adjustments"):
                    run.config.update(mask_obj({"adjustments": list(rec.planned["adjustments"])}),
                                      allow_val_change=True)
                self._planned.add(trial_id)
            start = self._logged.get(trial_id, 0)
            for ev in rec.epochs[start:]:
                row = {k: v for k, v in (ev.get("values") or {}).items() if isinstance(v, (int, float))}
                if ev.get("epoch") is not None:
                    row["epoch"] = ev["epoch"]
                row["attempt"] = ev.get("attempt") or 1
                run.log(row)
            self._logged[trial_id] = len(rec.epochs)
        except Exception as exc:  # noqa: BLE001
            self._disable(exc)

    def poll(self, interval_s: float = 5.0) -> None:
        """Stream new ledger epochs of every open trial run (throttled)."""
        now = time.monotonic()
        if not self._runs or now - self._last_poll < (interval_s if "://" not in self.workspace_root
                                                      else 4 * interval_s):
            return
        self._last_poll = now
        for trial_id in list(self._runs):
            self.trial_progress(trial_id)

    def trial_finished(self, trial_id: str, *, errored: bool = False) -> None:
        """Flush the remaining epochs, write the final status to the summary, close the run."""
        run = self._runs.get(trial_id)
        if run is None:
            return
        self.trial_progress(trial_id)
        try:
            rec = self._ledger().trial(trial_id)
            selection = self.run_config.get("checkpoint_selection") or "best"
            t = trial_result(rec, self.metric, self.direction, selection)
            status = t.status if t.status not in (TrialStatus.RUNNING, TrialStatus.PENDING) else (
                TrialStatus.FAILED if errored else TrialStatus.STOPPED)
            value = t.metric_value
            if value is None and status == TrialStatus.STOPPED:  # stop event not in the ledger yet
                value = score_of(rec, self.metric, self.direction, selection).value
            run.summary.update(mask_obj({
                "status": status, "metric_value": value, "job_id": t.job_id,
                "epochs_completed": t.epochs_completed, "attempts": t.attempts,
                "duration_s": t.duration_s, "failure_reason": t.failure_reason,
                "failure_message": (t.failure_message or "")[-500:] or None,
            }))
            run.finish(exit_code=1 if status == TrialStatus.FAILED else 0)
        except Exception as exc:  # noqa: BLE001
            self._disable(exc)
        finally:
            self._runs.pop(trial_id, None)

    def close_trials(self) -> None:
        """Finish every trial run still open (end of the search, interruption)."""
        for trial_id in list(self._runs):
            self.trial_finished(trial_id)

    # -- the summary run --------------------------------------------------------
    def summary(self, result: Mapping[str, Any]) -> None:
        """One run with best trial, baseline, final evaluation and a table of all trials."""
        self.close_trials()
        if not self.enabled:
            return
        try:
            run = self._init(name=f"{self.session_id}-summary", job_type="summary",
                             config=self.run_config, run_id=_run_id(self.session_id, "summary"))
            if run is None:
                return
            result = mask_obj(dict(result))  # secret values never reach WandB
            run.summary.update(summary_values(result))
            for row in hypervolume_rows(result):  # multi-objective runs: the front's hypervolume as it grew
                run.log(row)
            run.log({"trials": _trials_table(run, result)})
            run.finish()
        except Exception as exc:  # noqa: BLE001
            self._disable(exc)
        finally:
            _ACTIVE.pop(self.workspace_root, None)


def summary_values(result: Mapping[str, Any]) -> dict[str, Any]:
    """Flat summary of a result dict (what the summary run shows)."""
    best = result.get("best") or {}
    base = result.get("baseline") or {}
    final = result.get("final_evaluation") or {}
    prog = result.get("progress") or {}
    out: dict[str, Any] = {
        "metric": result.get("metric"), "direction": result.get("direction"),
        "best/metric_value": best.get("metric_value"), "best/trial": best.get("rec_id"),
        "best/job_id": best.get("job_id"), "best/checkpoint": best.get("checkpoint"),
        "best/epoch": best.get("metric_epoch"),
        "baseline/metric_value": base.get("metric_value"), "baseline/status": base.get("status"),
        "final/metric_value": final.get("metric_value"), "final/status": final.get("status"),
        "final/improvement": final.get("improvement"),
        "trials/succeeded": prog.get("completed"), "trials/failed": prog.get("failed"),
        "trials/total": prog.get("total"), "elapsed_s": result.get("elapsed_s"),
        "stopped_early": result.get("stopped_early"),
    }
    for k, v in (best.get("hyperparameters") or {}).items():
        out[f"best/{k}"] = _native(v)
    mo = result.get("multi_objective") or {}
    if result.get("pareto_front") is not None:  # multi-objective runs
        out["pareto/hypervolume"] = mo.get("hypervolume")
        out["pareto/size"] = len(result["pareto_front"])
        out["best/selected_by"] = best.get("selected_by")
        for k, v in (best.get("objective_values") or {}).items():
            out[f"best/objective/{k}"] = v
        for k, v in (final.get("objective_values") or {}).items():
            out[f"final/objective/{k}"] = v
        for k, v in (mo.get("reference_point") or {}).items():
            out[f"pareto/reference_point/{k}"] = v
    return out


def hypervolume_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The summary run's history of a multi-objective run: the front's
    hypervolume after each succeeded trial (``multi_objective.hypervolume_trace``),
    so WandB charts it against ``pareto/trials``."""
    trace = (result.get("multi_objective") or {}).get("hypervolume_trace") or []
    return [{"pareto/trials": k, "pareto/hypervolume": hv} for k, hv in enumerate(trace, 1)]


def trials_table_data(result: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the summary run's trials table: one row per trial;
    multi-objective runs add ``objective/<metric>`` columns and ``pareto`` (on the front)."""
    history = list(result.get("history") or [])
    hp_names = sorted({k for t in history for k in (t.get("hyperparameters") or {})})
    mo = result.get("pareto_front") is not None
    obj_names = [o["metric"] for o in (result.get("multi_objective") or {}).get("objectives") or []] if mo else []
    front = {p["rec_id"] for p in result.get("pareto_front") or []}
    cols = ["rec_id", "job_id", "status", "metric_value", "epochs_completed", "duration_s",
            "failure_reason", *(f"objective/{n}" for n in obj_names), *(["pareto"] if mo else []), *hp_names]
    rows = []
    for t in history:
        hp = t.get("hyperparameters") or {}
        ov = t.get("objective_values") or {}
        row = [t.get(c) for c in cols[:7]]
        row += [ov.get(n) for n in obj_names] + ([t.get("rec_id") in front] if mo else [])
        row += [v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
                for v in (_native(hp.get(h)) for h in hp_names)]
        rows.append(row)
    return cols, rows


def _trials_table(run: Any, result: Mapping[str, Any]) -> Any:
    import wandb

    cols, rows = trials_table_data(result)
    return wandb.Table(columns=cols, data=rows)


def tracker_for(prepared: RunPlan, plan: Any) -> WandbTracker | None:
    """A tracker for a prepared run, or ``None`` when the settings leave tracking off."""
    opts = wandb_options(prepared.settings)
    if opts is None:
        return None
    s = prepared.settings.to_dict()
    config = {k: s.get(k) for k in CONFIG_SETTINGS}
    config.update(skill=getattr(prepared.skill, "name", None), action=prepared.action,
                  session_id=plan.session_id, platform=getattr(prepared.backend, "name", None))
    return WandbTracker(workspace_root=plan.workspace_root, session_id=plan.session_id, options=opts,
                        run_config=config, metric=prepared.metric, direction=prepared.direction,
                        storage_options=plan.storage_options)


def tracking_callback(tracker: WandbTracker, space: Any = None) -> Any:
    """The driver-side Ray Tune ``Callback`` feeding ``tracker``."""
    from ray.tune import Callback

    class _WandbCallback(Callback):
        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            hp = None
            if space is not None:
                try:
                    hp = space.decode(trial.config)
                except Exception:  # noqa: BLE001 - the planned event fills it in later
                    hp = None
            tracker.trial_started(trial.trial_id, hp if hp is not None else dict(trial.config))

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                            **info: Any) -> None:
            tracker.trial_progress(trial.trial_id)

        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            # epochs that carry no objective value reach Tune as no result: poll the ledger
            tracker.poll()

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            tracker.trial_finished(trial.trial_id)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            tracker.trial_finished(trial.trial_id, errored=True)

        def on_experiment_end(self, trials: list, **info: Any) -> None:
            tracker.close_trials()

    return _WandbCallback()


def finish_tracking(result: Mapping[str, Any]) -> None:
    """Write the summary run for a finished experiment and close what is open.

    No-op when tracking is off for the experiment's settings.  Works without a
    live tracker too (e.g. ``tao-automl report``): the settings come from the
    result dict.
    """
    root = str(result.get("workspace") or "")
    tracker = _ACTIVE.get(root)
    if tracker is None:
        opts = wandb_options(result.get("settings"))
        if opts is None:
            return
        s = result.get("settings") or {}
        tracker = WandbTracker(workspace_root=root, session_id=str(result.get("session_id")),
                               options=opts, run_config={k: s.get(k) for k in CONFIG_SETTINGS},
                               metric=str(result.get("metric")), direction=result.get("direction"))
    tracker.summary(result)
