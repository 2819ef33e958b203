"""``hybrid``: an LLM plans phases, classic registry algorithms sweep them.

Each phase the LLM replies (one JSON object)::

    {"action": "explore" | "stop", "algorithm": "<registry name>",
     "parameters": ["<dotted name>", ...], "trials": <n>, "reasoning": "<why>"}

``explore``: the named algorithm sweeps the named parameters for ``n`` trials
while every other parameter stays at the incumbent's value (the best finished
trial so far; the schema defaults before any).  ``stop``: the search ends
early, with the reason logged.  Phases follow one another until the budget
(``max_recommendations``) is spent.

Algorithms inside a phase: the sequential, searcher-based ones of the registry
(``bayesian``/``tpe``, ``random``, ``grid``).  Multi-fidelity algorithms
(hyperband, asha, bohb, dehb, pbt) need a trial scheduler owning the epochs of
the whole run, which cannot change per phase; a plan naming one is invalid.
``bayesian`` is the registry's builder (GP + EI through Optuna) on the
restricted space; ``grid`` uses the registry's grid (its values per
parameter, and its size check against the phase's trials); ``random`` draws
from the restricted space (seeded, honouring option weights).

Warm start: a ``bayesian`` phase's model starts from the trials finished
before the phase whose other parameters (those the phase does not sweep)
equal the phase's incumbent -- the slice the phase searches -- projected on
the phase's parameters (their values and the score; the registry's
``BuildContext.evaluated_points`` -> completed trials of the Optuna study),
so the GP's start-up count is met sooner and it proposes from the model
instead of drawing at random.  Trials off the slice are left out: projected,
they read the other parameters' effect as noise; on Hartmann-6 with the
scripted planner keeping them all was worse than keeping the matching ones
(``HybridSearcher.warm_start``: ``"matching"``, ``"all"`` or ``"none"``;
benchmarks/RESULTS.md).  A phase sweeping every parameter starts from every
finished trial.  The plan event records how many (``warm_start``).

Validation: the action, a known allowed algorithm, searchable parameters
(unique, at least one), ``1 <= trials <= budget left`` and, for grid, a grid
that fits in ``trials``.  An invalid plan gets one repair prompt naming the
problems; still invalid (or the endpoint failed past the retry bound) -> the
run stops with :class:`~tao_automl.errors.LLMError`.  No substitute algorithm
or parameter set is ever used.

Concurrency: trials of a phase run concurrently (up to ``max_concurrent``);
the next phase is planned once every trial of the current one finished, so
its prompt holds them (Tune waits meanwhile).

The plan prompt holds the search space, the incumbent, the budget left, each
phase's result (algorithm, parameters, trials, best score and configuration)
and each parameter's sensitivity: the Spearman rank correlation of its value
with the score over the finished trials where it varied.
"""

from __future__ import annotations

import itertools
import json
import math
import pickle
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tao_automl.algorithms import BuildContext, get_algorithm
from tao_automl.algorithms.llm.prompt import describe_space, extract_json
from tao_automl.algorithms.llm.searcher import LLMSearcher, log
from tao_automl.errors import AutoMLError, LLMError

__all__ = ["HybridSearcher", "PHASE_ALGORITHMS", "validate_plan", "sensitivities", "plan_messages"]

#: registry algorithms allowed inside a phase (sequential, searcher-based)
PHASE_ALGORITHMS = ("bayesian", "tpe", "random", "grid")
#: phase algorithms whose model starts from the finished trials before the phase
WARM_STARTED = ("bayesian", "tpe")

SYSTEM = (
    "You steer a hyperparameter search for a model training run. The search runs in phases: in each "
    "phase a classic optimisation algorithm sweeps a few parameters you choose for a number of trials "
    "you choose, while every other parameter stays at the incumbent (best so far) value. Use what "
    "earlier phases found and the parameter sensitivities (rank correlation with the score) to pick "
    "the parameters that matter and a budget for them; stop only when more trials cannot help. "
    "Reply with exactly one JSON object and nothing else: "
    '{"action": "explore" or "stop", "algorithm": "<one of the allowed algorithms>", '
    '"parameters": ["<parameter name>", ...], "trials": <integer>, "reasoning": "<one or two sentences>"}.'
)


