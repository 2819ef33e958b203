"""What the LLM is asked: the search space, the objective, the budget left,
every finished trial, the pending ones and the skill's HPO notes, within a
size bound (the oldest trials are summarised, never silently dropped).

Reply contract (one JSON object per call)::

    {"reasoning": "<why this configuration>",
     "config": {"<dotted parameter name>": <value>, ...}}

Three ways of asking, tried in this order and remembered for the run once a
server refuses one (HTTP 400 about ``response_format``): ``json_schema`` (a
JSON schema built from the space), ``json_object`` (JSON mode), ``text`` (the
object is extracted from the reply; code fences tolerated).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["FORMATS", "describe_space", "response_format", "build_messages", "repair_messages",
           "extract_json"]

FORMATS = ("json_schema", "json_object", "text")
NOTES_MAX_CHARS = 8000

SYSTEM = (
    "You are a hyperparameter optimisation assistant for a model training run. Each message "
    "gives the search space, the objective, the remaining budget and every finished trial. "
    "Propose ONE new configuration that you expect to improve the objective, using what the "
    "finished trials show (exploit near good results, explore where little is known). Every "
    "parameter must be given, inside its bounds, with its type (integers as integers), one of "
    "its options when it has options. Do not repeat a finished or pending configuration. "
    "Reply with exactly one JSON object and nothing else: "
    '{"reasoning": "<one or two sentences>", "config": {"<parameter name>": <value>, ...}}.'
)


def describe_space(space: Any) -> list[dict[str, Any]]:
    """One entry per searched parameter, in the user's (decoded) values."""
    rows = []
    for p in space.params:
        row: dict[str, Any] = {"name": p.name, "type": p.kind}
        if p.options is not None:
            row["options"] = list(p.options)
        elif p.encoding == "sorted_list":
            row.update(type=f"list of {p.length} strictly increasing integers", minimum=p.low, maximum=p.high)
        else:
            row.update(minimum=p.low, maximum=p.high)
            if p.log:
                row["scale"] = "log"
            if p.encoding == "pow2":
                row["constraint"] = "a power of 2"
            if p.step:
                row["multiple_of"] = p.step
        if p.default is not None:
            row["default"] = p.default
        rows.append(row)
    return rows


_RULES = {
    "multiple_of": "{param} must be a multiple of {other}",
    "divisible_by": "{param} must be divisible by {other}",
    "greater_than": "{param} must be greater than {other}",
    "at_most_div": "{param} must be at most {other} // {factor}",
    "exclusive": "{param} and {other} may not both be set",
    "max_batch_for_samples": "{param} times the shard count must not exceed the training sample count",
}


def describe_constraints(space: Any) -> list[str]:
    """Cross-parameter rules that apply to the searched parameters, in words."""
    names = set(space.names)
    out = []
    for c in space.constraints:
        if c.param not in names:
            continue
        text = _RULES.get(c.kind, c.kind).format(param=c.param, other=c.other, factor=c.factor)
        if c.other and c.other not in names and c.other in space.context:
            text += f" (= {space.context[c.other]!r}, fixed)"
        out.append(text + (f" ({c.reason})" if c.reason else ""))
    return out


def _value_schema(p: Any) -> dict[str, Any]:
    if p.options is not None:
        return {"enum": list(p.options)}
    if p.encoding == "sorted_list":
        item = {"type": "integer", "minimum": p.low, "maximum": p.high}
        return {"type": "array", "items": item, "minItems": p.length, "maxItems": p.length}
    out: dict[str, Any] = {"type": "integer" if p.kind == "int" else "number"}
    if p.low is not None and math.isfinite(p.low):
        out["minimum"] = p.low
    if p.high is not None and math.isfinite(p.high):
        out["maximum"] = p.high
    return out


def response_format(space: Any, fmt: str) -> dict[str, Any] | None:
    """The ``response_format`` argument for ``fmt`` (None for plain text)."""
    if fmt == "json_object":
        return {"type": "json_object"}
    if fmt != "json_schema":
        return None
    config = {"type": "object", "properties": {p.name: _value_schema(p) for p in space.params},
              "required": [p.name for p in space.params], "additionalProperties": False}
    schema = {"type": "object", "properties": {"reasoning": {"type": "string"}, "config": config},
              "required": ["reasoning", "config"], "additionalProperties": False}
    return {"type": "json_schema", "json_schema": {"name": "hpo_proposal", "schema": schema, "strict": True}}


