"""Search quality: every registry algorithm through ``AutoMLRunner``, plain
random search, Optuna driven directly, all on the objective skill's jobs.

Every run is scored from the epoch log its jobs append to (see
:func:`benchmarks.common.score_epoch_log`), so all drivers are measured by
the same rule and the same budget (20 full trials; 20 x R epochs for the
multi-fidelity form).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import SKILL_DIR, read_epoch_log, score_epoch_log
from benchmarks.problems import MF_EPOCHS, MF_ETA, SEQUENTIAL_TRIALS, Problem, observe_fn

log = logging.getLogger("benchmarks")

GRID_POINTS = 4  # 4 x 4 = 16 <= 20 trials on Branin; 2^6 = 64 > 20 on Hartmann-6
MF_CONCURRENCY = 2
MF_SAMPLE_CAP = 120  # trials offered to asha/hyperband/bohb; the epoch budget ends the run first


def _result(driver: str, algorithm: str, problem: Problem, seed: int, **kw: Any) -> dict[str, Any]:
    return {"driver": driver, "algorithm": algorithm, "problem": problem.name, "seed": seed, **kw}


class _BudgetStop:
    """on_result hook: once the jobs have spent the epoch budget, stop the run
    the way a user would (SIGINT -> the runner's graceful stop)."""

    def __init__(self, epoch_log: Path, budget: int) -> None:
        self.epoch_log = epoch_log
        self.budget = budget
        self.fired = False

    def __call__(self, rec: Any, metric_value: float | None = None, status: str | None = None) -> None:
        if self.fired:
            return
        try:
            with open(self.epoch_log) as fh:
                spent = sum(1 for _ in fh)
        except FileNotFoundError:
            return
        if spent >= self.budget:
            self.fired = True
            os.kill(os.getpid(), signal.SIGINT)


def tpe_before_searcher(seed: int) -> Any:
    """The 'bayesian' searcher before the GP sampler: Optuna multivariate TPE
    exactly as ``_build_bayesian`` built it (20 trials: 5 start-up trials)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=5)
    return OptunaSearch(metric="val_loss", mode="min", sampler=sampler)


@contextlib.contextmanager
def _no_plots() -> Iterator[None]:
    """Quality runs skip the runner's after-run plots/WandB summary (seconds of
    matplotlib per run that say nothing about search quality); the overhead
    runs keep them."""
    import tao_automl.execution.run as run_mod

    saved = run_mod.after_run
    run_mod.after_run = lambda ws, result: None
    try:
        yield
    finally:
        run_mod.after_run = saved


def run_ours(problem: Problem, algorithm: str, seed: int, workdir: Path, *,
             variant: str | None = None, extra_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run of ``algorithm`` through tao_automl's AutoMLRunner
    (``variant='tpe-before'``: bayesian with the previous TPE searcher;
    ``variant='bayesian-sampler'``: asha/hyperband with ``sampler: bayesian``)."""
    from tao_automl.runner import AutoMLRunner

    label = f"{algorithm} ({variant})" if variant else algorithm
    run_dir = workdir / f"ours-{algorithm}{'-' + variant if variant else ''}-{problem.name}-s{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # the epoch log appends
    run_dir.mkdir(parents=True)
    epoch_log = run_dir / "epochs.jsonl"
    settings: dict[str, Any] = {"seed": seed, "baseline": False, "final_eval": False, "quiet": True,
                                "fail_fast_after": 0}
    if problem.multi_fidelity:
        settings.update(max_epochs=MF_EPOCHS, min_epochs=1, reduction_factor=MF_ETA,
                        max_concurrent=MF_CONCURRENCY, max_recommendations=MF_SAMPLE_CAP)
        if algorithm == "pbt":
            settings.update(population_size=SEQUENTIAL_TRIALS, perturbation_interval=MF_ETA)
        if algorithm == "dehb":  # dehb plans whole brackets inside the epoch budget itself
            settings.update(epoch_budget=problem.budget_epochs)
    else:
        settings.update(max_recommendations=SEQUENTIAL_TRIALS, max_concurrent=1)
        if algorithm == "grid":
            settings["grid_points"] = GRID_POINTS
    settings.update(extra_settings or {})  # e.g. the llm endpoint (benchmarks.llm_bench)
    stopper = _BudgetStop(epoch_log, problem.budget_epochs)
    runner = AutoMLRunner(str(SKILL_DIR), workspace_dir=str(run_dir / "ws"))
    searcher = tpe_before_searcher(seed) if variant == "tpe-before" else None
    if variant == "bayesian-sampler":  # asha/hyperband drawing with the GP sampler
        settings["sampler"] = "bayesian"
    t0 = time.perf_counter()
    try:
        with _no_plots():
            res = runner.run(
                automl_algorithm=algorithm, automl_settings=settings,
                automl_hyperparameters=problem.hyperparameters,
                spec_overrides=problem.spec_overrides(seed),
                on_result=stopper if problem.multi_fidelity else None,
                searcher=searcher,
                env={"BENCH_EPOCH_LOG": str(epoch_log)},
            )
    except Exception as exc:  # recorded, never turned into a number
        return _result("tao_automl", label, problem, seed, ok=False,
                       error=f"{type(exc).__name__}: {str(exc)[:500]}", wall_s=time.perf_counter() - t0)
    wall = time.perf_counter() - t0
    score = score_epoch_log(read_epoch_log(epoch_log), budget_epochs=problem.budget_epochs,
                            full_epoch=problem.full_epoch)
    prog = res.get("progress") or {}
    from benchmarks.overhead import _ledger_times, busy_fraction, full_slots_busy

    spans = _ledger_times(res["workspace"])
    slots = settings["max_concurrent"]
    busy = {"slots_busy": busy_fraction(spans, slots).get("busy_fraction"),
            "slots_busy_full": full_slots_busy(spans, slots)} if spans else {}
    return _result("tao_automl", label, problem, seed, ok=True, wall_s=wall, **score,
                   trials=prog.get("total"), failed=prog.get("failed"),
                   stopped_on_budget=stopper.fired, **busy)


