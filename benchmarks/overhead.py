"""Orchestration overhead, concurrency, start-up costs and scale."""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, SKILL_DIR, rss_mib

SLEEP_S = 2.0
HEAVY = ("ray", "optuna", "wandb", "docker", "kubernetes", "matplotlib")


def import_time(repeats: int = 3) -> dict[str, Any]:
    """``import tao_automl`` (and the runner) in fresh interpreters, minus a bare start."""
    code = ("import sys, time; t=time.perf_counter(); import tao_automl; a=time.perf_counter()-t; "
            "t=time.perf_counter(); from tao_automl.runner import AutoMLRunner; b=time.perf_counter()-t; "
            f"h=[m for m in {HEAVY!r} if m in sys.modules]; print(a, b, ','.join(h))")
    pkg, runner, heavy = [], [], set()
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
        a, b, h = (out.stdout.strip().split(" ") + [""])[:3]
        pkg.append(float(a))
        runner.append(float(b))
        heavy.update(x for x in h.split(",") if x)
    return {"import_tao_automl_s": statistics.median(pkg), "import_runner_extra_s": statistics.median(runner),
            "heavy_modules_loaded": sorted(heavy)}


def ray_startup() -> dict[str, Any]:
    """Cold ``import ray`` + Tune, ``ray.init`` through the runner's RaySession, shutdown.
    Must run before anything else in the process imports ray."""
    already = "ray" in sys.modules
    t0 = time.perf_counter()
    import ray  # noqa: F401
    from ray import tune  # noqa: F401

    t1 = time.perf_counter()
    from tao_automl.execution.ray_session import RaySession, shutdown_ray

    s = RaySession(None, 1)
    s.__enter__()
    t2 = time.perf_counter()
    s.__exit__(None, None, None)
    shutdown_ray()  # a run leaves the cluster up for the next one; measure its stop
    t3 = time.perf_counter()
    return {"import_ray_tune_s": t1 - t0, "ray_init_s": t2 - t1, "ray_shutdown_s": t3 - t2,
            "ray_was_imported_before": already}


def _ledger_times(workspace: str) -> list[tuple[float, float]]:
    """(submitted_at, finished_at) of every train attempt in a run's ledger."""
    from tao_automl.store.ledger import JobLedger
    from tao_automl.store.workspace import Workspace

    out = []
    for rec in JobLedger(Workspace(workspace)).trials():
        for att in rec.attempts:
            end = (att.finished or att.stopped or {}).get("t")
            if end:
                out.append((att.submitted_at, float(end)))
    return sorted(out)


def busy_fraction(spans: list[tuple[float, float]], slots: int) -> dict[str, Any]:
    """Slot busy fraction over the steady window (first submit -> last finish)."""
    if not spans:
        return {"busy_fraction": None}
    t0, t1 = spans[0][0], max(e for _, e in spans)
    busy = sum(e - s for s, e in spans)
    return {"busy_fraction": busy / (slots * (t1 - t0)), "window_s": t1 - t0,
            "job_s_median": statistics.median(e - s for s, e in spans)}


def full_slots_busy(spans: list[tuple[float, float]], slots: int) -> float | None:
    """Busy fraction while the run is saturated: from the first moment all ``slots``
    jobs run at once to the last submit (after it the slots drain by design).

    This leaves out the ramp-up (one Ray actor per slot starts and imports
    Tune, ~1.4 s of CPU each) and the drain, which ``busy_fraction`` includes.
    """
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    last_submit = max(s for s, _ in spans) if spans else None
    running, t_full = 0, None
    area, prev = 0.0, None
    for t, step in events:
        if t_full is not None:
            hi = min(t, last_submit)
            if hi > prev:
                area += running * (hi - prev)
            prev = max(prev, hi)
        running += step
        if t_full is None and running >= slots:
            t_full = prev = t
    if t_full is None or last_submit is None or last_submit - t_full <= 0:
        return None
    return area / (slots * (last_submit - t_full))


def bare_job_s(sleep_s: float, repeats: int = 5) -> dict[str, Any]:
    """The benchmark job run directly (no orchestrator): its own interpreter
    start-up, imports and exit, beyond the sleep.  What is left of the per-trial
    overhead after this is the orchestrator's."""
    import json
    import tempfile

    from benchmarks.common import objectives_module  # noqa: F401  (same interpreter as the jobs)

    script = SKILL_DIR / "scripts" / "train.py"
    times = []
    with tempfile.TemporaryDirectory() as d:
        spec = Path(d) / "spec.json"
        spec.write_text(json.dumps({"objective": {"function": "branin"}, "params": {"x1": 0.5, "x2": 0.5},
                                    "train": {"num_epochs": 1, "epoch_sleep_s": sleep_s}, "results_dir": d}))
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, str(script), "--config", str(spec)], check=True,
                           stdout=subprocess.DEVNULL, cwd=d)
            times.append(time.perf_counter() - t - sleep_s)
    return {"bare_job_extra_s": statistics.median(times), "repeats": repeats}


