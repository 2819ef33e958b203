"""LLM-guided search, without Ray Tune's loop: the endpoint client against a
real OpenAI-compatible HTTP server on 127.0.0.1 (scripted) through the real
``openai`` client, the searcher's propose/validate/repair/stop logic, the
prompt, the brain log and ``tao-automl audit``."""

from __future__ import annotations

import json
import time

import pytest

from tao_automl.algorithms.llm.brain import BrainLog, audit
from tao_automl.algorithms.llm.client import FormatUnsupported, LLMClient
from tao_automl.algorithms.llm.prompt import build_messages, extract_json, response_format
from tao_automl.algorithms.llm.searcher import LLMSearcher
from tao_automl.algorithms.llm.validate import validate_proposal
from tao_automl.config.settings import parse_settings
from tao_automl.errors import LLMError, SettingsError
from tao_automl.execution.tuning import EarlyStop
from tao_automl.search.params import Constraint, SearchParam
from tao_automl.search.space import SearchSpace
from tao_automl.store.workspace import Workspace
from tao_automl.testing.llm_server import (
    Delay,
    Raw,
    Reply,
    Status,
    perturbation_policy,
    prompt_state,
)

MSG = [{"role": "user", "content": "hi"}]


def space() -> SearchSpace:
    return SearchSpace(params=[
        SearchParam("train.lr", "float", default=0.01, low=1e-4, high=0.1, log=True),
        SearchParam("train.batch_size", "int", default=32, low=8, high=256, encoding="pow2"),
        SearchParam("train.momentum", "float", default=0.9, low=0.0, high=0.95, step=0.05),
        SearchParam("model.activation", "categorical", default="relu", options=("relu", "tanh")),
        SearchParam("train.num_instances", "int", default=4, low=2, high=8),
    ], constraints=[Constraint("multiple_of", "train.batch_size", "train.num_instances")])


GOOD = {"train.lr": 0.003, "train.batch_size": 32, "train.momentum": 0.9, "model.activation": "tanh",
        "train.num_instances": 4}


def reply(config=None, reasoning="try a mid learning rate", **extra) -> str:
    return json.dumps({"reasoning": reasoning, "config": dict(GOOD if config is None else config), **extra})


def client(srv, **kw) -> tuple[LLMClient, list, list]:
    calls, waits = [], []
    c = LLMClient(endpoint=srv.base_url, model="test-model", on_call=calls.append, sleep=waits.append,
                  **{"max_retries": 3, "timeout_s": 5.0, **kw})
    return c, calls, waits


# ----------------------------------------------------------------- client
def test_valid_reply_and_call_record(llm_server):
    llm_server.script(Reply(reply()))
    c, calls, _ = client(llm_server)
    r = c.chat(MSG, purpose="propose", response_format={"type": "json_object"})
    assert json.loads(r.text)["config"] == GOOD and r.finish_reason == "stop"
    assert r.usage["total_tokens"] == 15
    (rec,) = calls
    assert rec["ok"] and rec["status"] == 200 and rec["attempt"] == 1 and rec["format"] == "json_object"
    assert rec["prompt"] == MSG and rec["reply"] == r.text and rec["latency_s"] >= 0
    body = llm_server.requests[0]
    assert body["model"] == "test-model" and body["response_format"] == {"type": "json_object"}
    assert body["max_tokens"] == 1024 and body["temperature"] == 0.2


def test_429_retry_after_is_honoured_then_500_then_200(llm_server):
    llm_server.script(Status(429, headers={"Retry-After": "7"}), Status(500), Reply("ok"))
    c, calls, waits = client(llm_server)
    assert c.chat(MSG, purpose="propose").text == "ok"
    assert waits == [7.0, 1.0]  # Retry-After, then the backoff
    assert [x["status"] for x in calls] == [429, 500, 200]
    assert [x["attempt"] for x in calls] == [1, 2, 3]
    assert len(llm_server.requests) == 3  # openai's own retries are off


