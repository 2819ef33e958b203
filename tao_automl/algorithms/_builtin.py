"""The built-in algorithms: bayesian, random, grid, hyperband, asha, bohb, dehb, pbt."""

from __future__ import annotations

import math
from typing import Any

from tao_automl.algorithms import AlgorithmSpec, BuildContext, SearchPlan, register
from tao_automl.errors import SettingsError

EPOCH = "epoch"  # the time attribute every trial reports (fidelity = epochs)


def _optuna_search(ctx: BuildContext, sampler: Any) -> Any:
    from ray.tune.search.optuna import OptunaSearch

    if ctx.evaluated_points:  # completed trials of the study: the sampler conditions on them at once
        if ctx.initial_points:
            raise ValueError("evaluated_points and initial_points cannot be combined (Ray's OptunaSearch "
                             "takes either points to evaluate or evaluated points)")
        return OptunaSearch(metric=ctx.metric, mode=ctx.mode, sampler=sampler,
                            points_to_evaluate=[dict(c) for c, _ in ctx.evaluated_points],
                            evaluated_rewards=[float(v) for _, v in ctx.evaluated_points])
    return OptunaSearch(
        metric=ctx.metric,
        mode=ctx.mode,
        sampler=sampler,
        points_to_evaluate=list(ctx.initial_points) or None,
    )