# ------------------------------------------------------------------ plans
@attrs.define
class PlanCheck:
    ok: bool
    plan: dict[str, Any]
    problems: list[str]


def registry_grid(space: Any, settings: Any, max_epochs: int = 1) -> list[dict[str, Any]]:
    """Every point (encoded) of the registry's grid over ``space``."""

    ctx = BuildContext(param_space={}, metric="m", mode="min", max_epochs=max_epochs, space=space,
                       settings=attrs.evolve(settings, max_recommendations=100_000))
    grid = {k: v["grid_search"] for k, v in get_algorithm("grid").build(ctx).param_space.items()}
    return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]


def restrict(space: Any, chosen: Sequence[str], incumbent: Mapping[str, Any]) -> Any:
    """The space of the ``chosen`` parameters; the others fixed to ``incumbent``
    (constraint context)."""
    keep = set(chosen)
    fixed = {k: v for k, v in incumbent.items() if k not in keep}
    return attrs.evolve(space, params=[p for p in space.params if p.name in keep],
                        constraints=[c for c in space.constraints if c.param in keep],
                        context={**space.context, **fixed})


def validate_plan(space: Any, obj: Any, *, budget_left: int, settings: Any) -> PlanCheck:
    """Check a phase plan (see the module docstring)."""
    problems: list[str] = []
    if not isinstance(obj, Mapping):
        return PlanCheck(False, {}, ["the reply is not a JSON object"])
    allowed = {"action", "algorithm", "parameters", "trials", "reasoning"}
    extra = sorted(set(obj) - allowed)
    if extra:
        problems.append(f"unexpected top-level keys {extra} (expected only {sorted(allowed)})")
    action = obj.get("action")
    reasoning = obj.get("reasoning")
    if not isinstance(reasoning, str) or not reasoning.strip():
        problems.append("'reasoning' must be a non-empty string")
        reasoning = "" if reasoning is None else str(reasoning)
    if action not in ("explore", "stop"):
        problems.append(f"'action' must be 'explore' or 'stop', not {action!r}")
        return PlanCheck(False, {}, problems)
    if action == "stop":
        return PlanCheck(not problems, {"action": "stop", "reasoning": reasoning}, problems)
    algo = obj.get("algorithm")
    if not isinstance(algo, str) or algo.strip().lower() not in PHASE_ALGORITHMS:
        problems.append(f"'algorithm' {algo!r} is not allowed in a phase (allowed: {list(PHASE_ALGORITHMS)}; "
                        "multi-fidelity algorithms cannot run inside a phase)")
        algo = None
    else:
        algo = algo.strip().lower()
    params = obj.get("parameters")
    names = set(space.names)
    if not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params):
        problems.append("'parameters' must be a non-empty list of parameter names")
        params = []
    else:
        unknown = [p for p in params if p not in names]
        if unknown:
            problems.append(f"unknown parameters {unknown} (the searchable parameters are {sorted(names)})")
        if len(set(params)) != len(params):
            problems.append(f"'parameters' repeats a name: {params}")
    trials = obj.get("trials")
    if isinstance(trials, float) and trials.is_integer():
        trials = int(trials)
    if not isinstance(trials, int) or isinstance(trials, bool) or not 1 <= trials <= budget_left:
        problems.append(f"'trials' must be an integer from 1 to {budget_left} (the budget left), not {trials!r}")
    if not problems and algo == "grid":
        try:
            size = len(registry_grid(restrict(space, params, {}), settings))
        except AutoMLError as exc:  # more than 100000 points
            size = 100_001
            log.debug("grid size: %s", exc)
        if size > trials:
            problems.append(f"a grid over {params} has {size} points (grid_points={settings.grid_points}) but "
                            f"'trials' is {trials}; raise trials (budget left {budget_left}) or choose fewer "
                            "parameters")
    plan = {"action": "explore", "algorithm": algo, "parameters": list(params), "trials": trials,
            "reasoning": reasoning}
    return PlanCheck(not problems, plan, problems)