@pytest.mark.parametrize("code", [400, 401, 404])
def test_client_errors_are_not_retried(llm_server, code):
    llm_server.script(Status(code, "nope"), Reply("never reached"))
    c, calls, waits = client(llm_server)
    with pytest.raises(LLMError) as info:
        c.chat(MSG, purpose="propose")
    assert len(llm_server.requests) == 1 and waits == []
    assert f"HTTP {code}" in str(info.value) and "test-model" in str(info.value)
    assert llm_server.base_url in str(info.value) and info.value.endpoint == llm_server.base_url


def test_retries_are_bounded(llm_server):
    llm_server.script(*[Status(503)] * 5)
    c, calls, waits = client(llm_server, max_retries=2)
    with pytest.raises(LLMError, match=r"HTTP 503.*after 3 attempt\(s\); llm_max_retries=2"):
        c.chat(MSG, purpose="propose")
    assert len(llm_server.requests) == 3 and len(waits) == 2


def test_timeout_is_retried(llm_server):
    llm_server.script(Delay(1.5, then=Reply("late")), Reply("fast"))
    c, calls, _ = client(llm_server, timeout_s=0.5)
    t0 = time.monotonic()
    assert c.chat(MSG, purpose="propose").text == "fast"
    assert time.monotonic() - t0 < 1.4
    assert calls[0]["error"] == "APITimeoutError" and calls[0]["status"] is None and calls[1]["ok"]


def test_connection_refused_is_an_llm_error():
    c = LLMClient(endpoint="http://127.0.0.1:9/v1", model="m", max_retries=1, sleep=lambda s: None)
    with pytest.raises(LLMError, match="APIConnectionError.*after 2 attempt"):
        c.chat(MSG, purpose="propose")


def test_empty_choices_and_garbage_are_retried(llm_server):
    llm_server.script(Reply("", choices=False), Raw(b"<html>not json"), Raw(b"\x00garbage"), Reply("fine"))
    c, calls, _ = client(llm_server)
    assert c.chat(MSG, purpose="propose").text == "fine"
    assert [x.get("error") for x in calls[:3]][0] == "empty choices"
    assert all(not x["ok"] for x in calls[:3]) and calls[3]["ok"]


def test_400_about_response_format_asks_to_step_down(llm_server):
    llm_server.script(Status(400, "response_format json_schema is not supported", when_format="json_schema"))
    c, calls, _ = client(llm_server)
    with pytest.raises(FormatUnsupported):
        c.chat(MSG, purpose="propose", response_format=response_format(space(), "json_schema"))
    assert calls[0]["step_down"] and len(llm_server.requests) == 1


def test_api_key_is_sent_but_never_recorded(llm_server, monkeypatch):
    key = "sk-test-0123456789abcdef"
    monkeypatch.setenv("H15_LLM_KEY", key)
    llm_server.script(Status(401, f"Incorrect API key provided: {key}"))
    c, calls, _ = client(llm_server, api_key_env="H15_LLM_KEY")
    with pytest.raises(LLMError) as info:
        c.chat(MSG, purpose="propose")
    assert llm_server.headers[0]["authorization"] == f"Bearer {key}"
    assert key not in str(info.value) and key not in json.dumps(calls)


def test_unset_api_key_variable_is_an_llm_error(llm_server, monkeypatch):
    monkeypatch.delenv("H15_UNSET_KEY", raising=False)
    c, _, _ = client(llm_server, api_key_env="H15_UNSET_KEY")
    with pytest.raises(LLMError, match="H15_UNSET_KEY"):
        c.chat(MSG, purpose="propose")
    assert llm_server.requests == []


