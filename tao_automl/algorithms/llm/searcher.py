"""``llm``: a Ray Tune Searcher whose every configuration is proposed by an LLM.

Lifecycle (Tune calls these in the driver process):

* ``suggest(trial_id)``: build the prompt (space, objective, budget left,
  every finished trial, the pending ones, the skill's HPO notes), call the
  endpoint (:class:`~.client.LLMClient`), validate the reply
  (:mod:`.validate`); invalid -> one repair prompt naming the problems;
  still invalid or the call failed past the retry bound -> the run stops with
  :class:`~tao_automl.errors.LLMError` (the shared stop flag is set, so Tune
  launches nothing more and stops what runs; ``runner.run()`` raises it).
  With ``llm_fallback: "random"`` such a trial is drawn at random instead,
  tagged (a ledger note and a ``fallback`` decision) and counted in the result.
* ``on_trial_result`` / ``on_trial_complete``: the trial's score (best or
  last epoch, as ``checkpoint_selection``) and, for a failure, the reason
  recorded in the job ledger, go into the next prompt.
* ``save`` / ``restore``: pickled state (history, pending, response format
  step), so ``run(resume=True)`` continues the same search.

Every call, proposal and decision is an event in ``<workspace>/brain/``
(:mod:`.brain`).
"""

from __future__ import annotations

import logging
import math
import pickle
import random
import time
from collections.abc import Mapping
from typing import Any

from ray.tune.search import Searcher

from tao_automl.algorithms.llm.brain import BrainLog
from tao_automl.algorithms.llm.client import FormatUnsupported, LLMClient
from tao_automl.algorithms.llm.prompt import (
    CONFIG_REPLY,
    FORMATS,
    build_messages,
    extract_json,
    repair_messages,
    response_format,
)
from tao_automl.algorithms.llm.validate import Validation, config_key, validate_proposal
from tao_automl.errors import LLMError
from tao_automl.store.ledger import JobLedger

__all__ = ["LLMSearcher"]

log = logging.getLogger("tao_automl")


