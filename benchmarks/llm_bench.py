"""``python -m benchmarks --llm [--llm-endpoint URL --llm-model M]``: the
LLM-guided algorithms ``llm``, ``hybrid`` and ``autoresearch`` against the
classic algorithms ``hybrid``'s phases may use (``random``, ``bayesian``,
``grid``) on Branin and Hartmann-6 (20 trials, 5 seeds, one trial at a time),
every run through AutoMLRunner and scored from the objective skill's epoch log
like every other benchmark run.  ``hybrid`` is compared with its best
constituent classic algorithm at equal budget (the issue's target), and every
LLM algorithm's brain log is counted (calls, failed calls, repairs, stops,
fallbacks) so a degraded run cannot pass silently.

Every LLM request and reply goes through a recording proxy on 127.0.0.1 and is
written to ``<out>/llm/recording.jsonl`` (one line per exchange: run, index,
request body, HTTP status, reply body; the Authorization header is never
recorded).  ``--llm-replay FILE`` answers each run's n-th request with the
recorded n-th reply, offline, and checks that the request is the recorded one
(trial ids aside): the same seeds then reproduce the same configurations and
scores exactly.

Without ``--llm-endpoint`` (and without ``--llm-replay``) the endpoint is a
scripted server answering each reply contract with a scripted policy -- NOT an
LLM -- and every output is labelled so: ``llm`` proposals from
:func:`tao_automl.testing.llm_server.perturbation_policy`, ``hybrid`` phase
plans from :func:`bench_phase_policy` (over
:func:`~tao_automl.testing.llm_server.phase_policy`), ``autoresearch``
changes from :func:`change_policy`.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCRIPTED = "scripted policies (perturbation / phase plans / changes; NOT an LLM)"
LLM_ALGORITHMS = ("llm", "hybrid", "autoresearch")
#: the classic algorithms a hybrid phase may run (``tpe`` is an alias of bayesian)
CONSTITUENTS = ("random", "bayesian", "grid")
ALGORITHMS = LLM_ALGORITHMS + CONSTITUENTS
DETERMINISTIC = ("grid",)  # one run (seed 0), as in the search-quality section

# ------------------------------------------------------------ scripted policies
# Stand-ins computed from the prompt, used only without --llm-endpoint; none is an LLM.


def bench_phase_policy(body: dict[str, Any]) -> str:
    """``hybrid`` plans (not an LLM): a first phase of ``random`` over every
    parameter for 6 trials, then ``bayesian`` phases of 7 trials over the 3
    parameters with the largest absolute rank correlation with the score
    (:func:`~tao_automl.testing.llm_server.phase_policy` does the choosing)."""
    from tao_automl.testing.llm_server import phase_policy, prompt_state

    state = prompt_state(body)
    names = [p["name"] for p in state.get("search_space") or []]
    if not state.get("phases"):
        return phase_policy(body, per_phase=6, width=len(names))
    return phase_policy(body, per_phase=7, width=min(3, len(names)))


def change_policy(body: dict[str, Any], *, seed: int = 0) -> str:
    """``autoresearch`` changes (not an LLM): one or two parameters of the
    incumbent moved by a Gaussian step (25% of the range, shrinking by 0.9
    per experiment; options: another option), seeded by the request's seed
    and the number of experiments so far."""
    from tao_automl.testing.llm_server import change, prompt_state

    state = prompt_state(body)
    seed = body["seed"] if isinstance(body.get("seed"), int) else seed
    space = state.get("search_space") or []
    incumbent = (state.get("incumbent") or {}).get("config") or {}
    done = len(state.get("experiments") or []) + int((state.get("older_experiments_summary") or {})
                                                     .get("count") or 0)
    rng = random.Random(f"{seed}-change-{done}")
    scale = 0.25 * 0.9 ** done
    chosen = rng.sample(space, min(len(space), rng.choice((1, 2))))
    changes: dict[str, Any] = {}
    for p in chosen:
        name, cur = p["name"], incumbent.get(p["name"])
        if "options" in p:
            others = [o for o in p["options"] if o != cur] or list(p["options"])
            changes[name] = rng.choice(others)
            continue
        lo, hi = p["minimum"], p["maximum"]
        base = cur if isinstance(cur, int | float) and not isinstance(cur, bool) else rng.uniform(lo, hi)
        v = min(max(base + rng.gauss(0, scale * (hi - lo)), lo), hi)
        changes[name] = int(round(v)) if str(p.get("type")).startswith("int") else v
    return change(f"scripted change policy (not an LLM); experiment {done + 1}", **changes)


def scripted_policy(body: dict[str, Any]) -> str:
    """Dispatch on the prompt: a phase plan, a change, or a configuration."""
    from tao_automl.testing.llm_server import perturbation_policy

    asked = [(m.get("content") or "").rstrip() for m in body.get("messages") or [] if m.get("role") == "user"]
    if any(a.endswith("Plan the next phase.") for a in asked):  # a repair prompt follows the first one
        return bench_phase_policy(body)
    if any(a.endswith("Propose the next change.") for a in asked):
        return change_policy(body)
    return perturbation_policy(body)


def _normalise(body: dict[str, Any]) -> str:
    """A request without what legitimately differs between two runs (Ray's trial ids)."""
    text = json.dumps({k: body.get(k) for k in ("model", "messages", "response_format", "temperature",
                                                "max_tokens", "seed")}, sort_keys=True)
    text = re.sub(r'\\"trial\\": \\"[0-9a-f_]+\\"', lambda m: '\\"trial\\": *', text)
    return re.sub(r'\\"ids\\": \[[^\]]*\]', lambda m: '\\"ids\\": *', text)


class _Recorder:
    """Run label + per-run request counter shared by the proxy/replay handlers."""

    def __init__(self) -> None:
        self.run = ""
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.mismatches: list[str] = []

    def next_index(self) -> tuple[str, int]:
        with self.lock:
            i = self.counts.get(self.run, 0)
            self.counts[self.run] = i + 1
            return self.run, i


class _Server:
    def __init__(self, handle: Any) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, data, headers = handle(self.path, raw, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def recording_proxy(upstream: str, recorder: _Recorder, out: Path) -> _Server:
    """Forward to ``upstream`` and append every exchange to ``out``."""
    lock = threading.Lock()

    def handle(path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        run, i = recorder.next_index()
        url = upstream.rstrip("/") + path[path.index("/v1") + 3:] if "/v1" in path else upstream + path
        fwd = {"Content-Type": "application/json"}
        auth = {k: v for k, v in headers.items() if k.lower() == "authorization"}
        req = urllib.request.Request(url, data=raw, headers={**fwd, **auth}, method="POST")
        extra: dict[str, str] = {}
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                status, data = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
            if exc.headers.get("Retry-After"):
                extra["Retry-After"] = exc.headers["Retry-After"]
        except (urllib.error.URLError, TimeoutError) as exc:
            status, data = 502, json.dumps({"error": {"message": f"proxy: {exc}"}}).encode()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        line = {"run": run, "i": i, "request": body, "status": status,
                "reply": data.decode("utf-8", "replace"), "headers": extra}
        with lock, open(out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        return status, data, extra

    return _Server(handle)


def replay_server(recording: Path, recorder: _Recorder) -> _Server:
    """Answer each run's n-th request with the recorded n-th reply (offline)."""
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for line in recording.read_text(encoding="utf-8").splitlines():
        if line.strip():
            ex = json.loads(line)
            table[(ex["run"], ex["i"])] = ex

    def handle(path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        run, i = recorder.next_index()
        ex = table.get((run, i))
        if ex is None:
            recorder.mismatches.append(f"{run}#{i}: not in the recording")
            return 500, b'{"error": {"message": "replay: no recorded exchange"}}', {}
        if _normalise(json.loads(raw)) != _normalise(ex["request"]):
            recorder.mismatches.append(f"{run}#{i}: the request differs from the recorded one")
        return ex["status"], ex["reply"].encode("utf-8"), dict(ex.get("headers") or {})

    return _Server(handle)


def _median(vals: list[float]) -> float | None:
    return statistics.median(vals) if vals else None


def _iqr(vals: list[float]) -> tuple[float, float] | None:
    if len(vals) < 2:
        return None
    q = statistics.quantiles(vals, n=4, method="inclusive")
    return q[0], q[2]


def brain_counts(ws_root: Path) -> dict[str, int]:
    """What the brain log of a run says about its LLM traffic: HTTP attempts
    (``calls``), failed ones (retried, or fatal), repair prompts, invalid
    replies, stops (LLMError), random fallbacks and early ends the LLM chose."""
    from tao_automl.store.workspace import Workspace

    c = dict.fromkeys(("calls", "failed_calls", "repairs", "invalid", "stops", "fallbacks", "ended_by_llm"), 0)
    for brain in sorted(ws_root.glob("*/brain")):
        for ev in Workspace(str(brain.parent)).events("brain"):
            kind = ev.get("kind")
            if kind == "call":
                c["calls"] += 1
                c["failed_calls"] += not ev.get("ok")
            elif kind == "proposal":
                c["repairs"] += ev.get("purpose") == "repair"
                c["invalid"] += not ev.get("valid")
            elif kind == "decision":
                d = ev.get("decision")
                c["stops"] += d == "stop"
                c["fallbacks"] += d == "fallback"
                c["ended_by_llm"] += d == "finish"
    return c


def run(*, out_dir: Path, endpoint: str | None, model: str | None, api_key_env: str | None,
        replay: Path | None, seeds: list[int], say: Any, algorithms: tuple[str, ...] = ALGORITHMS,
        functions: tuple[str, ...] = ("branin", "hartmann6"), trials: int | None = None) -> dict[str, Any]:
    """Every (problem, algorithm, seed) run; ``trials`` overrides the 20-trial
    budget (for a quick check of the harness)."""
    from benchmarks import quality
    from benchmarks.problems import Problem
    from tao_automl.execution.ray_session import RaySession
    from tao_automl.testing.llm_server import ScriptedLLMServer

    unknown = [a for a in algorithms if a not in ALGORITHMS]
    if unknown:
        raise ValueError(f"llm benchmark: unknown algorithms {unknown} (expected some of {list(ALGORITHMS)})")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "runs"
    recorder = _Recorder()
    scripted = None
    meta: dict[str, Any] = {}
    if replay is not None:
        server = replay_server(replay, recorder)
        meta = json.loads((replay.parent / "results.json").read_text()).get("endpoint", {}) \
            if (replay.parent / "results.json").exists() else {}
        label = f"offline replay of {meta.get('label', 'a recorded endpoint')}"
        model = model or meta.get("model") or "replayed"
        recording = None
    else:
        if endpoint is None:
            scripted = ScriptedLLMServer(policy=scripted_policy).start()
            endpoint, model, label = scripted.base_url, "scripted-policy", SCRIPTED
        else:
            label = f"{model} at {endpoint}"
        recording = out_dir / "recording.jsonl"
        recording.unlink(missing_ok=True)
        server = recording_proxy(endpoint, recorder, recording)
    settings: dict[str, Any] = {"llm_endpoint": server.base_url, "llm_model": model,
                                "llm_temperature": 0.0}
    if api_key_env:
        from tao_automl import secret

        settings["llm_api_key"] = secret(api_key_env)
    budget = {"max_recommendations": trials} if trials else {}
    problems = [Problem(f, "plain") for f in functions]
    runs: list[dict[str, Any]] = []
    say(f"llm benchmark: endpoint {label}; algorithms {list(algorithms)}; seeds {seeds}")
    try:
        with RaySession(None, 8):
            for p in problems:
                for a in algorithms:
                    for s in (seeds[:1] if a in DETERMINISTIC else seeds):
                        recorder.run = f"{a}-{p.name}-s{s}"
                        llm = a in LLM_ALGORITHMS
                        r = quality.run_ours(p, a, s, work, extra_settings={**budget, **(settings if llm else {})})
                        if llm:
                            r["calls"] = recorder.counts.get(recorder.run, 0)  # through the proxy
                            r["brain"] = brain_counts(work / f"ours-{a}-{p.name}-s{s}" / "ws")
                        runs.append(r)
                        what = (f"best true {r['incumbent_true']:.3f}" if r.get("ok") else r.get("error"))
                        say(f"{a} {p.name} seed {s}: {what}" + (f"; brain {r['brain']}" if llm else ""))
    finally:
        server.close()
        if scripted is not None:
            scripted.close()
    rows = []
    for p in problems:
        for a in algorithms:
            got = [r for r in runs if r["problem"] == p.name and r["algorithm"] == a]
            ok = [r["incumbent_true"] for r in got if r.get("ok") and r.get("incumbent_true") is not None]
            row: dict[str, Any] = {"problem": p.name, "algorithm": a, "seeds": len(got), "ok": len(ok),
                                   "best_median": _median(ok), "best_iqr": _iqr(ok), "best_per_seed": ok,
                                   "optimum": p.optimum, "trials_median": _median([r["trials"] for r in got
                                                                                  if r.get("trials")]),
                                   "errors": sorted({r["error"] for r in got if r.get("error")})}
            if a in LLM_ALGORITHMS:
                row["calls"] = sum(r.get("calls") or 0 for r in got)
                row["brain"] = {k: sum(r["brain"][k] for r in got) for k in got[0]["brain"]} if got else {}
            rows.append(row)
    if replay is not None and (replay.parent / "results.json").exists():  # same configurations, same scores?
        before = json.loads((replay.parent / "results.json").read_text())
        old = {(r["algorithm"], r["problem"], r["seed"]): r.get("incumbent_true") for r in before["runs"]
               if r["algorithm"] in LLM_ALGORITHMS}
        for r in runs:
            key = (r["algorithm"], r["problem"], r["seed"])
            if key in old and old[key] != r.get("incumbent_true"):
                recorder.mismatches.append(f"{key}: best {r.get('incumbent_true')} != recorded {old[key]}")
    scripted_not_llm = scripted is not None or bool(meta.get("scripted_not_llm"))
    payload = {"endpoint": {"label": label, "model": model, "scripted_not_llm": scripted_not_llm},
               "replay": str(replay) if replay else None, "replay_mismatches": recorder.mismatches,
               "recording": str(recording) if recording else None, "rows": rows,
               "hybrid_target": hybrid_target(rows, scripted_not_llm), "runs": runs,
               "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    name = "replay.json" if replay else "results.json"
    (out_dir / name).write_text(json.dumps(payload, indent=1, default=str))
    (out_dir / name.replace(".json", ".md")).write_text(table(payload))
    return payload


def hybrid_target(rows: list[dict[str, Any]], scripted_not_llm: bool) -> list[dict[str, Any]]:
    """Per problem: ``hybrid``'s median best against the best median of its
    constituent classic algorithms at equal budget.  ``regret_ratio`` =
    (hybrid - optimum) / (constituent - optimum): <= 1 is at least as good."""
    out = []
    for prob in dict.fromkeys(r["problem"] for r in rows):
        mine = {r["algorithm"]: r for r in rows if r["problem"] == prob}
        hy = mine.get("hybrid")
        cands = [(r["best_median"], a) for a, r in mine.items() if a in CONSTITUENTS and r["best_median"] is not None]
        if hy is None or hy["best_median"] is None or not cands:
            continue
        best, name = min(cands)
        opt = hy["optimum"]
        ratio = (hy["best_median"] - opt) / (best - opt) if best - opt > 1e-12 else None
        met = hy["best_median"] <= best
        out.append({"problem": prob, "hybrid": hy["best_median"], "constituent": name, "constituent_best": best,
                    "compared": sorted(a for _, a in cands), "regret_ratio": ratio, "met": met,
                    "verdict": ("target met" if met else "target not met")
                    + (" (scripted policy, not an LLM)" if scripted_not_llm else "")})
    return out


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def table(payload: dict[str, Any]) -> str:
    ep = payload["endpoint"]
    scripted = ep.get("scripted_not_llm")
    lines = [f"LLM-guided search: endpoint **{ep['label']}**"
             + (" -- the `llm`, `hybrid` and `autoresearch` rows measure scripted policies, NOT a language "
                "model" if scripted else ""), "",
             "| problem | algorithm | seeds ok | median best [IQR] (true value) | trials | LLM calls (failed) "
             "| repairs | stops / fallbacks |", "|---|---|---|---|---|---|---|---|"]
    for r in payload["rows"]:
        iqr = r.get("best_iqr")
        med = _fmt(r["best_median"]) + (f" [{iqr[0]:.3f}, {iqr[1]:.3f}]" if iqr else "")
        if not r["ok"] and r.get("errors"):
            med = "refused/failed: " + r["errors"][0][:120].replace("|", "/")
        trials = "-" if r.get("trials_median") is None else f"{r['trials_median']:g}"
        b = r.get("brain")
        llm = (f"| {b['calls']} ({b['failed_calls']}) | {b['repairs']} | {b['stops']} / {b['fallbacks']} |"
               if b else "| | | |")
        lines.append(f"| {r['problem']} (optimum {r['optimum']:.3f}) | {r['algorithm']} | {r['ok']}/{r['seeds']} "
                     f"| {med} | {trials} {llm}")
    if payload.get("hybrid_target"):
        lines += ["", "`hybrid` against its best constituent classic algorithm at equal budget "
                  "(regret ratio = (hybrid - optimum) / (constituent - optimum); <= 1 meets the target):", ""]
        for t in payload["hybrid_target"]:
            ratio = "-" if t["regret_ratio"] is None else f"{t['regret_ratio']:.2f}"
            lines.append(f"- {t['problem']}: hybrid {t['hybrid']:.3f} vs {t['constituent']} "
                         f"{t['constituent_best']:.3f} (best of {', '.join(t['compared'])}); regret ratio "
                         f"{ratio}: **{t['verdict']}**")
    if payload.get("replay"):
        mism = payload["replay_mismatches"]
        lines += ["", f"replay of {payload['replay']}: "
                  + ("every request matched the recording" if not mism else f"{len(mism)} mismatches: {mism[:5]}")]
    return "\n".join(lines) + "\n"
