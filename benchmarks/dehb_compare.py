"""``python -m benchmarks.dehb_compare [--seeds 10] [--out bench-out]``: dehb
against asha (random and ``sampler: bayesian``), hyperband, bohb and
nvidia-tao-automl's dehb on the multi-fidelity Hartmann-6 of
:mod:`benchmarks.problems` (R = 9 epochs, reduction factor 3, min 1 epoch,
2 jobs at once, 180 epochs = 20 full trials), every run scored from its jobs'
epoch log by :func:`benchmarks.common.score_epoch_log` (the first 180 epoch
records; the headline is the true value of the best configuration observed at
full fidelity).  Our runs stop at the epoch budget the same way as in
``quality.py`` (dehb is also told ``epoch_budget=180``, so it only starts
brackets that fit); the peer runs in its own venv (``--full`` of
``python -m benchmarks`` installs it once; ``--install-peer`` here does too).

Per algorithm: median / IQR of the best true value, median epochs spent, wall
time, slots busy (ledger submit -> finish over 2 slots, whole run and while
all slots were full).  Also, in-process (no Ray, 40 seeds): dehb against
sequential random ASHA on the same observations at 180, 540 and 1800 epochs,
and the MF-Hartmann-3/6 check against the published DEHB 0.1.2 figures
(:mod:`benchmarks.mf_hartmann`).  Writes
``<out>/dehb/results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks import mf_hartmann, peer, quality
from benchmarks.common import LoadSampler, machine_info
from benchmarks.problems import Problem

OURS = (("dehb", None), ("asha", None), ("asha", "bayesian-sampler"), ("hyperband", None), ("bohb", None))


def _q(vals: list[float]) -> str:
    if not vals:
        return "-"
    if len(vals) < 4:
        return f"{statistics.median(vals):.3f}"
    q = statistics.quantiles(vals, n=4)
    return f"{statistics.median(vals):.3f} [{q[0]:.3f}, {q[2]:.3f}]"


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for label in dict.fromkeys(f"{r['driver']} {r['algorithm']}" for r in runs):
        rs = [r for r in runs if f"{r['driver']} {r['algorithm']}" == label]
        ok = [r for r in rs if r.get("ok") and r.get("incumbent_true") is not None]

        def med(key: str, pool: list[dict[str, Any]] = ok) -> float | None:
            v = [r[key] for r in pool if r.get(key) is not None]
            return statistics.median(v) if v else None

        rows.append({"label": label, "seeds": len(rs), "ok": len(ok),
                     "best": [r["incumbent_true"] for r in ok], "best_median": med("incumbent_true"),
                     "epochs_median": med("epochs"), "wall_median_s": med("wall_s"),
                     "slots_busy_median": med("slots_busy"), "slots_busy_full_median": med("slots_busy_full"),
                     "errors": [r.get("error") for r in rs if not r.get("ok")][:3]})
    return rows


def render(rows: list[dict[str, Any]], mfh: dict[str, Any], load: dict[str, Any], seeds: int,
           inproc: dict[int, Any] | None = None) -> str:
    f = lambda v, nd=2: "-" if v is None else f"{v:.{nd}f}"  # noqa: E731
    out = [f"## dehb on multi-fidelity Hartmann-6 (180 epochs, R = 9, eta 3, 2 slots, {seeds} seeds)", "",
           "| driver / algorithm | ok/seeds | median best true [IQR] | epochs | wall s | slots busy (run / full) |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['label']} | {r['ok']}/{r['seeds']} | {_q(r['best'])} | {f(r['epochs_median'], 0)} | "
                   f"{f(r['wall_median_s'], 1)} | {f(r['slots_busy_median'])} / {f(r['slots_busy_full_median'])} |")
    out += ["", f"Load (1-minute average, median / max while running): {load.get('load1_median')} / "
                f"{load.get('load1_max')} on {os.cpu_count()} cores.", ""]
    if inproc:
        out += ["In-process, same observations, sequential (no Ray), dehb against random ASHA by epoch budget:", ""]
        for b, r in inproc.items():
            out.append(f"- {b} epochs: " + "; ".join(f"{k} {v['median']:.3f} {v['quartiles']}" for k, v in r.items())
                       + f" ({next(iter(r.values()))['seeds']} seeds)")
        out.append("")
    if mfh:
        out += ["In-process DE core, 300 evaluations (job by job), MF-Hartmann of the DEHB benchmarks:", ""]
        for k, v in mfh.items():
            out.append(f"- {k}: median {v['median']:.3f}, mean {v['mean']:.3f} [{v['min']:.3f}, {v['max']:.3f}] over "
                       f"{v['seeds']} seeds; DEHB 0.1.2 published {v['published_dehb_0.1.2']}; optimum {v['optimum']}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.dehb_compare", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed+seeds-1")
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--install-peer", action="store_true")
    ap.add_argument("--only", default="", help="comma list of labels to run, e.g. dehb,asha")
    args = ap.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    out_dir = Path(args.out).resolve() / "dehb"
    work = out_dir / "runs"
    work.mkdir(parents=True, exist_ok=True)
    problem = Problem("hartmann6", "mf")
    load = LoadSampler().start()
    t0 = time.time()
    mfh = mf_hartmann.main(["--seeds", "10"])
    inproc = {b: inprocess(40, b) for b in (180, 540, 1800)}
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    runs: list[dict[str, Any]] = []

    def write() -> str:  # after every run, so an interrupted comparison keeps what it measured
        rows = summarize(runs)
        md = render(rows, mfh, load.window(t0, time.time()), args.seeds, inproc)
        (out_dir / "results.json").write_text(json.dumps({"machine": machine_info(), "rows": rows, "runs": runs,
                                                         "mf_hartmann": mfh, "inprocess": inproc},
                                                        indent=1, default=str))
        (out_dir / "results.md").write_text(md)
        return md

    from tao_automl.execution.ray_session import RaySession

    with RaySession(None, 8):
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for algo, variant in OURS:
                label = f"{algo} ({variant})" if variant else algo
                if only and label not in only and algo not in only:
                    continue
                r = quality.run_ours(problem, algo, seed, work, variant=variant)
                runs.append(r)
                write()
                print(f"[{time.strftime('%H:%M:%S')}] {label} seed {seed}: best true {r.get('incumbent_true')}, "
                      f"{r.get('epochs')} epochs, {r.get('wall_s', 0):.1f} s, busy {r.get('slots_busy')}", flush=True)
    if not args.skip_peer:
        info = peer.ensure_peer(Path(args.out).resolve(), allow_install=args.install_peer)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            r = peer.run_peer(info, problem, "dehb", seed, work)
            runs.append(r)
            write()
            print(f"[{time.strftime('%H:%M:%S')}] peer dehb seed {seed}: {r.get('incumbent_true')} "
                  f"{r.get('epochs')} epochs {r.get('error') or ''}", flush=True)
    md = write()
    load.stop()
    print("\n" + md)
    return 0



# ------------------------------------------------------------------ in-process (many seeds, no Ray)
def _asha_inprocess(f: Any, dims: int, seed: int, budget: int, r_min: int = 1, eta: int = 3,
                    r_max: int = 9) -> list[tuple[list[float], int, float]]:
    """Sequential ASHA (Li et al. 2020) with random sampling: promote the
    first config that is in the top 1/eta of its rung and not yet promoted
    (trials continue: a promotion costs only the extra epochs), else sample."""
    import random

    rng = random.Random(seed)
    rungs: list[list[tuple[int, float]]] = []
    budgets = []
    r = r_min
    while r <= r_max:
        budgets.append(r)
        rungs.append([])
        r *= eta
    promoted: list[set[int]] = [set() for _ in budgets]
    configs: list[list[float]] = []
    evals, spent = [], 0
    while spent < budget:
        job = None
        for k in range(len(budgets) - 2, -1, -1):
            ranked = sorted(rungs[k], key=lambda t: t[1])[: len(rungs[k]) // eta]
            cand = [c for c, _ in ranked if c not in promoted[k]]
            if cand:
                job = (cand[0], k + 1)
                promoted[k].add(cand[0])
                break
        if job is None:
            configs.append([rng.random() for _ in range(dims)])
            job = (len(configs) - 1, 0)
        c, k = job
        cost = budgets[k] - (budgets[k - 1] if k > 0 else 0)
        spent += cost
        y = f(configs[c], budgets[k])
        rungs[k].append((c, y))
        evals.append((configs[c], budgets[k], y))
    return evals


def inprocess(seeds: int = 60, budget: int | None = None) -> dict[str, Any]:
    """dehb (our DE core) against sequential random ASHA on the same
    multi-fidelity Hartmann-6 observations (default 180 epochs), in-process."""
    from benchmarks.common import objectives_module
    from benchmarks.problems import MF_BUDGET_EPOCHS, MF_EPOCHS, observe_fn
    from tao_automl.algorithms._de import FINISHED, DEHBCore

    problem = Problem("hartmann6", "mf")
    obj = objectives_module()

    def score(evals: list[tuple[list[float], int, float]]) -> float:
        full = [e for e in evals if e[1] >= MF_EPOCHS]
        best = min(full, key=lambda e: e[2])
        return obj.true_value("hartmann6", list(best[0]))

    out: dict[str, list[float]] = {"dehb": [], "asha (random)": []}
    for seed in range(seeds):
        f = observe_fn(problem, seed)
        core = DEHBCore(6, min_epochs=1, max_epochs=MF_EPOCHS, eta=3, seed=seed, max_jobs=10_000,
                        epoch_budget=budget or MF_BUDGET_EPOCHS, population_size=4)
        evals = []
        while True:
            job = core.ask()
            if job is None or job == FINISHED:
                break
            y = f(list(job.vector), job.epochs)
            evals.append((list(job.vector), job.epochs, y))
            core.tell(job.id, y)
        out["dehb"].append(score(evals))
        out["asha (random)"].append(score(_asha_inprocess(f, 6, seed, budget or MF_BUDGET_EPOCHS)))
    return {k: {"median": round(statistics.median(v), 3),
                "quartiles": [round(q, 3) for q in statistics.quantiles(v, n=4)], "seeds": seeds,
                "budget_epochs": budget or MF_BUDGET_EPOCHS} for k, v in out.items()}


if __name__ == "__main__":
    raise SystemExit(main())