class LLMSearcher(Searcher):
    """See the module docstring.  ``space`` is a :class:`~tao_automl.search.SearchSpace`."""

    def __init__(self, *, space: Any, metric: str, mode: str, settings: Any, budget: int,
                 brain: BrainLog | None, stop: Any = None, notes: str = "",
                 enforce_kwargs: Mapping[str, Any] | None = None,
                 client: LLMClient | None = None) -> None:
        super().__init__(metric=metric, mode=mode)
        self.space = space
        self.budget = int(budget)
        self.brain = brain
        self.stop = stop
        self.notes = notes
        self.enforce_kwargs = dict(enforce_kwargs or {})
        self.selection = getattr(settings, "checkpoint_selection", "best")
        self.fallback = settings.llm_fallback
        self.max_chars = settings.llm_prompt_max_chars
        self.seed = settings.seed
        key = settings.llm_api_key
        self.client = client or LLMClient(
            endpoint=settings.llm_endpoint, model=settings.llm_model,
            api_key_env=key.name if key is not None else None, temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens, timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries, seed=settings.seed)
        self.client.on_call = self._on_call
        self.fmt = 0  # index in FORMATS; steps down on a 400 about response_format, for the run
        self.finished: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        self.values: dict[str, list[float]] = {}
        self.suggested = 0
        self.fallbacks: list[str] = []
        self.failed: str | None = None
        self._request = ""
        self._call_extra: dict[str, Any] = {}

    # ------------------------------------------------------------ Tune API
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # the space, metric and mode were given at construction

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.failed is not None:
            return Searcher.FINISHED
        if self.suggested >= self.budget:
            return Searcher.FINISHED
        request = f"{trial_id}-{time.time_ns()}"
        try:
            values, encoded, reasoning = self._propose(trial_id, request)
            decision = "run"
        except LLMError as exc:
            if self.fallback != "random":
                return self._give_up(exc, trial_id, request)
            values, encoded = self._random(trial_id)
            reasoning = f"fallback to random sampling (llm_fallback: random) because: {exc.message}"
            decision = "fallback"
            self.fallbacks.append(trial_id)
            self._ledger_note(trial_id, "LLM fallback: configuration drawn at random, not proposed by the "
                                        f"LLM ({exc.cause or exc.message})")
        self.suggested += 1
        self.pending[trial_id] = {"trial_id": trial_id, "config": values, "fallback": decision == "fallback"}
        self._log("decision", trial_id=trial_id, request=request, decision=decision, config=values,
                  reasoning=reasoning)
        return encoded

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        v = result.get(self.metric) if self.metric else None
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            self.values.setdefault(trial_id, []).append(float(v))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result:
            self.on_trial_result(trial_id, result)
        entry = self.pending.pop(trial_id, None) or {"trial_id": trial_id, "config": None}
        vals = self.values.pop(trial_id, [])
        score = None
        if vals:
            if self.selection == "last":
                score = vals[-1]
            else:
                score = min(vals) if self.mode == "min" else max(vals)
        reason = self._failure_reason(trial_id) if (error or score is None) else None
        entry = {**entry, "metric": None if error else score,
                 "status": "failed" if (error or score is None) else "succeeded"}
        if reason:
            entry["failure_reason"] = reason
        self.finished[trial_id] = entry
        self._log("observed", trial_id=trial_id, metric=entry["metric"], status=entry["status"],
                  failure_reason=reason)

    def save(self, checkpoint_path: str) -> None:
        state = {k: getattr(self, k) for k in ("fmt", "finished", "pending", "values", "suggested",
                                                "fallbacks", "failed")}
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(state, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            state = pickle.load(fh)
        self.__dict__.update(state)
        self.failed = None  # a resumed run asks the endpoint again
        self._reload_observed()

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.client.on_call = self._on_call

    # ------------------------------------------------------------ internals
    def _propose(self, trial_id: str, request: str) -> tuple[dict[str, Any], dict[str, Any], str]:
        finished = list(self.finished.values())
        pending = [p for t, p in self.pending.items() if t != trial_id]
        messages, coverage = build_messages(
            space=self.space, metric=self.metric, mode=self.mode,
            budget_left=self.budget - self.suggested, total=self.budget, finished=finished,
            pending=pending, notes=self.notes, max_chars=self.max_chars)
        taken = [("finished", config_key(t["config"])) for t in finished if t.get("config")] + \
            [("pending", config_key(p["config"])) for p in pending if p.get("config")]
        extra = {"request": request, "trial_id": trial_id, "coverage": coverage,
                 "known_finished": [t["trial_id"] for t in finished]}
        check = self._ask_repaired(messages, extra, "propose", self._call,
                                   lambda reply, purpose: self._check(reply, request, trial_id, taken, purpose))
        if check.ok:
            return check.values, check.encoded, check.reasoning
        raise self.client.error("the reply was still invalid after one repair prompt: "
                                + "; ".join(check.problems)[:1500])

    def _call(self, messages: list[dict[str, str]], purpose: str, extra: dict[str, Any]) -> Any:
        return self._chat(messages, purpose, extra, lambda fmt: response_format(self.space, fmt))

    def _chat(self, messages: list[dict[str, str]], purpose: str, extra: dict[str, Any],
              response_format_for: Any) -> Any:
        """One LLM call; a server refusing the structured-output format steps
        down to the next one in FORMATS (logged) for the rest of the run."""
        while True:
            fmt = FORMATS[self.fmt]
            self._call_extra = extra
            try:
                return self.client.chat(messages, purpose=purpose, response_format=response_format_for(fmt))
            except FormatUnsupported as exc:
                self.fmt += 1
                self._log("format", request=extra.get("request"), refused=fmt, now=FORMATS[self.fmt],
                          message=str(exc)[:500])
            finally:
                self._call_extra = {}

    def _ask_repaired(self, messages: list[dict[str, str]], extra: dict[str, Any], purpose: str,
                      call: Any, check: Any, *, shape: str = CONFIG_REPLY, what: str = "reply") -> Any:
        """``call`` the LLM and ``check(reply, purpose)`` its reply; an unusable
        reply gets one repair prompt listing every problem.  Returns the last
        check (the caller raises if it is still not ok)."""
        reply = call(messages, purpose, extra)
        result = check(reply, purpose)
        if result.ok:
            return result
        messages = repair_messages(messages, reply.text, result.problems, shape=shape, what=what,
                                   finish_reason=reply.finish_reason)
        reply = call(messages, "repair", extra)
        return check(reply, "repair")

    def _give_up(self, exc: LLMError, trial_id: str, request: str | None) -> Any:
        """An LLM call failed for good: the stop decision logged, the run failed
        through the stop flag, the search finished."""
        self.failed = exc.message
        self._log("decision", trial_id=trial_id, request=request, decision="stop", cause=exc.message)
        log.error("%s", exc.message)
        if self.stop is not None and hasattr(self.stop, "fail"):
            self.stop.fail(exc)
        return Searcher.FINISHED

    def _check(self, reply: Any, request: str, trial_id: str, taken: list, purpose: str) -> Any:
        try:
            obj = extract_json(reply.text)
        except ValueError as exc:
            problem = str(exc)
            if reply.finish_reason == "length":
                problem += " (the reply was truncated: finish_reason 'length')"
            check = Validation(False, {}, {}, {}, [problem])
        else:
            check = validate_proposal(self.space, obj, enforce_kwargs=self.enforce_kwargs, taken=taken)
        self._log("proposal", request=request, trial_id=trial_id, purpose=purpose, raw=reply.text,
                  finish_reason=reply.finish_reason, valid=check.ok, values=check.values,
                  parameters=check.report, problems=check.problems, reasoning=check.reasoning)
        return check

    def _random(self, trial_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        rng = random.Random(f"{self.seed}-{trial_id}-{self.suggested}")
        values, _notes = self.space.enforce(self.space.decode(self.space.sample(rng)), **self.enforce_kwargs)
        return values, self.space.encode(values)

    def _failure_reason(self, trial_id: str) -> str | None:
        if self.brain is None:
            return None
        try:
            out = JobLedger(self.brain.ws).trial(trial_id).outcome or {}
        except Exception:  # the reason is informative; the trial still counts as failed
            return "unknown"
        if not out:
            return "stopped before it finished"
        return f"{out.get('reason') or out.get('state') or 'failed'}: {(out.get('message') or '')[-300:]}".strip()

    def _ledger_note(self, trial_id: str, note: str) -> None:
        if self.brain is None:
            return

        JobLedger(self.brain.ws).record(trial_id, "note", note=note)

    def _reload_observed(self) -> None:
        """Finished trials the brain log saw after Tune last saved this searcher."""
        if self.brain is None:
            return
        decided: dict[str, dict[str, Any]] = {}
        for ev in self.brain.events():
            tid = ev.get("trial_id")
            if ev.get("kind") == "decision" and ev.get("decision") in ("run", "fallback"):
                decided[tid] = {"trial_id": tid, "config": ev.get("config"),
                                "fallback": ev.get("decision") == "fallback"}
            elif ev.get("kind") == "observed" and tid not in self.finished and tid in decided:
                entry = {**decided[tid], "metric": ev.get("metric"), "status": ev.get("status")}
                if ev.get("failure_reason"):
                    entry["failure_reason"] = ev["failure_reason"]
                self.finished[tid] = entry
                self.pending.pop(tid, None)

    def _on_call(self, record: dict[str, Any]) -> None:
        self._log("call", **{**self._call_extra, **record})

    def _log(self, kind: str, **payload: Any) -> None:
        if self.brain is not None:
            self.brain.append(kind, **payload)
