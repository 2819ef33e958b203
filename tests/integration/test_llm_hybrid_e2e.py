"""``hybrid`` (and ``autoresearch``) end to end on Ray Tune with the toy skill
and the local backend, two slots, against a scripted OpenAI-compatible server on
127.0.0.1 (its planner is :func:`phase_policy`: not an LLM, but every plan
travels through the real openai client, the prompt, the validation and the
brain log, and the registry's searchers do the sweeping)."""

from __future__ import annotations

import pytest
from skillkit import TOY

from tao_automl.cli import main as cli_main
from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.workspace import Workspace
from tao_automl.testing.llm_server import phase_policy, prompt_state


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


def test_autoresearch_run_keeps_and_discards(ray_cluster, llm_server, tmp_path):
    """autoresearch end to end: the incumbent runs 3 times (the toy skill is
    deterministic: a measured margin of 0), then scripted changes; with
    max_concurrent 2 it still runs one trial at a time."""
    from tao_automl.store.ledger import JobLedger
    from tao_automl.testing.llm_server import Reply, change

    llm_server.policy = None
    llm_server.script(Reply(change("a smaller learning rate", **{"train.lr": 0.003})),
                      Reply(change("a larger hidden layer", **{"model.hidden_size": 64})))
    ws = tmp_path / "ws"
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(
        automl_algorithm="autoresearch",
        automl_settings=settings(llm_server, max_recommendations=5, research_program="lower val_loss quickly"),
        spec_overrides={"train.num_epochs": 2})
    validate_result(res)
    assert len(res["history"]) == 5 and all(t["status"] == "succeeded" for t in res["history"])
    (margin,) = brain(ws, "margin")
    assert margin["margin"] == 0.0 and len(margin["runs"]) == 3
    verdicts = [d for d in brain(ws, "decision") if d["decision"] in ("keep", "discard")]
    assert len(verdicts) == 2 and all(v["reasoning"] for v in verdicts)
    first = verdicts[0]
    assert first["decision"] == ("keep" if first["improvement"] > 0 else "discard")
    second = [d for d in brain(ws, "decision") if d["decision"] == "run"][1]
    assert second["config"]["train.lr"] == (0.003 if first["decision"] == "keep" else TOY_LR)
    assert "lower val_loss quickly" in llm_server.requests[0]["messages"][1]["content"]
    # one trial at a time: each trial starts after the previous one was observed
    order = [("start" if e["kind"] == "decision" else "end") for e in Workspace(ws / "exp").events("brain")
             if e["kind"] == "observed" or e.get("decision") in ("incumbent", "repeat", "run")]
    assert order == ["start", "end"] * 5
    assert len(JobLedger(Workspace(ws / "exp")).trials()) == 5
    assert res["llm"]["ok"] and cli_main(["audit", str(ws / "exp")]) == 0


TOY_LR = 0.01


DRIVER = """
import json, sys
from tao_automl.runner import AutoMLRunner
r = AutoMLRunner(skill_dir=sys.argv[1], workspace_dir=sys.argv[2])
r.run(automl_algorithm=sys.argv[4], automl_settings=json.loads(sys.argv[3]),
      spec_overrides={"train.num_epochs": 3, "train.epoch_sleep_s": 1.0})
"""


def _kill_after_a_finished_trial(tmp_path, ws, s, algorithm):
    import json
    import signal
    import subprocess
    import sys
    import time

    from tao_automl.store.ledger import JobLedger

    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(TOY), str(ws), json.dumps(s), algorithm],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "driver.log", "w"))
    deadline = time.time() + 180
    while time.time() < deadline:
        if (ws / "exp" / "ledger").exists():
            led = JobLedger(Workspace(ws / "exp"))
            if any(r.done for r in led.trials()) and led.open_attempts():
                break
        assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
        time.sleep(0.2)
    else:
        raise AssertionError("no finished trial with another one running")
    time.sleep(1.5)  # Tune saves its experiment state (and the searcher) every second
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["hybrid", "autoresearch"])
def test_sigkill_then_resume_continues_the_search(ray_cluster, llm_server, tmp_path, algorithm):
    from tao_automl.algorithms.llm.brain import audit
    from tao_automl.testing.llm_server import change

    n = 5
    if algorithm == "hybrid":
        llm_server.policy = phase_policy
    else:
        lrs = iter([0.003, 0.02, 0.005, 0.03, 0.002, 0.04])
        llm_server.policy = lambda body: change("scripted", **{"train.lr": next(lrs)})
    ws = tmp_path / "ws"
    ws.mkdir()
    s = settings(llm_server, max_recommendations=n, **({"autoresearch_noise_margin": 0.001}
                                                       if algorithm == "autoresearch" else {}))
    _kill_after_a_finished_trial(tmp_path, ws, s, algorithm)
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(resume=True, automl_settings={"session_id": "exp"})
    validate_result(res)
    assert len(res["history"]) == n and all(t["status"] == "succeeded" for t in res["history"])
    found = audit(Workspace(ws / "exp"))
    assert found.ok, found.problems