# ------------------------------------------------------------ validation
def test_validation_verdicts():
    sp = space()
    v = validate_proposal(sp, {"reasoning": "r", "config": {**GOOD, "train.momentum": 0.52,
                                                              "train.batch_size": 32.0}})
    assert v.ok and v.values["train.momentum"] == pytest.approx(0.5) and v.values["train.batch_size"] == 32
    assert v.report["train.momentum"]["verdict"] == "clamped" and v.report["train.lr"]["verdict"] == "accepted"
    assert v.encoded["train.batch_size"] == 5  # pow2 exponent for Tune
    bad = validate_proposal(sp, {"reasoning": "r", "config": {**GOOD, "train.lr": 5.0, "train.batch_size": 48,
                                                                "model.activation": True, "extra.key": 1}})
    assert not bad.ok
    text = " | ".join(bad.problems)
    assert "train.lr = 5.0: outside [0.0001, 0.1]" in text and "expected a power of 2" in text
    assert "unknown parameter 'extra.key'" in text and "not one of the options" in text
    assert bad.report["extra.key"]["verdict"] == "rejected"
    missing = validate_proposal(sp, {"reasoning": "r", "config": {"train.lr": 0.01}})
    assert any("'train.batch_size' is missing" in p for p in missing.problems)
    constraint = validate_proposal(sp, {"reasoning": "r", "config": {**GOOD, "train.num_instances": 3}})
    assert not constraint.ok and "violates a constraint" in constraint.problems[0]
    dup = validate_proposal(sp, {"reasoning": "r", "config": GOOD},
                            taken=[("pending", __import__("tao_automl.algorithms.llm.validate",
                                                          fromlist=["x"]).config_key(GOOD))])
    assert not dup.ok and "repeats a pending trial" in dup.problems[0]


def test_extract_json_tolerates_fences_and_prose():
    obj = {"reasoning": "x", "config": {"a": 1}}
    assert extract_json(json.dumps(obj)) == obj
    assert extract_json("Sure! here:\n```json\n" + json.dumps(obj) + "\n```\nthanks") == obj
    assert extract_json("I think {" + json.dumps(obj)[1:] + " is best") == obj
    for junk in ("", "no json here", '{"reasoning": "cut off', "[1, 2]"):
        with pytest.raises(ValueError):
            extract_json(junk)


def test_response_format_schema_is_built_from_the_space():
    rf = response_format(space(), "json_schema")
    cfg = rf["json_schema"]["schema"]["properties"]["config"]
    assert cfg["properties"]["train.lr"] == {"type": "number", "minimum": 1e-4, "maximum": 0.1}
    assert cfg["properties"]["model.activation"] == {"enum": ["relu", "tanh"]}
    assert cfg["properties"]["train.batch_size"]["type"] == "integer"
    assert set(cfg["required"]) == {p.name for p in space().params} and cfg["additionalProperties"] is False
    assert response_format(space(), "json_object") == {"type": "json_object"}
    assert response_format(space(), "text") is None


def test_prompt_holds_every_finished_trial_and_summarises_the_oldest():
    finished = [{"trial_id": f"t{i:03d}", "config": dict(GOOD), "status": "succeeded", "metric": float(i)}
                for i in range(60)]
    finished[5] = {**finished[5], "status": "failed", "metric": None, "failure_reason": "oom: CUDA out of memory"}
    kw = dict(space=space(), metric="val_loss", mode="min", budget_left=3, total=63, pending=[],
              notes="lr above 0.5 diverges")
    msgs, cov = build_messages(finished=finished, max_chars=200_000, **kw)
    state = prompt_state({"messages": msgs})
    assert len(state["finished_trials"]) == 60 and cov["summarised"] == []
    assert state["finished_trials"][5]["failure_reason"].startswith("oom")
    assert state["objective"] == {"metric": "val_loss", "direction": "minimize"}
    assert state["budget"]["trials_left_including_this_one"] == 3
    lr = next(p for p in state["search_space"] if p["name"] == "train.lr")
    assert lr["scale"] == "log" and lr["minimum"] == 1e-4 and lr["default"] == 0.01
    assert "lr above 0.5 diverges" in msgs[1]["content"]
    assert state["constraints"] == ["train.batch_size must be a multiple of train.num_instances"]
    msgs, cov = build_messages(finished=finished, max_chars=6000, **kw)
    state = prompt_state({"messages": msgs})
    summary = state["older_trials_summary"]
    assert cov["summarised"] and set(cov["summarised"]) | set(cov["full"]) == {t["trial_id"] for t in finished}
    assert summary["trials"] == len(cov["summarised"]) and summary["best"]["metric"] == 0.0
    assert summary["failure_reasons"] == {"oom: CUDA out of memory": 1}
    assert len(msgs[0]["content"]) + len(msgs[1]["content"]) <= 6000


