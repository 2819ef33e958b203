"""DEHB on Ray Tune: the :class:`DEHBSearch` searcher and the registry builder.

The DE core (:mod:`tao_automl.algorithms._de`) works in the unit hypercube;
:class:`UnitCodec` maps it to the Tune domains of the search space:

* floats: linear, or in log space for log-uniform domains; quantized ones
  snap to their step;
* integers: ``n`` values get ``n`` equal bins of ``[0, 1]`` (log-spaced bins
  for log-uniform integers), so the end values are as likely as the others;
* categorical and bool: ``n`` options get ``n`` equal bins of ``[0, 1]``, so
  DE moves between real choices (never a constant).

Every candidate is *repaired* before it runs: decoded, passed through the
search space's constraints and batch caps (the same
:meth:`~tao_automl.search.SearchSpace.enforce` the trial applies) and encoded
back, so the DE populations hold the configurations that actually ran.

Each suggestion carries its fidelity: ``__epochs`` (the epochs this job
trains; the trial function sets the skill's epoch key to it), ``__bracket``
and ``__rung``.  No scheduler: every job runs exactly its budget and
finishes (Tune's FIFO scheduler).  A trial that fails, or ends before its
budget (stopped), has fitness ``+inf``: never selected, never promoted.

Budget: ``max_recommendations`` counts jobs (Tune trials), as it counts
trials for asha/hyperband; ``epoch_budget`` optionally caps the epochs all
jobs may train (a job that would overrun it is not started).  Resume: Tune
saves and restores the searcher with its experiment (``save``/``restore``),
the same path the bayesian searcher takes; trials the restored search does
not know are abandoned by the runner (``execution/orphans.py``).  When
Tune's saved state is lost, the runner rebuilds from the ledger and tells
the searcher every settled job (``add_evaluated_point``): their epochs count
against ``epoch_budget`` (the runner already lowered ``max_recommendations``
by them), the successes rejoin their level's subpopulation, and the
Hyperband iterations continue after the last bracket started.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune.search import Searcher
from ray.tune.search.sample import Categorical, Float, Integer, LogUniform, Quantized

from tao_automl.algorithms._de import (
    DEFAULT_CROSSOVER_PROB,
    DEFAULT_MUTATION_FACTOR,
    DEFAULT_PROMOTION,
    FINISHED,
    DEHBCore,
    core_params,
)

__all__ = ["DEHBSearch", "UnitCodec", "EPOCHS_KEY", "BRACKET_KEY", "RUNG_KEY", "build_dehb"]

EPOCHS_KEY = "__epochs"
BRACKET_KEY = "__bracket"
RUNG_KEY = "__rung"


class UnitCodec:
    """Tune domains <-> points of ``[0, 1]^d`` (see the module doc)."""

    def __init__(self, param_space: Mapping[str, Any]) -> None:
        self.dims: list[tuple[str, str, dict[str, Any]]] = []
        self.constants: dict[str, Any] = {}
        for key, dom in param_space.items():
            if isinstance(dom, Categorical):
                self.dims.append((key, "cat", {"options": list(dom.categories)}))
            elif isinstance(dom, (Float, Integer)):
                sampler = dom.get_sampler()
                q = None
                if isinstance(sampler, Quantized):
                    q, sampler = sampler.q, sampler.sampler
                log = isinstance(sampler, LogUniform)
                if isinstance(dom, Integer):
                    lo = int(dom.lower)
                    hi = int(dom.upper) - (0 if q is not None else 1)  # randint's upper bound is exclusive
                    step = int(q or 1)
                    values = list(range(lo, hi + 1, step)) if not log else None
                    self.dims.append((key, "int", {"lo": lo, "hi": hi, "log": log, "values": values}))
                else:
                    self.dims.append((key, "float", {"lo": float(dom.lower), "hi": float(dom.upper),
                                                     "log": log, "q": q}))
            elif hasattr(dom, "sample"):
                raise ValueError(f"DEHB cannot encode the Tune domain of '{key}' ({type(dom).__name__})")
            else:
                self.constants[key] = dom

    @property
    def size(self) -> int:
        return len(self.dims)

    @staticmethod
    def _bin(u: float, n: int) -> int:
        return min(max(int(math.floor(u * n)), 0), n - 1)

    def decode(self, vector: Sequence[float]) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.constants)
        for (key, kind, info), u in zip(self.dims, vector, strict=True):
            u = min(max(float(u), 0.0), 1.0)
            if kind == "cat":
                out[key] = info["options"][self._bin(u, len(info["options"]))]
            elif kind == "int":
                if info["values"] is not None:
                    out[key] = info["values"][self._bin(u, len(info["values"]))]
                else:  # log-spaced bins over [lo, hi + 1)
                    lo, hi = info["lo"], info["hi"]
                    v = math.exp(math.log(lo) + u * (math.log(hi + 1) - math.log(lo)))
                    out[key] = min(max(int(math.floor(v)), lo), hi)
            else:
                lo, hi = info["lo"], info["hi"]
                v = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if info["log"] else lo + u * (hi - lo)
                if info["q"]:
                    q = info["q"]
                    v = round(v / q) * q
                    while v > hi + 1e-12:
                        v -= q
                    while v < lo - 1e-12:
                        v += q
                out[key] = float(min(max(v, lo), hi))
        return out

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """A config (e.g. an initial point) -> the centre of its bin / its position."""
        u = []
        for key, kind, info in self.dims:
            v = config.get(key)
            if v is None:
                u.append(0.5)
            elif kind == "cat":
                opts = info["options"]
                i = opts.index(v) if v in opts else 0
                u.append((i + 0.5) / len(opts))
            elif kind == "int" and info["values"] is not None:
                vals = info["values"]
                i = min(range(len(vals)), key=lambda j: abs(vals[j] - v))
                u.append((i + 0.5) / len(vals))
            elif kind == "int":
                lo, hi = info["lo"], info["hi"]
                x = min(max(float(v), lo), hi) + 0.5
                u.append((math.log(x) - math.log(lo)) / (math.log(hi + 1) - math.log(lo)))
            else:
                lo, hi = info["lo"], info["hi"]
                x = min(max(float(v), lo), hi)
                u.append((math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo)) if info["log"]
                         else (x - lo) / (hi - lo) if hi > lo else 0.5)
        return np.clip(np.array(u, dtype=float), 0.0, 1.0)


class _Repair:
    """Candidate -> the feasible configuration that will run, re-encoded
    (constraints and batch caps of the search space)."""

    def __init__(self, codec: UnitCodec, space: Any, train_sample_count: int | None, shard_count: int,
                 batch_key: str | None = None) -> None:
        self.codec, self.space = codec, space
        self.train_sample_count, self.shard_count, self.batch_key = train_sample_count, shard_count, batch_key

    def __call__(self, vector: np.ndarray) -> np.ndarray:
        config = self.codec.decode(vector)
        values, notes = self.space.enforce(self.space.decode(config), train_sample_count=self.train_sample_count,
                                           shard_count=self.shard_count, batch_key=self.batch_key)
        if not notes:
            return vector
        fixed = {**config, **self.space.encode(values)}
        moved = [i for i, (k, _, _) in enumerate(self.codec.dims) if fixed.get(k) != config.get(k)]
        out = np.array(vector, dtype=float)
        enc = self.codec.encode(fixed)
        out[moved] = enc[moved]  # only the coordinates a rule changed
        return out


class DEHBSearch(Searcher):
    """DEHB as a Ray Tune searcher (see the module doc)."""

    def __init__(self, *, param_space: Mapping[str, Any], metric: str, mode: str, min_epochs: int,
                 max_epochs: int, eta: int = 3, mutation_factor: float = DEFAULT_MUTATION_FACTOR,
                 crossover_prob: float = DEFAULT_CROSSOVER_PROB, population_size: int = 0,
                 mutation_strategy: str = "currenttobest1", promotion: str = DEFAULT_PROMOTION,
                 max_jobs: int | None = None, epoch_budget: int | None = None, seed: int | None = None,
                 initial_points: Sequence[Mapping[str, Any]] = (), space: Any = None,
                 train_sample_count: int | None = None, shard_count: int = 1, batch_key: str | None = None) -> None:
        super().__init__(metric=metric, mode=mode)
        self.codec = UnitCodec(param_space)
        repair = (_Repair(self.codec, space, train_sample_count, shard_count, batch_key)
                  if space is not None else None)
        self.core = DEHBCore(
            max(1, self.codec.size), min_epochs=min_epochs, max_epochs=max_epochs, eta=eta,
            mutation_factor=mutation_factor, crossover_prob=crossover_prob, population_size=population_size,
            mutation_strategy=mutation_strategy, promotion=promotion, max_jobs=max_jobs, epoch_budget=epoch_budget, seed=seed,
            initial=[self.codec.encode(p) for p in initial_points] if self.codec.size else (),
            repair=repair if self.codec.size else None,
        )
        self.trials: dict[str, int] = {}  # Tune trial id -> DE job id

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        # the space and objective come from the registry's BuildContext
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        job = self.core.ask()
        if job == FINISHED:
            return Searcher.FINISHED
        if job is None:
            return None
        self.trials[trial_id] = job.id
        config = self.codec.decode(job.vector) if self.codec.size else dict(self.codec.constants)
        config.update({EPOCHS_KEY: job.epochs, BRACKET_KEY: job.bracket, RUNG_KEY: job.rung})
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        job_id = self.trials.pop(trial_id, None)
        if job_id is None:
            return
        job = self.core.jobs.get(job_id)
        fitness = None
        if not error and result and result.get(self._metric) is not None:
            epoch = result.get("epoch")
            full = result.get("replayed") or epoch is None or job is None or int(epoch) >= job.epochs
            value = float(result[self._metric])
            if full and math.isfinite(value):
                fitness = value if self._mode == "min" else -value
        self.core.tell(job_id, fitness)  # None: failed or stopped before its budget -> +inf

    def add_evaluated_point(self, parameters: dict, value: float | None, error: bool = False,
                            pruned: bool = False, intermediate_values: list | None = None) -> None:
        """A finished job of this run that Tune's saved state lost (resume
        rebuilt from the ledger, :mod:`tao_automl.execution.rebuild`): it
        rejoins the DE state (:meth:`DEHBCore.seed_result`)."""
        epochs = parameters.get(EPOCHS_KEY)
        if epochs is None:
            raise ValueError(f"a dehb result without its '{EPOCHS_KEY}' (the epochs the job trained)")
        fitness = None
        if not error and not pruned and value is not None and math.isfinite(float(value)):
            fitness = float(value) if self._mode == "min" else -float(value)
        vector = self.codec.encode(parameters) if self.codec.size else np.zeros(1)
        self.core.seed_result(vector, int(epochs), fitness, int(parameters.get(BRACKET_KEY, -1)))

    def get_state(self) -> dict[str, Any]:
        return {"core": self.core.get_state(), "trials": dict(self.trials)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.core.set_state(state["core"])
        self.trials = dict(state["trials"])

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.get_state(), fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.set_state(pickle.load(fh))


def build_dehb(ctx: Any) -> Any:
    """Registry builder: DEHBSearch, no scheduler, one Tune trial per job."""
    from tao_automl.algorithms import SearchPlan
    from tao_automl.algorithms._builtin import _check_fidelity

    _check_fidelity(ctx)
    s = ctx.settings
    search = DEHBSearch(
        param_space=ctx.param_space, metric=ctx.metric, mode=ctx.mode, min_epochs=int(s.min_epochs),
        max_epochs=int(ctx.max_epochs), eta=int(s.reduction_factor), max_jobs=int(s.max_recommendations),
        epoch_budget=s.epoch_budget, seed=s.seed, initial_points=list(ctx.initial_points), space=ctx.space,
        train_sample_count=s.train_sample_count, shard_count=int(getattr(ctx, "shard_count", 1) or 1),
        batch_key=getattr(ctx, "batch_key", None), **core_params(s),
    )
    # Tune's own ConcurrencyLimiter asks only when a slot is free (async DEHB)
    return SearchPlan(search_alg=search, scheduler=None, num_samples=int(s.max_recommendations))