def _trial_line(t: Mapping[str, Any]) -> dict[str, Any]:
    row = {"trial": t["trial_id"], "config": t.get("config"), "status": t.get("status"),
           "metric": t.get("metric")}
    if t.get("failure_reason"):
        row["failure_reason"] = t["failure_reason"]
    if t.get("fallback"):
        row["note"] = "drawn at random (fallback), not proposed by you"
    return row


def _summary(trials: Sequence[Mapping[str, Any]], mode: str) -> dict[str, Any]:
    ok = [t for t in trials if isinstance(t.get("metric"), int | float)]
    failed = [t for t in trials if t.get("status") == "failed"]
    out: dict[str, Any] = {"trials": len(trials), "succeeded": len(ok), "failed": len(failed),
                           "ids": [t["trial_id"] for t in trials]}
    if ok:
        pick = min if mode == "min" else max
        best = pick(ok, key=lambda t: t["metric"])
        worst = (max if mode == "min" else min)(ok, key=lambda t: t["metric"])
        out["best"] = {"metric": best["metric"], "config": best.get("config")}
        out["worst_metric"] = worst["metric"]
    if failed:
        reasons: dict[str, int] = {}
        for t in failed:
            key = str(t.get("failure_reason") or "unknown")[:80]
            reasons[key] = reasons.get(key, 0) + 1
        out["failure_reasons"] = reasons
    return out


def build_messages(*, space: Any, metric: str, mode: str, budget_left: int, total: int,
                   finished: Sequence[Mapping[str, Any]], pending: Sequence[Mapping[str, Any]],
                   notes: str, max_chars: int) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """(messages, coverage): ``coverage`` says which finished trials are in the
    prompt in full and which only in the summary of the oldest ones."""
    head = {
        "objective": {"metric": metric, "direction": "minimize" if mode == "min" else "maximize"},
        "budget": {"trials_total": total, "trials_left_including_this_one": budget_left},
        "search_space": describe_space(space),
    }
    rules = describe_constraints(space)
    if rules:
        head["constraints"] = rules
    if pending:
        head["pending_trials_do_not_repeat"] = [p.get("config") for p in pending]
    notes = notes or ""
    if len(notes) > NOTES_MAX_CHARS:
        notes = notes[:NOTES_MAX_CHARS] + f"\n[... {len(notes) - NOTES_MAX_CHARS} more characters of notes cut]"
    full = list(finished)
    summarised: list[Mapping[str, Any]] = []
    while True:
        body = dict(head)
        if summarised:
            body["older_trials_summary"] = _summary(summarised, mode)
        body["finished_trials"] = [_trial_line(t) for t in full]
        text = "Model skill notes (hyperparameter advice from the skill):\n" + (notes or "(none)") + \
            "\n\nState of the search (JSON):\n" + json.dumps(body, indent=1, default=str) + \
            "\n\nPropose the next configuration."
        if len(text) + len(SYSTEM) <= max_chars or not full:
            break
        cut = max(1, len(full) // 4)  # summarise the oldest quarter, then try again
        summarised.extend(full[:cut])
        full = full[cut:]
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    coverage = {"full": [t["trial_id"] for t in full], "summarised": [t["trial_id"] for t in summarised],
                "chars": len(text) + len(SYSTEM)}
    return messages, coverage


CONFIG_REPLY = '{"reasoning": "...", "config": {...}}'  # the shape of an llm proposal


def repair_messages(messages: list[dict[str, str]], reply: str, problems: Sequence[str], *,
                    shape: str = CONFIG_REPLY, what: str = "reply",
                    finish_reason: str | None = None) -> list[dict[str, str]]:
    """The one repair prompt: the previous reply and every problem found in it
    (first: that it was cut off, when the server says so), asking again for one
    JSON object of ``shape``."""
    problems = list(problems)
    if finish_reason == "length":
        problems.insert(0, "your reply was cut off (finish_reason 'length'); answer more briefly")
    text = (f"Your {what} could not be used:\n- " + "\n- ".join(problems) +
            f"\nReply again with exactly one JSON object {shape} that fixes every problem.")
    return [*messages, {"role": "assistant", "content": reply[:8000]}, {"role": "user", "content": text}]


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> dict[str, Any]:
    """The reply's JSON object (ValueError naming the problem otherwise).

    Accepts the bare object, a fenced block, or text around one object."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the reply is empty")
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for cand in candidates:
        s = cand.strip()
        for i, ch in enumerate(s):
            if ch != "{":
                continue
            try:
                obj, _end = decoder.raw_decode(s, i)
            except ValueError:
                continue
            if isinstance(obj, dict):
                return obj
    raise ValueError("no JSON object found in the reply (expected {\"reasoning\": ..., \"config\": {...}})")
