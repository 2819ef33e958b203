"""``autoresearch``: a keep/discard loop of LLM-proposed changes to the incumbent.

1. The incumbent starts as the schema defaults (values without a valid
   default: drawn once, seeded) and is run once.
2. Noise: ``autoresearch_noise_margin`` > 0 is the margin (absolute, in the
   metric's units).  At 0 (the default) it is measured: the incumbent is run
   ``autoresearch_repeats`` more times (default 2, counted in
   ``max_recommendations``) and the margin is the spread (max - min) of its
   scores; the incumbent's score is their mean.
3. Then, one trial at a time, the LLM replies::

       {"reasoning": "<why>", "changes": {"<dotted name>": <value>, ...}}

   The changes are applied to the incumbent (so kept changes accumulate);
   only searchable (schema-enabled) parameters may change, every value is
   validated against the schema (:func:`~.validate.validate_proposal` on the
   full configuration) and a configuration already run is refused.  Invalid:
   one repair prompt, then :class:`~tao_automl.errors.LLMError`.
4. A change is **kept** only when its score beats the incumbent's by more
   than the margin (then it is the incumbent, with that score); otherwise it
   is discarded.  The verdict, the margin, the difference and the LLM's
   reasoning are a ``decision`` event (``keep``/``discard``) in the brain log.

``research_program`` (the user's research goal, free text) heads the prompt.
Concurrency: the loop is sequential by nature (each change builds on the
last verdict), so it runs one trial at a time whatever ``max_concurrent``
says; the review says so.
"""

from __future__ import annotations

import json
import pickle
import random
import time
from collections.abc import Mapping
from typing import Any

from tao_automl.algorithms.llm.prompt import (
    _value_schema,
    describe_constraints,
    describe_space,
    extract_json,
)
from tao_automl.algorithms.llm.searcher import LLMSearcher
from tao_automl.algorithms.llm.validate import Validation, config_key, validate_proposal
from tao_automl.errors import LLMError

__all__ = ["AutoResearchSearcher", "validate_changes", "DEFAULT_REPEATS"]

DEFAULT_REPEATS = 2

SYSTEM = (
    "You run a research loop on a model's training hyperparameters. Each step you propose a small set of "
    "changes to the incumbent configuration (the best so far); the change is trained and KEPT only if it "
    "beats the incumbent by more than the noise margin, otherwise discarded. Learn from the kept and "
    "discarded experiments. Only the listed parameters may change, each within its bounds and type, one "
    "of its options when it has options. Do not repeat an experiment. Reply with exactly one JSON "
    'object and nothing else: {"reasoning": "<one or two sentences>", "changes": {"<parameter name>": '
    "<new value>, ...}}."
)


def validate_changes(space: Any, obj: Any, incumbent: Mapping[str, Any], *,
                     enforce_kwargs: Mapping[str, Any] | None = None, taken: Any = ()) -> Validation:
    """Check ``{"reasoning", "changes"}`` against the space; the changed
    incumbent is validated as a whole configuration."""
    if not isinstance(obj, Mapping):
        return Validation(False, {}, {}, {}, ["the reply is not a JSON object"])
    problems: list[str] = []
    extra = sorted(set(obj) - {"reasoning", "changes"})
    if extra:
        problems.append(f"unexpected top-level keys {extra} (expected only 'reasoning' and 'changes')")
    reasoning = obj.get("reasoning")
    if not isinstance(reasoning, str):
        problems.append("'reasoning' must be a string")
        reasoning = "" if reasoning is None else str(reasoning)
    changes = obj.get("changes")
    if not isinstance(changes, Mapping) or not changes:
        problems.append("'changes' must be a non-empty object mapping parameter names to new values")
        return Validation(False, {}, {}, {}, problems, reasoning)
    names = set(space.names)
    for key in changes:
        if key not in names:
            problems.append(f"{key!r} may not change: not a searchable parameter (unknown, or disabled in "
                            f"the schema); the searchable parameters are {sorted(names)}")
    known = {k: v for k, v in changes.items() if k in names}
    if known and all(incumbent.get(k) == v for k, v in known.items()):
        problems.append("the changes leave the incumbent as it is; change at least one value")
    check = validate_proposal(space, {"reasoning": reasoning, "config": {**incumbent, **known}},
                              enforce_kwargs=enforce_kwargs, taken=taken)
    check.problems[:0] = problems
    check.ok = not check.problems
    if not check.ok:
        check.encoded = {}
    return check


