"""Drive Ray Tune: build the Tuner (or restore it), stop early on a shared
root cause or a signal, and reap jobs that outlive their trials."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs

from tao_automl.algorithms import BuildContext
from tao_automl.algorithms.llm import skill_notes
from tao_automl.execution.extras import driver_callbacks
from tao_automl.execution.jobs import cancel_early_jobs
from tao_automl.execution.orphans import ABANDONED_WHY, OrphanSettler, abandon, abandon_callback
from tao_automl.execution.rebuild import (
    SEEDED,
    refuse_if_unbuildable,
    remaining_grid,
    seeded,
    seeded_ids,
    set_aside,
    settled_trials,
    unrestorable,
)
from tao_automl.execution.recommendation import Recommendation
from tao_automl.execution.trial import TrialPlan, make_trainable
from tao_automl.planning.plan import RunPlan
from tao_automl.reporting.collect import trial_result
from tao_automl.store.intents import recover_unconfirmed
from tao_automl.store.ledger import JobLedger

__all__ = ["run_search", "EarlyStop"]

log = logging.getLogger("tao_automl")


# Driver-process registries.  Tune pickles its run config (callbacks,
# stopper) into the experiment state and, on ``Tuner.restore``, uses the
# *unpickled* copies.  Objects that must stay live across that round trip
# (the stop flag, user hooks) pickle as a key and resolve, on unpickling in
# the driver, to the object registered by the current run.
_STOPS: dict[str, EarlyStop] = {}
_HOOKS: dict[tuple[str, str], Any] = {}


def _live_stop(key: str) -> EarlyStop:
    stop = _STOPS.get(key)
    return stop if stop is not None else EarlyStop(key)


class EarlyStop:
    """Shared stop flag: set by signal handlers or the failure watcher.

    ``key`` (the experiment folder) registers the flag so that copies Tune
    restores from its saved state resolve to this live object.
    """

    def __init__(self, key: str = "") -> None:
        self.reason: str | None = None
        self.error: BaseException | None = None  # raised by runner.run() after the search (fail())
        self.key = key
        if key:
            _STOPS[key] = self

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        if not self.key:
            return (EarlyStop, ("",))
        return (_live_stop, (self.key,))

    def set(self, reason: str) -> None:
        # A single attribute write is atomic under the GIL; no lock, so the
        # flag stays picklable (Tune pickles its run config).
        if self.reason is None:
            self.reason = reason

    def fail(self, exc: BaseException) -> None:
        """Stop the run because of ``exc`` (e.g. an LLMError from a searcher):
        nothing more is launched, running trials are stopped, and ``exc`` is
        raised to the caller once the search has wound down."""
        if self.error is None:
            self.error = exc
        self.set(f"{type(exc).__name__}: {exc}")

    @property
    def is_set(self) -> bool:
        return self.reason is not None

    def interrupt(self, reason: str) -> None:
        """Stop like Ctrl-C: record ``reason`` and, inside ``Tuner.fit``, raise
        SIGUSR1 -- Tune's own "interrupt" -- which saves the experiment with
        the running trials unfinished (resumable) and returns; the runner then
        cancels every open job (``execution.run._reap``)."""
        import signal

        self.set(reason if reason.startswith("interrupted") else f"interrupted: {reason}")
        usr1 = signal.getsignal(signal.SIGUSR1) if hasattr(signal, "SIGUSR1") else None
        if callable(usr1):
            signal.raise_signal(signal.SIGUSR1)

    @property
    def interrupted(self) -> bool:
        """Stopped by SIGINT/SIGTERM: Tune is interrupted (its state keeps the
        running trials unfinished, so a resume continues them), not stopped."""
        return bool(self.reason and self.reason.startswith("interrupted"))


def install_signal_handlers(stop: Any) -> Callable[[], None]:
    """SIGINT/SIGTERM -> a graceful stop; returns a function restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {}

    def handler(signum: int, frame: Any) -> None:
        stop.interrupt(f"interrupted by {signal.Signals(signum).name}")

    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    return restore


class LiveHook:
    """A user callable, pickled as (key, name) and resolved in the driver."""

    def __init__(self, key: str, name: str, fn: Any) -> None:
        self.key, self.name = key, name
        _HOOKS[(key, name)] = fn

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (_live_hook, (self.key, self.name))

    def __call__(self, *args: Any) -> Any:
        fn = _HOOKS.get((self.key, self.name))
        return fn(*args) if fn is not None else None


def _live_hook(key: str, name: str) -> LiveHook:
    hook = LiveHook.__new__(LiveHook)
    hook.key, hook.name = key, name
    return hook


