"""The brain log: ``<workspace>/brain/``, append-only, one immutable event
file per fact (like the job ledger), on any workspace the
:class:`~tao_automl.store.workspace.Workspace` class opens (local or ``s3://``).

Events (``kind``):

``call``      one HTTP attempt: purpose (``propose``/``repair``), attempt,
              HTTP status or error class, latency, tokens, finish_reason,
              the raw reply, the prompt, the response format and, for a
              proposal prompt, which finished trials it holds in full and
              which in the summary of the oldest ones (``coverage``)
``format``    the server refused a ``response_format``; the run steps down
``proposal``  raw reply object -> validated values, per-parameter verdict
              (accepted / clamped / rejected), problems, reasoning
``decision``  what the searcher did for a trial: ``run`` (an LLM proposal),
              ``fallback`` (drawn at random, ``llm_fallback: random``) or
              ``stop`` (LLMError), with the reasoning or cause
``observed``  a finished trial the searcher learned of (metric, status)

Secret values registered for masking never reach these files
(:meth:`Workspace.write_bytes` masks them); the API key is only ever named.

:func:`audit` reads it back and says whether the LLM workflow is valid:
every trial the searcher started has a successful call behind it, no
fallback was used, and no proposal prompt left out a finished trial's metric.
"""

from __future__ import annotations

from typing import Any

import attrs

from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

__all__ = ["BrainLog", "Audit", "audit", "STREAM"]

STREAM = "brain"


class BrainLog:
    """Append events to ``<workspace>/brain/`` (picklable: the workspace is reopened)."""

    def __init__(self, root: str, storage_options: dict[str, Any] | None = None) -> None:
        self.root = root
        self.storage_options = dict(storage_options or {})
        self._ws: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_ws": None}

    @property
    def ws(self) -> Any:
        if self._ws is None:
            self._ws = Workspace(self.root, self.storage_options)
        return self._ws

    def append(self, kind: str, **payload: Any) -> None:
        self.ws.append_event(STREAM, kind, payload)

    def events(self) -> list[dict[str, Any]]:
        return list(self.ws.events(STREAM))


@attrs.define
class Audit:
    """What :func:`audit` found; ``ok`` is False when the LLM workflow failed."""

    calls: int = 0
    calls_ok: int = 0
    calls_failed: int = 0
    proposals: int = 0
    proposals_valid: int = 0
    repairs: int = 0
    decisions: dict[str, int] = attrs.field(factory=dict)
    trials: int = 0
    fallback_trials: list[str] = attrs.field(factory=list)
    tokens: int = 0
    formats: list[str] = attrs.field(factory=list)
    problems: list[str] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "ok": self.ok}


def audit(ws: Any) -> Audit:
    """Summarise ``<ws>/brain/`` and cross-check it with the job ledger."""

    events = list(ws.events(STREAM))
    out = Audit()
    if not events:
        out.problems.append("no brain log: brain/ is empty (not an LLM-guided run, or no call was made)")
        return out
    ok_calls: set[str] = set()  # request ids with a successful call
    covered: dict[str, set[str]] = {}
    known: dict[str, list[str]] = {}
    observed: set[str] = set()
    for ev in events:
        kind = ev.get("kind")
        if kind == "call":
            out.calls += 1
            if ev.get("ok"):
                out.calls_ok += 1
                ok_calls.add(str(ev.get("request")))
            else:
                out.calls_failed += 1
            out.tokens += int((ev.get("tokens") or {}).get("total_tokens") or 0)
            if ev.get("format") and ev["format"] not in out.formats:
                out.formats.append(ev["format"])
            if ev.get("purpose") == "repair":
                out.repairs += 1
            cov = ev.get("coverage")
            if isinstance(cov, dict):
                req = str(ev.get("request"))
                covered.setdefault(req, set()).update(cov.get("full", []), cov.get("summarised", []))
                known.setdefault(req, list(ev.get("known_finished") or []))
        elif kind == "proposal":
            out.proposals += 1
            out.proposals_valid += bool(ev.get("valid"))
        elif kind == "decision":
            what = str(ev.get("decision"))
            out.decisions[what] = out.decisions.get(what, 0) + 1
            if what in ("run", "fallback"):
                out.trials += 1
            if what == "fallback":
                out.fallback_trials.append(str(ev.get("trial_id")))
            elif what == "run" and str(ev.get("request")) not in ok_calls:
                out.problems.append(f"trial {ev.get('trial_id')} has no successful LLM call behind it")
            elif what == "stop":
                out.problems.append(f"the search stopped: {ev.get('cause')}")
        elif kind == "observed":
            observed.add(str(ev.get("trial_id")))
    if out.fallback_trials:
        out.problems.append(f"{len(out.fallback_trials)} trial(s) drawn at random by the fallback, not by "
                            f"the LLM: {', '.join(out.fallback_trials)}")
    for req, ids in known.items():
        missing = [t for t in ids if t not in covered.get(req, set())]
        if missing:
            out.problems.append(f"proposal request {req} left out finished trials {missing}")
    if out.calls and not out.calls_ok:
        out.problems.append("no LLM call succeeded")
    if out.decisions.get("run", 0) and not out.proposals_valid:
        out.problems.append("no valid proposal was generated")
    decided = {str(ev.get("trial_id")) for ev in events if ev.get("kind") == "decision"}
    for rec in JobLedger(ws).trials():
        if rec.trial_id not in decided:
            out.problems.append(f"trial {rec.trial_id} ran without a decision in the brain log")
        elif rec.outcome is not None and rec.trial_id not in observed and _later_prompt(events, rec):
            out.problems.append(f"finished trial {rec.trial_id} never reached the searcher's history")
    return out


def _later_prompt(events: list[dict[str, Any]], rec: Any) -> bool:
    """Whether a proposal was asked for after ``rec`` finished (so it should have been seen)."""
    t = float((rec.outcome or {}).get("t") or 0)
    return any(ev.get("kind") == "call" and ev.get("coverage") is not None and float(ev.get("t") or 0) > t + 5
               for ev in events)
