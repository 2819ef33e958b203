"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1
(stdlib ``http.server`` in a thread).  NOT an LLM: it answers from a script
of canned responses, then from a ``policy`` function of the request.

>>> with ScriptedLLMServer() as srv:                          # doctest: +SKIP
...     srv.script(Status(429, headers={"Retry-After": "1"}), Reply('{"reasoning": "", "config": {}}'))
...     srv.base_url                                            # http://127.0.0.1:PORT/v1

Script items: :class:`Reply` (a completion: content, finish_reason,
``choices=False`` for an empty list), :class:`Status` (an HTTP error with a
JSON body and headers), :class:`Delay` (sleep, then the next item: a
timeout), :class:`Raw` (any bytes with status 200: garbage).  A ``Status``
with ``when_format`` only fires when the request carries that
``response_format`` type (it does not consume the script otherwise).
Every request body is kept in :attr:`requests`.

``autoresearch`` replies: :func:`change`.
``hybrid`` replies: :func:`phase_plan` writes one phase plan;
:func:`phase_policy` answers plan prompts from their state (not an LLM).

:func:`perturbation_policy` is a simple local-search policy computed from the
prompt's trial history (random until 4 trials finished, then the best
configuration perturbed), used by the benchmarks as a labelled non-LLM
stand-in.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

__all__ = ["ScriptedLLMServer", "Reply", "Status", "Delay", "Raw", "perturbation_policy",
           "prompt_state", "completion", "phase_plan", "phase_policy", "change"]


@attrs.frozen
class Reply:
    content: str
    finish_reason: str = "stop"
    choices: bool = True


@attrs.frozen
class Status:
    code: int
    message: str = "scripted error"
    headers: dict[str, str] = attrs.field(factory=dict)
    when_format: str | None = None


@attrs.frozen
class Delay:
    seconds: float
    then: Any = None


@attrs.frozen
class Raw:
    body: bytes
    content_type: str = "application/json"


