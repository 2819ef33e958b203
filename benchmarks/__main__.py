"""``python -m benchmarks --quick|--full [--out bench-out]``.

Sections, in order: start-up costs (``import tao_automl``, Ray), search
quality (every registry algorithm through AutoMLRunner, plain random,
Optuna direct, NVIDIA's nvidia-tao-automl), overhead and concurrency
(2-second sleep jobs at max_concurrent 1/4/8), scale (1,000 no-op trials,
--full only).  Prints a table at the end and writes ``results.json`` and
``results.md`` under ``<out>/<mode>/``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from benchmarks import overhead, peer, quality, report, startup
from benchmarks.common import LoadSampler, machine_info, objectives_module, read_epoch_log
from benchmarks.problems import Problem

SEQUENTIAL = ("bayesian", "random", "grid")
MULTI_FIDELITY = ("asha", "hyperband", "bohb", "dehb", "pbt")
PEER_SHARED = ("bayesian", "hyperband", "asha", "bohb", "dehb", "pbt")  # algorithms both have


def plan(mode: str) -> dict[str, Any]:
    """What each mode runs (sized for a shared 2-core machine: quick < 5 min,
    full < 30 min)."""
    P = Problem
    if mode == "quick":
        seeds = [0, 1]
        plain = [P("branin", "plain"), P("hartmann6", "plain")]
        return {
            "seeds": seeds,
            "ours": [(p, a, s, None) for p in plain for a in ("bayesian", "random") for s in seeds]
            + [(P("hartmann6", "mf"), "asha", 0, None)],
            "optuna": [(p, s) for p in plain for s in seeds],
            "plain_random": [(P(f, v), s) for f in ("branin", "hartmann6") for v in ("plain", "mf")
                             for s in range(20)],
            "peer": [(P("branin", "plain"), "bayesian", 0)],
            "peer_default_poll": False, "peer_install": False,
            "concurrency": [(4, 1), (8, 4), (16, 8)], "peer_overhead_n": 4,
            "scale": None, "breakdown": (8, 4, 1),
        }
    seeds = [0, 1, 2, 3, 4]
    plain = [P("branin", "plain"), P("hartmann6", "plain")]
    noisy = [P("hartmann6", "noisy")]
    mf = [P("hartmann6", "mf")]
    # bayesian gets 10 seeds: its median carries the targets
    ours = [(p, "bayesian", s, None) for p in plain + noisy for s in range(10)]
    ours += [(p, "random", s, None) for p in plain + noisy for s in seeds]
    ours += [(p, "bayesian", s, "tpe-before") for p in plain for s in seeds[:3]]
    ours += [(p, "grid", 0, None) for p in plain]  # deterministic: one run each
    ours += [(p, a, s, None) for p in mf for a in MULTI_FIDELITY for s in seeds]
    ours += [(p, "asha", s, "bayesian-sampler") for p in mf for s in seeds]
    return {
        "seeds": seeds, "ours": ours,
        "optuna": [(p, s) for p in plain + noisy + mf for s in seeds],
        "plain_random": [(p, s) for p in plain + noisy + mf for s in range(20)],
        "peer": [(p, "bayesian", s) for p in plain for s in seeds[:3]]
        + [(p, a, s) for p in mf for a in MULTI_FIDELITY for s in seeds[:2]],
        "peer_default_poll": True, "peer_install": True,
        "concurrency": [(10, 1), (24, 4), (48, 8)], "peer_overhead_n": 8,
        "scale": (1000, 8), "breakdown": (32, 4, 3),
    }


def _quiet() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("ray", "optuna", "tao_automl", "filelock"):
        logging.getLogger(name).setLevel(logging.ERROR)


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Lane(threading.Thread):
    """Runs the peer and Optuna-direct runs beside our own (they are
    subprocess-bound); results land in ``self.runs``."""

    def __init__(self, jobs: list[tuple[str, Any]]) -> None:
        super().__init__(daemon=True, name="peer-lane")
        self.jobs = jobs
        self.runs: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}

    def run(self) -> None:
        for label, fn in self.jobs:
            try:
                out = fn()
            except Exception as exc:  # never lose the whole section
                out = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "label": label,
                       "traceback": traceback.format_exc()[-2000:]}
            if isinstance(out, dict) and out.get("_extra"):
                self.extra[out["_extra"]] = out
            else:
                self.runs.append(out)


def _peer_sleep_overhead(info: dict[str, Any], n: int, poll_s: float, workdir: Path, tag: str) -> dict[str, Any]:
    """The peer on N 2-second sleep jobs (it runs one job at a time)."""
    p = Problem("branin", "plain")
    r = peer.run_peer(info, p, "bayesian", 0, workdir / tag, poll_s=poll_s, trials=n, budget_epochs=None,
                      timeout_s=max(120.0, n * (overhead.SLEEP_S + poll_s + 5) + 60),
                      extra_overrides={"train.epoch_sleep_s": overhead.SLEEP_S})
    out = {"_extra": tag, "driver": f"nvidia-tao-automl (poll {poll_s:g} s)", "n": n, "concurrency": 1,
           "ok": r.get("ok", False)}
    if not r.get("ok"):
        out["error"] = r.get("error")
        return out
    wall = r.get("run_s") or r["wall_s"]
    ideal = n * overhead.SLEEP_S
    recs = read_epoch_log(workdir / tag / f"peer-bayesian-{p.name}-s0-p{poll_s:g}" / "epochs.jsonl")
    spans = [(x["t"] - overhead.SLEEP_S, x["t"]) for x in recs]
    out.update(wall_s=wall, ideal_s=ideal, overhead_per_trial_s=(wall - ideal) / n, trials=r.get("trials"),
               **overhead.busy_fraction(spans, 1))
    gaps = overhead.dispatch_gaps(spans)
    out["dispatch_gap_median_s"] = sorted(gaps)[len(gaps) // 2] if gaps else None
    if spans:
        out["overhead_per_trial_steady_s"] = (max(e for _, e in spans) - spans[0][0] - ideal) / n
    return out


def breakdown(cfg: dict[str, Any], work: Path) -> dict[str, Any]:
    """Start -> first job, jobs, last job -> return of cold runs (fresh
    interpreters), the quickstart's wall time and the process tree's memory."""
    n, c, repeats = cfg["breakdown"]
    cold, quick = [], []
    for _ in range(repeats):
        cold.append(startup.sleep_run(startup.HERE.parent, n, c, overhead.SLEEP_S, work))
        quick.append(startup.quickstart_run(startup.HERE.parent, work))
        r = cold[-1]
        say(f"breakdown N={n} c={c}: " + (f"start->first job {r['start_to_first_job_s']:.2f} s, jobs "
            f"{r['jobs_s']:.1f} s, last job->return {r['last_job_to_return_s']:.2f} s, wall/ideal "
            f"{r['wall_over_ideal']:.2f}; quickstart {quick[-1].get('wall_s', float('nan')):.1f} s"
            if r.get("ok") else r.get("error")))
    return {"n": n, "concurrency": c, "runs": cold, "quickstart": quick,
            "median": startup.summarize(cold), "quickstart_median": startup.summarize(quick)}


def checks(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, stated as pass/miss lines."""
    med = {(r["problem"], r["driver"], r["algorithm"]): r.get("best_median") for r in rows if r["ok"]}
    seeds = {(r["problem"], r["driver"], r["algorithm"]): r["ok"] for r in rows}
    out = []
    for prob, target in (("branin-plain", 1.0), ("hartmann6-plain", -2.8)):
        v = med.get((prob, "tao_automl", "bayesian"))
        if v is not None:
            n = seeds[(prob, "tao_automl", "bayesian")]
            out.append(f"{'PASS' if v <= target else 'MISS'}: bayesian median best on {prob} = {v:.3f} "
                       f"over {n} seeds (target <= {target}{'; too few seeds to judge' if n < 5 else ''})")
    for prob in sorted({r["problem"] for r in rows}):
        base = med.get((prob, "tao_automl", "random"))
        base_name = "tao_automl random"
        if prob.endswith("-mf"):
            cands = [med.get((prob, "tao_automl", a)) for a in ("asha", "hyperband")]
            cands = [c for c in cands if c is not None]
            base = min(cands) if cands else None
            base_name = "the better of asha/hyperband (random sampling, same epochs)"
        plain = med.get((prob, "plain", "random"))
        for algo in ("bayesian", "bohb", "dehb", "asha (bayesian-sampler)"):
            v = med.get((prob, "tao_automl", algo))
            if v is None:
                continue
            for name, b in ((base_name, base), ("plain random (20 full evaluations)", plain)):
                if b is None:
                    continue
                out.append(f"{'PASS' if v < b else 'MISS'}: {algo} on {prob}: {v:.3f} vs {name} {b:.3f}")
    return out