class AutoResearchSearcher(LLMSearcher):
    """See the module docstring."""

    def __init__(self, **kw: Any) -> None:
        settings = kw["settings"]
        super().__init__(**kw)
        self.program = settings.research_program or ""
        self.fixed_margin = float(settings.autoresearch_noise_margin or 0.0)
        self.repeats = 0 if self.fixed_margin > 0 else int(settings.autoresearch_repeats or DEFAULT_REPEATS)
        self.margin: float | None = self.fixed_margin if self.fixed_margin > 0 else None
        rng = random.Random(f"{self.seed}-incumbent")
        self.incumbent = self.space.decode(self.space.sample(rng))
        for p in self.space.params:
            if p.default is not None and p.contains(p.default):
                self.incumbent[p.name] = p.default
        self.incumbent_runs: list[float | None] = []  # scores of the incumbent's own runs
        self.incumbent_metric: float | None = None
        self.roles: dict[str, str] = {}  # trial id -> incumbent / repeat / change
        self.experiments: list[dict[str, Any]] = []

    # ------------------------------------------------------------ Tune API
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.failed is not None or self.suggested >= self.budget:
            return LLMSearcher.FINISHED
        if self.pending:
            return None  # one trial at a time: each step builds on the last verdict
        runs = sum(1 for r in self.roles.values() if r in ("incumbent", "repeat"))
        if runs < 1 + self.repeats:
            role = "incumbent" if runs == 0 else "repeat"
            self._start(trial_id, role, dict(self.incumbent), None, None,
                        note="the incumbent" if role == "incumbent"
                        else f"a re-run of the incumbent measuring the noise ({runs}/{self.repeats})")
            return self.space.encode(self.incumbent)
        request = f"{trial_id}-{time.time_ns()}"
        try:
            values, encoded, reasoning, changes = self._propose_change(trial_id, request)
        except LLMError as exc:
            return self._give_up(exc, trial_id, request)
        self._start(trial_id, "change", values, request, reasoning, changes=changes)
        return encoded

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        super().on_trial_complete(trial_id, result, error)
        role = self.roles.get(trial_id)
        metric = (self.finished.get(trial_id) or {}).get("metric")
        if role in ("incumbent", "repeat"):
            self.incumbent_runs.append(metric)
            ok = [m for m in self.incumbent_runs if m is not None]
            self.incumbent_metric = sum(ok) / len(ok) if ok else None
            if self.fixed_margin <= 0 and len(self.incumbent_runs) == 1 + self.repeats:
                self.margin = (max(ok) - min(ok)) if len(ok) >= 2 else 0.0
                self._log("margin", margin=self.margin, measured=True, runs=self.incumbent_runs,
                          incumbent_metric=self.incumbent_metric)
            return
        if role != "change":
            return
        exp = next(e for e in self.experiments if e["trial_id"] == trial_id)
        margin = self.margin or 0.0
        inc = self.incumbent_metric
        if metric is None:
            keep, delta = False, None
        elif inc is None:
            keep, delta = True, None  # the incumbent never produced a score
        else:
            delta = (inc - metric) if self.mode == "min" else (metric - inc)
            keep = delta > margin
        exp.update(metric=metric, decision="keep" if keep else "discard", improvement=delta)
        self._log("decision", trial_id=trial_id, decision=exp["decision"], metric=metric, incumbent_metric=inc,
                  improvement=delta, margin=margin, reasoning=exp["reasoning"], changes=exp["changes"])
        if keep:
            self.incumbent = dict(exp["config"])
            self.incumbent_metric = metric

    def save(self, checkpoint_path: str) -> None:
        keys = ("fmt", "finished", "pending", "values", "suggested", "fallbacks", "failed", "margin",
                "incumbent", "incumbent_runs", "incumbent_metric", "roles", "experiments")
        with open(checkpoint_path, "wb") as fh:
            pickle.dump({k: getattr(self, k) for k in keys}, fh)

    # ------------------------------------------------------------ internals
    def _start(self, trial_id: str, role: str, values: dict[str, Any], request: str | None,
               reasoning: str | None, changes: dict[str, Any] | None = None, note: str = "") -> None:
        self.suggested += 1
        self.roles[trial_id] = role
        self.pending[trial_id] = {"trial_id": trial_id, "config": values}
        if role == "change":
            self.experiments.append({"trial_id": trial_id, "changes": changes, "reasoning": reasoning,
                                     "config": values, "metric": None, "decision": None})
            self._log("decision", trial_id=trial_id, request=request, decision="run", config=values,
                      changes=changes, reasoning=reasoning)
        else:
            self._log("decision", trial_id=trial_id, decision=role, config=values, reasoning=note)

    def _messages(self, budget_left: int) -> tuple[list[dict[str, str]], dict[str, Any]]:
        body: dict[str, Any] = {
            "objective": {"metric": self.metric, "direction": "minimize" if self.mode == "min" else "maximize"},
            "budget": {"trials_total": self.budget, "trials_left_including_this_one": budget_left},
            "search_space": describe_space(self.space),
            "incumbent": {"config": self.incumbent, "metric": self.incumbent_metric},
            "noise_margin": {"value": self.margin, "how": "given" if self.fixed_margin > 0 else
                             f"spread of {1 + self.repeats} runs of the starting configuration",
                             "rule": "a change is kept only if it beats the incumbent by more than this"},
        }
        rules = describe_constraints(self.space)
        if rules:
            body["constraints"] = rules
        done = [e for e in self.experiments if e["decision"] is not None]
        full = list(done)
        while True:
            body["experiments"] = [{"trial": e["trial_id"], "changes": e["changes"], "metric": e["metric"],
                                    "decision": e["decision"], "reasoning": e["reasoning"]} for e in full]
            if len(full) < len(done):
                older = done[:len(done) - len(full)]
                body["older_experiments_summary"] = {
                    "count": len(older), "kept": [e["changes"] for e in older if e["decision"] == "keep"],
                    "discarded": sum(e["decision"] == "discard" for e in older)}
            text = ("Research program (the user's goal):\n" + (self.program or "(none given)") +
                    "\n\nModel skill notes (hyperparameter advice from the skill):\n" +
                    ((self.notes or "")[:8000] or "(none)") +
                    "\n\nState of the search (JSON):\n" + json.dumps(body, indent=1, default=str) +
                    "\n\nPropose the next change.")
            if len(text) + len(SYSTEM) <= self.max_chars or not full:
                break
            full = full[max(1, len(full) // 4):]
        ids_full = {e["trial_id"] for e in full}
        coverage = {"full": sorted(ids_full),
                    "summarised": [t for t in self.finished if t not in ids_full],
                    "chars": len(text) + len(SYSTEM)}
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}], coverage

    def _schema(self, fmt: str) -> dict[str, Any] | None:
        if fmt == "json_object":
            return {"type": "json_object"}
        if fmt != "json_schema":
            return None

        changes = {"type": "object", "properties": {p.name: _value_schema(p) for p in self.space.params},
                   "additionalProperties": False}
        schema = {"type": "object", "properties": {"reasoning": {"type": "string"}, "changes": changes},
                  "required": ["reasoning", "changes"], "additionalProperties": False}
        return {"type": "json_schema", "json_schema": {"name": "hpo_change", "schema": schema, "strict": False}}

    def _ask(self, messages: list[dict[str, str]], purpose: str, extra: dict[str, Any]) -> Any:
        return self._chat(messages, purpose, extra, self._schema)

    def _validate(self, reply: Any, request: str, trial_id: str, purpose: str) -> Validation:
        taken = [("finished", config_key(e["config"])) for e in self.experiments] + \
            [("finished", config_key(self.incumbent))]
        try:
            obj = extract_json(reply.text)
        except ValueError as exc:
            check = Validation(False, {}, {}, {}, [str(exc).replace('"config": {...}', '"changes": {...}')])
            obj = {}
        else:
            check = validate_changes(self.space, obj, self.incumbent, enforce_kwargs=self.enforce_kwargs,
                                     taken=taken)
        changes = obj.get("changes") if isinstance(obj, Mapping) else None
        self._log("proposal", request=request, trial_id=trial_id, purpose=purpose, raw=reply.text,
                  finish_reason=reply.finish_reason, valid=check.ok, values=check.values, changes=changes,
                  parameters=check.report, problems=check.problems, reasoning=check.reasoning)
        return check

    def _propose_change(self, trial_id: str, request: str) -> tuple[dict, dict, str, dict]:
        messages, coverage = self._messages(self.budget - self.suggested)
        extra = {"request": request, "trial_id": trial_id, "coverage": coverage,
                 "known_finished": list(self.finished)}
        check = self._ask_repaired(messages, extra, "propose", self._ask,
                                   lambda reply, purpose: self._validate(reply, request, trial_id, purpose),
                                   shape='{"reasoning": "...", "changes": {...}}')
        if not check.ok:
            raise self.client.error("the change was still invalid after one repair prompt: "
                                    + "; ".join(check.problems)[:1500])
        changes = {k: check.values[k] for k in check.values if check.values[k] != self.incumbent.get(k)}
        return check.values, check.encoded, check.reasoning, changes
