"""The ``python -m benchmarks --llm`` harness's hybrid/autoresearch path: a
tiny budget on Branin through the real runner, the recording proxy and the
scripted OpenAI-compatible server (scripted policies, not an LLM)."""

from __future__ import annotations

import json
import sys

import pytest
from skillkit import REPO

from tao_automl.store.workspace import Workspace

if str(REPO) not in sys.path:  # `benchmarks` is a folder of the repository, not of the package
    sys.path.insert(0, str(REPO))

from benchmarks import llm_bench  # noqa: E402


def _events(run_dir, kind):
    (session,) = [b.parent for b in (run_dir / "ws").glob("*/brain")]
    return [e for e in Workspace(str(session)).events("brain") if e["kind"] == kind]


@pytest.mark.slow  # three 8-trial runs: ~25 s idle, ~60 s on a loaded machine
def test_hybrid_and_autoresearch_through_the_harness(ray_cluster, tmp_path):
    said: list[str] = []
    payload = llm_bench.run(out_dir=tmp_path, endpoint=None, model=None, api_key_env=None, replay=None,
                            seeds=[0], say=said.append, algorithms=("hybrid", "autoresearch", "random"),
                            functions=("branin",), trials=8)
    rows = {r["algorithm"]: r for r in payload["rows"]}
    assert all(r["ok"] == 1 and r["trials_median"] == 8 for r in rows.values()), rows
    # hybrid: a random phase of 6 trials over both parameters, then a bayesian phase of 2: two plans
    plans = _events(tmp_path / "runs" / "ours-hybrid-branin-plain-s0", "plan")
    assert [(p["algorithm"], p["trials"], len(p["parameters"])) for p in plans] == \
        [("random", 6, 2), ("bayesian", 2, 2)]
    assert rows["hybrid"]["brain"] == {"calls": 2, "failed_calls": 0, "repairs": 0, "invalid": 0, "stops": 0,
                                       "fallbacks": 0, "ended_by_llm": 0}
    # autoresearch: the incumbent runs 3 times (margin 0 on a noise-free objective), then 5 changes
    verdicts = [d for d in _events(tmp_path / "runs" / "ours-autoresearch-branin-plain-s0", "decision")
                if d["decision"] in ("keep", "discard")]
    assert len(verdicts) == 5 and all("not an LLM" in v["reasoning"] for v in verdicts)
    assert rows["autoresearch"]["brain"]["calls"] == 5 and rows["autoresearch"]["brain"]["repairs"] == 0
    assert "brain" not in rows["random"]
    # every call went through the recording proxy, labelled with its run
    rec = [json.loads(line) for line in (tmp_path / "recording.jsonl").read_text().splitlines()]
    assert sorted((x["run"], x["status"]) for x in rec) == \
        [("autoresearch-branin-plain-s0", 200)] * 5 + [("hybrid-branin-plain-s0", 200)] * 2
    assert rows["hybrid"]["calls"] == 2 and rows["autoresearch"]["calls"] == 5
    (target,) = payload["hybrid_target"]
    assert target["constituent"] == "random" and target["compared"] == ["random"]
    assert target["met"] == (rows["hybrid"]["best_median"] <= rows["random"]["best_median"])
    assert target["verdict"].endswith("(scripted policy, not an LLM)")
    md = (tmp_path / "results.md").read_text()
    assert "NOT a language model" in md and "regret ratio" in md
    assert "| branin-plain (optimum 0.398) | hybrid | 1/1 |" in md


def test_scripted_change_policy_moves_the_incumbent():
    from tao_automl.testing.llm_server import prompt_state

    state = {"search_space": [{"name": "params.x1", "type": "float", "minimum": 0.0, "maximum": 1.0},
                              {"name": "opt", "type": "categorical", "options": ["sgd", "adam"]}],
             "incumbent": {"config": {"params.x1": 0.5, "opt": "sgd"}, "metric": 1.0}, "experiments": []}
    body = {"seed": 3, "messages": [
        {"role": "user", "content": "State of the search (JSON):\n" + json.dumps(state)
         + "\n\nPropose the next change."}]}
    assert prompt_state(body) == state
    seen = set()
    for n in range(6):
        state["experiments"] = [{}] * n
        body["messages"][0]["content"] = ("State of the search (JSON):\n" + json.dumps(state)
                                          + "\n\nPropose the next change.")
        reply = json.loads(llm_bench.scripted_policy(body))
        changes = reply["changes"]
        assert changes and set(changes) <= {"params.x1", "opt"}
        assert changes.get("opt", "adam") == "adam"  # another option
        assert 0.0 <= changes.get("params.x1", 0.5) <= 1.0
        assert all(changes[k] != state["incumbent"]["config"][k] for k in changes)
        assert "not an LLM" in reply["reasoning"]
        seen.add(json.dumps(changes, sort_keys=True))
    assert len(seen) == 6  # each experiment is a new one
    # a phase-plan prompt (and its repair) gets a plan, not a change
    plan = {"search_space": state["search_space"], "budget": {"trials_left": 20}, "phases": []}
    body = {"messages": [{"role": "user", "content": "State of the search (JSON):\n" + json.dumps(plan)
                          + "\n\nPlan the next phase."},
                         {"role": "user", "content": "Your plan could not be used: ..."}]}
    got = json.loads(llm_bench.scripted_policy(body))
    assert got["action"] == "explore" and got["algorithm"] == "random" and got["trials"] == 6
    assert got["parameters"] == ["params.x1", "opt"]
