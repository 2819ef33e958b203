"""Tables: printed at the end, and saved as JSON and Markdown."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.common import summarize


def _f(v: Any, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def quality_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (problem, driver, algorithm, poll): median/IQR/min/max of the
    incumbent's true value, plus epochs used, trials and wall time."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[(r["problem"], r["driver"], r["algorithm"], r.get("poll_s"))].append(r)
    rows = []
    for (problem, driver, algo, poll), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        ok = [r for r in rs if r.get("ok")]
        s = summarize(r.get("incumbent_true") for r in ok)
        o = summarize(r.get("oracle_true") for r in ok)
        rows.append({
            "problem": problem, "driver": driver, "algorithm": algo, "poll_s": poll,
            "seeds": len(rs), "ok": len(ok), **{f"best_{k}": v for k, v in s.items() if k != "n"},
            "oracle_median": o["median"],
            "epochs_median": summarize(r.get("epochs") for r in ok)["median"],
            "trials_median": summarize(r.get("trials") for r in ok)["median"],
            "wall_s_median": summarize(r.get("wall_s") for r in ok)["median"],
            "errors": sorted({r.get("error", "")[:300] for r in rs if not r.get("ok")}),
        })
    return rows


def quality_markdown(rows: list[dict[str, Any]], optima: dict[str, float]) -> str:
    out = ["| problem | driver | algorithm | seeds | best true: median | IQR | min..max | oracle median | epochs | trials | wall s |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        drv = r["driver"] + (f" (poll {r['poll_s']:g} s)" if r.get("poll_s") is not None else "")
        if not r["ok"]:
            out.append(f"| {r['problem']} | {drv} | {r['algorithm']} | {r['seeds']} | not run: "
                       f"{'; '.join(r['errors'])[:200]} | | | | | | |")
            continue
        out.append(
            f"| {r['problem']} | {drv} | {r['algorithm']} | {r['ok']}/{r['seeds']} | {_f(r['best_median'])} | "
            f"{_f(r['best_q1'])}..{_f(r['best_q3'])} | {_f(r['best_min'])}..{_f(r['best_max'])} | "
            f"{_f(r['oracle_median'])} | {_f(r['epochs_median'], 0)} | {_f(r['trials_median'], 0)} | "
            f"{_f(r['wall_s_median'], 1)} |")
    opt = ", ".join(f"{k} {v:g}" for k, v in optima.items())
    out.append(f"\nOptima: {opt}. Lower is better. 'best true' = noise-free value of the configuration each run "
               "would return (best observed at full fidelity); 'oracle' = best noise-free value it evaluated.")
    return "\n".join(out)


def overhead_markdown(rows: list[dict[str, Any]]) -> str:
    out = ["| driver | N | concurrency | wall s | ideal s | wall/ideal | overhead/trial s (whole run) | "
           "overhead/trial s (steady) | slot busy (steady) | slot busy (all slots full) | finish->next submit s | load1 |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r.get("ok", True):
            out.append(f"| {r.get('driver')} | {r.get('n')} | {r.get('concurrency')} | not run: {r.get('error', '')[:150]} |"
                       " | | | | | | | |")
            continue
        out.append(
            f"| {r.get('driver')} | {r['n']} | {r['concurrency']} | {_f(r['wall_s'], 1)} | {_f(r['ideal_s'], 1)} | "
            f"{_f(r['wall_s'] / r['ideal_s'], 2)} | {_f(r['overhead_per_trial_s'])} | "
            f"{_f(r.get('overhead_per_trial_steady_s'))} | {_f(r.get('busy_fraction'), 2)} | "
            f"{_f(r.get('busy_full_slots'), 2)} | "
            f"{_f(r.get('dispatch_gap_median_s'))} | {_f((r.get('load') or {}).get('load1_median'), 1)} |")
    return "\n".join(out)


def overhead_split(rows: list[dict[str, Any]], bare: dict[str, Any] | None) -> list[str]:
    """Split the steady per-trial overhead at concurrency 1 into the job's own
    start-up/exit (measured by running the job directly) and the orchestrator's rest."""
    if not bare:
        return []
    job = bare["bare_job_extra_s"]
    out = [f"The benchmark job run directly (no orchestrator) takes {job:.3f} s beyond its sleep "
           "(its own Python start-up, imports and exit; median of "
           f"{bare['repeats']})."]
    for r in rows:
        if r.get("driver") != "tao_automl" or r.get("concurrency") != 1 or r.get("overhead_per_trial_steady_s") is None:
            continue
        st = r["overhead_per_trial_steady_s"]
        out.append(f"At concurrency 1 the steady overhead per trial is {st:.3f} s: {min(job, st):.3f} s of it is the "
                   f"job's own start-up and exit, {max(0.0, st - job):.3f} s is orchestration (wrapper, spawn, wait, "
                   "ledger, Tune's step).")
    return [" ".join(out), ""]


def write(out_dir: Path, payload: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    j = out_dir / "results.json"
    m = out_dir / "results.md"
    j.write_text(json.dumps(payload, indent=1, default=str))
    m.write_text(markdown)
    return j, m
