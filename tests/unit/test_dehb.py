"""DEHB: the DE core (geometry, operators, selection, promotion, failures,
budgets, asynchrony, state), the unit-cube codec of mixed spaces, the repair
through constraints, the Tune searcher's save/restore and the settings."""

from __future__ import annotations

import math
import pickle
from collections import Counter

import numpy as np
import pytest

from tao_automl.algorithms._de import FINISHED, DEHBCore, geometry, review_plan
from tao_automl.config.settings import parse_settings
from tao_automl.errors import SettingsError

# ------------------------------------------------------------------ geometry


@pytest.mark.parametrize(
    ("lo", "hi", "eta", "s_max", "budgets"),
    [
        (1, 9, 3, 2, (1, 3, 9)),
        (1, 27, 3, 3, (1, 3, 9, 27)),
        (1, 10, 3, 2, (1, 3, 10)),  # not a power of eta: floor divisions, top level exact
        (1, 26, 3, 2, (2, 8, 26)),  # 1 * 27 > 26: s_max 2 (a float log gives 2.966 -> 2 as well)
        (3, 100, 3, 3, (3, 11, 33, 100)),  # the MF-Hartmann benchmark's fidelities
        (1, 4, 2, 2, (1, 2, 4)),
        (2, 7, 2, 1, (3, 7)),
        (1, 2, 3, 0, (2,)),
    ],
)
def test_geometry_is_integer_exact(lo, hi, eta, s_max, budgets):
    g = geometry(lo, hi, eta)
    assert g.s_max == s_max and g.budgets == budgets
    assert g.budgets[-1] == hi and all(b >= lo for b in g.budgets)
    assert lo * eta**g.s_max <= hi < lo * eta ** (g.s_max + 1)
    assert len(g.brackets) == s_max + 1
    assert g.brackets[-1] == ((s_max, (s_max + 1)),)  # the full-fidelity bracket is run too
    for b in g.brackets:
        assert [lvl for lvl, _ in b] == list(range(b[0][0], s_max + 1))  # every bracket ends at max_epochs
        sizes = [n for _, n in b]
        assert sizes == sorted(sizes, reverse=True) and sizes[-1] >= 1


def test_geometry_where_float_logs_round_wrong():
    # log(243)/log(3) = 4.999999999999999 in floating point: the float formula
    # gives s_max 4; the integer loop gives 5.
    assert math.floor(math.log(243) / math.log(3)) == 4
    g = geometry(1, 243, 3)
    assert g.s_max == 5 and g.budgets == (1, 3, 9, 27, 81, 243)


def test_geometry_bracket_sizes_are_dehb_s():
    g = geometry(1, 9, 3)
    assert g.brackets == (((0, 9), (1, 3), (2, 1)), ((1, 3), (2, 1)), ((2, 3),))
    assert g.jobs_per_iteration == 20 and g.epochs_per_iteration == 9 + 9 + 9 + 9 + 9 + 27
    assert g.level_sizes() == [9, 3, 3]


@pytest.mark.parametrize("bad", [(0, 9, 3), (5, 4, 3), (1, 9, 1)])
def test_geometry_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        geometry(*bad)


# ------------------------------------------------------------------ operators


def test_mutation_is_rand1_and_stays_in_the_cube():
    core = DEHBCore(3, min_epochs=1, max_epochs=9, eta=3, mutation_factor=0.5, seed=0, mutation_strategy="rand1")
    pool = [np.array([0.2, 0.2, 0.2]), np.array([0.6, 0.6, 0.6]), np.array([0.4, 0.4, 0.4])]
    seen = set()
    for _ in range(50):
        m = core.mutation(pool)
        assert m.shape == (3,) and ((m >= 0) & (m <= 1)).all()
        seen.add(tuple(np.round(m, 6)))
    # a + 0.5 (b - c) over the 6 orderings of three points: 0.3, 0.1 (x2), 0.5 (x2), 0.7... all on the diagonal
    expected = {round(a + 0.5 * (b - c), 6) for a in (0.2, 0.6, 0.4) for b in (0.2, 0.6, 0.4)
                for c in (0.2, 0.6, 0.4) if len({a, b, c}) == 3}
    assert {s[0] for s in seen} <= expected and all(len(set(s)) == 1 for s in seen)


