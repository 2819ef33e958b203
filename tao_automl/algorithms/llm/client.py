"""A bounded-retry client for any OpenAI-compatible chat-completions server
(NIM, vLLM, Ollama, llama.cpp server, OpenAI) through the official ``openai``
package (the ``[llm]`` extra).

The package's own retries are off (``max_retries=0``); ours are on and
bounded: connection errors, timeouts, 429 (its ``Retry-After`` honoured) and
5xx are retried up to ``max_retries`` times; 400/401/403/404/422 are not.  A
400 that names ``response_format`` raises :class:`FormatUnsupported` so the
caller can step down (JSON schema -> JSON mode -> plain text).  Every attempt
is reported to ``on_call`` (the brain log) with purpose, attempt, HTTP status
or error class, latency, tokens, finish_reason, the raw reply and the prompt.
The API key is read from its environment variable when the client is made
and registered for masking: it never reaches a message, a log or a file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import attrs

from tao_automl.config.backoff import delays
from tao_automl.config.secrets import mask_env, mask_text
from tao_automl.errors import LLMError, describe

__all__ = ["LLMClient", "Reply", "FormatUnsupported", "RETRYABLE_STATUS"]

RETRYABLE_STATUS = {408, 409, 429}  # plus every 5xx
MAX_WAIT_S = 300.0  # the longest single wait, whatever Retry-After says
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "guided_json", "grammar")


class FormatUnsupported(Exception):  # noqa: N818  (a signal, not an error for the user)
    """The server refused the requested ``response_format`` (HTTP 400)."""


@attrs.frozen
class Reply:
    """One successful completion."""

    text: str
    finish_reason: str | None
    usage: dict[str, Any] = attrs.field(factory=dict)
    latency_s: float = 0.0


def _mask(text: Any) -> str:
    return mask_text(str(text))


class LLMClient:
    """``chat(messages, purpose=..., response_format=...) -> Reply`` or LLMError."""

    def __init__(self, *, endpoint: str, model: str, api_key_env: str | None = None,
                 temperature: float = 0.2, max_tokens: int = 1024, timeout_s: float = 60.0,
                 max_retries: int = 3, on_call: Callable[[dict[str, Any]], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.on_call = on_call
        self.sleep = sleep
        self.seed = seed
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:  # the openai client (sockets, locks) is made again
        return {**self.__dict__, "_client": None}

    def error(self, cause: str) -> LLMError:
        msg = describe("LLM-guided search stopped", key="llm_endpoint", value=self.endpoint,
                       expected=f"a valid proposal from model {self.model!r}") + f": {cause}"
        return LLMError(_mask(msg), endpoint=self.endpoint, model=self.model, cause=_mask(cause))

    def _openai(self) -> Any:
        if self._client is not None:
            return self._client
        try:
            import openai
        except ImportError as exc:
            raise LLMError("algorithm 'llm' needs the openai package", key="automl_algorithm", value="llm",
                           hint="pip install 'tao-automl[llm]'", endpoint=self.endpoint, model=self.model,
                           cause="openai not installed") from exc
        key = "not-needed"  # local servers (vLLM, Ollama, llama.cpp) take any key
        if self.api_key_env:
            mask_env([self.api_key_env])
            key = os.environ.get(self.api_key_env) or ""
            if not key:
                raise self.error(f"environment variable {self.api_key_env} (llm_api_key) is unset or empty")
        self._client = openai.OpenAI(base_url=self.endpoint, api_key=key, max_retries=0,
                                     timeout=self.timeout_s)
        return self._client

    # ------------------------------------------------------------------ calls
    def chat(self, messages: list[dict[str, str]], *, purpose: str,
             response_format: dict[str, Any] | None = None) -> Reply:
        """One completion; retried within the bound.  Raises LLMError or FormatUnsupported."""
        import openai

        client = self._openai()
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages,
                                  "temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.seed is not None:
            kwargs["seed"] = int(self.seed)
        if response_format is not None:
            kwargs["response_format"] = response_format
        mode = (response_format or {}).get("type", "text")
        attempts = self.max_retries + 1
        pauses = delays(0.5, cap=30.0)
        last = ""
        for attempt in range(1, attempts + 1):
            t0 = time.monotonic()
            record: dict[str, Any] = {"purpose": purpose, "attempt": attempt, "format": mode,
                                      "model": self.model, "endpoint": self.endpoint, "prompt": messages}
            wait: float | None = None
            try:
                resp = client.chat.completions.create(**kwargs)
            except openai.APIStatusError as exc:
                status = exc.status_code
                body = _mask(_error_text(exc))
                record.update(ok=False, status=status, error=type(exc).__name__, message=body[:2000],
                              latency_s=time.monotonic() - t0)
                last = f"HTTP {status} ({type(exc).__name__}): {body[:300]}"
                if status == 400 and response_format is not None and \
                        any(w in body.lower() for w in _FORMAT_WORDS):
                    record["step_down"] = True
                    self._report(record)
                    raise FormatUnsupported(body) from None
                if status in RETRYABLE_STATUS or status >= 500:
                    wait = _retry_after(exc)
                    record["retry_after_s"] = wait
                    self._report(record)
                else:
                    self._report(record)
                    raise self.error(last) from None
            except (openai.APIConnectionError, openai.APIResponseValidationError, ValueError, TypeError) as exc:
                # ValueError: a 200 whose body is not JSON (garbage)
                # APITimeoutError is an APIConnectionError
                record.update(ok=False, status=None, error=type(exc).__name__,
                              message=_mask(exc)[:2000], latency_s=time.monotonic() - t0)
                last = f"{type(exc).__name__}: {_mask(exc)[:300]}"
                self._report(record)
            else:
                latency = time.monotonic() - t0
                reply, problem = _parse(resp)
                usage = _usage(resp)
                record.update(status=200, latency_s=latency, tokens=usage,
                              finish_reason=reply.finish_reason if reply else None,
                              reply=_mask(reply.text) if reply else _mask(_raw(resp))[:20000])
                if reply is not None:
                    record["ok"] = True
                    self._report(record)
                    return attrs.evolve(reply, usage=usage, latency_s=latency)
                record.update(ok=False, error=problem)
                last = f"malformed response: {problem}"
                self._report(record)
            if attempt < attempts:  # the server's Retry-After, else the package's backoff
                backoff = next(pauses)
                self.sleep(min(MAX_WAIT_S, wait if wait is not None else backoff))
        raise self.error(f"{last} (after {attempts} attempt(s); llm_max_retries={self.max_retries})")

    def _report(self, record: dict[str, Any]) -> None:
        if self.on_call is not None:
            self.on_call(record)


def _error_text(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner)
        return str(inner)
    if body:
        return str(body)
    return str(getattr(exc, "message", exc))


def _retry_after(exc: Any) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            value = parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, value)


def _raw(resp: Any) -> str:
    try:
        return resp.model_dump_json() if hasattr(resp, "model_dump_json") else str(resp)
    except Exception:  # pragma: no cover - best effort for the log
        return repr(resp)


def _parse(resp: Any) -> tuple[Reply | None, str]:
    choices = getattr(resp, "choices", None)
    if not isinstance(choices, list):
        return None, f"not a chat completion ({type(resp).__name__})"
    if not choices:
        return None, "empty choices"
    msg = getattr(choices[0], "message", None)
    text = getattr(msg, "content", None)
    if not isinstance(text, str):
        return None, "no message content"
    return Reply(text=text, finish_reason=getattr(choices[0], "finish_reason", None)), ""


def _usage(resp: Any) -> dict[str, Any]:
    usage = getattr(resp, "usage", None)
    if usage is None:
        return {}
    return {k: getattr(usage, k, None) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