def dispatch_gaps(spans: list[tuple[float, float]]) -> list[float]:
    """For each job end, the delay until the next job was submitted."""
    submits = sorted(s for s, _ in spans)
    gaps = []
    j = 0
    for _, end in sorted(spans, key=lambda x: x[1]):
        while j < len(submits) and submits[j] < end:
            j += 1
        if j < len(submits):
            gaps.append(submits[j] - end)
    return gaps


def _run_sleep_jobs(n: int, concurrency: int, sleep_s: float, workdir: Path, tag: str,
                    algorithm: str = "random", on_result: Any = None) -> tuple[dict[str, Any], float]:
    from tao_automl.runner import AutoMLRunner

    runner = AutoMLRunner(str(SKILL_DIR), workspace_dir=str(workdir / tag))
    t0 = time.perf_counter()
    res = runner.run(
        automl_algorithm=algorithm,
        automl_settings={"max_recommendations": n, "max_concurrent": concurrency, "seed": 0,
                         "baseline": False, "final_eval": False, "fail_fast_after": 0},
        automl_hyperparameters=["params.x1", "params.x2"],
        spec_overrides={"objective.function": "branin", "train.epoch_sleep_s": sleep_s},
        on_result=on_result,
    )
    return res, time.perf_counter() - t0


def concurrency_run(n: int, concurrency: int, workdir: Path, sleep_s: float = SLEEP_S) -> dict[str, Any]:
    """N sleep jobs at ``concurrency``: wall vs ideal, overhead per trial, busy slots."""
    res, wall = _run_sleep_jobs(n, concurrency, sleep_s, workdir, f"sleep-c{concurrency}-n{n}")
    spans = _ledger_times(res["workspace"])
    ideal = n * sleep_s / concurrency
    out = {"driver": "tao_automl", "n": n, "concurrency": concurrency, "sleep_s": sleep_s, "wall_s": wall,
           "ideal_s": ideal, "efficiency": ideal / wall, "overhead_per_trial_s": (wall - ideal) * concurrency / n,
           "succeeded": (res.get("progress") or {}).get("completed"), **busy_fraction(spans, concurrency)}
    gaps = dispatch_gaps(spans)
    out["dispatch_gap_median_s"] = statistics.median(gaps) if gaps else None
    # The same figure restricted to the steady window (no run start-up/tear-down).
    if spans:
        window = max(e for _, e in spans) - spans[0][0]
        out["overhead_per_trial_steady_s"] = (window - ideal) * concurrency / n
    out["busy_full_slots"] = full_slots_busy(spans, concurrency)
    return out


def scale_run(n: int, concurrency: int, workdir: Path) -> dict[str, Any]:
    """N no-op jobs: dispatch latency early vs late, throughput, driver RSS."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.time(), rss_mib() or 0.0))
            stop.wait(2.0)

    th = threading.Thread(target=sample, daemon=True)
    rss0 = rss_mib()
    th.start()
    try:
        res, wall = _run_sleep_jobs(n, concurrency, 0.0, workdir, f"scale-n{n}")
    finally:
        stop.set()
        th.join()
    spans = _ledger_times(res["workspace"])
    k = min(100, max(1, len(spans) // 5))
    first, last = spans[:k], spans[-k:]

    def rate(chunk: list[tuple[float, float]]) -> float | None:
        if len(chunk) < 2:
            return None
        return (len(chunk) - 1) / (chunk[-1][0] - chunk[0][0])

    def gap_med(chunk: list[tuple[float, float]]) -> float | None:
        g = dispatch_gaps(chunk)
        return statistics.median(g) if g else None

    rss = [v for _, v in samples]
    return {
        "n": n, "concurrency": concurrency, "wall_s": wall, "succeeded": (res.get("progress") or {}).get("completed"),
        "trials_per_s_first": rate(first), "trials_per_s_last": rate(last),
        "dispatch_gap_first_s": gap_med(first), "dispatch_gap_last_s": gap_med(last),
        "window": k,
        "rss_mib_before": rss0, "rss_mib_first_sample": rss[1] if len(rss) > 1 else None,
        "rss_mib_peak": max(rss) if rss else None, "rss_mib_end": rss_mib(),
        "rss_samples": [(round(t - samples[0][0], 1), round(v, 1)) for t, v in samples[:: max(1, len(samples) // 20)]],
    }