# ------------------------------------------------------------------ plain random
def run_plain_random(problem: Problem, seed: int) -> dict[str, Any]:
    """20 uniform points evaluated in-process (no orchestration at all)."""
    rng = random.Random(10_000 + seed)
    f = observe_fn(problem, seed)
    t0 = time.perf_counter()
    recs = []
    for i in range(SEQUENTIAL_TRIALS):
        u = [rng.random() for _ in range(problem.dims)]
        epoch = problem.full_epoch
        from benchmarks.common import objectives_module

        recs.append({"t": float(i), "u": u, "epoch": epoch, "val_loss": f(u, epoch),
                     "true_value": objectives_module().true_value(problem.function, u)})
    score = score_epoch_log(recs, budget_epochs=None, full_epoch=problem.full_epoch)
    # the multi-fidelity form at full fidelity costs R epochs per trial: same budget
    score["epochs"] = SEQUENTIAL_TRIALS * problem.full_epoch
    return _result("plain", "random", problem, seed, ok=True, wall_s=time.perf_counter() - t0, **score)


# ------------------------------------------------------------------ Optuna direct
def _spec_for(problem: Problem, seed: int, u: list[float], results_dir: Path) -> dict[str, Any]:
    import yaml

    spec = yaml.safe_load((SKILL_DIR / "references" / "spec_template_train.yaml").read_text())
    for key, value in problem.spec_overrides(seed).items():
        node = spec
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    for i, x in enumerate(u):
        spec["params"][f"x{i + 1}"] = x
    spec["results_dir"] = str(results_dir)
    return spec


def run_optuna(problem: Problem, seed: int, workdir: Path) -> dict[str, Any]:
    """Optuna's TPE sampler (defaults) driving the same job as a subprocess;
    HyperbandPruner on the multi-fidelity form."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_dir = workdir / f"optuna-tpe-{problem.name}-s{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # the epoch log appends
    run_dir.mkdir(parents=True)
    epoch_log = run_dir / "epochs.jsonl"
    env = {**os.environ, "BENCH_EPOCH_LOG": str(epoch_log)}
    script = SKILL_DIR / "scripts" / "train.py"
    pruner = (optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MF_EPOCHS, reduction_factor=MF_ETA)
              if problem.multi_fidelity else optuna.pruners.NopPruner())
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=pruner)

    def objective(trial: optuna.Trial) -> float:
        u = [trial.suggest_float(f"x{i + 1}", 0.0, 1.0) for i in range(problem.dims)]
        out = run_dir / f"t{trial.number}"
        out.mkdir(exist_ok=True)
        spec_path = out / "spec.json"
        spec_path.write_text(json.dumps(_spec_for(problem, seed, u, out)))
        proc = subprocess.Popen([sys.executable, str(script), "--config", str(spec_path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        value = None
        try:
            for line in proc.stdout:
                if not line.startswith("[tao-automl-metric]"):
                    continue
                rec = json.loads(line.split(" ", 1)[1])
                value = float(rec["val_loss"])
                trial.report(value, int(rec["epoch"]))
                if trial.should_prune():
                    raise optuna.TrialPruned()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if value is None:
            raise RuntimeError(f"job wrote no metric (exit {proc.returncode})")
        return value

    def budget(study: optuna.Study, trial: Any) -> None:
        spent = len(read_epoch_log(epoch_log))
        if problem.multi_fidelity and spent >= problem.budget_epochs:
            study.stop()

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=None if problem.multi_fidelity else SEQUENTIAL_TRIALS,
                       callbacks=[budget], catch=(RuntimeError,))
    wall = time.perf_counter() - t0
    score = score_epoch_log(read_epoch_log(epoch_log), budget_epochs=problem.budget_epochs,
                            full_epoch=problem.full_epoch)
    return _result("optuna", "tpe+hyperband_pruner" if problem.multi_fidelity else "tpe", problem, seed,
                   ok=True, wall_s=wall, trials=len(study.trials), **score)