def _llm_main(args: argparse.Namespace, ap: argparse.ArgumentParser) -> int:
    from benchmarks import llm_bench

    if args.llm_endpoint and not args.llm_model:
        ap.error("--llm-endpoint needs --llm-model")
    algorithms = tuple(a.strip() for a in args.llm_algorithms.split(",") if a.strip())
    unknown = [a for a in algorithms if a not in llm_bench.ALGORITHMS]
    if unknown or not algorithms:
        ap.error(f"--llm-algorithms {args.llm_algorithms!r}: expected a comma list of "
                 f"{', '.join(llm_bench.ALGORITHMS)}")
    _quiet()
    out = Path(args.out).resolve() / "llm"
    payload = llm_bench.run(out_dir=out, endpoint=args.llm_endpoint, model=args.llm_model,
                            api_key_env=args.llm_api_key_env,
                            replay=Path(args.llm_replay).resolve() if args.llm_replay else None,
                            seeds=list(range(args.llm_seeds)), say=say, algorithms=algorithms)
    print(llm_bench.table(payload))
    return 1 if payload["replay_mismatches"] else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="reduced set, < 5 minutes (default)")
    g.add_argument("--full", action="store_true", help="everything, < 30 minutes on 2 cores")
    ap.add_argument("--out", default="bench-out", help="output folder (default bench-out/)")
    ap.add_argument("--skip", default="",
                    help="comma list of sections to skip: startup,breakdown,quality,peer,overhead,scale")
    ap.add_argument("--only", default="", help="comma list of the only sections to run (e.g. breakdown)")
    llm = ap.add_argument_group("LLM-guided search (runs only this comparison; see benchmarks/README.md)")
    llm.add_argument("--llm", action="store_true",
                     help="compare llm, hybrid and autoresearch with random, bayesian and grid (without "
                          "--llm-endpoint: scripted policies, NOT an LLM)")
    llm.add_argument("--llm-endpoint", metavar="URL", help="OpenAI-compatible base URL (implies --llm)")
    llm.add_argument("--llm-model", metavar="M", help="model name at that endpoint")
    llm.add_argument("--llm-api-key-env", metavar="VAR", help="environment variable holding the API key")
    llm.add_argument("--llm-replay", metavar="RECORDING", help="replay a recording.jsonl offline (implies --llm)")
    llm.add_argument("--llm-seeds", type=int, default=5, help="seeds per problem and algorithm (default 5)")
    llm.add_argument("--llm-algorithms", default="llm,hybrid,autoresearch,random,bayesian,grid", metavar="A,B",
                     help="comma list of the algorithms to run (default: all six)")
    args = ap.parse_args(argv)
    if args.llm or args.llm_endpoint or args.llm_replay:
        return _llm_main(args, ap)
    mode = "full" if args.full else "quick"
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.only:
        only = {s.strip() for s in args.only.split(",") if s.strip()}
        skip |= {"startup", "breakdown", "quality", "peer", "overhead", "scale"} - only
    _quiet()
    out_dir = Path(args.out).resolve() / mode
    work = out_dir / "runs"
    shutil.rmtree(work, ignore_errors=True)  # epoch logs append: never mix two runs
    work.mkdir(parents=True, exist_ok=True)
    cfg = plan(mode)
    load = LoadSampler().start()
    t_start = time.time()
    payload: dict[str, Any] = {"mode": mode, "machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    sections: dict[str, tuple[float, float]] = {}

    say(f"mode={mode}; output {out_dir}")
    if "breakdown" not in skip:  # fresh interpreters, cold Ray: before anything here starts Ray
        t = time.time()
        payload["breakdown"] = breakdown(cfg, work)
        sections["breakdown"] = (t, time.time())
    if "startup" not in skip:
        t = time.time()
        payload["import"] = overhead.import_time(3 if mode == "full" else 1)
        payload["ray"] = overhead.ray_startup()
        sections["startup"] = (t, time.time())
        say(f"import tao_automl {payload['import']['import_tao_automl_s']:.3f} s; ray init "
            f"{payload['ray']['ray_init_s']:.2f} s")

    # The peer runs (and Optuna direct) beside our runs, in a lane of their own.
    lane_jobs: list[tuple[str, Any]] = []
    peer_info: dict[str, Any] = {"ok": False, "error": "skipped (--skip peer)"}
    if "peer" not in skip and "quality" not in skip:
        t = time.time()
        peer_info = peer.ensure_peer(Path(args.out).resolve(), allow_install=cfg["peer_install"])
        sections["peer_install"] = (t, time.time())
        say(f"peer: {peer_info.get('version') or peer_info.get('error')}")
    payload["peer"] = {**peer_info, "default_poll_s": peer.PEER_DEFAULT_POLL_S, "poll_s_used": peer.PEER_POLL_S}
    if "quality" not in skip:
        for p, s in cfg["optuna"]:
            lane_jobs.append((f"optuna {p.name} {s}", lambda p=p, s=s: quality.run_optuna(p, s, work)))
        for p, a, s in cfg["peer"]:
            lane_jobs.append((f"peer {a} {p.name} {s}", lambda p=p, a=a, s=s: peer.run_peer(peer_info, p, a, s, work)))
    if "overhead" not in skip and peer_info.get("ok"):
        n = cfg["peer_overhead_n"]
        lane_jobs.append(("peer overhead", lambda: _peer_sleep_overhead(peer_info, n, peer.PEER_POLL_S, work,
                                                                       "peer-sleep-fast")))
        if cfg["peer_default_poll"]:
            lane_jobs.append(("peer default poll", lambda: _peer_sleep_overhead(
                peer_info, 2, float(peer.PEER_DEFAULT_POLL_S), work, "peer-sleep-default")))
    lane = Lane(lane_jobs)

    from tao_automl.execution.ray_session import RaySession

    runs: list[dict[str, Any]] = []
    with RaySession(None, 8):  # one local cluster for every run (its start-up is reported above)
        if "quality" not in skip:
            t = time.time()
            lane.start()
            for p, s in cfg["plain_random"]:
                runs.append(quality.run_plain_random(p, s))
            for i, (p, a, s, variant) in enumerate(cfg["ours"]):
                r = quality.run_ours(p, a, s, work, variant=variant)
                runs.append(r)
                ok = r.get("ok") and r.get("incumbent_true") is not None
                what = (f"best true {r['incumbent_true']:.3f}, {r['epochs']} epochs, {r['wall_s']:.1f} s"
                        if ok else r.get("error"))
                say(f"[{i + 1}/{len(cfg['ours'])}] tao_automl {r['algorithm']} {p.name} seed {s}: {what}")
            say(f"waiting for the peer/Optuna lane ({len(lane_jobs)} runs)")
            lane.join()
            runs.extend(lane.runs)
            sections["quality"] = (t, time.time())
        conc: list[dict[str, Any]] = []
        if "overhead" not in skip:
            t_over = time.time()
            if "quality" in skip and lane_jobs:  # the peer's overhead runs still come from the lane
                lane.start()
                lane.join()
            payload["bare_job"] = overhead.bare_job_s(overhead.SLEEP_S, 5 if mode == "full" else 3)
            for n, c in cfg["concurrency"]:
                t = time.time()
                r = overhead.concurrency_run(n, c, work)
                r["load"] = load.window(t, time.time())
                conc.append(r)
                say(f"sleep jobs N={n} c={c}: wall {r['wall_s']:.1f} s (ideal {r['ideal_s']:.1f}), "
                    f"busy {r['busy_fraction']:.2f}")
            for tag in ("peer-sleep-fast", "peer-sleep-default"):
                if tag in lane.extra:
                    conc.append(lane.extra[tag])
            sections["overhead"] = (t_over, time.time())
        payload["concurrency"] = conc
        if cfg["scale"] and "scale" not in skip:
            t = time.time()
            n, c = cfg["scale"]
            say(f"scale: {n} no-op trials at max_concurrent {c}")
            payload["scale"] = overhead.scale_run(n, c, work)
            payload["scale"]["load"] = load.window(t, time.time())
            sections["scale"] = (t, time.time())
    load.stop()
    payload["runs"] = runs
    rows = report.quality_rows(runs)
    payload["quality"] = rows
    payload["checks"] = checks(rows)
    payload["sections"] = {k: {"seconds": round(b - a, 1), **load.window(a, b)} for k, (a, b) in sections.items()}
    payload["total_s"] = time.time() - t_start
    payload["loadavg_at_end"] = list(os.getloadavg())
    md = render(payload)
    j, m = report.write(out_dir, payload, md)
    print("\n" + md, flush=True)
    say(f"wrote {j} and {m} in {payload['total_s']:.0f} s")
    return 0


def render(payload: dict[str, Any]) -> str:
    mi = payload["machine"]
    lines = [f"# tao_automl benchmarks ({payload['mode']}, {payload['started']})", "",
             f"Machine: {mi['nproc']} cores, {mi['cpu_model']}, {mi['ram_gib']} GiB RAM, Python {mi['python']}, "
             f"ray {mi['ray']}, optuna {mi['optuna']}, commit {mi['git_commit']}. "
             f"Load average at start {mi['loadavg_at_start'][0]:.1f}, at end {payload['loadavg_at_end'][0]:.1f} "
             f"(other people's test suites share this machine).", ""]
    bd = payload.get("breakdown")
    if bd:
        m, q = bd["median"], bd["quickstart_median"]

        def g(d: dict[str, Any], k: str, nd: int = 2) -> str:
            return report._f(d.get(k), nd)

        lines += ["## Fixed cost of a run (cold Ray, fresh interpreter)", "",
                  f"{bd['n']} jobs of {overhead.SLEEP_S:g} s at max_concurrent {bd['concurrency']}, median of "
                  f"{len(bd['runs'])}: `run()` -> first job {g(m, 'start_to_first_job_s')} s, jobs "
                  f"{g(m, 'jobs_s', 1)} s, last job -> `run()` returns {g(m, 'last_job_to_return_s')} s, wall/ideal "
                  f"{g(m, 'wall_over_ideal')}; returned -> interpreter exited {g(m, 'return_to_exit_s')} s. "
                  f"Quickstart (`python examples/quickstart.py`): {g(q, 'wall_s', 1)} s, process tree peak RSS "
                  f"{g(q, 'peak_rss_mib', 0)} MiB / PSS {g(q, 'peak_pss_mib', 0)} MiB (load1 "
                  f"{g(m, 'load1', 1)}).", ""]
    imp, ray = payload.get("import", {}), payload.get("ray", {})
    if imp or ray:
        lines += ["## Start-up", "",
                  f"- `import tao_automl`: {imp.get('import_tao_automl_s', 0):.3f} s; `from tao_automl.runner import "
                  f"AutoMLRunner` adds {imp.get('import_runner_extra_s', 0):.3f} s; heavy modules loaded by the import: "
                  f"{imp.get('heavy_modules_loaded') or 'none'}",
                  f"- Ray: import ray + tune {ray.get('import_ray_tune_s', 0):.2f} s, `ray.init` (RaySession) "
                  f"{ray.get('ray_init_s', 0):.2f} s, shutdown {ray.get('ray_shutdown_s', 0):.2f} s (paid once per run)", ""]
    pe = payload.get("peer", {})
    lines += ["## Search quality", "",
              f"Peer: nvidia-tao-automl {pe.get('version') or '(not run: ' + str(pe.get('error')) + ')'}, "
              f"VirtualEnvSDK, poll interval {pe.get('poll_s_used')} s (its default is {pe.get('default_poll_s')} s).",
              "", report.quality_markdown(payload.get("quality", []),
                                          objectives_module().OPTIMA), ""]
    if payload.get("checks"):
        lines += ["Targets:", ""] + [f"- {c}" for c in payload["checks"]] + [""]
    if payload.get("concurrency"):
        lines += ["## Overhead and concurrency (2 s sleep jobs)", "", report.overhead_markdown(payload["concurrency"]), ""]
        lines += report.overhead_split(payload["concurrency"], payload.get("bare_job"))
    sc = payload.get("scale")
    if sc:
        lines += ["## Scale", "",
                  f"{sc['n']} no-op trials, random, max_concurrent {sc['concurrency']}: wall {sc['wall_s']:.0f} s, "
                  f"{sc['succeeded']} succeeded; throughput first/last {sc['window']} trials "
                  f"{report._f(sc['trials_per_s_first'], 2)} / {report._f(sc['trials_per_s_last'], 2)} trials/s; "
                  f"finish->next submit first/last {report._f(sc['dispatch_gap_first_s'])} / "
                  f"{report._f(sc['dispatch_gap_last_s'])} s; driver RSS before {report._f(sc['rss_mib_before'], 0)} MiB, "
                  f"first sample {report._f(sc['rss_mib_first_sample'], 0)}, peak {report._f(sc['rss_mib_peak'], 0)}, "
                  f"end {report._f(sc['rss_mib_end'], 0)} MiB (load1 median {sc['load']['load1_median']}).", ""]
    secs = payload.get("sections", {})
    if secs:
        lines += ["Sections: " + "; ".join(f"{k} {v['seconds']:.0f} s (load1 median {v['load1_median']})"
                                           for k, v in secs.items()) + f". Total {payload['total_s']:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
