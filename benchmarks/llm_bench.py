"""``python -m benchmarks --llm [--llm-endpoint URL --llm-model M]``: the
``llm`` algorithm against ``random`` and ``bayesian`` on Branin and
Hartmann-6 (20 trials, 5 seeds, one trial at a time), every run through
AutoMLRunner and scored from the objective skill's epoch log like every other
benchmark run.

Every LLM request and reply goes through a recording proxy on 127.0.0.1 and is
written to ``<out>/llm/recording.jsonl`` (one line per exchange: run, index,
request body, HTTP status, reply body; the Authorization header is never
recorded).  ``--llm-replay FILE`` answers each run's n-th request with the
recorded n-th reply, offline, and checks that the request is the recorded one
(trial ids aside): the same seeds then reproduce the same configurations and
scores exactly.

Without ``--llm-endpoint`` (and without ``--llm-replay``) the endpoint is
:func:`tao_automl.testing.llm_server.perturbation_policy` behind a scripted
server -- a local perturbation of the best finished trial computed from the
prompt, NOT an LLM -- and every output is labelled so.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCRIPTED = "scripted-policy (local perturbation; NOT an LLM)"
ALGORITHMS = ("llm", "random", "bayesian")


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


def run(*, out_dir: Path, endpoint: str | None, model: str | None, api_key_env: str | None,
        replay: Path | None, seeds: list[int], say: Any) -> dict[str, Any]:
    from benchmarks import quality
    from benchmarks.problems import Problem
    from tao_automl.execution.ray_session import RaySession
    from tao_automl.testing.llm_server import ScriptedLLMServer, perturbation_policy

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
            scripted = ScriptedLLMServer(policy=perturbation_policy).start()
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
    problems = [Problem("branin", "plain"), Problem("hartmann6", "plain")]
    runs: list[dict[str, Any]] = []
    say(f"llm benchmark: endpoint {label}; seeds {seeds}")
    try:
        with RaySession(None, 8):
            for p in problems:
                for a in ALGORITHMS:
                    for s in seeds:
                        recorder.run = f"{a}-{p.name}-s{s}"
                        r = quality.run_ours(p, a, s, work, extra_settings=settings if a == "llm" else None)
                        r["calls"] = recorder.counts.get(recorder.run, 0) if a == "llm" else None
                        runs.append(r)
                        what = (f"best true {r['incumbent_true']:.3f}" if r.get("ok") else r.get("error"))
                        say(f"{a} {p.name} seed {s}: {what}")
    finally:
        server.close()
        if scripted is not None:
            scripted.close()
    rows = []
    for p in problems:
        for a in ALGORITHMS:
            got = [r for r in runs if r["problem"] == p.name and r["algorithm"] == a]
            ok = [r["incumbent_true"] for r in got if r.get("ok") and r.get("incumbent_true") is not None]
            rows.append({"problem": p.name, "algorithm": a, "seeds": len(got), "ok": len(ok),
                         "best_median": _median(ok), "best_per_seed": ok, "optimum": p.optimum,
                         "calls": sum(r.get("calls") or 0 for r in got) if a == "llm" else None})
    if replay is not None and (replay.parent / "results.json").exists():  # same configurations, same scores?
        before = json.loads((replay.parent / "results.json").read_text())
        old = {(r["algorithm"], r["problem"], r["seed"]): r.get("incumbent_true") for r in before["runs"]
               if r["algorithm"] == "llm"}
        for r in runs:
            key = (r["algorithm"], r["problem"], r["seed"])
            if key in old and old[key] != r.get("incumbent_true"):
                recorder.mismatches.append(f"{key}: best {r.get('incumbent_true')} != recorded {old[key]}")
    payload = {"endpoint": {"label": label, "model": model,
                            "scripted_not_llm": scripted is not None or bool(meta.get("scripted_not_llm"))},
               "replay": str(replay) if replay else None, "replay_mismatches": recorder.mismatches,
               "recording": str(recording) if recording else None, "rows": rows, "runs": runs,
               "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    name = "replay.json" if replay else "results.json"
    (out_dir / name).write_text(json.dumps(payload, indent=1, default=str))
    (out_dir / name.replace(".json", ".md")).write_text(table(payload))
    return payload


def table(payload: dict[str, Any]) -> str:
    ep = payload["endpoint"]
    lines = [f"LLM-guided search: endpoint **{ep['label']}**"
             + (" -- the `llm` rows measure a scripted local-search policy, not a language model"
                if ep.get("scripted_not_llm") else ""), "",
             "| problem | algorithm | seeds ok | median best (true value) | LLM calls |", "|---|---|---|---|---|"]
    for r in payload["rows"]:
        med = f"{r['best_median']:.3f}" if r["best_median"] is not None else "-"
        lines.append(f"| {r['problem']} (optimum {r['optimum']:.3f}) | {r['algorithm']} | {r['ok']}/{r['seeds']} "
                     f"| {med} | {r['calls'] if r['calls'] is not None else ''} |")
    if payload.get("replay"):
        mism = payload["replay_mismatches"]
        lines += ["", f"replay of {payload['replay']}: "
                  + ("every request matched the recording" if not mism else f"{len(mism)} mismatches: {mism[:5]}")]
    return "\n".join(lines) + "\n"