# --------------------------------------------------------------- searcher
def settings(srv, **kw):
    return parse_settings({"algorithm": "llm", "llm_endpoint": srv.base_url, "llm_model": "test-model",
                           "seed": 3, "max_recommendations": 5, **kw})


def searcher(srv, tmp_path, stop=None, **kw) -> LLMSearcher:
    s = settings(srv, **kw)
    ws = Workspace(tmp_path / "exp")
    ws.makedirs()
    sr = LLMSearcher(space=space(), metric="val_loss", mode="min", settings=s, budget=s.max_recommendations,
                     brain=BrainLog(ws.root), stop=stop, notes="SKILL notes")
    sr.client.sleep = lambda s: None
    return sr


def kinds(tmp_path) -> list[str]:
    return [e["kind"] for e in Workspace(tmp_path / "exp").events("brain")]


def test_searcher_runs_a_valid_proposal_and_logs_it(llm_server, tmp_path):
    llm_server.script(Reply(reply()))
    sr = searcher(llm_server, tmp_path)
    cfg = sr.suggest("t1")
    assert cfg == {**GOOD, "train.batch_size": 5}
    assert kinds(tmp_path) == ["call", "proposal", "decision"]
    ev = {e["kind"]: e for e in Workspace(tmp_path / "exp").events("brain")}
    assert ev["decision"]["decision"] == "run" and ev["decision"]["reasoning"] == "try a mid learning rate"
    assert ev["proposal"]["parameters"]["train.lr"]["verdict"] == "accepted"
    assert ev["call"]["coverage"] == {"full": [], "summarised": [], "chars": ev["call"]["coverage"]["chars"]}
    assert llm_server.requests[0]["response_format"]["type"] == "json_schema"


def test_invalid_reply_gets_one_repair_prompt(llm_server, tmp_path):
    llm_server.script(Reply(reply({**GOOD, "train.lr": 3.0, "bogus": 1})), Reply("```json\n" + reply() + "\n```"))
    sr = searcher(llm_server, tmp_path)
    assert sr.suggest("t1")["train.lr"] == 0.003
    repair = llm_server.requests[1]["messages"]
    assert repair[-2]["role"] == "assistant" and "train.lr = 3.0: outside" in repair[-1]["content"]
    assert "unknown parameter 'bogus'" in repair[-1]["content"]
    props = [e for e in Workspace(tmp_path / "exp").events("brain") if e["kind"] == "proposal"]
    assert [p["valid"] for p in props] == [False, True] and props[0]["parameters"]["bogus"]["verdict"] == "rejected"


def test_still_invalid_after_repair_stops_the_run_with_llm_error(llm_server, tmp_path):
    llm_server.script(Reply("no json"), Reply(reply({**GOOD, "train.batch_size": 48})))
    stop = EarlyStop(str(tmp_path / "exp"))
    sr = searcher(llm_server, tmp_path, stop=stop)
    assert sr.suggest("t1") == LLMSearcher.FINISHED
    assert isinstance(stop.error, LLMError) and stop.is_set
    assert "test-model" in str(stop.error) and llm_server.base_url in str(stop.error)
    assert "expected a power of 2" in str(stop.error)
    assert sr.suggest("t2") == LLMSearcher.FINISHED and len(llm_server.requests) == 2
    assert kinds(tmp_path)[-1] == "decision"
    found = audit(Workspace(tmp_path / "exp"))
    assert not found.ok and any("stopped" in p for p in found.problems)


