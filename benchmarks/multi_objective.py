"""Two-objective benchmark: hypervolume after 30 trials, 5 seeds.

In-process (no Ray, no jobs), with the samplers the runner uses:

* ``mo-bayesian``: what ``algorithm: bayesian`` runs with two or more
  objectives (ParEGO: our GP with expected improvement on a random augmented
  Chebyshev scalarisation per trial, ``algorithms/_gp_sampler.py``);
* ``random``: Optuna's random sampler (as ``algorithm: random``);
* ``weighted-gp``: nvidia-tao-automl's scalarisation emulated in-process:
  the weighted sum ``sum(weight * oriented value / scale)`` (weights and
  scales 1, its defaults) optimised by our single-objective ``bayesian``
  (the GP sampler).  This is an emulation, not the peer package;
* ``mo-tpe``, ``nsga2``: Optuna's multivariate multi-objective TPE and
  NSGA-II, for reference.

Problems (both objectives minimized; reference points as in BoTorch):
ZDT1 with 6 inputs (ref [11, 11]) and Branin-Currin on [0, 1]^2 (ref [18, 6]).
Hypervolume: ``tao_automl.config.objectives.hypervolume`` with that reference.

``python -m benchmarks.multi_objective [--trials 30] [--seeds 5]`` prints a
markdown table.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

from tao_automl.config.objectives import Objective, hypervolume


def zdt1(x: list[float]) -> tuple[float, float]:
    f1 = x[0]
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return f1, g * (1 - math.sqrt(f1 / g))


def branin_currin(x: list[float]) -> tuple[float, float]:
    x0, x1 = x
    u, v = 15 * x0 - 5, 15 * x1
    branin = (v - 5.1 / (4 * math.pi ** 2) * u ** 2 + 5 / math.pi * u - 6) ** 2 \
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(u) + 10
    x1s = max(x1, 1e-12)
    currin = (1 - math.exp(-1 / (2 * x1s))) * (2300 * x0 ** 3 + 1900 * x0 ** 2 + 2092 * x0 + 60) \
        / (100 * x0 ** 3 + 500 * x0 ** 2 + 4 * x0 + 20)
    return branin, currin


PROBLEMS: dict[str, tuple[Any, int, list[float]]] = {
    "zdt1": (zdt1, 6, [11.0, 11.0]),
    "branin-currin": (branin_currin, 2, [18.0, 6.0]),
}
OBJS = [Objective("f1", "minimize"), Objective("f2", "minimize")]


def _sampler(method: str, seed: int, trials: int) -> Any:
    import optuna

    startup = min(10, max(3, trials // 5))  # the runner's rule (algorithms/_builtin.py)
    if method == "mo-bayesian":
        from tao_automl.algorithms._gp_sampler import HVISampler
        return HVISampler(seed=seed, n_startup_trials=startup)
    if method == "parego":
        from tao_automl.algorithms._gp_sampler import ParEGOSampler
        return ParEGOSampler(seed=seed, n_startup_trials=startup)
    if method == "mo-tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True)
    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if method == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
    if method == "weighted-gp":
        from tao_automl.algorithms._gp_sampler import GPSampler
        return GPSampler(seed=seed, n_startup_trials=startup)
    raise ValueError(method)


def run(problem: str, method: str, seed: int, trials: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fn, dims, ref = PROBLEMS[problem]
    points: list[dict[str, float]] = []

    def objective(trial: optuna.Trial) -> Any:
        f = fn([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dims)])
        points.append({"f1": f[0], "f2": f[1]})
        if method == "weighted-gp":
            return -(f[0] + f[1])  # nvidia-tao-automl: sum of weight * oriented value / scale, maximized
        return f

    directions = ["maximize"] if method == "weighted-gp" else ["minimize", "minimize"]
    study = optuna.create_study(directions=directions, sampler=_sampler(method, seed, trials))
    study.optimize(objective, n_trials=trials)
    return hypervolume(OBJS, points, ref)


METHODS = ("mo-bayesian", "random", "weighted-gp", "mo-tpe", "nsga2")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"| problem | {' | '.join(METHODS)} |")
    print("|---|" + "---|" * len(METHODS))
    for problem in PROBLEMS:
        row = []
        for method in METHODS:
            t = time.time()
            hvs = [run(problem, method, seed, args.trials) for seed in range(args.seeds)]
            row.append(f"{statistics.median(hvs):.3f} [{min(hvs):.2f}-{max(hvs):.2f}] ({time.time() - t:.0f}s)")
        print(f"| {problem} | {' | '.join(row)} |", flush=True)


if __name__ == "__main__":
    main()