def completion(content: str | None, finish_reason: str = "stop", model: str = "scripted",
               choices: bool = True) -> dict[str, Any]:
    """A chat.completion body."""
    ch = [{"index": 0, "message": {"role": "assistant", "content": content},
           "finish_reason": finish_reason}] if choices else []
    return {"id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": ch,
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


class ScriptedLLMServer:
    """Context manager; ``base_url`` is ``http://127.0.0.1:<port>/v1``."""

    def __init__(self, policy: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.policy = policy
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._script: list[Any] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_unparsable": raw.decode("utf-8", "replace")}
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                item = server._next(body)
                while isinstance(item, Delay):
                    time.sleep(item.seconds)
                    item = item.then if item.then is not None else server._next(body)
                if isinstance(item, Status):
                    return self._send(item.code, {"error": {"message": item.message, "type": "scripted",
                                                            "code": item.code}}, item.headers)
                if isinstance(item, Raw):
                    return self._send_bytes(200, item.body, item.content_type)
                if isinstance(item, Reply):
                    return self._send(200, completion(item.content, item.finish_reason,
                                                      body.get("model", "scripted"), item.choices))
                return self._send(500, {"error": {"message": "script exhausted and no policy"}})

            def _send(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                self._send_bytes(code, json.dumps(obj).encode(), "application/json", headers)

            def _send_bytes(self, code: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def script(self, *items: Any) -> ScriptedLLMServer:
        with self._lock:
            self._script.extend(items)
        return self

    def _next(self, body: dict[str, Any]) -> Any:
        fmt = (body.get("response_format") or {}).get("type", "text")
        with self._lock:
            for i, item in enumerate(self._script):
                if isinstance(item, Status) and item.when_format is not None:
                    if item.when_format == fmt:  # a standing refusal of one format: not consumed
                        return item
                    continue
                return self._script.pop(i)
        if self.policy is not None:
            return Reply(self.policy(body))
        return None

    def start(self) -> ScriptedLLMServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ScriptedLLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def prompt_state(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON state block of the last user message of a tao_automl prompt."""
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") == "user" and "State of the search (JSON):" in (msg.get("content") or ""):
            text = msg["content"].split("State of the search (JSON):", 1)[1]
            start = text.index("{")
            obj, _ = json.JSONDecoder().raw_decode(text, start)
            return obj
    return {}


def perturbation_policy(body: dict[str, Any], *, n_random: int = 4, seed: int = 0,
                        explore: float = 0.25) -> str:
    """Random points first, then the best finished configuration perturbed
    (Gaussian, 15% of the range, shrinking with the trials done; in log space
    for log-scale parameters), or with probability ``explore`` a fresh random
    point.  Seeded by the request's ``seed`` (the run's seed) when it has one.
    A plain local search, not an LLM."""
    state = prompt_state(body)
    seed = body.get("seed", seed) if isinstance(body.get("seed"), int) else seed
    space = state.get("search_space") or []
    trials = [t for t in state.get("finished_trials") or [] if isinstance(t.get("metric"), int | float)]
    done = len(state.get("finished_trials") or []) + len((state.get("older_trials_summary") or {}).get("ids", []))
    pending = len(state.get("pending_trials_do_not_repeat") or [])
    rng = random.Random(f"{seed}-{done}-{pending}")
    minimize = (state.get("objective") or {}).get("direction", "minimize") == "minimize"
    best = None
    if trials:
        best = (min if minimize else max)(trials, key=lambda t: t["metric"])["config"]
    summary_best = ((state.get("older_trials_summary") or {}).get("best") or {})
    if summary_best.get("config") and best is None:
        best = summary_best["config"]
    config: dict[str, Any] = {}
    scale = 0.15 * (0.85 ** max(0, done - n_random))
    if best is not None and done >= n_random and rng.random() < explore:
        best = None  # explore: a fresh random point
    for p in space:
        name = p["name"]
        if "options" in p:
            opts = p["options"]
            keep = best is not None and done >= n_random and rng.random() > 0.2 and best.get(name) in opts
            config[name] = best[name] if keep else rng.choice(opts)
            continue
        lo, hi = p["minimum"], p["maximum"]
        if str(p.get("type")).startswith("list of"):
            n = int(str(p["type"]).split()[2])
            config[name] = sorted(rng.sample(range(int(lo), int(hi) + 1), n))
            continue
        pow2 = p.get("constraint") == "a power of 2"
        log = (p.get("scale") == "log" or pow2) and lo > 0
        f = (math.log if log else float)
        g = (math.exp if log else float)
        a, b = f(lo), f(hi)
        if best is None or done < n_random or name not in best:
            u = rng.uniform(a, b)
        else:
            u = min(max(f(best[name]) + rng.gauss(0, scale * (b - a)), a), b)
        v = min(max(g(u), lo), hi)
        if pow2:
            e = min(max(round(math.log2(v)), math.ceil(math.log2(lo) - 1e-9)), math.floor(math.log2(hi) + 1e-9))
            v = 2 ** e
        elif p.get("multiple_of"):
            step = p["multiple_of"]
            v = min(max(round(v / step) * step, math.ceil(lo / step - 1e-9) * step), math.floor(hi / step + 1e-9) * step)
        if str(p.get("type")).startswith("int"):
            v = int(round(v))
        config[name] = v
    return json.dumps({"reasoning": f"scripted local-perturbation policy (not an LLM); {done} trials done",
                       "config": config})


def phase_plan(parameters: list[str] | None = None, *, algorithm: str = "bayesian", trials: int = 2,
               action: str = "explore", reasoning: str = "scripted phase plan", **extra: Any) -> str:
    """One ``hybrid`` phase-plan reply."""
    obj: dict[str, Any] = {"action": action, "algorithm": algorithm, "parameters": list(parameters or []),
                           "trials": trials, "reasoning": reasoning, **extra}
    return json.dumps(obj)


def phase_policy(body: dict[str, Any], *, per_phase: int = 2, width: int = 2) -> str:
    """A scripted ``hybrid`` planner (not an LLM): the ``width`` parameters with
    the largest absolute rank correlation (unknown ones first, in order), swept
    by ``random`` in the first phase and ``bayesian`` after, ``per_phase``
    trials at a time until the budget is spent."""
    state = prompt_state(body)
    left = int((state.get("budget") or {}).get("trials_left") or 0)
    sens = state.get("parameter_sensitivity") or {}
    names = [p["name"] for p in state.get("search_space") or []]

    def weight(n: str) -> float:
        rho = (sens.get(n) or {}).get("rank_correlation_with_score")
        return 2.0 if rho is None else abs(rho)

    chosen = sorted(names, key=lambda n: -weight(n))[:width]
    algorithm = "random" if not state.get("phases") else "bayesian"
    return phase_plan(chosen, algorithm=algorithm, trials=max(1, min(per_phase, left)),
                      reasoning=f"scripted phase policy (not an LLM); {left} trials left")


def change(reasoning: str = "scripted change", **changes: Any) -> str:
    """One ``autoresearch`` reply; dotted names as ``**{"train.lr": 0.02}``."""
    return json.dumps({"reasoning": reasoning, "changes": changes})