def test_truncated_reply_is_repaired_with_a_note(llm_server, tmp_path):
    llm_server.script(Reply('{"reasoning": "long', finish_reason="length"), Reply(reply()))
    sr = searcher(llm_server, tmp_path)
    assert sr.suggest("t1") is not None
    assert "cut off (finish_reason 'length')" in llm_server.requests[1]["messages"][-1]["content"]


def test_format_steps_down_and_is_remembered(llm_server, tmp_path):
    llm_server.script(Status(400, "response_format json_schema unsupported", when_format="json_schema"),
                      Status(400, "response_format json_object unsupported", when_format="json_object"),
                      Reply("Here you go:\n```\n" + reply() + "\n```"),
                      Reply(reply({**GOOD, "train.lr": 0.004})))
    sr = searcher(llm_server, tmp_path)
    assert sr.suggest("t1") is not None and sr.suggest("t2") is not None
    fmts = [(r.get("response_format") or {}).get("type", "text") for r in llm_server.requests]
    assert fmts == ["json_schema", "json_object", "text", "text"]
    steps = [e for e in Workspace(tmp_path / "exp").events("brain") if e["kind"] == "format"]
    assert [(s["refused"], s["now"]) for s in steps] == [("json_schema", "json_object"), ("json_object", "text")]


def test_pending_configurations_are_in_the_prompt_and_duplicates_refused(llm_server, tmp_path):
    llm_server.script(Reply(reply()), Reply(reply()), Reply(reply({**GOOD, "train.lr": 0.02})))
    sr = searcher(llm_server, tmp_path, max_concurrent=2)
    sr.suggest("t1")
    assert sr.suggest("t2")["train.lr"] == 0.02
    state = prompt_state(llm_server.requests[1])
    assert state["pending_trials_do_not_repeat"] == [GOOD]
    assert "repeats a pending trial" in llm_server.requests[2]["messages"][-1]["content"]


def test_finished_trials_reach_the_next_prompt(llm_server, tmp_path):
    llm_server.script(Reply(reply()), Reply(reply({**GOOD, "train.lr": 0.02})), Reply(reply({**GOOD, "train.lr": 0.05})))
    sr = searcher(llm_server, tmp_path)
    sr.suggest("t1")
    for v in (0.9, 0.4, 0.6):
        sr.on_trial_result("t1", {"val_loss": v})
    sr.on_trial_complete("t1", {"val_loss": 0.6})
    sr.suggest("t2")
    sr.on_trial_complete("t2", None, error=True)
    sr.suggest("t3")
    state = prompt_state(llm_server.requests[2])
    t1, t2 = state["finished_trials"]
    assert t1 == {"trial": "t1", "config": GOOD, "status": "succeeded", "metric": 0.4}  # best epoch
    assert t2["status"] == "failed" and t2["metric"] is None and t2["failure_reason"]
    assert state["budget"] == {"trials_total": 5, "trials_left_including_this_one": 3}
    found = audit(Workspace(tmp_path / "exp"))
    assert found.ok, found.problems
    assert found.decisions == {"run": 3} and found.calls_ok == 3


def test_fallback_random_is_tagged_and_fails_the_audit(llm_server, tmp_path):
    llm_server.script(Status(401, "bad key"))
    sr = searcher(llm_server, tmp_path, llm_fallback="random")
    cfg = sr.suggest("t1")
    assert cfg is not None and set(cfg) == {p.name for p in space().params}
    assert sr.fallbacks == ["t1"]
    ws = Workspace(tmp_path / "exp")
    notes = [e["note"] for e in ws.events("ledger/t1") if e["kind"] == "note"]
    assert notes and notes[0].startswith("LLM fallback: configuration drawn at random")
    found = audit(ws)
    assert found.fallback_trials == ["t1"] and not found.ok


