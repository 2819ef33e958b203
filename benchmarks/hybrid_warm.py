"""``hybrid`` phases warm-started or not, in-process (no Ray, no jobs).

``HybridSearcher`` is fed the benchmark objective (Hartmann-6 / Branin of the
objective skill, plain variant: the observed value is the true value) one
trial at a time, with phase plans from a scripted planner (NOT an LLM; the
``--llm`` benchmark's: a ``random`` phase over every parameter for 6 trials,
then ``bayesian`` phases of 7 trials over the 3 parameters with the largest
absolute rank correlation, chosen by
:func:`tao_automl.testing.llm_server.phase_policy`) answered by a
:class:`~tao_automl.testing.llm_server.ScriptedLLMServer` on 127.0.0.1.
Each ``HybridSearcher.warm_start`` mode is compared with whole-run
``bayesian`` (the registry's builder) and ``random`` at the same budget.

    python -m benchmarks.hybrid_warm --seeds 40 [--trials 20] [--functions hartmann6,branin]
        [--modes none,matching,all] [--width 3] [--json out.json]

Prints a Markdown table (median best true value [IQR] per problem and
algorithm; lower is better).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from typing import Any

MODES = ("none", "matching", "all")
METRIC = "loss"


WIDTH = 3  # parameters per bayesian phase (the --llm benchmark's planner); --width changes it


def bench_phase_policy(body: dict[str, Any]) -> str:
    """The ``--llm`` benchmark's scripted hybrid planner (not an LLM)."""
    from tao_automl.testing.llm_server import phase_policy, prompt_state

    state = prompt_state(body)
    names = [p["name"] for p in state.get("search_space") or []]
    if not state.get("phases"):
        return phase_policy(body, per_phase=6, width=len(names))
    return phase_policy(body, per_phase=7, width=min(WIDTH, len(names)))


def space(function: str) -> Any:
    """The objective skill's space: params.x1..xd on [0, 1], default 0.5."""
    from benchmarks.common import objectives_module
    from tao_automl.search.params import SearchParam
    from tao_automl.search.space import SearchSpace

    dims = objectives_module().DIMS[function]
    return SearchSpace(params=[SearchParam(f"params.x{i + 1}", "float", default=0.5, low=0.0, high=1.0)
                               for i in range(dims)])


def value_fn(function: str) -> Any:
    from benchmarks.common import objectives_module

    obj = objectives_module()
    dims = obj.DIMS[function]

    def f(values: dict[str, Any]) -> float:
        return float(obj.true_value(function, [values[f"params.x{i + 1}"] for i in range(dims)]))

    return f


def settings(seed: int, trials: int, **kw: Any) -> Any:
    from tao_automl.config.settings import parse_settings

    return parse_settings({"seed": seed, "max_recommendations": trials, "max_concurrent": 1, **kw})


def run_hybrid(function: str, seed: int, trials: int, mode: str, url: str) -> float:
    from tao_automl.algorithms.llm.hybrid import HybridSearcher

    s = settings(seed, trials, algorithm="hybrid", llm_endpoint=url, llm_model="scripted")
    sp, f = space(function), value_fn(function)
    sr = HybridSearcher(space=sp, metric=METRIC, mode="min", settings=s, budget=trials, brain=None)
    sr.warm_start = mode
    best = float("inf")
    for i in range(trials):
        cfg = sr.suggest(f"t{i}")
        if cfg is None or cfg == HybridSearcher.FINISHED:
            raise RuntimeError(f"hybrid stopped after {i} trials: {sr.failed or sr.stopped}")
        v = f(sp.decode(cfg))
        best = min(best, v)
        sr.on_trial_complete(f"t{i}", {METRIC: v})
    return best


def run_bayesian(function: str, seed: int, trials: int) -> float:
    from tao_automl.algorithms import BuildContext, get_algorithm

    sp, f = space(function), value_fn(function)
    ctx = BuildContext(param_space=sp.to_ray(), metric=METRIC, mode="min", settings=settings(seed, trials),
                       max_epochs=1, space=sp)
    alg = get_algorithm("bayesian").build(ctx).search_alg
    alg.set_search_properties(METRIC, "min", sp.to_ray())
    best = float("inf")
    for i in range(trials):
        v = f(sp.decode(alg.suggest(f"t{i}")))
        best = min(best, v)
        alg.on_trial_complete(f"t{i}", {METRIC: v})
    return best


def run_random(function: str, seed: int, trials: int) -> float:
    sp, f = space(function), value_fn(function)
    rng = random.Random(f"{seed}-random")
    return min(f(sp.decode(sp.sample(rng))) for _ in range(trials))


def _summary(xs: list[float]) -> dict[str, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return {"median": statistics.median(xs), "q1": q[0], "q3": q[2], "mean": statistics.fmean(xs), "n": len(xs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--functions", default="hartmann6,branin")
    ap.add_argument("--json", default=None)
    ap.add_argument("--modes", default=",".join(MODES), help="warm_start modes to run")
    ap.add_argument("--width", type=int, default=WIDTH, help="parameters per bayesian phase (diagnostic)")
    args = ap.parse_args(argv)
    globals()["WIDTH"] = args.width

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from tao_automl.testing.llm_server import ScriptedLLMServer

    out: dict[str, Any] = {"seeds": args.seeds, "trials": args.trials, "width": args.width,
                           "planner": "scripted (NOT an LLM)",
                           "results": {}}
    t0 = time.time()
    with ScriptedLLMServer(policy=bench_phase_policy) as srv:
        for fn in args.functions.split(","):
            modes = args.modes.split(",")
            res: dict[str, list[float]] = {f"hybrid (warm_start={m})": [] for m in modes}
            res["bayesian"], res["random"] = [], []
            for seed in range(args.seeds):
                for m in modes:
                    res[f"hybrid (warm_start={m})"].append(run_hybrid(fn, seed, args.trials, m, srv.base_url))
                res["bayesian"].append(run_bayesian(fn, seed, args.trials))
                res["random"].append(run_random(fn, seed, args.trials))
            out["results"][fn] = {k: {**_summary(v), "values": v} for k, v in res.items()}
    out["elapsed_s"] = round(time.time() - t0, 1)
    lines = [f"| problem | algorithm | median best [IQR] ({args.seeds} seeds, {args.trials} trials) | mean |",
             "|---|---|---|---|"]
    for fn, rows in out["results"].items():
        for name, r in rows.items():
            lines.append(f"| {fn} | {name} | {r['median']:.3f} [{r['q1']:.3f}, {r['q3']:.3f}] | {r['mean']:.3f} |")
    print("\n".join(lines))
    print(f"elapsed {out['elapsed_s']} s", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