def plan_schema() -> dict[str, Any]:
    schema = {"type": "object", "properties": {
        "action": {"enum": ["explore", "stop"]}, "algorithm": {"enum": list(PHASE_ALGORITHMS)},
        "parameters": {"type": "array", "items": {"type": "string"}},
        "trials": {"type": "integer"}, "reasoning": {"type": "string"}},
        "required": ["action", "algorithm", "parameters", "trials", "reasoning"], "additionalProperties": False}
    return {"type": "json_schema", "json_schema": {"name": "hpo_phase_plan", "schema": schema, "strict": True}}


def _format(fmt: str) -> dict[str, Any] | None:
    if fmt == "json_schema":
        return plan_schema()
    return {"type": "json_object"} if fmt == "json_object" else None


# ---------------------------------------------------------- sensitivities
def _ranks(xs: Sequence[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0
        i = j + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman rank correlation (None when either side is constant or n < 3)."""
    if len(xs) < 3:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    sy = math.sqrt(sum((b - my) ** 2 for b in ry))
    if sx == 0 or sy == 0:
        return None
    return sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True)) / (sx * sy)


def sensitivities(space: Any, finished: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per parameter: rank correlation of its value with the score over the
    succeeded trials (categoricals: by option index), and how many trials varied."""
    ok = [t for t in finished if isinstance(t.get("metric"), int | float) and t.get("config")]
    out: dict[str, Any] = {}
    for p in space.params:
        xs, ys = [], []
        for t in ok:
            v = t["config"].get(p.name)
            if p.options is not None:
                if v not in p.options:
                    continue
                v = list(p.options).index(v)
            elif isinstance(v, list):
                v = sum(v) / len(v) if v else 0
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            xs.append(float(v))
            ys.append(float(t["metric"]))
        rho = spearman(xs, ys)
        out[p.name] = {"rank_correlation_with_score": None if rho is None else round(rho, 3),
                       "distinct_values": len(set(xs)), "trials": len(xs)}
    return out


def plan_messages(*, space: Any, metric: str, mode: str, budget_left: int, total: int,
                  incumbent: Mapping[str, Any], incumbent_metric: Any, phases: Sequence[Mapping[str, Any]],
                  finished: Sequence[Mapping[str, Any]], notes: str, max_chars: int
                  ) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """(messages, coverage).  Every finished trial is in a phase's summary;
    the most recent ones are also listed in full as far as ``max_chars`` allows."""
    body: dict[str, Any] = {
        "objective": {"metric": metric, "direction": "minimize" if mode == "min" else "maximize"},
        "budget": {"trials_total": total, "trials_left": budget_left},
        "allowed_algorithms": {"bayesian": "Gaussian process + expected improvement (good for a few numeric "
                                           "parameters with 5+ trials)",
                               "tpe": "alias of bayesian", "random": "random sampling",
                               "grid": "full grid of the chosen parameters (trials must cover it)"},
        "search_space": describe_space(space),
        "incumbent": {"config": dict(incumbent), "metric": incumbent_metric},
        "phases": list(phases),
        "parameter_sensitivity": sensitivities(space, finished),
    }
    notes = (notes or "")[:8000]
    recent = list(finished)
    while True:
        body["recent_trials"] = [{"trial": t["trial_id"], "config": t.get("config"), "metric": t.get("metric"),
                                  "status": t.get("status"), "phase": t.get("phase")} for t in recent]
        text = ("Model skill notes (hyperparameter advice from the skill):\n" + (notes or "(none)") +
                "\n\nState of the search (JSON):\n" + json.dumps(body, indent=1, default=str) +
                "\n\nPlan the next phase.")
        if len(text) + len(SYSTEM) <= max_chars or not recent:
            break
        recent = recent[max(1, len(recent) // 4):]
    full = [t["trial_id"] for t in recent]
    summarised = [t["trial_id"] for t in finished if t["trial_id"] not in set(full)]
    return ([{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
            {"full": full, "summarised": summarised, "chars": len(text) + len(SYSTEM)})


# --------------------------------------------------------------- searcher
class _Points:
    """Phase sweeper for ``random`` / ``grid``: a fixed list of sub-configs (encoded)."""

    def __init__(self, points: list[dict[str, Any]]) -> None:
        self.points = points
        self.i = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.i >= len(self.points):
            return None
        self.i += 1
        return dict(self.points[self.i - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


class HybridSearcher(LLMSearcher):
    """See the module docstring.  Reuses :class:`LLMSearcher`'s client, brain
    log, scoring of finished trials and failure reasons."""

    #: which finished trials warm-start a bayesian phase: ``"matching"`` (those whose other
    #: parameters equal the phase's incumbent), ``"all"`` (every one, projected on the phase's
    #: parameters) or ``"none"``; measured in benchmarks/RESULTS.md ("hybrid phases warm-started")
    warm_start = "matching"

    def __init__(self, *, max_epochs: int = 1, **kw: Any) -> None:
        settings = kw["settings"]
        super().__init__(**kw)
        self.settings = settings
        self.max_epochs = max_epochs
        self.phases: list[dict[str, Any]] = []  # plan + suggested/trial ids/best
        self.phase_of: dict[str, int] = {}
        self.stopped: str | None = None  # the LLM's reason to stop
        self.incumbent = self._initial_incumbent()
        self._inner: Any = None

    # ------------------------------------------------------------ Tune API
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.failed is not None or self.stopped is not None or self.suggested >= self.budget:
            return LLMSearcher.FINISHED
        phase = self.phases[-1] if self.phases else None
        if phase is None or phase["suggested"] >= phase["trials"] or phase.get("exhausted"):
            if phase is not None and any(self.phase_of.get(t) == len(self.phases) - 1 for t in self.pending):
                return None  # the next plan waits for this phase's trials
            try:
                phase = self._new_phase()
            except LLMError as exc:
                return self._give_up(exc, trial_id, getattr(exc, "request", None))
            if phase is None:
                return LLMSearcher.FINISHED
        sub = self._inner_suggest(trial_id)
        if sub is None:  # the sweeper has no more points (a grid smaller than the trials)
            phase["exhausted"] = True
            if any(self.phase_of.get(t) == len(self.phases) - 1 for t in self.pending):
                return None
            return self.suggest(trial_id)
        full_values = {**self.incumbent, **self.space.decode(sub)}
        encoded = self.space.encode(full_values)
        self.suggested += 1
        phase["suggested"] += 1
        idx = len(self.phases) - 1
        phase["trial_ids"].append(trial_id)
        self.phase_of[trial_id] = idx
        self.pending[trial_id] = {"trial_id": trial_id, "config": full_values, "phase": idx}
        self._log("decision", trial_id=trial_id, request=phase["request"], decision="run", config=full_values,
                  phase=idx, algorithm=phase["algorithm"], parameters=phase["parameters"],
                  reasoning=phase["reasoning"])
        return encoded

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        idx = self.phase_of.get(trial_id)
        super().on_trial_complete(trial_id, result, error)
        entry = self.finished.get(trial_id)
        if entry is not None and idx is not None:
            entry["phase"] = idx
        if idx is not None and idx == len(self.phases) - 1 and self._inner is not None:
            try:
                self._inner.on_trial_complete(trial_id, result=result, error=error or entry is None
                                              or entry.get("metric") is None)
            except Exception as exc:  # the inner model misses one point; the history still has it
                log.warning("hybrid: the phase's %s searcher could not take trial %s: %s",
                            self.phases[idx]["algorithm"], trial_id, exc)
        self._update_incumbent()

    def save(self, checkpoint_path: str) -> None:
        state = {k: getattr(self, k) for k in ("fmt", "finished", "pending", "values", "suggested", "fallbacks",
                                                "failed", "phases", "phase_of", "stopped", "incumbent")}
        state["inner"] = self._inner_state()
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(state, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            state = pickle.load(fh)
        inner = state.pop("inner", None)
        self.__dict__.update(state)
        self.failed = None
        self._reload_observed()
        self._inner = None
        if self.phases:
            self._inner = self._build_inner(self.phases[-1])
            if inner is not None and hasattr(self._inner, "restore"):
                self._restore_inner(inner)
            elif isinstance(inner, _Points):
                self._inner = inner

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_inner"] = None
        state["_inner_saved"] = self._inner_state()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("_inner_saved", None)
        super().__setstate__(state)
        if self.phases:
            self._inner = self._build_inner(self.phases[-1])
            if isinstance(saved, _Points):
                self._inner = saved
            elif saved is not None:
                self._restore_inner(saved)

    # ------------------------------------------------------------ internals
    def _initial_incumbent(self) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}-incumbent")
        values = self.space.decode(self.space.sample(rng))
        for p in self.space.params:
            if p.default is not None and p.contains(p.default):
                values[p.name] = p.default
        return values

    def _best(self) -> dict[str, Any] | None:
        ok = [t for t in self.finished.values() if isinstance(t.get("metric"), int | float) and t.get("config")]
        if not ok:
            return None
        return (min if self.mode == "min" else max)(ok, key=lambda t: t["metric"])

    def _update_incumbent(self) -> None:
        best = self._best()
        if best is not None:
            self.incumbent = {k: best["config"][k] for k in self.space.names if k in best["config"]}
        for i, ph in enumerate(self.phases):
            mine = [self.finished[t] for t in ph["trial_ids"] if t in self.finished]
            ok = [t for t in mine if isinstance(t.get("metric"), int | float)]
            ph["finished"] = len(mine)
            ph["failed"] = len(mine) - len(ok)
            if ok:
                b = (min if self.mode == "min" else max)(ok, key=lambda t: t["metric"])
                ph["best"] = {"metric": b["metric"], "config": {k: b["config"].get(k) for k in ph["parameters"]}}
            self.phases[i] = ph

    def _new_phase(self) -> dict[str, Any] | None:
        request = f"plan{len(self.phases)}-{time.time_ns()}"
        left = self.budget - self.suggested
        finished = list(self.finished.values())
        best = self._best()
        phases = [{k: ph.get(k) for k in ("algorithm", "parameters", "trials", "finished", "failed", "best",
                                          "reasoning")} for ph in self.phases]
        messages, coverage = plan_messages(
            space=self.space, metric=self.metric, mode=self.mode, budget_left=left, total=self.budget,
            incumbent=self.incumbent, incumbent_metric=best["metric"] if best else None, phases=phases,
            finished=finished, notes=self.notes, max_chars=self.max_chars)
        extra = {"request": request, "coverage": coverage, "known_finished": [t["trial_id"] for t in finished]}
        check = self._ask_repaired(messages, extra, "plan", self._plan_call,
                                   lambda reply, purpose: self._check_plan(reply, request, left, purpose),
                                   shape='{"action", "algorithm", "parameters", "trials", "reasoning"}', what="plan")
        if not check.ok:
            err = self.client.error("the phase plan was still invalid after one repair prompt: "
                                    + "; ".join(check.problems)[:1500])
            err.request = request
            raise err
        plan = check.plan
        if plan["action"] == "stop":
            self.stopped = plan["reasoning"]
            self._log("decision", request=request, decision="finish", reasoning=plan["reasoning"],
                      trials_left=left)
            log.info("hybrid: the LLM ended the search with %d trial(s) left: %s", left, plan["reasoning"])
            return None
        phase = {**plan, "request": request, "suggested": 0, "trial_ids": [], "finished": 0, "failed": 0,
                 "best": None, "incumbent": dict(self.incumbent)}
        phase["warm_start"] = self._warm_start_ids(phase)
        self.phases.append(phase)
        self._inner = self._build_inner(phase)
        self._log("plan", request=request, phase=len(self.phases) - 1, algorithm=plan["algorithm"],
                  parameters=plan["parameters"], trials=plan["trials"], reasoning=plan["reasoning"],
                  incumbent=phase["incumbent"], warm_start=len(phase["warm_start"]))
        return phase

    def _plan_call(self, messages: list[dict[str, str]], purpose: str, extra: dict[str, Any]) -> Any:
        try:
            return self._chat(messages, purpose, extra, _format)
        except LLMError as exc:
            exc.request = extra.get("request")
            raise

    def _check_plan(self, reply: Any, request: str, left: int, purpose: str) -> PlanCheck:
        try:
            obj = extract_json(reply.text)
        except ValueError as exc:
            problem = str(exc).replace('{"reasoning": ..., "config": {...}}', "a phase plan object")
            if reply.finish_reason == "length":
                problem += " (the reply was truncated: finish_reason 'length')"
            check = PlanCheck(False, {}, [problem])
        else:
            check = validate_plan(self.space, obj, budget_left=left, settings=self.settings)
        self._log("proposal", request=request, purpose=purpose, raw=reply.text, finish_reason=reply.finish_reason,
                  valid=check.ok, plan=check.plan, problems=check.problems, reasoning=check.plan.get("reasoning"))
        return check

    def _sub_space(self, phase: Mapping[str, Any]) -> Any:
        return restrict(self.space, phase["parameters"], phase["incumbent"])

    def _build_inner(self, phase: Mapping[str, Any]) -> Any:
        sub = self._sub_space(phase)
        n = int(phase["trials"])
        settings = attrs.evolve(self.settings, max_recommendations=max(n, 1))
        seed = (self.seed or 0) + 1000 * len(self.phases)
        if phase["algorithm"] == "random":
            rng = random.Random(f"{seed}-random")
            return _Points([sub.sample(rng) for _ in range(n)])
        if phase["algorithm"] == "grid":
            return _Points(registry_grid(sub, settings, self.max_epochs))
        ctx = BuildContext(param_space=sub.to_ray(), metric=self.metric, mode=self.mode,
                           settings=attrs.evolve(settings, seed=seed), max_epochs=self.max_epochs, space=sub,
                           evaluated_points=self._evaluated_points(phase, sub))
        plan = get_algorithm(phase["algorithm"]).build(ctx)
        inner = plan.search_alg
        inner.set_search_properties(self.metric, self.mode, sub.to_ray())
        return inner

    def _warm_start_ids(self, phase: Mapping[str, Any]) -> list[str]:
        """The finished trials a model-based phase starts from (see :attr:`warm_start`)."""
        if self.warm_start == "none" or phase["algorithm"] not in WARM_STARTED:
            return []
        swept = set(phase["parameters"])
        out = []
        for tid, t in self.finished.items():
            cfg = t.get("config")
            if not isinstance(t.get("metric"), int | float) or not math.isfinite(t["metric"]) or not cfg:
                continue
            if self.warm_start == "matching" and any(
                    cfg.get(k) != v for k, v in phase["incumbent"].items() if k not in swept):
                continue
            out.append(tid)
        return out

    def _evaluated_points(self, phase: Mapping[str, Any], sub: Any) -> tuple[tuple[dict[str, Any], float], ...]:
        """``(encoded sub-config, metric)`` of the phase's warm-start trials, projected on its
        parameters (a trial whose value of a swept parameter is outside the space is left out)."""
        out = []
        for tid in phase.get("warm_start") or ():
            t = self.finished.get(tid)
            if t is None or not t.get("config"):
                continue
            values = {p.name: t["config"].get(p.name) for p in sub.params}
            if all(p.contains(values[p.name]) for p in sub.params):
                out.append((sub.encode(values), float(t["metric"])))
        return tuple(out)

    def _inner_suggest(self, trial_id: str) -> dict[str, Any] | None:
        sub = self._inner.suggest(trial_id)
        if sub is None or sub == LLMSearcher.FINISHED:
            return None
        return dict(sub)

    def _inner_state(self) -> Any:
        if self._inner is None:
            return None
        if isinstance(self._inner, _Points):
            return self._inner
        with tempfile.NamedTemporaryFile(suffix=".pkl") as fh:
            self._inner.save(fh.name)
            return open(fh.name, "rb").read()  # noqa: SIM115

    def _restore_inner(self, data: bytes) -> None:
        with tempfile.NamedTemporaryFile(suffix=".pkl") as fh:
            fh.write(data)
            fh.flush()
            self._inner.restore(fh.name)
