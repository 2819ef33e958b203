"""``python -m benchmarks.dehb_sim [--seeds 40]``: an in-process, Ray-free
simulator of exactly the ``dehb_compare`` setting, for many seeds.

Multi-fidelity Hartmann-6 of :mod:`benchmarks.problems` (the skill's own
``observe``), R = 9 epochs, eta 3, min 1 epoch, 2 asynchronous slots, a job's
duration proportional to the epochs it trains (plus an optional fixed
start-up per job, ``--overhead`` in epochs), every epoch a record; a run is
scored from its first 180 epoch records in time order by
:func:`benchmarks.common.score_epoch_log`, exactly as the real benchmark
scores the jobs' epoch log.

* dehb: our DE core (:class:`tao_automl.algorithms._de.DEHBCore`) driven
  directly, one job per ``ask()``, its fitness told when the job ends.  With
  ``epoch_budget`` the core plans whole brackets itself (as the benchmark
  sets it); a job that resumes a checkpoint (``Job.start_epoch``) trains and
  logs only its extra epochs.
* random asha: Ray Tune's own ASHA bracket (``ray.tune.schedulers.
  async_hyperband._Bracket``: stop at a rung when below the rung's
  (1 - 1/eta) quantile of the results recorded so far, max_t stops), trials
  drawn uniformly, a new trial whenever a slot frees -- what
  ``ASHAScheduler`` + ``BasicVariantGenerator`` do on the runner.  Through
  the runner a stop lands after the job has logged 1-2 more epochs of 0.1 s
  (the real epoch logs: 32-47 configurations in 180 epochs at load 30, most
  stopped trials at 2-5 epochs); ``stop_lag`` models it.

Variants of dehb: :data:`VARIANTS` (keyword arguments of the core).
"""

from __future__ import annotations

import argparse
import heapq
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import objectives_module, score_epoch_log
from benchmarks.problems import MF_BUDGET_EPOCHS, MF_EPOCHS, MF_ETA, Problem, observe_fn

SLOTS = 2
PROBLEM = Problem("hartmann6", "mf")


def _score(records: list[dict[str, Any]], budget: int) -> float:
    records.sort(key=lambda r: (r["t"], r["slot"]))
    return score_epoch_log(records, budget_epochs=budget, full_epoch=MF_EPOCHS)["incumbent_true"]


def _record(records: list, t: float, slot: int, u: list[float], epoch: int, y: float) -> None:
    records.append({"t": t, "slot": slot, "u": u, "epoch": epoch, "val_loss": y,
                    "true_value": objectives_module().true_value("hartmann6", u)})


def sim_dehb(seed: int, *, budget: int = MF_BUDGET_EPOCHS, slots: int = SLOTS, overhead: float = 0.0,
             core_kwargs: dict[str, Any] | None = None) -> float:
    """One dehb run; returns the benchmark score (true value of the best
    full-fidelity observation in the first ``budget`` epoch records)."""
    from tao_automl.algorithms._de import FINISHED, DEHBCore

    f = observe_fn(PROBLEM, seed)
    kw = {"epoch_budget": budget, "max_jobs": 10_000, "population_size": 4, **(core_kwargs or {})}
    core = DEHBCore(6, min_epochs=1, max_epochs=MF_EPOCHS, eta=MF_ETA, seed=seed, **kw)
    records: list[dict[str, Any]] = []
    running: list[tuple[float, int, int, float]] = []  # (end time, slot, job id, fitness)
    free = list(range(slots))
    now, spent = 0.0, 0
    while True:
        while free and spent < budget:
            job = core.ask()
            if job is None or job == FINISHED:
                break
            slot = free.pop(0)
            u = [float(x) for x in job.vector]
            start = int(getattr(job, "start_epoch", 0) or 0)
            t = now + overhead
            y = None
            for e in range(start + 1, job.epochs + 1):
                t += 1.0
                y = f(u, e)
                _record(records, t, slot, u, e, y)
            spent += job.epochs - start
            heapq.heappush(running, (t, slot, job.id, y if y is not None else float("inf")))
        if not running:
            break
        now, slot, jid, y = heapq.heappop(running)
        core.tell(jid, y)
        free.append(slot)
        free.sort()
    return _score(records, budget)