def test_save_restore_continues_the_search(llm_server, tmp_path):
    llm_server.script(Reply(reply()), Reply(reply({**GOOD, "train.lr": 0.02})))
    sr = searcher(llm_server, tmp_path)
    sr.suggest("t1")
    sr.on_trial_complete("t1", {"val_loss": 0.5})
    path = tmp_path / "searcher.pkl"
    sr.save(str(path))
    again = searcher(llm_server, tmp_path)
    again.restore(str(path))
    assert again.suggest("t2")["train.lr"] == 0.02
    assert prompt_state(llm_server.requests[1])["finished_trials"][0]["metric"] == 0.5
    assert again.suggested == 2


def test_restore_picks_up_trials_observed_after_the_last_save(llm_server, tmp_path):
    llm_server.script(Reply(reply()), Reply(reply({**GOOD, "train.lr": 0.02})))
    sr = searcher(llm_server, tmp_path)
    path = tmp_path / "searcher.pkl"
    sr.save(str(path))  # saved before t1 was even proposed
    sr.suggest("t1")
    sr.on_trial_complete("t1", {"val_loss": 0.5})
    again = searcher(llm_server, tmp_path)
    again.restore(str(path))
    again.suggest("t2")
    assert prompt_state(llm_server.requests[1])["finished_trials"][0]["trial"] == "t1"


def test_perturbation_policy_answers_valid_configurations(llm_server, tmp_path):
    llm_server.policy = perturbation_policy  # it knows no constraints: a space without one
    sr = searcher(llm_server, tmp_path, max_recommendations=8)
    sr.space = SearchSpace(params=space().params)
    for i in range(8):
        cfg = sr.suggest(f"t{i}")
        assert cfg is not None and cfg != LLMSearcher.FINISHED
        sr.on_trial_complete(f"t{i}", {"val_loss": abs(cfg["train.lr"] - 0.01)})
    assert sr.suggest("t9") == LLMSearcher.FINISHED  # the budget is spent


