"""Algorithm registry: one table, name -> builder of a Ray Tune searcher and
scheduler.

Each :class:`AlgorithmSpec` says which settings it reads, whether trials must
hand off through checkpoints (paused or exploited trials resume from a
pointer to their job's checkpoint), whether it is multi-fidelity (epochs are
the fidelity) and how it limits concurrency.  The entry also owns the
algorithm's behaviour outside Tune: its trial budget, the initial batch review
shows, the time estimate, review notes, the parameters it keeps fixed and
whether a lost Tune state can be rebuilt.  Callers ask the entry; no module
outside this package tests an algorithm's name.  Adding an algorithm is adding
one entry with :func:`register`.

Builders are called with a :class:`BuildContext` and return a
:class:`SearchPlan`; Ray and optional packages are imported inside builders.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from tao_automl.errors import SettingsError

__all__ = [
    "ALGORITHMS",
    "AlgorithmSpec",
    "BuildContext",
    "SearchPlan",
    "algorithms_reading",
    "get_algorithm",
    "llm_guided_names",
    "register",
]


@attrs.frozen(kw_only=True)
class BuildContext:
    """What a builder gets.

    ``param_space`` is the Ray Tune space (flat dotted keys); ``initial_points``
    is the exact initial batch shown by review (searcher configs).
    """

    param_space: Mapping[str, Any]
    metric: str
    mode: str  # "min" | "max"
    settings: Any  # AutoMLSettings
    max_epochs: int
    initial_points: list[dict[str, Any]] = attrs.field(factory=list)
    #: ``queue_rest`` algorithms: the configurations after the initial batch, in order
    queued_points: list[dict[str, Any]] = attrs.field(factory=list)
    space: Any = None  # tao_automl.search.SearchSpace
    # how trials cap batch sizes (SearchSpace.enforce), for searchers that repair candidates
    shard_count: int = 1
    batch_key: str | None = None
    # Run-time context (set by the driver; None/empty in dry builds):
    workspace: Any = None  # tao_automl.store.workspace.Workspace (LLM-guided: the brain log)
    stop: Any = None  # the shared stop flag (execution.tuning.EarlyStop): stop.fail(exc) ends the run
    notes: str = ""  # the model skill's HPO notes (SKILL.md...)
    enforce_kwargs: Mapping[str, Any] = attrs.field(factory=dict)  # SearchSpace.enforce(...) arguments
    #: multi-objective runs: the objectives (tao_automl.config.objectives.Objective);
    #: ``metric`` is then their weighted score.  Model-based searchers may optimise them jointly.
    objectives: tuple[Any, ...] = ()
    #: finished trials to warm-start a model-based searcher: ``(config, value)`` pairs, ``config``
    #: in the searcher encoding of ``param_space`` (every key), ``value`` the metric (``mode``'s
    #: direction).  Builders that can take them add them as completed observations (bayesian and
    #: the GP sampler of asha/hyperband: Optuna study trials, counted by the start-up count);
    #: the others run nothing extra for them.  ``hybrid`` passes each phase the trials before it.
    evaluated_points: tuple[tuple[Mapping[str, Any], float], ...] = ()


@attrs.frozen(kw_only=True)
class SearchPlan:
    """What Tune needs: searcher, scheduler and the trial count."""

    search_alg: Any
    scheduler: Any
    num_samples: int
    # Hyperband/BOHB pause trials; combined with Tune's max_concurrent_trials
    # they degenerate into random search, so concurrency is limited through
    # trial resources only (see notes/ray-tune-2.60.md).
    limit_by_resources_only: bool = False
    param_space: Mapping[str, Any] | None = None


@attrs.frozen(kw_only=True)
class AlgorithmSpec:
    """One registry entry."""

    name: str
    description: str
    build: Callable[[BuildContext], SearchPlan]
    settings_used: tuple[str, ...]
    needs_checkpoints: bool = False
    multi_fidelity: bool = False
    model_based: bool = False
    extra_requires: tuple[str, ...] = ()
    # (settings, max_epochs) -> extra budget rows for the review (e.g. dehb's brackets)
    review: Callable[[Any, int | None], dict[str, Any]] | None = None
    llm_guided: bool = False  # configurations come from an LLM (no initial random batch)
    #: the setting that counts the trials Tune starts (PBT: its population)
    budget_setting: str = "max_recommendations"
    #: (settings, space, rng) -> the initial batch (searcher configs) review shows and the searcher
    #: evaluates first; None: ``min(max_concurrent, budget)`` configurations drawn from the space
    initial_batch_fn: Callable[[Any, Any, random.Random], list[dict[str, Any]]] | None = None
    #: (settings, max_epochs) -> (full-trial equivalents, assumptions) for the time estimate;
    #: None: the trial budget, no assumption
    estimate_fn: Callable[[Any, int | None], tuple[float, list[str]]] | None = None
    #: settings -> notes for the review (what happens at run time)
    review_notes_fn: Callable[[Any], list[str]] | None = None
    #: (settings, searched parameter names) -> the ones sampled once and never changed in a trial's life
    fixed_params_fn: Callable[[Any, list[str]], list[str]] | None = None
    #: a fixed, finite set of configurations (a grid): its build checks the set against the budget (so
    #: prepare dry-builds it), and a search rebuilt from the ledger runs the configurations the ledger
    #: lacks under the full budget
    exhaustive: bool = False
    #: why a search whose Tune state is lost cannot be rebuilt from the ledger (None: it can)
    rebuild_refusal: str | None = None
    #: the searcher suggests the initial batch first, unchanged, so the driver may submit those
    #: jobs before Tune runs and the trials adopt them (tao_automl.execution.early)
    early_start: bool = False
    #: every configuration is drawn in advance (random): after the initial batch the searcher
    #: suggests :meth:`queued` in order, so the driver may keep the slots busy with them until
    #: Tune adopts its first early job (tao_automl.execution.early_feed)
    queue_rest: bool = False

    def trial_budget(self, settings: Any) -> Any:
        """The number of trials Tune starts; ``settings`` an AutoMLSettings or
        its dict (``settings.json``)."""
        if isinstance(settings, Mapping):
            return settings.get(self.budget_setting)
        return getattr(settings, self.budget_setting)

    def initial_batch(self, settings: Any, space: Any, rng: random.Random) -> list[dict[str, Any]]:
        """The first configurations (searcher configs), as review shows them."""
        if self.initial_batch_fn is not None:
            return self.initial_batch_fn(settings, space, rng)
        n = min(settings.max_concurrent, self.trial_budget(settings))
        return [space.sample(rng) for _ in range(n)]

    def queued(self, settings: Any, space: Any, rng: random.Random, initial: int) -> list[dict[str, Any]]:
        """The configurations after the ``initial`` first ones, drawn like them
        (``queue_rest``), the rest of the trial budget; [] otherwise."""
        if not self.queue_rest:
            return []
        return [space.sample(rng) for _ in range(max(0, self.trial_budget(settings) - initial))]

    def estimate(self, settings: Any, max_epochs: int | None) -> tuple[float, list[str]]:
        """Full-trial equivalents the run trains and the assumptions behind
        the number (each prefixed with the algorithm's name)."""
        if self.estimate_fn is None:
            return self.trial_budget(settings), []
        full, assumptions = self.estimate_fn(settings, max_epochs)
        return full, [f"{self.name}: {a}" for a in assumptions]

    def review_notes(self, settings: Any) -> list[str]:
        return list(self.review_notes_fn(settings)) if self.review_notes_fn is not None else []

    def fixed_params(self, settings: Any, names: list[str]) -> list[str] | None:
        """The searched parameters kept fixed per trial, None if the algorithm
        changes none during a trial."""
        return self.fixed_params_fn(settings, names) if self.fixed_params_fn is not None else None

    @property
    def checked_by_build(self) -> bool:
        """Its builder validates settings against the space (grid size, fidelity
        range, PBT interval): prepare dry-builds it before any job."""
        return self.exhaustive or self.multi_fidelity or self.needs_checkpoints


ALGORITHMS: dict[str, AlgorithmSpec] = {}


def register(spec: AlgorithmSpec, *aliases: str) -> AlgorithmSpec:
    """Add an algorithm (and optional alias names) to the registry."""
    ALGORITHMS[spec.name] = spec
    for alias in aliases:
        ALGORITHMS[alias] = spec
    return spec


def _entries() -> list[AlgorithmSpec]:
    """Every registered algorithm once (aliases left out), in registration order."""
    return list({id(spec): spec for spec in ALGORITHMS.values()}.values())


def algorithms_reading(setting: str) -> list[str]:
    """The algorithms (names, sorted) that read ``setting``."""
    return sorted(spec.name for spec in _entries() if setting in spec.settings_used)


def llm_guided_names() -> list[str]:
    """The LLM-guided algorithms, in registration order."""
    return [spec.name for spec in _entries() if spec.llm_guided]


def get_algorithm(name: str) -> AlgorithmSpec:
    """Look up an algorithm; unknown names raise SettingsError with a suggestion."""
    key = str(name).strip().lower()
    if key in ALGORITHMS:
        return ALGORITHMS[key]
    names = sorted(ALGORITHMS)
    close = difflib.get_close_matches(key, names, n=1)
    raise SettingsError("unknown AutoML algorithm", key="automl_algorithm", value=name,
                        expected="one of " + ", ".join(names),
                        hint=f"did you mean '{close[0]}'?" if close else None)


from tao_automl.algorithms import _builtin, llm  # noqa: E402,F401,I001  (register the built-ins and llm)