def test_mutation_redraws_coordinates_that_leave_the_cube():
    core = DEHBCore(2, min_epochs=1, max_epochs=9, mutation_factor=2.0, seed=1)
    pool = [np.array([1.0, 0.5]), np.array([1.0, 0.5]), np.array([0.0, 0.5])]
    for _ in range(20):
        m = core.mutation(pool)
        assert ((m >= 0) & (m <= 1)).all()


def test_crossover_is_binomial_with_one_mutant_coordinate():
    d = 20
    target, mutant = np.zeros(d), np.ones(d)
    core0 = DEHBCore(d, min_epochs=1, max_epochs=9, crossover_prob=0.0, seed=0)
    for _ in range(10):
        assert core0.crossover(target, mutant).sum() == 1  # CR 0: exactly the forced coordinate
    core1 = DEHBCore(d, min_epochs=1, max_epochs=9, crossover_prob=1.0, seed=0)
    assert core1.crossover(target, mutant).sum() == d
    core = DEHBCore(d, min_epochs=1, max_epochs=9, crossover_prob=0.5, seed=0)
    share = np.mean([core.crossover(target, mutant).mean() for _ in range(400)])
    assert 0.47 < share < 0.58


def _run(core, f, failing=lambda job: False):
    jobs = []
    while True:
        job = core.ask()
        if job is None or job == FINISHED:
            return jobs
        jobs.append(job)
        core.tell(job.id, None if failing(job) else f(job.vector, job.epochs))


def test_selection_replaces_the_target_only_when_no_worse():
    core = DEHBCore(2, min_epochs=1, max_epochs=3, eta=3, seed=0, max_jobs=200)
    f = lambda x, e: float(((x - 0.3) ** 2).sum())  # noqa: E731
    _run(core, f)
    # every member of every subpopulation holds the value it was evaluated at
    for lvl, (pop, fit) in enumerate(zip(core.pops, core.fit, strict=True)):
        for v, y in zip(pop, fit, strict=True):
            if math.isfinite(y):
                assert y == pytest.approx(f(v, lvl))
    # and DE converged towards the optimum at full fidelity
    assert np.nanmin(np.where(np.isfinite(core.fit[-1]), core.fit[-1], np.nan)) < 1e-3
    # selection, by hand: a worse trial leaves the target alone, a better one replaces it
    core2 = DEHBCore(2, min_epochs=1, max_epochs=3, eta=3, seed=0)
    job = core2.ask()
    core2.tell(job.id, 1.0)
    assert core2.fit[job.level][job.target] == 1.0
    core2.fit[job.level][job.target] = 0.5
    job2 = core2.ask()
    job2.target, job2.level = job.target, job.level
    core2.jobs[job2.id] = job2
    core2.tell(job2.id, 0.7)
    assert core2.fit[job.level][job.target] == 0.5


def test_first_iteration_promotes_the_best_of_the_lower_rung():
    core = DEHBCore(1, min_epochs=1, max_epochs=9, eta=3, seed=0)
    f = lambda x, e: float(x[0])  # noqa: E731
    first = [core.ask() for _ in range(9)]
    assert {j.epochs for j in first} == {1} and {j.bracket for j in first} == {0}
    for j in first:
        core.tell(j.id, f(j.vector, 1))
    promoted = [core.ask() for _ in range(3)]
    assert {j.epochs for j in promoted} == {3} and {j.rung for j in promoted} == {1}
    best3 = sorted(float(j.vector[0]) for j in first)[:3]
    assert sorted(float(j.vector[0]) for j in promoted) == pytest.approx(best3)