# --------------------------------------------------------------- settings
def test_llm_settings_are_validated(llm_server):
    from tao_automl import secret

    s = parse_settings({"base_url": "http://localhost:8000/v1", "llm_model": "m", "llm_api_key": secret("K")})
    assert s.llm_endpoint == "http://localhost:8000/v1" and s.to_dict()["llm_api_key"] == "${oc.env:K}"
    assert parse_settings(s.to_dict()).llm_api_key == secret("K")  # settings.json round trip
    with pytest.raises(SettingsError, match="literal API key is refused") as info:
        parse_settings({"llm_api_key": "sk-secret-value"})
    assert "sk-secret-value" not in str(info.value)
    for bad, needle in (({"llm_temperature": 2.5}, "a number from 0 to 2"),
                        ({"llm_max_retries": 21}, "from 0 to 20"),
                        ({"llm_timeout_s": 0}, "> 0"),
                        ({"base_url": "localhost:8000"}, "key 'base_url' (llm_endpoint)"),
                        ({"llm_fallback": "bayesian"}, "'random'")):
        with pytest.raises(SettingsError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            parse_settings(bad)


# ------------------------------------------------- preflight (before launch)
TOY = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples" / "toy_skill"


def review(tmp_path, algorithm, **settings):
    from tao_automl.runner import AutoMLRunner

    r = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    return r.review(automl_algorithm=algorithm, automl_settings={"baseline": False, **settings})


def test_llm_preflight_refuses_bad_plans_before_launch(tmp_path, monkeypatch):
    from tao_automl import secret
    from tao_automl.errors import CredentialError

    with pytest.raises(SettingsError, match=r"not apply to algorithm 'bayesian': key 'automl_settings.base_url' \(llm_endpoint\)"):
        review(tmp_path, "bayesian", base_url="http://localhost:8000/v1")
    with pytest.raises(SettingsError, match="not apply to algorithm 'random': key 'automl_settings.llm_model'"):
        review(tmp_path, "random", llm_model="m")
    with pytest.raises(SettingsError, match="automl_settings.llm_endpoint"):
        review(tmp_path, "llm", llm_model="m")
    with pytest.raises(SettingsError, match="automl_settings.llm_model"):
        review(tmp_path, "llm", llm_endpoint="http://localhost:8000/v1")
    monkeypatch.delenv("H15_NO_SUCH_KEY", raising=False)
    with pytest.raises(CredentialError, match="H15_NO_SUCH_KEY"):
        review(tmp_path, "llm", llm_endpoint="http://localhost:8000/v1", llm_model="m",
               llm_api_key=secret("H15_NO_SUCH_KEY"))
    assert not (tmp_path / "ws").exists()


def test_llm_review_has_no_random_initial_batch(tmp_path):
    rv = review(tmp_path, "llm", llm_endpoint="http://localhost:8000/v1", llm_model="m", max_concurrent=2)
    assert rv["algorithm"] == "llm" and not rv["blockers"]
    assert rv["recommendations"] == []  # every configuration comes from the LLM at run time
    assert any("proposed at run time by model 'm' at http://localhost:8000/v1" in n for n in rv["notes"])


# ------------------------------------------------------------------ audit
def test_audit_command_exit_codes(llm_server, tmp_path, capsys):
    from tao_automl.cli import main

    llm_server.script(Reply(reply()))
    sr = searcher(llm_server, tmp_path)
    Workspace(tmp_path / "exp").write_json("settings.json", {"created": 1})
    sr.suggest("t1")
    assert main(["audit", str(tmp_path / "exp")]) == 0
    assert "LLM workflow VALID" in capsys.readouterr().out
    sr.fallback = "random"
    llm_server.script(Status(404, "no such model"))
    sr.suggest("t2")
    assert main(["audit", str(tmp_path / "exp")]) == 3
    out = capsys.readouterr().out
    assert "FAILED" in out and "drawn at random by the fallback" in out
    assert main(["audit", "--json", str(tmp_path / "exp")]) == 3
    assert json.loads(capsys.readouterr().out)["fallback_trials"] == ["t2"]


def test_audit_flags_a_prompt_without_finished_trials_and_an_empty_log(tmp_path):
    ws = Workspace(tmp_path / "exp")
    ws.makedirs()
    assert not audit(ws).ok  # no brain log at all
    brain = BrainLog(ws.root)
    brain.append("call", request="r1", ok=True, purpose="propose", coverage={"full": ["a"], "summarised": []},
                 known_finished=["a", "b"])
    brain.append("proposal", request="r1", valid=True)
    brain.append("decision", request="r1", trial_id="c", decision="run")
    found = audit(ws)
    assert found.problems == ["proposal request r1 left out finished trials ['b']"]
    brain.append("decision", request="r-none", trial_id="d", decision="run")
    assert "trial d has no successful LLM call behind it" in audit(ws).problems


def test_brain_log_never_holds_the_api_key(llm_server, tmp_path, monkeypatch):
    from tao_automl import secret

    key = "sk-h15-brain-secret-987654321"
    monkeypatch.setenv("H15_BRAIN_KEY", key)
    # a server that echoes the key back in its reply and in an error
    llm_server.script(Status(500, f"upstream rejected {key}"),
                      Reply(reply(reasoning=f"the key was {key}")))
    sr = searcher(llm_server, tmp_path, llm_api_key=secret("H15_BRAIN_KEY"))
    assert sr.suggest("t1") is not None
    assert llm_server.headers[0]["authorization"] == f"Bearer {key}"
    files = list((tmp_path / "exp" / "brain").iterdir())
    assert len(files) == 4  # failed call, call, proposal, decision
    for f in files:
        text = f.read_text()
        assert key not in text
    assert any("***" in f.read_text() for f in files)
