"""Resume when Ray Tune's saved state cannot be restored: rebuild from the ledger.

Tune saves its experiment (``<workspace>/ray/tune/``: ``tuner.pkl``,
``experiment_state-*.json``, the searcher's state) about once a second.  A
full disk truncates those files and a user may delete them; the ledger
(``<workspace>/ledger/``) is the truth either way.  :func:`unrestorable`
says why the saved state cannot be used (missing, unreadable, or lacking a
trial the ledger shows finished); the driver then starts a *fresh* Tune
experiment that

* counts every settled trial of the ledger (finished, or stopped by the
  scheduler) against the budget and runs only the rest
  (``num_samples = budget - settled``; grid search runs the grid points
  not yet evaluated);
* tells a model-based searcher (Optuna, the GP sampler) those results through
  ``Searcher.add_evaluated_point`` before it suggests anything;
* never abandons a settled trial: they stay in the history exactly once.
  Trials that were still running are abandoned (their jobs canceled, see
  :mod:`tao_automl.execution.orphans`): the fresh search plans replacements.

The unusable state is moved aside to ``ray/tune.unrestorable-<time>`` (kept,
never deleted) and ``ray/seeded.json`` lists the trials the fresh experiment
was seeded with, so a later resume of the fresh experiment knows them.
PBT cannot be rebuilt (its population exploits live checkpoints): resume
stops with a :class:`~tao_automl.errors.WorkspaceError` before anything is
written.
"""

from __future__ import annotations

import itertools
import json
import logging
import pickle
import time
from typing import Any

from tao_automl.algorithms import AlgorithmSpec, get_algorithm
from tao_automl.errors import WorkspaceError
from tao_automl.store.ledger import JobLedger, TrialRecord

__all__ = ["unrestorable", "settled_trials", "seeded_ids", "set_aside", "seeded", "remaining_grid",
           "refuse_if_unbuildable"]

log = logging.getLogger("tao_automl")

TUNE_DIR = "ray/tune"
SEEDED = "ray/seeded.json"


def settled_trials(ledger: JobLedger) -> list[TrialRecord]:
    """Trials that will never run again: finished, or stopped (not abandoned)."""
    return [r for r in ledger.trials() if r.done or (r.attempts and r.attempts[-1].stopped is not None)]


def seeded_ids(ledger: JobLedger) -> set[str]:
    raw = ledger.ws.read_json(SEEDED, default=None)
    return set(raw.get("trial_ids") or []) if isinstance(raw, dict) else set()


def unrestorable(ledger: JobLedger) -> str | None:
    """None if ``ray/tune`` can be restored; otherwise why not (one line)."""
    ws = ledger.ws
    names = ws.listdir(TUNE_DIR)
    states = sorted(n for n in names if n.startswith("experiment_state-") and n.endswith(".json"))
    if not states:
        return "Ray Tune's saved experiment state is missing" if not names else \
            f"no experiment_state-*.json in {ws.path(TUNE_DIR)}"
    if "tuner.pkl" not in names:
        return f"{ws.path(TUNE_DIR, 'tuner.pkl')} is missing"
    known: set[str] = set()
    for name in names:
        rel = f"{TUNE_DIR}/{name}"
        if not (name.endswith(".json") or name.endswith(".pkl")) or name.startswith("."):
            continue
        if name.startswith("experiment_state-") and name != states[-1]:
            continue  # Tune restores the newest one only
        try:
            raw = ws.read_bytes(rel)
            if name == states[-1]:
                known = {json.loads(t[0])["trial_id"] for t in json.loads(raw)["trial_data"]}
            elif raw[:1] == b"\x80":  # searcher states: pickles, some named *.json
                pickle.loads(raw)
            else:
                json.loads(raw)
        except Exception as exc:  # noqa: BLE001 - any failure means: cannot restore
            return f"{ws.path(rel)} is unreadable ({type(exc).__name__}: {str(exc)[:120]})"
    known |= seeded_ids(ledger)
    lost = [r.trial_id for r in ledger.trials() if r.done and r.trial_id not in known]
    if lost:
        return f"the saved state lacks {len(lost)} finished trial(s) ({', '.join(sorted(lost)[:3])})"
    return None


def refuse_if_unbuildable(ledger: JobLedger, algorithm: AlgorithmSpec | str, why: str) -> None:
    """Refuse a resume whose algorithm cannot be rebuilt from the ledger (its registry entry says why)."""
    spec = algorithm if isinstance(algorithm, AlgorithmSpec) else get_algorithm(algorithm)
    if spec.rebuild_refusal is not None:
        raise WorkspaceError("cannot resume: Ray Tune's saved state cannot be restored",
                             file=ledger.ws.path(TUNE_DIR), key="automl_algorithm", value=spec.name,
                             expected=f"a restorable Tune state ({spec.rebuild_refusal})",
                             hint=f"{why}; start a new experiment (a new session_id); the ledger is unchanged")