def test_failed_trials_are_never_promoted_nor_selected():
    core = DEHBCore(1, min_epochs=1, max_epochs=9, eta=3, seed=0)
    first = [core.ask() for _ in range(9)]
    bad = {j.id for j in first[:7]}  # 7 of 9 fail: only 2 can move up
    for j in first:
        core.tell(j.id, None if j.id in bad else float(j.vector[0]))
    promoted = []
    while True:
        job = core.ask()
        if job is None or job == FINISHED or job.bracket != 0:
            break
        promoted.append(job)
    assert [j.epochs for j in promoted] == [3, 3]
    good = {tuple(j.vector) for j in first if j.id not in bad}
    assert {tuple(j.vector) for j in promoted} == good
    failed_vectors = {tuple(j.vector) for j in first if j.id in bad}
    for pop, fit in zip(core.pops, core.fit, strict=True):
        for v, y in zip(pop, fit, strict=True):
            assert not (tuple(v) in failed_vectors and math.isfinite(y))
    assert core.incumbent is not None and tuple(core.incumbent[0]) in good


def test_every_job_fails_the_run_still_finishes():
    core = DEHBCore(2, min_epochs=1, max_epochs=9, eta=3, seed=0, max_jobs=40)
    jobs = _run(core, lambda x, e: 0.0, failing=lambda job: True)
    assert core.incumbent is None and len(jobs) <= 40 and core.ask() == FINISHED
    assert all(np.isinf(fit).all() for fit in core.fit)


def test_later_iterations_evolve_from_the_lower_rung_parent_pool():
    """The paper's promotion ("evolve"): after the first iteration a higher
    rung runs DE mutants of the lower rung's best, not the configurations."""
    core = DEHBCore(2, min_epochs=1, max_epochs=9, eta=3, seed=3, max_jobs=60, promotion="evolve")
    f = lambda x, e: float(((x - 0.7) ** 2).sum()) + 1.0 / e  # noqa: E731
    jobs = _run(core, f)
    assert len(jobs) == 60
    by_bracket = Counter(j.bracket for j in jobs)
    assert by_bracket[0] == 13 and by_bracket[1] == 4 and by_bracket[2] == 3  # first iteration: 20 jobs
    # second iteration's higher rungs are no longer copies of lower-rung vectors
    lower = {tuple(j.vector) for j in jobs if j.bracket == 3 and j.rung == 0}
    upper = [tuple(j.vector) for j in jobs if j.bracket == 3 and j.rung == 1]
    assert upper and not set(upper) <= lower


def test_rank_promotion_runs_the_lower_rungs_best_in_every_iteration():
    """The default ("rank"): in every Hyperband iteration a higher rung runs
    exactly the best configurations of the bracket's lower rung, in order,
    while the bracket's first rung holds DE mutants (not the initial design)."""
    core = DEHBCore(2, min_epochs=1, max_epochs=9, eta=3, seed=3, max_jobs=60)
    assert core.promotion == "rank" and core.mutation_strategy == "currenttobest1"
    f = lambda x, e: float(((x - 0.7) ** 2).sum()) + 1.0 / e  # noqa: E731
    jobs = _run(core, f)
    assert len(jobs) == 60
    fitness = {j.id: f(j.vector, j.epochs) for j in jobs}
    for bracket in (0, 3):  # first and second iteration alike
        for rung in (1, 2):
            lower = sorted((j for j in jobs if j.bracket == bracket and j.rung == rung - 1), key=lambda j: fitness[j.id])
            upper = [j for j in jobs if j.bracket == bracket and j.rung == rung]
            assert upper and [tuple(j.vector) for j in upper] == [tuple(j.vector) for j in lower[: len(upper)]]
    initial = {tuple(j.vector) for j in jobs if j.bracket == 0 and j.rung == 0}
    second = [tuple(j.vector) for j in jobs if j.bracket == 3 and j.rung == 0]
    assert second and not set(second) & initial  # bred by DE, not re-run