def _user_call(name: str, fn: Any, *args: Any) -> Any:
    """A user callback; its exception is logged with the callback's name and
    the run goes on (as nvidia-tao-automl does)."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - user code
        log.warning("%s raised %s: %s (the run continues)", name, type(exc).__name__, exc)
        return None


def _callbacks(stop: EarlyStop, ledger: JobLedger, fail_fast_after: int, on_result: Any,
               on_recommendation: Any = None, space: Any = None, metric: str = "",
               feedback_fn: Any = None, feedback: dict[str, Any] | None = None) -> list[Any]:
    """Ray Tune callbacks: shared-root-cause stop, and the user hooks called with a
    :class:`~tao_automl.execution.recommendation.Recommendation`: ``on_recommendation(rec)``
    when a trial starts, ``feedback_fn(rec, job_id)`` (its value kept in
    ``feedback``) then ``on_result(rec, metric_value, status)`` when it ends."""
    from ray.tune import Callback

    def _notify(trial: Any) -> None:
        if on_result is None and feedback_fn is None:
            return
        rec = Recommendation.from_trial(trial_result(ledger.trial(trial.trial_id), metric), metric)
        if feedback_fn is not None:
            value = _user_call("feedback_fn", feedback_fn, rec, rec.job_id)
            if value is not None and feedback is not None:
                feedback[rec.id] = value
                rec = attrs.evolve(rec, feedback=value)
        if on_result is not None:
            _user_call("on_result", on_result, rec, rec.result, rec.status)

    class _Watcher(Callback):
        """Shared-root-cause detection over the first N finished trials and
        the user's on_result hook."""

        def __init__(self) -> None:
            self.outcomes: list[tuple[str, str | None]] = []

        def _finished(self, trial: Any, failed: bool) -> None:
            reason = None
            if failed:
                rec = ledger.trial(trial.trial_id)
                out = rec.outcome or {}
                reason = f"{out.get('reason') or 'program'}: {(out.get('message') or '')[-200:]}".strip()
            self.outcomes.append((trial.trial_id, reason))
            n = fail_fast_after
            if n and len(self.outcomes) == n:
                reasons = [r for _, r in self.outcomes]
                if all(r is not None for r in reasons):
                    kinds = Counter(r.split(":")[0] for r in reasons)
                    kind, count = kinds.most_common(1)[0]
                    if count == n:
                        stop.set(f"the first {n} trials all failed with one shared cause ({kind}); "
                                 f"last error: {reasons[-1]}")

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if on_recommendation is not None and space is not None:
                hyper = {k: v for k, v in trial.config.items() if not str(k).startswith("__")}  # not dehb's __epochs...
                _user_call("on_recommendation", on_recommendation,
                           Recommendation(id=trial.trial_id, specs=space.decode(hyper),
                                          status="pending", metric=metric))

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._finished(trial, failed=False)
            _notify(trial)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._finished(trial, failed=True)
            _notify(trial)

    return [_Watcher()]


def _stopper(stop: EarlyStop) -> Any:
    from ray.tune import Stopper

    class _Stop(Stopper):
        def __call__(self, trial_id: str, result: dict) -> bool:
            return stop.is_set and not stop.interrupted

        def stop_all(self) -> bool:
            return stop.is_set and not stop.interrupted

    return _Stop()


