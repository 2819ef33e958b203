"""``autoresearch`` without Ray Tune's loop: changes from a scripted
OpenAI-compatible server on 127.0.0.1 through the real ``openai`` client,
applied to the incumbent and validated against the schema, the measured or
given noise margin, keep/discard verdicts in the brain log, the research
program in the prompt, repair and stop, settings checks and the audit."""

from __future__ import annotations

import pytest

from tao_automl.algorithms.llm import check_llm_settings
from tao_automl.algorithms.llm.autoresearch import AutoResearchSearcher, validate_changes
from tao_automl.algorithms.llm.brain import BrainLog, audit
from tao_automl.algorithms.llm.validate import config_key
from tao_automl.config.settings import parse_settings
from tao_automl.errors import LLMError, SettingsError
from tao_automl.execution.tuning import EarlyStop
from tao_automl.search.params import Constraint, SearchParam
from tao_automl.search.space import SearchSpace
from tao_automl.store.workspace import Workspace
from tao_automl.testing.llm_server import Reply, Status, change, prompt_state

LR, BS, MOM, ACT, NI = "train.lr", "train.batch_size", "train.momentum", "model.activation", "train.num_instances"
DEFAULTS = {LR: 0.01, BS: 32, MOM: 0.9, ACT: "relu", NI: 4}
PROGRAM = "Find a learning rate and momentum that lower val_loss; keep the batch size."


def space() -> SearchSpace:
    return SearchSpace(params=[
        SearchParam(LR, "float", default=0.01, low=1e-4, high=0.1, log=True),
        SearchParam(BS, "int", default=32, low=8, high=256, encoding="pow2"),
        SearchParam(MOM, "float", default=0.9, low=0.0, high=0.95, step=0.05),
        SearchParam(ACT, "categorical", default="relu", options=("relu", "tanh")),
        SearchParam(NI, "int", default=4, low=2, high=8),
    ], constraints=[Constraint("multiple_of", BS, NI)], excluded={"train.seed": "disabled in the schema"})


def settings(srv, **kw):
    return parse_settings({"algorithm": "autoresearch", "llm_endpoint": srv.base_url, "llm_model": "test-model",
                           "seed": 3, "max_recommendations": 6, "research_program": PROGRAM, **kw})


def searcher(srv, tmp_path, stop=None, **kw) -> AutoResearchSearcher:
    s = settings(srv, **kw)
    ws = Workspace(tmp_path / "exp")
    ws.makedirs()
    sr = AutoResearchSearcher(space=space(), metric="val_loss", mode="min", settings=s,
                              budget=s.max_recommendations, brain=BrainLog(ws.root), stop=stop, notes="notes")
    sr.client.sleep = lambda s: None
    return sr


def events(tmp_path, kind=None) -> list[dict]:
    return [e for e in Workspace(tmp_path / "exp").events("brain") if kind is None or e["kind"] == kind]


def step(sr, tid, metric):
    cfg = sr.suggest(tid)
    assert cfg not in (None, AutoResearchSearcher.FINISHED)
    sr.on_trial_complete(tid, {"val_loss": metric})
    return sr.space.decode(cfg)


def test_validate_changes():
    ok = validate_changes(space(), {"reasoning": "r", "changes": {LR: 0.003}}, DEFAULTS)
    assert ok.ok and ok.values == {**DEFAULTS, LR: 0.003}
    bad = validate_changes(space(), {"reasoning": "r", "changes": {"train.seed": 1, LR: 3.0, BS: 48}}, DEFAULTS)
    text = " | ".join(bad.problems)
    assert not bad.ok and "'train.seed' may not change: not a searchable parameter" in text
    assert "train.lr = 3.0: outside" in text and "expected a power of 2" in text
    assert "leave the incumbent as it is" in validate_changes(
        space(), {"reasoning": "r", "changes": {LR: 0.01}}, DEFAULTS).problems[0]
    assert not validate_changes(space(), {"reasoning": "r", "changes": {}}, DEFAULTS).ok
    assert "violates a constraint" in " ".join(validate_changes(
        space(), {"reasoning": "r", "changes": {NI: 3}}, DEFAULTS).problems)
    assert "repeats a finished" in validate_changes(
        space(), {"reasoning": "r", "changes": {LR: 0.02}}, DEFAULTS,
        taken=[("finished", config_key({**DEFAULTS, LR: 0.02}))]).problems[0]