def test_rank_promotion_never_promotes_a_failed_configuration():
    core = DEHBCore(2, min_epochs=1, max_epochs=9, eta=3, seed=5, max_jobs=80)
    failed: set[tuple[float, ...]] = set()

    def failing(job):
        if job.rung == 0 and job.id % 2 == 0:
            failed.add(tuple(job.vector))
            return True
        return False

    jobs = _run(core, lambda x, e: float(x.sum()), failing=failing)
    later = [j for j in jobs if j.bracket >= 3]
    assert later and not any(tuple(j.vector) in failed for j in jobs if j.rung > 0)


def test_initial_design_is_a_latin_hypercube():
    core = DEHBCore(3, min_epochs=1, max_epochs=9, eta=3, seed=0, max_jobs=100)
    first = [core.ask() for _ in range(9)]
    pts = np.array([j.vector for j in first])
    for d in range(3):  # one point in each ninth of every coordinate
        assert sorted(np.floor(pts[:, d] * 9).astype(int)) == list(range(9))
    plain = DEHBCore(3, min_epochs=1, max_epochs=9, eta=3, seed=0, max_jobs=100, init_design="random")
    assert not np.allclose(np.array([plain.ask().vector for _ in range(9)]), pts)


def test_budgets_jobs_and_epochs():
    core = DEHBCore(2, min_epochs=1, max_epochs=9, eta=3, seed=0, max_jobs=1000, epoch_budget=100)
    jobs = _run(core, lambda x, e: float(x.sum()))
    spent = sum(j.epochs for j in jobs)
    assert spent <= 100 and core.epochs_issued == spent
    assert sum(j.epochs for j in jobs) + 9 > 100 or core.ask() == FINISHED
    # whole brackets (default): bracket 0 (13 jobs) + bracket 1 (4 jobs) fit 18 jobs, bracket 2 (3) does not
    core2 = DEHBCore(2, min_epochs=1, max_epochs=9, eta=3, seed=0, max_jobs=18)
    jobs2 = _run(core2, lambda x, e: 0.0)
    assert len(jobs2) == 17 and sum(j.epochs == 9 for j in jobs2) == 2  # every bracket reached max_epochs
    # job by job (the authors' feval count): exactly the budget, the last bracket cut short
    core3 = DEHBCore(2, min_epochs=1, max_epochs=9, eta=3, seed=0, max_jobs=18, whole_brackets=False)
    assert len(_run(core3, lambda x, e: 0.0)) == 18


def test_async_never_starves_open_brackets_of_budget():
    core = DEHBCore(1, min_epochs=1, max_epochs=4, eta=2, seed=0, max_jobs=8)  # bracket 0: 4 + 2 + 1 jobs
    first = [core.ask() for _ in range(4)]
    for j in first[:3]:
        core.tell(j.id, 0.1)
    assert core.ask() is None  # bracket 1 (3 jobs) would leave bracket 0 short of max_epochs: wait
    core.tell(first[3].id, 0.2)
    rest = _run(core, lambda x, e: float(x[0]))
    assert [j.epochs for j in rest] == [2, 2, 4]


def test_async_starts_the_next_bracket_instead_of_waiting():
    core = DEHBCore(1, min_epochs=1, max_epochs=9, eta=3, seed=0, max_jobs=100)
    first = [core.ask() for _ in range(9)]  # bracket 0's first rung, all running
    for j in first[:8]:
        core.tell(j.id, 0.1)
    nxt = core.ask()  # rung 1 needs the ninth result: a new bracket starts
    assert nxt.bracket == 1 and nxt.epochs == 3
    core.tell(first[8].id, 0.2)
    after = core.ask()
    assert after.bracket == 0 and after.rung == 1  # the older bracket goes first once it can