def set_aside(ledger: JobLedger) -> str | None:
    """Move the unusable ``ray/tune`` folder aside (kept for inspection)."""
    ws = ledger.ws
    if not ws.exists(TUNE_DIR):
        return None
    dest = f"{TUNE_DIR}.unrestorable-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}"
    try:
        if ws.uri:
            fs, _ = ws.filesystem()
            fs.mv(ws.path(TUNE_DIR), ws.path(dest), recursive=True)
        else:
            import os

            os.replace(ws.path(TUNE_DIR), ws.path(dest))
    except OSError as exc:
        raise WorkspaceError("cannot move Ray Tune's unusable state aside", file=ws.path(TUNE_DIR),
                             value=str(exc)) from exc
    return ws.path(dest)


def _point(rec: TrialRecord, metric: str | list[str]) -> tuple[dict[str, Any], Any]:
    config = dict((rec.planned or {}).get("config") or {})
    out = rec.outcome
    if isinstance(metric, list):  # a multi-objective searcher: the finished trial's objective values
        got = (out or {}).get("objective_values") or {}
        ok = (out or {}).get("state") == "succeeded" and all(m in got for m in metric)
        return config, [float(got[m]) for m in metric] if ok else None
    if out is not None:
        ok = out.get("state") == "succeeded" and out.get("metric_value") is not None
        return config, float(out["metric_value"]) if ok else None
    vals = [(e.get("values") or {}).get(metric) for e in rec.epochs]
    vals = [v for v in vals if v is not None]
    return config, float(vals[-1]) if vals else None


def seeded(searcher: Any, records: list[TrialRecord], metric: str | list[str],
           max_concurrent: int | None = None) -> Any:
    """``searcher`` wrapped so that it is told the ledger's results once its
    search space is known (``set_search_properties``), before it suggests
    anything.  ``max_concurrent`` must equal Tune's ``max_concurrent_trials``."""
    wrapper = _seeded_class()(searcher, max_concurrent=max_concurrent or 10**6)
    wrapper._seed_points = [_point(r, metric) for r in records]
    return wrapper


_CLASS: list[type] = []


def _seeded_class() -> type:
    if _CLASS:
        return _CLASS[0]
    from ray.tune.search import ConcurrencyLimiter

    class _SeededSearcher(ConcurrencyLimiter):
        _seed_points: list = []

        def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
            ok = super().set_search_properties(metric, mode, config, **spec)
            points, self._seed_points = self._seed_points, []
            told = 0
            for params, value in points:
                try:
                    if value is None:
                        self.searcher.add_evaluated_point(params, None, error=True)
                    else:
                        self.searcher.add_evaluated_point(params, value)
                    told += 1
                except NotImplementedError:
                    log.info("%s cannot be told earlier results; it plans the remaining trials without them",
                             type(self.searcher).__name__)
                    break
                except Exception as exc:  # noqa: BLE001 - a seed point is advice, never fatal
                    log.warning("could not tell the searcher an earlier result: %s: %s", type(exc).__name__, exc)
            if told:
                log.info("searcher told the %d settled trial(s) of the ledger", told)
            return ok

    _SeededSearcher.__module__ = __name__
    _CLASS.append(_SeededSearcher)
    return _SeededSearcher


def __getattr__(name: str) -> Any:  # pickle resolves the lazily built class by name
    if name == "_SeededSearcher":
        return _seeded_class()
    raise AttributeError(name)


def remaining_grid(param_space: dict[str, Any], records: list[TrialRecord]) -> tuple[dict[str, Any], list[dict]]:
    """(param space with each grid axis a plain choice, the grid points not yet
    evaluated); Tune's ``points_to_evaluate`` then fill every axis."""
    from ray import tune

    axes = {k: v["grid_search"] for k, v in param_space.items() if isinstance(v, dict) and "grid_search" in v}
    rest = {k: tune.choice(list(axes[k])) if k in axes else v for k, v in param_space.items()}
    done = [dict((r.planned or {}).get("config") or {}) for r in records]
    points = []
    for combo in itertools.product(*axes.values()):
        point = dict(zip(axes, combo, strict=True))
        if not any(all(c.get(k) == v for k, v in point.items()) for c in done):
            points.append(point)
    return rest, points
