"""Two-objective benchmark: hypervolume after 30 trials, 5 seeds.

In-process (no Ray, no jobs), with the samplers the runner uses:

* ``mo-bayesian``: what ``algorithm: bayesian`` runs with two objectives
  (``HVISampler``, ``algorithms/_gp_sampler.py``: one GP per objective and
  the hypervolume improvement of the optimistic prediction, SMS-EGO; three
  or more objectives: ParEGO);
* ``mo-bayesian-ref``: the same with each objective's ``reference`` set to
  the problem's reference point (the worst value that still counts; the
  hypervolume below is measured against it, as BoTorch's benchmarks give
  ``ref_point`` to the acquisition);
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

The functions are the objective skill's (``objective.function: zdt1`` or
``branin_currin``; its jobs report ``val_loss`` = f1 and ``f2``).
``python -m benchmarks.multi_objective [--trials 30] [--seeds 5]`` prints a
markdown table; ``--e2e`` adds one run through ``AutoMLRunner`` (local
backend, Ray Tune, ``algorithm: bayesian``) per problem on that skill.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from tao_automl.config.objectives import Objective, hypervolume


def _fn(name: str) -> Any:
    from benchmarks.common import objectives_module

    return objectives_module().MULTI[name]


REFS = {"zdt1": [11.0, 11.0], "branin_currin": [18.0, 6.0]}
PROBLEMS = tuple(REFS)
OBJS = [Objective("f1", "minimize"), Objective("f2", "minimize")]


def _sampler(method: str, seed: int, trials: int, problem: str) -> Any:
    import optuna

    startup = min(10, max(3, trials // 5))  # the runner's rule (algorithms/_builtin.py)
    if method == "mo-bayesian":
        from tao_automl.algorithms._gp_sampler import HVISampler
        return HVISampler(seed=seed, n_startup_trials=startup)
    if method == "mo-bayesian-ref":
        from tao_automl.algorithms._gp_sampler import HVISampler
        return HVISampler(seed=seed, n_startup_trials=startup, reference=REFS[problem])
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


def run(problem: str, method: str, seed: int, trials: int, sampler: Any = None) -> float:
    """Hypervolume after ``trials`` of ``method`` (or of ``sampler``, a
    multi-objective Optuna sampler: ``benchmarks/mo_variants.py``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    (fn, dims), ref = _fn(problem), REFS[problem]
    points: list[dict[str, float]] = []

    def objective(trial: optuna.Trial) -> Any:
        f = fn([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dims)])
        points.append({"f1": f[0], "f2": f[1]})
        if method == "weighted-gp":
            return -(f[0] + f[1])  # nvidia-tao-automl: sum of weight * oriented value / scale, maximized
        return f

    directions = ["maximize"] if method == "weighted-gp" else ["minimize", "minimize"]
    study = optuna.create_study(directions=directions, sampler=sampler or _sampler(method, seed, trials, problem))
    study.optimize(objective, n_trials=trials)
    return hypervolume(OBJS, points, ref)


METHODS = ("mo-bayesian", "mo-bayesian-ref", "random", "weighted-gp", "mo-tpe", "nsga2")


def run_e2e(problem: str, seed: int, trials: int, workdir: str, reference: bool = False) -> dict[str, Any]:
    """One multi-objective bayesian run through AutoMLRunner on the objective
    skill (``reference``: each objective's reference set to the problem's)."""
    from benchmarks.common import SKILL_DIR
    from tao_automl.runner import AutoMLRunner

    _, dims = _fn(problem)
    t = time.time()
    res = AutoMLRunner(str(SKILL_DIR), workspace_dir=workdir).run(
        automl_algorithm="bayesian",
        automl_settings={"seed": seed, "max_recommendations": trials, "baseline": False, "final_eval": False,
                         "quiet": True, "fail_fast_after": 0,
                         "objectives": [{"metric": "val_loss", "direction": "minimize"},
                                        {"metric": "f2", "direction": "minimize"}]
                         if not reference else
                         [{"metric": "val_loss", "direction": "minimize", "reference": REFS[problem][0]},
                          {"metric": "f2", "direction": "minimize", "reference": REFS[problem][1]}]},
        automl_hyperparameters=[f"params.x{i + 1}" for i in range(dims)],
        spec_overrides={"objective.function": problem})
    pts = [{"f1": h["objective_values"]["val_loss"], "f2": h["objective_values"]["f2"]}
           for h in res["history"] if h.get("objective_values")]
    return {"problem": problem, "seed": seed, "reference": reference,
            "result_hypervolume": res["multi_objective"]["hypervolume"], "trials": len(res["history"]), "succeeded": len(pts),
            "front": len(res["pareto_front"]), "hypervolume": hypervolume(OBJS, pts, REFS[problem]),
            "wall_s": time.time() - t}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--e2e", action="store_true", help="also one AutoMLRunner run per problem")
    ap.add_argument("--only-e2e", action="store_true")
    args = ap.parse_args(argv)
    if args.e2e or args.only_e2e:
        import tempfile

        for problem in PROBLEMS:
            for reference in (False, True):
                with tempfile.TemporaryDirectory() as tmp:
                    print(run_e2e(problem, 0, args.trials, tmp, reference), flush=True)
        if args.only_e2e:
            return
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
