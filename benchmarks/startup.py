"""Fixed cost of one run: ``run()`` start -> first job, jobs, last job -> return.

Every measurement runs in a fresh interpreter with a cold Ray (no cluster,
ray not imported), the way a user's script or notebook pays it::

    python -m benchmarks.startup [--code DIR] [--repeats 3] [--n 32 --concurrency 4]
                                 [--quickstart] [--join] [--json OUT]

``--code DIR`` runs the runs against another checkout of the package (e.g. a
frozen worktree of an older commit) so before/after can alternate in the same
time window on a shared machine.  From the run's ledger: first job submitted,
last job finished; from the child: ``run()`` entered/returned and the
interpreter's exit.  The whole process tree (driver, Ray's processes, workers,
jobs, anything detached from it) is sampled from /proc every 0.25 s: peak sum
of RSS and of PSS; after the driver exits, how long until no process of the
tree is left (a process still alive 30 s later is reported as leaked).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

_CHILD = r"""
import json, sys, time
args = json.loads(sys.argv[1])
t_imp = time.time()
from tao_automl.runner import AutoMLRunner
runner = AutoMLRunner(args["skill"], workspace_dir=args["ws"])
settings = {"max_recommendations": args["n"], "max_concurrent": args["c"], "seed": 0,
            "baseline": False, "final_eval": False, "fail_fast_after": 0}
if args.get("address"):
    settings["ray_address"] = args["address"]
t0 = time.time()
res = runner.run(automl_algorithm="random", automl_settings=settings,
                 automl_hyperparameters=["params.x1", "params.x2"],
                 spec_overrides={"objective.function": "branin", "train.epoch_sleep_s": args["sleep"]})
t1 = time.time()
print("BENCH " + json.dumps({"t0": t0, "t1": t1, "import_s": t0 - t_imp, "workspace": res["workspace"],
                             "succeeded": res["progress"]["completed"]}), flush=True)
