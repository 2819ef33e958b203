"""``llm`` end to end on Ray Tune with the toy skill and the local backend,
against a scripted OpenAI-compatible server on 127.0.0.1 (its policy is a
local perturbation of the best finished trial: not an LLM, but every
configuration still travels through the real openai client, the prompt, the
validation and the brain log)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from s3_fixture import s3_server_fixture  # noqa: F401  (the s3_server fixture)
from skillkit import TOY

from tao_automl.algorithms.llm.brain import audit
from tao_automl.cli import main as cli_main
from tao_automl.errors import LLMError
from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace
from tao_automl.testing.llm_server import Reply, Status, perturbation_policy, prompt_state

TOY_CONFIG = {"train.lr": 0.01, "train.weight_decay": 1e-4, "train.momentum": 0.9, "train.batch_size": 32,
              "model.hidden_size": 32, "model.activation": "tanh"}


def proposal(**changes) -> str:
    return json.dumps({"reasoning": "scripted", "config": {**TOY_CONFIG, **changes}})


def settings(srv, **kw):
    return {"max_recommendations": 4, "max_concurrent": 2, "seed": 0, "session_id": "exp",
            "baseline": False, "final_eval": False, "llm_endpoint": srv.base_url, "llm_model": "scripted",
            **kw}


def brain(ws: Path, kind: str) -> list[dict]:
    return [e for e in Workspace(ws / "exp").events("brain") if e["kind"] == kind]


def test_llm_run_with_concurrency(ray_cluster, llm_server, tmp_path):
    llm_server.policy = perturbation_policy
    ws = tmp_path / "ws"
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(
        automl_algorithm="llm", automl_settings=settings(llm_server), spec_overrides={"train.num_epochs": 2})
    validate_result(res)
    assert res["algorithm"] == "llm" and len(res["history"]) == 4
    assert all(t["status"] == "succeeded" for t in res["history"])
    # every trial ran exactly the configuration the LLM proposed
    proposed = {d["trial_id"]: d["config"] for d in brain(ws, "decision")}
    assert {d["decision"] for d in brain(ws, "decision")} == {"run"}
    for t in res["history"]:
        assert t["hyperparameters"] == pytest.approx(proposed[t["rec_id"]])
    # with two slots, a proposal was asked while another trial was pending
    assert any(prompt_state(r).get("pending_trials_do_not_repeat") for r in llm_server.requests)
    # later prompts carry earlier trials' metrics
    last = prompt_state(llm_server.requests[-1])
    assert last["finished_trials"] and all(isinstance(t["metric"], float) for t in last["finished_trials"])
    assert res["llm"]["ok"] and res["llm"]["calls_ok"] == 4 and res["llm"]["fallback_trials"] == []
    assert cli_main(["audit", str(ws / "exp")]) == 0
    skill_md = (TOY / "SKILL.md").read_text()
    assert skill_md[:200] in llm_server.requests[0]["messages"][1]["content"]


def test_llm_error_stops_the_run_and_surfaces(ray_cluster, llm_server, tmp_path):
    llm_server.policy = None
    llm_server.script(Reply(proposal()), Reply(proposal(**{"train.lr": 0.02})), Status(401, "invalid api key"))
    ws = tmp_path / "ws"
    with pytest.raises(LLMError) as info:
        AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(
            automl_algorithm="llm", automl_settings=settings(llm_server, max_concurrent=1),
            spec_overrides={"train.num_epochs": 2})
    assert "HTTP 401" in str(info.value) and "scripted" in str(info.value)
    assert info.value.endpoint == llm_server.base_url and info.value.model == "scripted"
    trials = JobLedger(Workspace(ws / "exp")).trials()
    assert len(trials) == 2, "no trial launches after the LLM failed"
    assert len(llm_server.requests) == 3
    assert [d["decision"] for d in brain(ws, "decision")] == ["run", "run", "stop"]
    assert cli_main(["audit", str(ws / "exp")]) == 3


def test_llm_fallback_random_is_tagged_in_the_result(ray_cluster, llm_server, tmp_path):
    llm_server.policy = None
    llm_server.script(Reply(proposal()), Status(404, "model not found"))
    ws = tmp_path / "ws"
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(
        automl_algorithm="llm",
        automl_settings=settings(llm_server, max_concurrent=1, max_recommendations=3, llm_fallback="random",
                                 llm_max_retries=0),
        spec_overrides={"train.num_epochs": 1})
    assert len(res["history"]) == 3
    assert len(res["llm"]["fallback_trials"]) == 2 and not res["llm"]["ok"]
    tagged = [t for t in res["history"] if any(n.startswith("LLM fallback") for n in t.get("notes") or [])]
    assert sorted(t["rec_id"] for t in tagged) == sorted(res["llm"]["fallback_trials"])


DRIVER = """
import json, sys
from tao_automl.runner import AutoMLRunner
r = AutoMLRunner(skill_dir=sys.argv[1], workspace_dir=sys.argv[2])
r.run(automl_algorithm="llm", automl_settings=json.loads(sys.argv[3]),
      spec_overrides={"train.num_epochs": 3, "train.epoch_sleep_s": 1.0})