def sim_asha(seed: int, *, budget: int = MF_BUDGET_EPOCHS, slots: int = SLOTS, overhead: float = 0.0,
             stop_lag: int = 0, draw: Callable[[np.random.Generator], list[float]] | None = None) -> float:
    """One random-ASHA run with Ray's own ASHA bracket (see the module doc).
    ``stop_lag``: epochs a stopped trial still trains (and logs) before the
    stop lands (the real runs under load: 1-2 epochs of 0.1 s)."""
    from ray.tune.schedulers.async_hyperband import _Bracket

    class _T:
        def __init__(self, tid: str) -> None:
            self.trial_id = tid

    f = observe_fn(PROBLEM, seed)
    rng = np.random.default_rng(10_000 + seed)
    bracket = _Bracket(min_t=1, max_t=MF_EPOCHS, reduction_factor=MF_ETA, s=0)
    records: list[dict[str, Any]] = []
    events: list[tuple[float, int, int]] = []  # (time of the next epoch's end, slot, trial number)
    trials: dict[int, tuple[_T, list[float], int]] = {}  # number -> (trial, u, epochs done)
    lag: dict[int, int] = {}  # stopped trial -> epochs it still runs
    n = 0

    def start(slot: int, now: float) -> None:
        nonlocal n
        u = draw(rng) if draw else [float(x) for x in rng.random(6)]
        trials[n] = (_T(str(n)), u, 0)
        heapq.heappush(events, (now + overhead + 1.0, slot, n))
        n += 1

    for s in range(slots):
        start(s, 0.0)
    while events and len(records) < budget:
        t, slot, k = heapq.heappop(events)
        trial, u, done = trials[k]
        e = done + 1
        y = f(u, e)
        _record(records, t, slot, u, e, y)
        trials[k] = (trial, u, e)
        if k in lag:
            lag[k] -= 1
            action = "STOP" if lag[k] <= 0 or e >= MF_EPOCHS else "CONTINUE"
        else:
            action = "STOP" if e >= MF_EPOCHS else bracket.on_result(trial, e, -y)
            if action == "STOP" and stop_lag > 0 and e < MF_EPOCHS:
                lag[k], action = stop_lag, "CONTINUE"
        if action == "STOP":
            start(slot, t)
        else:
            heapq.heappush(events, (t + 1.0, slot, k))
    return _score(records, budget)


ASHA = {"random asha (Ray's ASHA bracket, stops land at once)": 0,
        "random asha, stops land 1 epoch late": 1,
        "random asha, stops land 2 epochs late (the load-30 epoch logs)": 2}
PAPER = {"mutation_strategy": "rand1", "promotion": "evolve", "init_design": "random"}
VARIANTS: dict[str, dict[str, Any]] = {
    "dehb as shipped (current-to-best/1, rank promotion, Latin hypercube)": {},
    "dehb, the paper's settings (rand/1, evolve promotion, random initial design)": PAPER,
    "paper + current-to-best/1": {**PAPER, "mutation_strategy": "currenttobest1"},
    "paper + rank promotion": {**PAPER, "promotion": "rank"},
    "paper + Latin hypercube": {**PAPER, "init_design": "lhs"},
    "shipped, rand/1": {"mutation_strategy": "rand1"},
    "shipped, evolve promotion": {"promotion": "evolve"},
    "shipped, random initial design": {"init_design": "random"},
    "shipped, budget spent job by job (whole_brackets=False)": {"whole_brackets": False},
    "shipped + continuation (promoted configurations resume their checkpoint)": {"continuation": True},
    "shipped, the authors' parent pools and promotions": {"parent_pool": "subpopulation"},
    "shipped, population_size 1 (paper: widest bracket's sizes)": {"population_size": 1},
    "shipped, population_size 10": {"population_size": 10},
    "shipped, crossover 0.9": {"crossover_prob": 0.9},
    "shipped, mutation factor 0.8": {"mutation_factor": 0.8},
}


def run(seeds: int, budget: int = MF_BUDGET_EPOCHS, overhead: float = 0.0,
        only: str = "") -> dict[str, dict[str, Any]]:
    out: dict[str, list[float]] = {}
    labels = [*ASHA, *VARIANTS]
    for label in labels:
        if only and only not in label:
            continue
        vals = []
        for seed in range(seeds):
            if label in ASHA:
                vals.append(sim_asha(seed, budget=budget, overhead=overhead, stop_lag=ASHA[label]))
            else:
                vals.append(sim_dehb(seed, budget=budget, overhead=overhead, core_kwargs=VARIANTS[label]))
        out[label] = vals
    return {k: {"median": round(statistics.median(v), 3),
                "iqr": [round(q, 3) for q in statistics.quantiles(v, n=4)[::2]],
                "mean": round(statistics.fmean(v), 3), "seeds": len(v), "values": [round(x, 4) for x in v]}
            for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.dehb_sim", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--budget", type=int, default=MF_BUDGET_EPOCHS)
    ap.add_argument("--overhead", type=float, default=0.0, help="fixed start-up per job, in epochs")
    ap.add_argument("--only", default="")
    args = ap.parse_args(argv)
    res = run(args.seeds, args.budget, args.overhead, args.only)
    print(f"| variant ({args.seeds} seeds, {args.budget} epochs, overhead {args.overhead}) | median | IQR | mean |")
    print("|---|---|---|---|")
    for k, v in res.items():
        print(f"| {k} | {v['median']:.3f} | [{v['iqr'][0]:.3f}, {v['iqr'][1]:.3f}] | {v['mean']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