"""


# ------------------------------------------------------------ process tree
def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _tree(root: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _mem_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB; (0, 0) for a process that is gone."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return ""


class TreeWatch(threading.Thread):
    """Samples a process tree; remembers every pid seen (with its command)."""

    def __init__(self, root: int, every_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.root, self.every_s = root, every_s
        self.seen: dict[int, str] = {}
        self.peak_rss = self.peak_pss = 0
        self.peak_procs = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            pids = _tree(self.root)
            rss = pss = 0
            for p in pids:
                if p not in self.seen:
                    self.seen[p] = _cmd(p)
                r, s = _mem_kib(p)
                rss, pss = rss + r, pss + s
            if rss:
                self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
                self.peak_procs = max(self.peak_procs, len(pids))
            self._halt.wait(self.every_s)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def alive(self) -> list[tuple[int, str]]:
        """Processes seen in the tree that still run (same pid, same command)."""
        return [(p, c) for p, c in self.seen.items() if c and _cmd(p) == c]


def _wait_gone(watch: TreeWatch, limit_s: float = 30.0) -> tuple[float, list[tuple[int, str]]]:
    t = time.time()
    while time.time() - t < limit_s:
        left = watch.alive()
        if not left:
            return time.time() - t, []
        time.sleep(0.1)
    return time.time() - t, watch.alive()


# ------------------------------------------------------------------- runs
def _env(code: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(code)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.setdefault("WANDB_MODE", "offline")
    return env


def sleep_run(code: Path, n: int, c: int, sleep_s: float, work: Path, address: str | None = None) -> dict[str, Any]:
    """One cold run of N sleep jobs; the breakdown and the process tree."""
    ws = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    skill = code / "benchmarks" / "objective_skill"
    args = {"skill": str(skill), "ws": str(ws), "n": n, "c": c, "sleep": sleep_s, "address": address}
    load = os.getloadavg()[0]
    t_spawn = time.time()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(args)], env=_env(code), cwd=str(code),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watch = TreeWatch(proc.pid)
    watch.start()
    out, err = proc.communicate()
    t_exit = time.time()
    gone_s, leaked = _wait_gone(watch)
    watch.stop()
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        return {"ok": False, "error": err[-2000:], "load1": load}
    r = json.loads(line[6:])
    from tao_automl.store.ledger import JobLedger
    from tao_automl.store.workspace import Workspace

    spans = []
    for rec in JobLedger(Workspace(r["workspace"])).trials():
        for att in rec.attempts:
            end = (att.finished or att.stopped or {}).get("t")
            if end:
                spans.append((att.launched_at, float(end)))  # early-start jobs: the driver's submit
    first = min(s for s, _ in spans)
    last = max(e for _, e in spans)
    ideal = n * sleep_s / c
    return {
        "ok": True, "n": n, "concurrency": c, "sleep_s": sleep_s, "joined": bool(address), "load1": load,
        "interpreter_to_run_s": r["t0"] - t_spawn, "start_to_first_job_s": first - r["t0"],
        "jobs_s": last - first, "last_job_to_return_s": r["t1"] - last, "wall_s": r["t1"] - r["t0"],
        "ideal_s": ideal, "wall_over_ideal": (r["t1"] - r["t0"]) / ideal,
        "return_to_exit_s": t_exit - r["t1"], "tree_gone_after_exit_s": gone_s, "leaked": leaked,
        "peak_rss_mib": watch.peak_rss / 1024, "peak_pss_mib": watch.peak_pss / 1024,
        "peak_procs": watch.peak_procs, "succeeded": r["succeeded"],
    }


def quickstart_run(code: Path, work: Path) -> dict[str, Any]:
    """``python examples/quickstart.py WS``: wall time and the process tree's memory."""
    ws = Path(tempfile.mkdtemp(prefix="qs-", dir=work))
    load = os.getloadavg()[0]
    t = time.time()
    proc = subprocess.Popen([sys.executable, "examples/quickstart.py", str(ws)], env=_env(code), cwd=str(code),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watch = TreeWatch(proc.pid)
    watch.start()
    out, err = proc.communicate()
    wall = time.time() - t
    gone_s, leaked = _wait_gone(watch)
    watch.stop()
    if proc.returncode != 0:
        return {"ok": False, "error": err[-2000:], "load1": load}
    return {"ok": True, "wall_s": wall, "load1": load, "peak_rss_mib": watch.peak_rss / 1024,
            "peak_pss_mib": watch.peak_pss / 1024, "peak_procs": watch.peak_procs,
            "tree_gone_after_exit_s": gone_s, "leaked": leaked}


class RayCluster:
    """A Ray head started with ``ray start`` (what ``ray_address`` joins)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.tmp = tempfile.mkdtemp(prefix="tao-bench-ray-", dir="/tmp")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def _ray(self, *args: str) -> None:
        exe = Path(sys.executable).with_name("ray")
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        subprocess.run([str(exe), *args], check=True, env=env, capture_output=True, timeout=300)

    def __enter__(self) -> RayCluster:
        self._ray("start", "--head", f"--port={self.port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                  f"--resources={json.dumps({'tao_automl_slot': float(self.slots)})}",
                  "--include-dashboard=false", f"--temp-dir={self.tmp}", "--disable-usage-stats")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ray("stop", "--force")


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get("ok") and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("start_to_first_job_s", "jobs_s", "last_job_to_return_s", "wall_s", "wall_over_ideal",
            "return_to_exit_s", "tree_gone_after_exit_s", "peak_rss_mib", "peak_pss_mib", "load1")
    return {k: _median(rows, k) for k in keys if _median(rows, k) is not None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.splitlines()[0])
    ap.add_argument("--code", action="append", default=[],
                    help="checkout(s) of the package to measure, alternated per repeat (default: this one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--sleep", type=float, default=2.0)
    ap.add_argument("--quickstart", action="store_true", help="also time examples/quickstart.py")
    ap.add_argument("--join", action="store_true", help="also join a running Ray (ray_address)")
    ap.add_argument("--no-cold", action="store_true", help="leave out the cold runs (e.g. only --join)")
    ap.add_argument("--json", default=None, help="write every run here")
    args = ap.parse_args(argv)
    codes = [Path(c).resolve() for c in args.code] or [HERE.parent]
    work = Path(tempfile.mkdtemp(prefix="tao-bench-startup-"))
    rows: list[dict[str, Any]] = []

    def record(kind: str, code: Path, r: dict[str, Any]) -> None:
        r.update(kind=kind, code=str(code))
        rows.append(r)
        shown = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items() if k not in ("error",)}
        print(json.dumps(shown) if r.get("ok") else f"{kind} {code}: FAILED {r.get('error')}", flush=True)

    for _ in range(args.repeats):
        for code in codes:  # alternate: same time window for every checkout
            if not args.no_cold:
                record("cold", code, sleep_run(code, args.n, args.concurrency, args.sleep, work))
            if args.quickstart:
                record("quickstart", code, quickstart_run(code, work))
    if args.join:
        with RayCluster(args.concurrency) as cluster:
            for _ in range(args.repeats):
                for code in codes:
                    record("join", code, sleep_run(code, args.n, args.concurrency, args.sleep, work,
                                                   address=cluster.address))
    print("\nmedians (load1 = 1-minute load average when each run started):")
    for kind in ("cold", "quickstart", "join"):
        for code in codes:
            sel = [r for r in rows if r["kind"] == kind and r["code"] == str(code)]
            if sel:
                s = summarize(sel)
                ok = sum(1 for r in sel if r.get("ok"))
                print(f"  {kind:10s} {code}: {ok}/{len(sel)} ok " + json.dumps({k: round(v, 2) for k, v in s.items()}))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