"""


@pytest.mark.slow
def test_llm_sigkill_then_resume_continues_the_search(ray_cluster, llm_server, tmp_path):
    llm_server.policy = perturbation_policy
    ws = tmp_path / "ws"
    ws.mkdir()
    s = settings(llm_server, max_recommendations=6)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(TOY), str(ws), json.dumps(s)],
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
    done_before = {r.trial_id for r in JobLedger(Workspace(ws / "exp")).trials() if r.done}
    asked_before = len(llm_server.requests)

    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(resume=True, automl_settings={"session_id": "exp"})
    validate_result(res)
    assert len(res["history"]) == 6 and all(t["status"] == "succeeded" for t in res["history"])
    assert asked_before < 6 and len(llm_server.requests) > asked_before, "the resumed run asks the LLM again"
    after = [prompt_state(r) for r in llm_server.requests[asked_before:]]
    seen = {t["trial"] for st in after for t in st.get("finished_trials", [])}
    assert done_before <= seen, "prompts after the resume hold the trials finished before the kill"
    found = audit(Workspace(ws / "exp"))
    assert found.ok, found.problems


def test_brain_log_on_an_s3_workspace(llm_server, s3_server):
    """The brain log goes through the Workspace class: on s3:// too, and the
    searcher still writes after a pickle round trip (Tune's save/restore)."""
    import pickle

    from tao_automl.algorithms.llm.brain import BrainLog
    from tao_automl.algorithms.llm.searcher import LLMSearcher
    from tao_automl.config.settings import parse_settings
    from tao_automl.search.params import SearchParam
    from tao_automl.search.space import SearchSpace

    root = f"s3://{s3_server.bucket}/exp"
    space = SearchSpace(params=[SearchParam("train.lr", "float", default=0.01, low=1e-4, high=0.1, log=True)])
    s = parse_settings({"llm_endpoint": llm_server.base_url, "llm_model": "m", "max_recommendations": 3})
    sr = LLMSearcher(space=space, metric="val_loss", mode="min", settings=s, budget=3,
                     brain=BrainLog(root, s3_server.storage_options))
    llm_server.script(Reply(json.dumps({"reasoning": "a", "config": {"train.lr": 0.01}})),
                      Reply(json.dumps({"reasoning": "b", "config": {"train.lr": 0.02}})))
    assert sr.suggest("t1") == {"train.lr": 0.01}
    sr.on_trial_complete("t1", {"val_loss": 0.3})
    again = pickle.loads(pickle.dumps(sr))
    assert again.suggest("t2") == {"train.lr": 0.02}
    ws = Workspace(root, s3_server.storage_options)
    kinds = [e["kind"] for e in ws.events("brain")]
    assert kinds == ["call", "proposal", "decision", "observed", "call", "proposal", "decision"]
    found = audit(ws)
    assert found.ok, found.problems
    assert found.decisions == {"run": 2}
