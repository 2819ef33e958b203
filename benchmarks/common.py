"""Shared helpers: paths, machine facts, load sampling, statistics and the
driver-independent scoring of a run from its epoch log."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SKILL_DIR = HERE / "objective_skill"
REPO = HERE.parent


def objectives_module() -> Any:
    """The skill's own objective functions (the job and the scorer share them)."""
    from benchmarks.objective_skill.scripts import objectives

    return objectives


# ----------------------------------------------------------------- machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, RAM, python and library versions, load at start."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": _ram_gib(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "ray": _version("ray"),
        "optuna": _version("optuna"),
        "numpy": _version("numpy"),
        "tao_automl": _version("tao-automl"),
        "git_commit": _git_commit(),
        "loadavg_at_start": list(os.getloadavg()),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class LoadSampler:
    """Samples the 1-minute load average and the number of other busy
    processes every few seconds, so results can say whether the machine was
    loaded by someone else while a section ran."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="load-sampler")

    def start(self) -> LoadSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), os.getloadavg()[0]))
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()

    def window(self, t0: float, t1: float) -> dict[str, float | None]:
        vals = [v for t, v in self.samples if t0 <= t <= t1] or [os.getloadavg()[0]]
        return {"load1_median": round(statistics.median(vals), 2), "load1_max": round(max(vals), 2)}


# ----------------------------------------------------------------- stats
def summarize(values: Iterable[float | None]) -> dict[str, Any]:
    """median, quartiles, min, max and n of the non-missing values."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return {"n": 0, "median": None, "q1": None, "q3": None, "min": None, "max": None}
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    else:
        q1 = q3 = vals[0]
    return {"n": len(vals), "median": statistics.median(vals), "q1": q1, "q3": q3,
            "min": vals[0], "max": vals[-1]}


def rss_mib(pid: int | None = None) -> float | None:
    """Resident set size of a process (this one by default), MiB."""
    try:
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# ----------------------------------------------------------------- epoch log scoring
def read_epoch_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The job-written epoch records, in time order (torn lines skipped)."""
    out = []
    try:
        with open(path) as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        return []
    out.sort(key=lambda r: r["t"])
    return out


def score_epoch_log(records: list[dict[str, Any]], *, budget_epochs: int | None,
                    full_epoch: int = 1) -> dict[str, Any]:
    """Score a run from what its jobs actually computed.

    Only the first ``budget_epochs`` epoch records (in time order) count.
    ``incumbent_true`` -- the score -- is the true value of the configuration
    the run would hand back: the best *observed* value among evaluations at
    the full fidelity (epoch >= ``full_epoch``; the highest epoch reached when
    none got there).  ``oracle_true`` is the best true value among every
    configuration evaluated at any fidelity (what a perfect selector would
    pick).  For noise-free single-fidelity runs the two are equal.
    """
    used = records[:budget_epochs] if budget_epochs else list(records)
    if not used:
        return {"incumbent_true": None, "oracle_true": None, "epochs": 0, "configs": 0,
                "full_evals": 0}
    top = max(r["epoch"] for r in used)
    level = full_epoch if top >= full_epoch else top
    full = [r for r in used if r["epoch"] >= level]
    best = min(full, key=lambda r: r["val_loss"])
    configs = {tuple(round(x, 12) for x in r["u"]) for r in used}
    return {
        "incumbent_true": best["true_value"],
        "incumbent_observed": best["val_loss"],
        "oracle_true": min(r["true_value"] for r in used),
        "epochs": len(used),
        "epochs_total": len(records),
        "configs": len(configs),
        "full_evals": len(full),
        "full_fidelity_reached": top >= full_epoch,
    }
