"""``hybrid`` end to end on Ray Tune with the toy skill and the local backend,
two trials at a time, against a scripted OpenAI-compatible server on
127.0.0.1 (its planner is :func:`phase_policy`: not an LLM, but every plan
travels through the real openai client, the prompt, the validation and the
brain log, and the registry's searchers do the sweeping)."""

from __future__ import annotations

import pytest
from skillkit import TOY

from tao_automl.cli import main as cli_main
from tao_automl.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.testing.llm_server import phase_policy, prompt_state
from tao_automl.workspace import Workspace


def settings(srv, **kw):
    return {"max_recommendations": 6, "max_concurrent": 2, "seed": 0, "session_id": "exp",
            "baseline": False, "final_eval": False, "llm_endpoint": srv.base_url, "llm_model": "scripted",
            **kw}


def brain(ws, kind: str) -> list[dict]:
    return [e for e in Workspace(ws / "exp").events("brain") if e["kind"] == kind]


def test_hybrid_run_with_concurrency_and_audit(ray_cluster, llm_server, tmp_path):
    llm_server.policy = phase_policy  # 2 trials per phase: random first, then bayesian
    ws = tmp_path / "ws"
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(
        automl_algorithm="hybrid", automl_settings=settings(llm_server), spec_overrides={"train.num_epochs": 2})
    validate_result(res)
    assert res["algorithm"] == "hybrid" and len(res["history"]) == 6
    assert all(t["status"] == "succeeded" for t in res["history"])
    plans = brain(ws, "plan")
    assert [p["algorithm"] for p in plans] == ["random", "bayesian", "bayesian"]
    assert len(llm_server.requests) == 3
    by_request = {p["request"]: p for p in plans}
    decisions = [d for d in brain(ws, "decision") if d["decision"] == "run"]
    assert len(decisions) == 6
    ran = {t["rec_id"]: t["hyperparameters"] for t in res["history"]}
    for d in decisions:
        plan = by_request[d["request"]]
        # the swept parameters come from the phase's algorithm, the rest is the incumbent
        for k, v in plan["incumbent"].items():
            if k not in plan["parameters"]:
                assert d["config"][k] == v
        assert ran[d["trial_id"]] == pytest.approx(d["config"])
    # phases 2 and 3 start from the best trial so far, and their prompts carry phase results
    best_before = min((t for t in res["history"] if t["rec_id"] in {d["trial_id"] for d in decisions[:2]}),
                      key=lambda t: t["metric"])
    assert plans[1]["incumbent"] == pytest.approx(best_before["hyperparameters"])
    last = prompt_state(llm_server.requests[-1])
    assert len(last["phases"]) == 2 and all(ph["best"] for ph in last["phases"])
    assert len(last["recent_trials"]) == 4
    assert res["llm"]["ok"] and res["llm"]["fallback_trials"] == []
    assert cli_main(["audit", str(ws / "exp")]) == 0
    # a doctored log: a trial decision no LLM call stands behind
    Workspace(ws / "exp").append_event("brain", "decision", {"trial_id": "forged", "request": "none",
                                                             "decision": "run", "config": {}})
    assert cli_main(["audit", str(ws / "exp")]) == 3