def _result_loggers() -> list[Any]:
    """Tune's JSON/CSV result files (its TensorBoard logger is switched off)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [JsonLoggerCallback(), CSVLoggerCallback()]


def _skill_notes(prepared: Any) -> str:
    if not getattr(prepared.algorithm, "llm_guided", False):
        return ""
    return skill_notes(prepared.skill)


def run_search(
    *,
    prepared: RunPlan,
    plan: TrialPlan,
    storage_path: str,
    storage_filesystem: Any,
    ray_session: Any,
    ledger: JobLedger,
    stop: EarlyStop,
    resume: bool,
    searcher: Any = None,
    scheduler: Any = None,
    on_result: Any = None,
    on_recommendation: Any = None,
    feedback_fn: Any = None,
    feedback: dict[str, Any] | None = None,
) -> Any:
    """Run (or resume) the Tune experiment; returns the ResultGrid."""
    import numpy as np
    from ray import tune

    settings = prepared.settings
    # ASHA draws brackets from numpy's global RNG; PBT uses `random`.
    random.seed(settings.seed)
    np.random.seed(settings.seed % (2**32))
    trainable = tune.with_resources(make_trainable(plan), ray_session.trial_resources())
    # On resume, trials of earlier drivers that the restored search does not
    # know are abandoned (execution.orphans); a fresh run has none.
    # Tune's saved state unusable (missing, truncated by a full disk, lacking a
    # finished trial): the search is rebuilt from the ledger (execution.rebuild).
    # Checked before anything is written, so a refusal changes nothing.
    rebuild_why = unrestorable(ledger) if resume else None
    if rebuild_why is not None:
        refuse_if_unbuildable(ledger, prepared.algorithm, rebuild_why)
    if resume:  # jobs a killed driver launched but never recorded (execution.intents, execution.early)
        recover_unconfirmed(ledger, prepared.backend)
        cancel_early_jobs(ledger, prepared.backend, "resume: no trial adopted it before the driver stopped")
    settled = settled_trials(ledger) if rebuild_why is not None else []
    settled_ids = {r.trial_id for r in settled}
    before = ledger.trial_ids() if resume else []
    if rebuild_why is not None:  # a fresh search knows none of them: unfinished ones are abandoned now
        for tid in before:
            if tid not in settled_ids:
                abandon(ledger, prepared.backend, tid, why=f"{ABANDONED_WHY} (rebuilt from the ledger)")
        before = []
    settler = OrphanSettler(ledger, prepared.backend, before)
    name = "tune"
    exp_path = f"{storage_path.rstrip('/')}/{name}"
    run_config = tune.RunConfig(
        name=name,
        storage_path=storage_path,
        storage_filesystem=storage_filesystem,
        verbose=0,  # the live table (settings.quiet=False) replaces Tune's reporter
        stop=_stopper(stop),
        callbacks=_callbacks(stop, ledger, settings.fail_fast_after,
                             LiveHook(stop.key, "on_result", on_result) if on_result else None,
                             LiveHook(stop.key, "on_recommendation", on_recommendation)
                             if on_recommendation else None,
                             prepared.space, prepared.metric,
                             LiveHook(stop.key, "feedback_fn", feedback_fn) if feedback_fn else None,
                             feedback)
        + driver_callbacks(prepared, plan, stop)
        + [abandon_callback(stop.key, settler)]
        + _result_loggers(),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
        failure_config=tune.FailureConfig(max_failures=0),
    )
    if resume and rebuild_why is None:
        tuner = tune.Tuner.restore(
            exp_path,
            trainable,
            resume_unfinished=True,
            resume_errored=False,
            storage_filesystem=storage_filesystem,
        )
        return tuner.fit()

    from ray.tune.search import Searcher

    budget = settings.max_recommendations
    if rebuild_why is not None:
        if ledger.trial_ids():
            log.warning("resume: %s; rebuilding the search from the ledger: %d settled trial(s) count against "
                        "the budget", rebuild_why, len(settled))
        moved = set_aside(ledger)
        ledger.ws.write_json(SEEDED, {"trial_ids": sorted(seeded_ids(ledger) | settled_ids), "why": rebuild_why,
                                      "moved_to": moved, "t": time.time()})
        if settled and not prepared.algorithm.exhaustive:  # a grid runs the points the ledger lacks
            if budget - len(settled) <= 0:
                return None  # the ledger already holds the whole budget
            # A different seed: the same one would draw the settled configurations again.
            settings = attrs.evolve(settings, seed=settings.seed + len(settled),
                                    max_recommendations=budget - len(settled))
    ctx = BuildContext(
        param_space=prepared.space.to_ray(),
        metric=prepared.metric,
        mode=prepared.mode,
        settings=settings,
        max_epochs=prepared.max_epochs or 1,
        initial_points=prepared.initial_points,
        # a search rebuilt from the ledger draws afresh (a different seed): not the planned queue
        queued_points=list(getattr(prepared, "queued_points", ()) or ()) if rebuild_why is None else [],
        space=prepared.space,
        shard_count=getattr(prepared, "shard_count", None) or 1,
        batch_key=getattr(prepared, "batch_key", None),
        workspace=ledger.ws,
        stop=stop,
        notes=_skill_notes(prepared),
        enforce_kwargs={"train_sample_count": settings.train_sample_count,
                        "shard_count": prepared.shard_count, "batch_key": prepared.batch_key},
        objectives=tuple(getattr(prepared, "objectives", ()) or ()),
    )
    built = prepared.algorithm.build(ctx)
    search_alg = searcher if searcher is not None else built.search_alg
    sched = scheduler if scheduler is not None else built.scheduler
    num_samples, param_space = built.num_samples, dict(built.param_space or ctx.param_space)
    if settled:
        from ray.tune.search import BasicVariantGenerator

        if any(isinstance(v, dict) and "grid_search" in v for v in param_space.values()):
            param_space, points = remaining_grid(param_space, settled)
            if not points:
                return None
            search_alg = BasicVariantGenerator(points_to_evaluate=points, max_concurrent=settings.max_concurrent)
            num_samples = len(points)
        else:
            num_samples = budget - len(settled)
    limit = None if built.limit_by_resources_only and ray_session.has_slots else settings.max_concurrent
    if settled and isinstance(search_alg, Searcher):
        told = getattr(search_alg, "metric", None)  # a multi-objective searcher is told every objective
        search_alg = seeded(search_alg, settled, told if isinstance(told, list) else prepared.metric,
                            max_concurrent=limit)
    # Schedulers and searchers built by the registry already carry metric/mode;
    # Tune refuses them twice.  A user's own objects may carry none.
    carried = any(getattr(o, "_metric", None) for o in (search_alg, sched) if o is not None)
    tune_config = tune.TuneConfig(
        metric=None if carried else prepared.metric,
        mode=None if carried else prepared.mode,
        search_alg=search_alg,
        scheduler=sched,
        num_samples=num_samples,
        max_concurrent_trials=limit,
        reuse_actors=True,
        trial_dirname_creator=lambda t: t.trial_id,
    )
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune_config,
        run_config=run_config,
    )
    return tuner.fit()