def _build_bayesian_multi(ctx: BuildContext) -> SearchPlan:
    """Several objectives: a Pareto-front search on the objectives themselves,
    not on the weighted sum -- two objectives: per-objective GPs and the
    hypervolume improvement of the optimistic prediction (SMS-EGO), against
    the objectives' ``reference`` values where given; more:
    ParEGO (a random Chebyshev scalarisation per trial).  Measured against
    random search and the weighted sum in benchmarks/RESULTS.md."""
    from ray.tune.search.optuna import OptunaSearch

    from tao_automl.algorithms._gp_sampler import HVISampler  # optuna + numpy: loaded on use

    budget = ctx.settings.max_recommendations
    startup = max(len(ctx.initial_points), min(10, max(3, budget // 5)))
    sampler = HVISampler(seed=ctx.settings.seed, n_startup_trials=startup,
                         constant_liar=ctx.settings.max_concurrent > 1,
                         reference=[o.reference for o in ctx.objectives])
    search = OptunaSearch(
        metric=[o.metric for o in ctx.objectives],
        mode=["max" if o.direction == "maximize" else "min" for o in ctx.objectives],
        sampler=sampler, points_to_evaluate=list(ctx.initial_points) or None)
    return SearchPlan(search_alg=search, scheduler=None, num_samples=budget)


def _build_bayesian(ctx: BuildContext) -> SearchPlan:
    if len(ctx.objectives) > 1:
        return _build_bayesian_multi(ctx)
    # A GP with expected improvement on the numeric parameters (categoricals:
    # independent TPE).  Measured in benchmarks/RESULTS.md: with 20 trials it
    # beats Optuna's TPE clearly (median best 0.52 vs 1.74 on Branin, -3.07 vs
    # -1.89 on Hartmann-6).
    from tao_automl.algorithms._gp_sampler import GPSampler  # optuna + numpy: loaded on use

    budget = ctx.settings.max_recommendations
    startup = max(len(ctx.initial_points), min(10, max(3, budget // 5)))
    sampler = GPSampler(
        seed=ctx.settings.seed,
        n_startup_trials=startup,
        constant_liar=ctx.settings.max_concurrent > 1,
    )
    return SearchPlan(search_alg=_optuna_search(ctx, sampler), scheduler=None, num_samples=budget)


def _build_random(ctx: BuildContext) -> SearchPlan:
    from ray.tune.search import BasicVariantGenerator

    return SearchPlan(
        search_alg=BasicVariantGenerator(
            # every configuration drawn in advance (queue_rest): the initial batch, then the queue
            points_to_evaluate=[*ctx.initial_points, *ctx.queued_points] or None,
            random_state=ctx.settings.seed,
            max_concurrent=ctx.settings.max_concurrent,
        ),
        scheduler=None,
        num_samples=ctx.settings.max_recommendations,
    )


def _grid_values(p: Any, points: int) -> list[Any]:
    if p.kind in ("categorical", "bool"):
        return list(p.options if p.options is not None else [False, True])
    lo, hi = p.low, p.high
    if points == 1:
        return [p.default if p.default is not None else lo]
    if p.log and lo > 0:
        vals = [math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (points - 1)) for i in range(points)]
    else:
        vals = [lo + i * (hi - lo) / (points - 1) for i in range(points)]
    if p.kind == "int":
        vals = sorted({int(round(v)) for v in vals})
    return vals


def _grid(space: Any, settings: Any) -> tuple[dict[str, list[Any]], int]:
    """The grid's values per parameter (searcher encoding) and its size."""
    grid = {}
    total = 1
    encoded = space.to_ray()
    for p in space.params:
        if p.kind in ("categorical", "bool") or p.math_cond:
            dom = encoded[p.name]
            cats = getattr(dom, "categories", None)
            if cats is None and hasattr(dom, "lower"):
                cats = list(range(int(dom.lower), int(dom.upper) + 1 if p.kind == "int" else int(dom.upper)))
            vals = list(cats) if cats is not None else _grid_values(p, settings.grid_points)
        else:
            vals = _grid_values(p, settings.grid_points)
        grid[p.name] = vals
        total *= len(vals)
    return grid, total


def _grid_first(settings: Any, space: Any, rng: Any) -> list[dict[str, Any]]:
    """The first grid points, in the order Tune runs them (as many as run at once)."""
    import itertools

    from ray.tune.search.variant_generator import generate_variants

    grid, total = _grid(space, settings)
    n = min(settings.max_concurrent, total)
    variants = generate_variants({k: {"grid_search": v} for k, v in grid.items()}, constant_grid_search=True)
    return [dict(config) for _, config in itertools.islice(variants, n)]


def _estimate_grid(settings: Any, max_epochs: int | None) -> tuple[float, list[str]]:
    return settings.max_recommendations, ["at most max_recommendations trials"]


def _build_grid(ctx: BuildContext) -> SearchPlan:
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    space = ctx.space
    if space is None:
        raise SettingsError("grid search needs the search space")
    values, total = _grid(space, ctx.settings)
    grid = {name: tune.grid_search(vals) for name, vals in values.items()}
    if total > ctx.settings.max_recommendations:
        raise SettingsError("grid is larger than the budget", key="automl_settings.max_recommendations",
                            value=ctx.settings.max_recommendations,
                            expected=f">= {total} (the full grid with grid_points={ctx.settings.grid_points})",
                            hint="lower grid_points, shrink the search space, or raise max_recommendations")
    return SearchPlan(
        search_alg=BasicVariantGenerator(constant_grid_search=True, max_concurrent=ctx.settings.max_concurrent),
        scheduler=None,
        num_samples=1,
        param_space=grid,
    )


def _check_fidelity(ctx: BuildContext) -> None:
    if ctx.max_epochs < 2:
        raise SettingsError("multi-fidelity search needs at least 2 epochs",
                            key="automl_settings.max_epochs", value=ctx.max_epochs,
                            expected="an integer >= 2")
    if ctx.settings.min_epochs >= ctx.max_epochs:
        raise SettingsError("min_epochs must be below max_epochs", key="automl_settings.min_epochs",
                            value=ctx.settings.min_epochs, expected=f"< max_epochs ({ctx.max_epochs})")


def _estimate_halving(settings: Any, max_epochs: int | None) -> tuple[float, list[str]]:
    """Successive halving spends roughly (1 + log_eta(R)) x budget / eta on
    lower rungs; a trial counts as the average fraction of max epochs."""
    eta = settings.reduction_factor
    rungs = max(1, int(math.log(max(max_epochs or 1, 1), eta)) + 1)
    full = settings.max_recommendations * rungs / eta
    return full, [f"about {rungs} rungs with reduction factor {eta}; "
                  f"~{full:.1f} full-trial equivalents for {settings.max_recommendations} trials"]


def hyperband_trial_count(max_epochs: int, eta: int) -> int:
    """Configurations in one full run of standard Hyperband brackets
    (Li et al. 2018): s_max = floor(log_eta(R)), n_s = ceil((s_max+1)/(s+1) * eta^s)."""
    s_max = int(math.floor(math.log(max_epochs) / math.log(eta) + 1e-9))
    return sum(int(math.ceil((s_max + 1) / (s + 1) * eta**s)) for s in range(s_max + 1))


def _random_variants(ctx: BuildContext) -> Any:
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(
        points_to_evaluate=list(ctx.initial_points) or None, random_state=ctx.settings.seed
    )


def _fidelity_searcher(ctx: BuildContext) -> Any:
    """asha/hyperband's searcher: random (plain ASHA/Hyperband) or, with
    ``sampler: bayesian``, the GP sampler fed every trial's last (possibly
    low-fidelity) result.  Measured on multi-fidelity Hartmann-6 (180 epochs,
    5 seeds): asha -2.02 random, -2.90 with the GP (Optuna TPE + its Hyperband
    pruner: -2.58 to -2.69); hyperband gained nothing (-1.95), see benchmarks/RESULTS.md."""
    if ctx.settings.sampler != "bayesian":
        return _random_variants(ctx)
    from tao_automl.algorithms._gp_sampler import GPSampler  # optuna + numpy: loaded on use

    startup = max(len(ctx.initial_points), min(10, max(3, len(ctx.param_space))))
    return _optuna_search(ctx, GPSampler(seed=ctx.settings.seed, n_startup_trials=startup, constant_liar=True))


def _build_hyperband(ctx: BuildContext) -> SearchPlan:
    from ray.tune.schedulers import HyperBandScheduler

    _check_fidelity(ctx)
    eta = ctx.settings.reduction_factor
    sched = HyperBandScheduler(
        time_attr=EPOCH, metric=ctx.metric, mode=ctx.mode, max_t=ctx.max_epochs, reduction_factor=eta
    )
    return SearchPlan(
        search_alg=_fidelity_searcher(ctx),
        scheduler=sched,
        num_samples=ctx.settings.max_recommendations,
        limit_by_resources_only=True,
    )


def _build_asha(ctx: BuildContext) -> SearchPlan:
    from ray.tune.schedulers import ASHAScheduler

    _check_fidelity(ctx)
    sched = ASHAScheduler(
        time_attr=EPOCH,
        metric=ctx.metric,
        mode=ctx.mode,
        max_t=ctx.max_epochs,
        grace_period=ctx.settings.min_epochs,
        reduction_factor=ctx.settings.reduction_factor,
    )
    return SearchPlan(search_alg=_fidelity_searcher(ctx), scheduler=sched, num_samples=ctx.settings.max_recommendations)


def _build_bohb(ctx: BuildContext) -> SearchPlan:
    try:
        import ConfigSpace  # noqa: F401
        import hpbandster  # noqa: F401
        from ray.tune.schedulers import HyperBandForBOHB
        from ray.tune.search.bohb import TuneBOHB
    except ImportError as exc:
        raise SettingsError("algorithm 'bohb' needs optional packages", key="automl_algorithm", value="bohb",
                            expected="hpbandster and ConfigSpace installed",
                            hint="pip install 'tao-automl[bohb]'") from exc
    _check_fidelity(ctx)
    n_dims = max(1, len(ctx.param_space))
    sched = HyperBandForBOHB(
        time_attr=EPOCH,
        metric=ctx.metric,
        mode=ctx.mode,
        max_t=ctx.max_epochs,
        reduction_factor=ctx.settings.reduction_factor,
    )
    # hpbandster's default needs dims+1 points *per budget* before its model
    # acts; with TAO-sized budgets that means never.  Start modelling early.
    search = TuneBOHB(
        metric=ctx.metric,
        mode=ctx.mode,
        seed=ctx.settings.seed,
        bohb_config={"min_points_in_model": ctx.settings.min_points_in_model or n_dims + 1,
                     "top_n_percent": ctx.settings.top_n_percent or 25,
                     **({"num_samples": ctx.settings.kde_samples} if ctx.settings.kde_samples else {})},
        points_to_evaluate=list(ctx.initial_points) or None,
    )
    return SearchPlan(
        search_alg=search,
        scheduler=sched,
        num_samples=ctx.settings.max_recommendations,
        limit_by_resources_only=True,
    )


def _build_dehb(ctx: BuildContext) -> SearchPlan:
    from tao_automl.algorithms.dehb import build_dehb

    return build_dehb(ctx)


def _review_dehb(settings: Any, max_epochs: int | None) -> dict[str, Any]:
    from tao_automl.algorithms._de import review_plan

    return review_plan(settings, max_epochs)


def _estimate_dehb(settings: Any, max_epochs: int | None) -> tuple[float, list[str]]:
    """The epochs the planned brackets train, in full trials."""
    plan = _review_dehb(settings, max_epochs)
    if plan.get("planned_epochs") is None or not max_epochs:
        return _estimate_halving(settings, max_epochs)
    full = plan["planned_epochs"] / max_epochs
    return full, [f"{plan['planned_jobs']} jobs training {plan['planned_epochs']} epochs in all "
                  f"= {full:.1f} full-trial equivalents"]


DEFAULT_PBT_FIXED = ("model.",)


def _matches(name: str, entry: str) -> bool:
    return name.startswith(entry) if entry.endswith(".") else name == entry


def pbt_fixed_params(ctx: BuildContext) -> list[str]:
    """The searched parameters PBT keeps fixed per member (see ``AutoMLSettings.pbt_fixed``).

    A user-given entry that matches no searched parameter is an error (it
    would otherwise be dropped silently); the default ``model.`` may match none.
    """
    return _pbt_fixed(ctx.settings, list(ctx.param_space))


def _pbt_fixed(settings: Any, names: list[str]) -> list[str]:
    given = settings.pbt_fixed
    entries = list(DEFAULT_PBT_FIXED if given is None else given)
    if given is not None:
        for entry in entries:
            if not any(_matches(n, entry) for n in names):
                raise SettingsError("pbt_fixed entry matches no searched parameter",
                                    key="automl_settings.pbt_fixed", value=entry,
                                    expected="one of " + ", ".join(sorted(names)) + " (or a dotted prefix ending in '.')")
    return [n for n in names if any(_matches(n, e) for e in entries)]


def _pbt_mutations(ctx: BuildContext) -> dict[str, Any]:
    """PBT's explore step multiplies numbers by 0.8/1.2 and shifts list entries:
    categorical domains (and weighted samplers) become their option lists.
    Parameters in ``pbt_fixed`` are left out: a member that exploits another
    takes over its weights, so it also keeps that member's architecture."""
    from ray.tune.search.sample import Categorical, Float, Integer

    options = {p.name: list(p.options if p.options is not None else [False, True])
               for p in (ctx.space.params if ctx.space is not None else [])
               if p.kind in ("categorical", "bool")}
    fixed = set(pbt_fixed_params(ctx))
    out: dict[str, Any] = {}
    for key, dom in ctx.param_space.items():
        if key in fixed:
            continue
        if isinstance(dom, Categorical):
            out[key] = list(dom.categories)
        elif isinstance(dom, (Float, Integer)):
            out[key] = dom
        elif key in options:
            out[key] = options[key]
    return out


class _clip_to_domains:  # noqa: N801  (a picklable function object)
    """Keep explored values inside their Tune domain (x1.2 may overshoot)."""

    def __init__(self, param_space: Any) -> None:
        from ray.tune.search.sample import Float, Integer, Quantized

        self.bounds: dict[str, tuple[Any, Any]] = {}
        for key, dom in param_space.items():
            if isinstance(dom, Float):
                self.bounds[key] = (dom.lower, dom.upper)
            elif isinstance(dom, Integer):
                inclusive = isinstance(dom.get_sampler(), Quantized)
                self.bounds[key] = (int(dom.lower), int(dom.upper) - (0 if inclusive else 1))

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for key, (lo, hi) in self.bounds.items():
            if key in config and isinstance(config[key], (int, float)) and not isinstance(config[key], bool):
                config[key] = type(lo)(min(max(config[key], lo), hi))
        return config


def _population(settings: Any, space: Any, rng: Any) -> list[dict[str, Any]]:
    """PBT starts its whole population at once."""
    return [space.sample(rng) for _ in range(settings.population_size)]


def _build_pbt(ctx: BuildContext) -> SearchPlan:
    from ray.tune.schedulers import PopulationBasedTraining

    if ctx.max_epochs < 2 * ctx.settings.perturbation_interval:
        raise SettingsError("PBT needs room for at least two perturbation intervals",
                            key="automl_settings.perturbation_interval",
                            value=ctx.settings.perturbation_interval,
                            expected=f"<= max_epochs/2 ({ctx.max_epochs // 2})")
    mutations = _pbt_mutations(ctx)
    if not mutations:
        raise SettingsError("PBT has no parameter it may change while training resumes",
                            key="automl_settings.pbt_fixed",
                            value=ctx.settings.pbt_fixed if ctx.settings.pbt_fixed is not None else list(DEFAULT_PBT_FIXED),
                            expected="at least one searched parameter outside pbt_fixed (e.g. an optimizer setting)",
                            hint="search a learning rate or weight decay too, or narrow pbt_fixed")
    sched = PopulationBasedTraining(
        time_attr=EPOCH,
        metric=ctx.metric,
        mode=ctx.mode,
        perturbation_interval=ctx.settings.perturbation_interval,
        hyperparam_mutations=mutations,
        quantile_fraction=0.25,
        resample_probability=0.25,
        **({"perturbation_factors": (ctx.settings.perturbation_factor, 1 / ctx.settings.perturbation_factor)}
           if ctx.settings.perturbation_factor else {}),
        log_config=False,
        custom_explore_fn=_clip_to_domains(ctx.param_space),
    )
    return SearchPlan(
        search_alg=_random_variants(ctx),
        scheduler=sched,
        num_samples=ctx.settings.population_size,
        limit_by_resources_only=True,
    )


BASE = ("max_recommendations", "max_concurrent", "seed")  # what every Tune search reads
HALVING = ("max_epochs", "reduction_factor")

register(AlgorithmSpec(
    name="bayesian", build=_build_bayesian, settings_used=BASE, model_based=True, early_start=True,
    description="Model-based search (Gaussian process + expected improvement, via Optuna); the default."), "tpe")
register(AlgorithmSpec(
    name="random", build=_build_random, settings_used=BASE, early_start=True, queue_rest=True,
    description="Random search (every configuration drawn in advance; honours schema option weights)."))
register(AlgorithmSpec(
    name="grid", build=_build_grid, early_start=True, settings_used=("grid_points", *BASE[:2]), exhaustive=True,
    initial_batch_fn=_grid_first, estimate_fn=_estimate_grid,
    description="Full grid: categorical options, grid_points values per numeric range."))
register(AlgorithmSpec(
    name="hyperband", build=_build_hyperband, settings_used=(*HALVING, "sampler", *BASE),
    needs_checkpoints=True, multi_fidelity=True, estimate_fn=_estimate_halving,
    description="Standard Hyperband brackets (Ray's HyperBandScheduler); pauses and resumes trials."))
register(AlgorithmSpec(
    name="asha", build=_build_asha, early_start=True, settings_used=("max_epochs", "min_epochs", "reduction_factor", "sampler", *BASE),
    multi_fidelity=True, estimate_fn=_estimate_halving,
    description="Asynchronous successive halving (early stopping; no pause)."))
register(AlgorithmSpec(
    name="bohb", build=_build_bohb,
    settings_used=(*HALVING, *BASE, "kde_samples", "top_n_percent", "min_points_in_model"),
    needs_checkpoints=True, multi_fidelity=True, model_based=True, extra_requires=("hpbandster", "ConfigSpace"),
    estimate_fn=_estimate_halving,
    description="BOHB: Hyperband brackets with a TPE-like density model (hpbandster)."))
register(AlgorithmSpec(
    name="dehb", build=_build_dehb,
    settings_used=("max_epochs", "min_epochs", "reduction_factor", "mutation_factor", "crossover_prob",
                   "population_size", "epoch_budget", "dehb_strategy", "dehb_promotion", *BASE),
    multi_fidelity=True, review=_review_dehb, estimate_fn=_estimate_dehb,
    description="DEHB: Hyperband brackets with one differential-evolution population per epoch budget "
                "(asynchronous; every job trains exactly its budget)."))
register(AlgorithmSpec(
    name="pbt", build=_build_pbt,
    settings_used=("population_size", "perturbation_interval", "pbt_fixed", "max_epochs", *BASE[1:],
                   "perturbation_factor"),
    needs_checkpoints=True, multi_fidelity=True, budget_setting="population_size", initial_batch_fn=_population,
    fixed_params_fn=_pbt_fixed, rebuild_refusal="a PBT population cannot be rebuilt from the ledger",
    description="Population based training: exploit/explore every perturbation_interval epochs."))