def test_initial_points_run_first():
    init = [[0.1, 0.9], [0.5, 0.5]]
    core = DEHBCore(2, min_epochs=1, max_epochs=9, eta=3, seed=0, initial=init)
    a, b = core.ask(), core.ask()
    assert a.vector.tolist() == init[0] and b.vector.tolist() == init[1] and a.epochs == 1


def test_state_round_trip_continues_identically():
    f = lambda x, e: float(((x - 0.4) ** 2).sum()) + 0.5 / e  # noqa: E731
    ref = DEHBCore(3, min_epochs=1, max_epochs=9, eta=3, seed=5, max_jobs=50)
    jobs_ref = _run(ref, f)
    half = DEHBCore(3, min_epochs=1, max_epochs=9, eta=3, seed=5, max_jobs=50)
    first = []
    for _ in range(23):
        job = half.ask()
        first.append(job)
        half.tell(job.id, f(job.vector, job.epochs))
    state = pickle.loads(pickle.dumps(half.get_state()))
    resumed = DEHBCore(3, min_epochs=1, max_epochs=9, eta=3, seed=99, max_jobs=50)
    resumed.set_state(state)
    rest = _run(resumed, f)
    assert [j.vector.tolist() for j in first + rest] == [j.vector.tolist() for j in jobs_ref]


def test_repair_hook_is_what_runs():
    core = DEHBCore(2, min_epochs=1, max_epochs=9, eta=3, seed=0, repair=lambda v: np.array([v[0], 0.25]))
    for _ in range(9):
        assert core.ask().vector[1] == 0.25


def test_review_plan_counts_the_budget():
    s = parse_settings({"max_recommendations": 20, "max_epochs": 9, "min_epochs": 1, "reduction_factor": 3})
    plan = review_plan(s, 9)
    assert plan["fidelity_levels"] == [1, 3, 9]
    assert plan["planned_jobs"] == 20 and plan["planned_epochs"] == 72
    assert [b["epochs"] for b in plan["brackets"]] == [27, 18, 27]
    assert plan["planned_full_fidelity_jobs"] == 1 + 1 + 3
    s2 = parse_settings({"max_recommendations": 100, "epoch_budget": 40, "reduction_factor": 3})
    assert review_plan(s2, 9)["planned_epochs"] <= 40


# ------------------------------------------------------------------ codec / searcher


@pytest.fixture(scope="module")
def tune_space():
    from ray import tune

    return {
        "lr": tune.loguniform(1e-4, 1e-1),
        "wd": tune.uniform(0.0, 0.1),
        "q": tune.quniform(0.0, 1.0, 0.25),
        "layers": tune.randint(1, 5),  # 1..4
        "batch": tune.qrandint(8, 64, 8),
        "width": tune.lograndint(16, 257),
        "opt": tune.choice(["sgd", "adam", "adamw"]),
        "flag": tune.choice([False, True]),
    }