def test_measured_margin_keeps_only_clear_wins_and_changes_accumulate(llm_server, tmp_path):
    llm_server.script(Reply(change("lower lr", **{LR: 0.003})),  # 0.95: better by 0.05 <= margin 0.1
                      Reply(change("higher momentum", **{MOM: 0.5})),  # 0.70: better by 0.3 > 0.1 -> keep
                      Reply(change("try tanh", **{ACT: "tanh"})))  # worse -> discard
    sr = searcher(llm_server, tmp_path)
    assert step(sr, "i0", 1.05) == DEFAULTS
    assert step(sr, "r1", 0.95) == DEFAULTS and step(sr, "r2", 1.0) == DEFAULTS
    assert sr.margin == pytest.approx(0.1) and sr.incumbent_metric == pytest.approx(1.0)
    assert events(tmp_path, "margin")[0]["margin"] == pytest.approx(0.1)
    assert step(sr, "c1", 0.95) == {**DEFAULTS, LR: 0.003}
    assert sr.incumbent == DEFAULTS  # not a clear win: discarded
    assert step(sr, "c2", 0.7) == {**DEFAULTS, MOM: 0.5}  # applied to the incumbent, not to c1
    assert sr.incumbent == {**DEFAULTS, MOM: 0.5} and sr.incumbent_metric == 0.7
    assert step(sr, "c3", 0.9) == {**DEFAULTS, MOM: 0.5, ACT: "tanh"}  # the kept change stays
    assert sr.incumbent == {**DEFAULTS, MOM: 0.5}
    assert sr.suggest("z") == AutoResearchSearcher.FINISHED and len(llm_server.requests) == 3
    verdicts = [e for e in events(tmp_path, "decision") if e["decision"] in ("keep", "discard")]
    assert [v["decision"] for v in verdicts] == ["discard", "keep", "discard"]
    assert verdicts[1]["margin"] == pytest.approx(0.1) and verdicts[1]["reasoning"] == "higher momentum"
    assert verdicts[1]["improvement"] == pytest.approx(0.3)
    # the prompt: research program, incumbent, margin and every experiment with its verdict
    content = llm_server.requests[2]["messages"][1]["content"]
    assert PROGRAM in content
    state = prompt_state(llm_server.requests[2])
    assert state["incumbent"] == {"config": {**DEFAULTS, MOM: 0.5}, "metric": 0.7}
    assert state["noise_margin"]["value"] == pytest.approx(0.1)
    assert [e["decision"] for e in state["experiments"]] == ["discard", "keep"]
    assert audit(Workspace(tmp_path / "exp")).ok


def test_given_margin_skips_the_repeats_and_runs_one_trial_at_a_time(llm_server, tmp_path):
    llm_server.script(Reply(change(**{LR: 0.02})), Reply(change(**{LR: 0.005})))
    sr = searcher(llm_server, tmp_path, autoresearch_noise_margin=0.01, max_recommendations=3,
                  max_concurrent=2)
    assert sr.suggest("i0") is not None
    assert sr.suggest("other") is None  # sequential: waits for the incumbent
    sr.on_trial_complete("i0", {"val_loss": 1.0})
    assert sr.space.decode(sr.suggest("c1"))[LR] == 0.02 and sr.suggest("other") is None
    sr.on_trial_complete("c1", {"val_loss": 0.995})  # better by 0.005 <= 0.01
    assert sr.incumbent[LR] == 0.01
    assert step(sr, "c2", 0.5)[LR] == 0.005 and sr.incumbent[LR] == 0.005
    assert events(tmp_path, "margin") == []


def test_invalid_change_twice_stops_with_llm_error(llm_server, tmp_path):
    llm_server.script(Reply(change(**{"train.seed": 7})), Reply(change(**{LR: 0.01})))
    stop = EarlyStop(str(tmp_path / "exp"))
    sr = searcher(llm_server, tmp_path, stop=stop, autoresearch_noise_margin=0.1)
    step(sr, "i0", 1.0)
    assert sr.suggest("c1") == AutoResearchSearcher.FINISHED
    assert "may not change" in llm_server.requests[1]["messages"][-1]["content"]
    assert isinstance(stop.error, LLMError) and "leave the incumbent as it is" in str(stop.error)
    found = audit(Workspace(tmp_path / "exp"))
    assert not found.ok and any("stopped" in p for p in found.problems)


def test_endpoint_failure_stops(llm_server, tmp_path):
    llm_server.script(Status(404, "model not found"))
    stop = EarlyStop(str(tmp_path / "exp"))
    sr = searcher(llm_server, tmp_path, stop=stop, autoresearch_noise_margin=0.1)
    step(sr, "i0", 1.0)
    assert sr.suggest("c1") == AutoResearchSearcher.FINISHED and "HTTP 404" in str(stop.error)


def test_save_restore_keeps_the_incumbent(llm_server, tmp_path):
    llm_server.script(Reply(change(**{MOM: 0.5})), Reply(change(**{LR: 0.02})))
    sr = searcher(llm_server, tmp_path, autoresearch_noise_margin=0.1)
    step(sr, "i0", 1.0)
    step(sr, "c1", 0.5)
    path = str(tmp_path / "s.pkl")
    sr.save(path)
    again = searcher(llm_server, tmp_path, autoresearch_noise_margin=0.1)
    again.restore(path)
    assert again.incumbent == {**DEFAULTS, MOM: 0.5} and again.incumbent_metric == 0.5
    assert again.space.decode(again.suggest("c2")) == {**DEFAULTS, MOM: 0.5, LR: 0.02}


def test_autoresearch_settings_are_checked(llm_server):
    base = {"llm_endpoint": llm_server.base_url, "llm_model": "m"}
    with pytest.raises(SettingsError, match="autoresearch_repeats"):
        check_llm_settings(parse_settings({**base, "autoresearch_noise_margin": 0.1, "autoresearch_repeats": 3}),
                           algorithm="autoresearch")
    with pytest.raises(SettingsError, match=r">= 5 \(1 incumbent run \+ 3 re-runs"):
        check_llm_settings(parse_settings({**base, "max_recommendations": 4, "autoresearch_repeats": 3}),
                           algorithm="autoresearch")
    with pytest.raises(SettingsError, match="research_program.*does not apply|does not apply.*research_program"):
        check_llm_settings(parse_settings({**base, "research_program": "x"}), algorithm="hybrid")
    with pytest.raises(SettingsError, match="llm_fallback"):
        check_llm_settings(parse_settings({**base, "llm_fallback": "random"}), algorithm="autoresearch")
    with pytest.raises(SettingsError, match="autoresearch_noise_margin"):
        parse_settings({"autoresearch_noise_margin": -1})
    check_llm_settings(parse_settings({**base, "max_recommendations": 4}), algorithm="autoresearch")