def test_codec_decodes_mixed_spaces(tune_space):
    from tao_automl.algorithms.dehb import UnitCodec

    codec = UnitCodec(tune_space)
    assert codec.size == 8
    rng = np.random.default_rng(0)
    seen: dict[str, Counter] = {k: Counter() for k in tune_space}
    lrs = []
    for _ in range(3000):
        cfg = codec.decode(rng.random(8))
        for k, v in cfg.items():
            assert tune_space[k].is_valid(v), (k, v)
            seen[k][v if k not in ("lr", "wd") else 0] += 1
        lrs.append(cfg["lr"])
        assert isinstance(cfg["layers"], int) and isinstance(cfg["batch"], int) and cfg["batch"] % 8 == 0
        assert cfg["q"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    # categorical, bool and integer values all covered, roughly uniformly
    assert set(seen["opt"]) == {"sgd", "adam", "adamw"} and min(seen["opt"].values()) > 800
    assert set(seen["flag"]) == {False, True}
    assert set(seen["layers"]) == {1, 2, 3, 4} and min(seen["layers"].values()) > 600
    assert set(seen["batch"]) == set(range(8, 65, 8))
    assert min(seen["width"]) == 16 and max(seen["width"]) >= 250
    # log scale: a decade per third of the cube
    assert 0.28 < np.mean(np.array(lrs) < 1e-3) < 0.38
    # encode is decode's inverse on every value kind
    for _ in range(200):
        cfg = codec.decode(rng.random(8))
        again = codec.decode(codec.encode(cfg))
        for k in cfg:
            assert again[k] == pytest.approx(cfg[k], rel=1e-9) if isinstance(cfg[k], float) else again[k] == cfg[k]


def test_codec_edges_map_to_the_extremes(tune_space):
    from tao_automl.algorithms.dehb import UnitCodec

    codec = UnitCodec(tune_space)
    lo, hi = codec.decode(np.zeros(8)), codec.decode(np.ones(8))
    assert lo["lr"] == pytest.approx(1e-4) and hi["lr"] == pytest.approx(1e-1)
    assert (lo["layers"], hi["layers"]) == (1, 4) and (lo["batch"], hi["batch"]) == (8, 64)
    assert (lo["width"], hi["width"]) == (16, 256) and (lo["opt"], hi["opt"]) == ("sgd", "adamw")


def _searcher(tune_space, **kw):
    from tao_automl.algorithms.dehb import DEHBSearch

    args = dict(param_space=tune_space, metric="loss", mode="min", min_epochs=1, max_epochs=9, eta=3,
                max_jobs=30, seed=4)
    args.update(kw)
    return DEHBSearch(**args)


def test_searcher_suggests_budgets_and_learns(tune_space, tmp_path):
    s = _searcher(tune_space)
    cfg = s.suggest("t0")
    assert cfg["__epochs"] == 1 and cfg["__bracket"] == 0 and cfg["__rung"] == 0
    assert set(tune_space) <= set(cfg)
    s.on_trial_complete("t0", {"loss": 0.3, "epoch": 1})
    job_fit = [f for f in s.core.fit[0] if math.isfinite(f)]
    assert job_fit == [0.3]
    # a trial stopped before its budget, or failed, counts as +inf
    cfg1 = s.suggest("t1")
    s.on_trial_complete("t1", {"loss": 0.0, "epoch": cfg1["__epochs"] - 1} if cfg1["__epochs"] > 1
                        else {"loss": 0.0}, error=True)
    assert sorted(f for f in s.core.fit[0] if math.isfinite(f)) == [0.3]
    # maximisation is minimised internally
    m = _searcher(tune_space, mode="max")
    m.suggest("a")
    m.on_trial_complete("a", {"loss": 2.0, "epoch": 1})
    assert -2.0 in list(m.core.fit[0])


def test_searcher_save_restore_round_trip(tune_space, tmp_path):
    def loss(cfg):
        return (math.log10(cfg["lr"]) + 2.5) ** 2 + cfg["wd"] + 1.0 / cfg["__epochs"]

    ref = _searcher(tune_space)
    ref_cfgs = []
    for i in range(20):  # whole brackets: 13 + 4 + 3 jobs, the next 13 do not fit in 30
        c = ref.suggest(f"t{i}")
        ref_cfgs.append(c)
        ref.on_trial_complete(f"t{i}", {"loss": loss(c), "epoch": c["__epochs"]})
    a = _searcher(tune_space)
    cfgs = []
    for i in range(12):
        c = a.suggest(f"t{i}")
        cfgs.append(c)
        a.on_trial_complete(f"t{i}", {"loss": loss(c), "epoch": c["__epochs"]})
    pending = a.suggest("t12")  # running when the driver dies
    a.save(str(tmp_path / "s.pkl"))
    b = _searcher(tune_space, seed=123)
    b.restore(str(tmp_path / "s.pkl"))
    assert b.trials == {"t12": a.trials["t12"]}
    b.on_trial_complete("t12", {"loss": loss(pending), "epoch": pending["__epochs"]})
    cfgs.append(pending)
    for i in range(13, 20):
        c = b.suggest(f"t{i}")
        cfgs.append(c)
        b.on_trial_complete(f"t{i}", {"loss": loss(c), "epoch": c["__epochs"]})
    assert cfgs == ref_cfgs
    assert b.suggest("t20") == "FINISHED"


def test_searcher_repairs_through_constraints():
    from tao_automl.algorithms.dehb import DEHBSearch
    from tao_automl.search import SearchSpace
    from tao_automl.search.params import Constraint, SearchParam

    space = SearchSpace(params=[SearchParam("dataset.batch_size", "int", 16, 4, 64),
                                SearchParam("dataset.num_instances", "int", 4, 2, 8)],
                        constraints=[Constraint("multiple_of", "dataset.batch_size", "dataset.num_instances")])
    ps = space.to_ray()
    s = DEHBSearch(param_space=ps, metric="loss", mode="min", min_epochs=1, max_epochs=9, eta=3, max_jobs=40,
                   seed=0, space=space)
    for i in range(40):
        c = s.suggest(f"t{i}")
        if c in (None, "FINISHED"):
            break
        assert c["dataset.batch_size"] % c["dataset.num_instances"] == 0, c
        # the population holds what runs
        job = s.core.jobs[s.trials[f"t{i}"]]
        again = s.codec.decode(job.vector)
        assert again["dataset.batch_size"] == c["dataset.batch_size"]
        s.on_trial_complete(f"t{i}", {"loss": float(c["dataset.batch_size"]), "epoch": c["__epochs"]})


# ------------------------------------------------------------------ settings


def test_dehb_settings_and_aliases():
    s = parse_settings({"automl_mutation_factor": 0.8, "automl_crossover_prob": 0.3,
                        "automl_population_size": 12, "epoch_budget": 90})
    assert (s.mutation_factor, s.crossover_prob, s.population_size, s.epoch_budget) == (0.8, 0.3, 12, 90)
    assert parse_settings({}).mutation_factor is None


@pytest.mark.parametrize(("given", "strategy", "promotion"), [
    ({}, "currenttobest1", "rank"),
    ({"dehb_strategy": "rand1_bin", "dehb_promotion": "evolve"}, "rand1", "evolve"),
    ({"dehb_strategy": "currenttobest1_bin", "dehb_promotion": "rank"}, "currenttobest1", "rank"),
])
def test_dehb_strategy_and_promotion_reach_the_core(given, strategy, promotion):
    from ray import tune

    from tao_automl.algorithms._de import core_params
    from tao_automl.algorithms.dehb import DEHBSearch

    s = parse_settings(given)
    search = DEHBSearch(param_space={"x": tune.uniform(0, 1)}, metric="loss", mode="min", min_epochs=1,
                        max_epochs=9, seed=0, **core_params(s))
    assert (search.core.mutation_strategy, search.core.promotion) == (strategy, promotion)


@pytest.mark.parametrize(("key", "value"), [("automl_mutation_factor", 0.0), ("mutation_factor", 2.5),
                                            ("automl_crossover_prob", 1.5), ("crossover_prob", -0.1),
                                            ("mutation_factor", "0.5"), ("epoch_budget", 0),
                                            ("dehb_strategy", "best1_bin"), ("dehb_promotion", "halving"),
                                            ("dehb_strategy", 1)])
def test_dehb_settings_out_of_range(key, value):
    with pytest.raises(SettingsError) as exc:
        parse_settings({key: value})
    msg = str(exc.value)
    assert key in msg  # named as the user wrote it
    assert repr(value) in msg or str(value) in msg


def test_searcher_respects_batch_caps():
    from tao_automl.algorithms.dehb import DEHBSearch
    from tao_automl.search import SearchSpace
    from tao_automl.search.params import SearchParam

    space = SearchSpace(params=[SearchParam("train.batch_size", "int", 16, 4, 64),
                                SearchParam("train.lr", "float", 0.01, 1e-4, 1e-1, log=True)])
    s = DEHBSearch(param_space=space.to_ray(), metric="loss", mode="min", min_epochs=1, max_epochs=9, eta=3,
                   max_jobs=20, seed=1, space=space, train_sample_count=40, shard_count=2,
                   batch_key="train.batch_size")
    sizes = []
    for i in range(20):
        c = s.suggest(f"t{i}")
        sizes.append(c["train.batch_size"])
        s.on_trial_complete(f"t{i}", {"loss": c["train.lr"], "epoch": c["__epochs"]})
    assert max(sizes) <= 20 and min(sizes) >= 4  # 40 samples over 2 shards


def test_rebuilt_from_the_ledger_the_de_state_continues(tune_space):
    """Tune's saved searcher lost: the runner tells the settled jobs
    (``add_evaluated_point``); their epochs count against the budget, the successes
    rejoin their level's subpopulation, failures never do, the incumbent is
    the best full-fidelity one, and the next bracket follows the last started."""
    from tao_automl.algorithms.dehb import BRACKET_KEY, EPOCHS_KEY, RUNG_KEY, DEHBSearch

    def make():
        return DEHBSearch(param_space=tune_space, metric="loss", mode="min", min_epochs=1, max_epochs=9,
                          seed=0, max_jobs=100, epoch_budget=300)

    first = make()
    done = []
    for i in range(16):  # bracket 0 (13 jobs) and the first 3 of bracket 1
        config = first.suggest(f"t{i}")
        value = None if i == 4 else float(i % 7) / config[EPOCHS_KEY]
        done.append((config, value))
        first.on_trial_complete(f"t{i}", None if value is None else {"loss": value, "epoch": config[EPOCHS_KEY]})
    again = make()
    for config, value in done:
        again.add_evaluated_point(config, value, error=value is None)
    core = again.core
    # the epochs count against epoch_budget; max_jobs is what is left (the runner lowers it)
    assert core.seeded == 16 and core.n_jobs == 0 and core.epochs_issued == sum(c[EPOCHS_KEY] for c, _ in done)
    assert core.bracket_count == 2 and {c[BRACKET_KEY] for c, _ in done} == {0, 1}
    full = [(c, v) for c, v in done if c[EPOCHS_KEY] == 9 and v is not None]
    assert core.incumbent is not None and core.incumbent[2] == 2 and core.incumbent[1] == min(v for _, v in full)
    failed = again.codec.encode(done[4][0])
    assert not any(np.allclose(m, failed) and np.isfinite(f) for m, f in zip(core.pops[0], core.fit[0], strict=True))
    for level, epochs in enumerate((1, 3, 9)):  # every success of a level is in its subpopulation (room enough)
        ok = [v for c, v in done if c[EPOCHS_KEY] == epochs and v is not None]
        assert sorted(core.fit[level][np.isfinite(core.fit[level])]) == sorted(ok)[: len(core.pops[level])]
    nxt = again.suggest("t-next")  # bracket 2: 3 configurations at 9 epochs, bred by DE from the 3-epoch best
    assert nxt[BRACKET_KEY] == 2 and nxt[RUNG_KEY] == 0 and nxt[EPOCHS_KEY] == 9
    # the budget counts what ran before: 300 epochs minus the rebuilt ones
    assert core.epoch_budget - core.epochs_issued == 300 - sum(c[EPOCHS_KEY] for c, _ in done) - 9
    with pytest.raises(ValueError, match="__epochs"):
        again.add_evaluated_point({"x": 1}, 0.5)
